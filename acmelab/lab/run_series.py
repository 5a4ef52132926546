"""Run the whole notebook series headless against the lab.

Usage::

    python -m acmelab.lab.run_series --out build     # make run
    python -m acmelab.lab.run_series --in-place      # make refresh-notebooks
    python -m acmelab.lab.run_series --out build 04 05   # only some notebooks

``--out DIR`` executes every ``notebooks/NN_*.ipynb`` in order (each in its
own kernel, working directory ``notebooks/``, like nbval) and writes the
executed copy and an HTML page of each into DIR (offline: diagrams inlined
as SVG, no script from a CDN, see :mod:`acmelab.lab.html_export`; links to
the other notebooks point at their ``.html`` pages).  It uses the
course's lab (:func:`acmelab.course.lab`: started if it is not running,
stopped again at the end if this command started it and no test session
uses it meanwhile, see :func:`acmelab.course.join_lab`).  The first line
printed says whether the lab was reused, started or restarted (a lab with
other Pebble settings is restarted, see :func:`acmelab.course.ensure_lab`),
and Pebble's pid.

``--in-place`` stops the course's lab, starts a fresh one, executes the
notebooks and writes their outputs back into ``notebooks/`` -- the stored
outputs nbval compares against.  The ACME target is forced to the lab.

Either way the worked solutions, ``notebooks/solutions/NN_*.ipynb``, run
after the numbered notebooks in the same lab run (working directory
``notebooks/solutions/``; with ``--out`` into ``DIR/solutions/``), unless
``--no-solutions``.  A number or name selects a notebook and its solution;
``solutions/NN`` (or ``solutions``) selects solutions only.

Either way the run fails (exit status 1) on the first cell error, or if any
output contains ``PRIVATE KEY``, the lab's access key secret or the one in
``ALIBABA_CLOUD_ACCESS_KEY_SECRET`` (such a notebook is not written
anywhere); per-notebook and total seconds are printed.  Files are written
atomically.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

from acmelab import files
from acmelab.lab import html_export

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
#: The worked solutions, one per numbered notebook, run after the series.
SOLUTIONS = NOTEBOOKS / "solutions"

#: Environment variables that point the course away from the lab.
TARGET_VARIABLES = ("ACMELAB_ACME", "ACMELAB_PRODUCTION", "ACMELAB_DOMAIN", "ACMELAB_CONTACT")

#: Text that must never appear in a notebook output.
FORBIDDEN_MARKERS = ("PRIVATE KEY",)


def notebook_paths(selection: Iterable[str] = (), *, solutions: bool = False) -> list[Path]:
    """``notebooks/NN_*.ipynb`` in order, then (with ``solutions``)
    ``notebooks/solutions/NN_*.ipynb``; ``selection`` keeps the given
    numbers ("04") or names (a notebook and its solution), or
    ``solutions/NN`` / ``solutions`` (solutions only)."""
    wanted = set(selection)
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    solution_paths = sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb")) if solutions else []
    if wanted:
        def chosen(path: Path, names: set[str]) -> bool:
            return bool({path.stem.split("_", 1)[0], path.stem, path.name} & names)

        only_solutions = {w.split("/", 1)[1] for w in wanted if w.startswith("solutions/")}
        paths = [p for p in paths if chosen(p, wanted)]
        solution_paths = [p for p in solution_paths
                          if "solutions" in wanted or chosen(p, wanted) or chosen(p, only_solutions)]
    return paths + solution_paths


def output_texts(outputs: Iterable[Any]) -> Iterable[str]:
    """Every text of a code cell's outputs (streams, every MIME type,
    error values and tracebacks)."""
    for output in outputs:
        if "text" in output:
            yield str(output["text"])
        for value in (output.get("data") or {}).values():
            yield value if isinstance(value, str) else str(value)
        if "traceback" in output:
            yield "\n".join(output["traceback"])
        if "evalue" in output:
            yield str(output["evalue"])


def output_leaks(outputs: Iterable[Any], secrets: Iterable[str] = ()) -> list[str]:
    """Problems in one cell's outputs: ``PRIVATE KEY`` material or one of
    ``secrets`` (e.g. the lab's access key secret).  Secrets are never echoed."""
    found = []
    secrets = [s for s in secrets if s]
    for text in output_texts(outputs):
        found.extend(f"output contains {marker!r}" for marker in FORBIDDEN_MARKERS if marker in text)
        if any(secret in text for secret in secrets):
            found.append("output contains an access key secret")
    return found


def leaks(notebook: Any, secrets: Iterable[str] = ()) -> list[str]:
    """:func:`output_leaks` over every code cell of a notebook."""
    secrets = list(secrets)
    return [f"cell {index}: {problem}"
            for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"
            for problem in output_leaks(cell.get("outputs", []), secrets)]


def clean_metadata(notebook: Any) -> None:
    """Drop per-run metadata so a refresh only changes real outputs."""
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
    notebook.metadata.pop("papermill", None)
    notebook.metadata.pop("widgets", None)


def execute(path: Path, timeout: int, kernel_log: Path | None = None) -> tuple[Any, float, str | None]:
    """Execute one notebook; returns ``(executed notebook, seconds, error or None)``.

    The kernel's own stderr (ipykernel warnings, crashes) goes to
    ``kernel_log`` (default: discarded), not into the notebook."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    error = None
    log = open(kernel_log, "wb") if kernel_log else open(os.devnull, "wb")
    try:
        client.execute(stderr=log)
    except CellExecutionError as exc:
        error = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        error = f"{error}\n{_failing_cell(notebook)}"
    except Exception as exc:  # kernel died, timeout: report, do not hide
        error = f"{type(exc).__name__}: {exc}"
    finally:
        log.close()
    clean_metadata(notebook)
    return notebook, time.perf_counter() - started, error


def _failing_cell(notebook: Any) -> str:
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"in cell {index}:\n{cell.source}"
    return ""


def pebble_pid(run_dir: Path) -> int | None:
    """The pid recorded for the lab's Pebble in ``run_dir`` (None if none)."""
    from acmelab.lab.processes import read_records

    return next((record.pid for record in read_records(run_dir) if record.name == "pebble"), None)


def write_notebook(notebook: Any, target: Path) -> None:
    """``notebook`` as ``.ipynb`` JSON into ``target``, atomically."""
    import nbformat

    files.write_atomically(target, nbformat.writes(notebook) + "\n")


def write_html(notebook: Any, target: Path, folder: Path = NOTEBOOKS) -> None:
    """The notebook as one offline HTML page (:mod:`acmelab.lab.html_export`:
    diagrams inlined as SVG, nothing loaded from a CDN) into ``target``,
    atomically.  ``folder`` is the notebook's own folder, where its relative
    paths start (``notebooks/``, or ``notebooks/solutions/`` whose diagrams
    are ``../diagrams/<name>.svg``); links to the other notebooks of the
    series point at their HTML pages."""
    page = html_export.notebook_html(notebook, folder, (path.stem for path in notebook_paths()))
    files.write_atomically(target, page)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acmelab.lab.run_series", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, help="write executed copies and HTML into this folder")
    mode.add_argument("--in-place", action="store_true",
                      help="re-execute against a fresh lab and store the outputs in notebooks/")
    parser.add_argument("--fresh", action="store_true", help="restart the lab first (implied by --in-place)")
    parser.add_argument("--timeout", type=int, default=180, help="seconds allowed per cell (default 180)")
    parser.add_argument("--no-solutions", dest="solutions", action="store_false",
                        help="skip the worked solutions (notebooks/solutions/)")
    parser.add_argument("notebooks", nargs="*", help="numbers or names to run (default: all)")
    options = parser.parse_args(argv)

    from acmelab import course
    from acmelab import lab as lab_module

    if options.in_place:
        for name in TARGET_VARIABLES:  # stored outputs always come from the lab
            os.environ.pop(name, None)
    paths = notebook_paths(options.notebooks, solutions=options.solutions)
    if not paths:
        print("no notebooks matched", file=sys.stderr)
        return 2

    wall_clock = time.perf_counter()
    uses_lab = os.environ.get("ACMELAB_ACME", "lab") in ("", "lab")
    was_running = lab_module.status() is not None
    if uses_lab:
        course.join_lab()  # stopped at the end if it was not running, unless others still use it
    # secrets that must never show up: the lab's, and a real Alibaba Cloud key's
    secrets = [os.environ.get(name, "") for name in ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIYUN_ACCESS_KEY_SECRET")]
    if uses_lab:
        started = time.perf_counter()
        stopped = was_running and (options.in_place or options.fresh)
        if stopped:
            lab_module.stop()  # a fresh lab (left running at the end, as it was)
        info, action = course.ensure_lab()  # "reused", "started" or "restarted"
        secrets.append(info.aliyun_access_key_secret)
        if stopped and action == "started":
            action = "restarted (a fresh one)"
        elif action == "restarted":
            action = "restarted (it ran other Pebble settings)"
        elif action == "reused":
            action = "reused (already running)"
        print(f"lab {action} at {info.directory_url}, Pebble pid {pebble_pid(info.run_dir)} "
              f"({time.perf_counter() - started:.1f} s)", flush=True)
    if options.out:
        options.out.mkdir(parents=True, exist_ok=True)

    scratch = None if options.out else Path(tempfile.mkdtemp(prefix="acmelab-series-"))
    logs = (options.out or scratch) / "kernel-logs"
    logs.mkdir(parents=True, exist_ok=True)
    total = 0.0
    failed = False
    try:
        for path in paths:
            shown = path.relative_to(NOTEBOOKS)  # NN_name.ipynb or solutions/NN_name.ipynb
            log = logs / str(shown.with_suffix(".log")).replace("/", "-")
            notebook, seconds, error = execute(path, options.timeout, log)
            total += seconds
            problems = leaks(notebook, secrets)
            if problems:
                pass  # a leaking notebook is written nowhere
            elif options.out:
                (options.out / shown).parent.mkdir(parents=True, exist_ok=True)
                write_notebook(notebook, options.out / shown)
                write_html(notebook, options.out / shown.with_suffix(".html"), path.parent)
            elif not error:
                write_notebook(notebook, path)
            status = "ok" if not error and not problems else "FAILED"
            print(f"{seconds:6.1f} s  {shown}  {status}", flush=True)
            if error or problems:
                failed = True
                for line in ([error] if error else []) + problems:
                    print(f"         {line}", file=sys.stderr)
                print(f"         kernel log: {log}", file=sys.stderr)
                break
    finally:
        if uses_lab:
            course.leave_lab()
        if scratch is not None and not failed:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"{total:6.1f} s  total in notebooks ({len(paths)}{', stopped early' if failed else ''}); "
          f"{time.perf_counter() - wall_clock:.1f} s wall clock with the lab and the HTML")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
