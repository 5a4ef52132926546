"""Build notebooks/NN_name.ipynb from its source notebooks/src/NN_name.py.

The sources use the "percent" format (the one jupytext reads)::

    # %% [markdown]
    # # A title
    # Some prose.

    # %%
    print("a code cell")

Usage (from the repository root)::

    .venv/bin/python notebooks/build.py            # every source
    .venv/bin/python notebooks/build.py 04 05      # only these numbers
    make refresh-notebooks                         # then: real outputs

The built notebook has no outputs; ``make refresh-notebooks`` executes it
against a fresh lab and stores the real ones.  Cell ids are stable
(``<number>-<index>``), so rebuilding an unchanged source changes nothing.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
CELL_MARKER = re.compile(r"^# %%(?P<rest>.*)$")


def parse(text: str) -> list[tuple[str, str]]:
    """Split a percent-format source into ``[(kind, source), ...]`` where
    kind is ``"markdown"`` or ``"code"``."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        marker = CELL_MARKER.match(line)
        if marker:
            kind = "markdown" if "[markdown]" in marker.group("rest") else "code"
            cells.append((kind, []))
            continue
        if not cells:
            continue  # text before the first marker (a module docstring) is ignored
        cells[-1][1].append(line)
    result = []
    for kind, lines in cells:
        if kind == "markdown":
            lines = [line[2:] if line.startswith("# ") else line[1:] if line.startswith("#") else line
                     for line in lines]
        while lines and not lines[0].strip():
            lines.pop(0)
        while lines and not lines[-1].strip():
            lines.pop()
        if lines:
            result.append((kind, "\n".join(lines)))
    return result


def build(source: Path) -> Path:
    """Write ``notebooks/<source stem>.ipynb`` from ``source``; returns its path."""
    number = source.stem.split("_", 1)[0]
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    notebook.metadata["language_info"] = {"name": "python"}
    for index, (kind, text) in enumerate(parse(source.read_text(encoding="utf-8"))):
        cell = nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text)
        cell["id"] = f"{number}-{index:02d}"
        notebook.cells.append(cell)
    nbformat.validate(notebook)
    target = source.parent.parent / f"{source.stem}.ipynb"  # src/ sits beside its notebooks
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:  # atomically: temp file + rename
        stream.write(nbformat.writes(notebook) + "\n")
    os.chmod(temporary, 0o644)
    os.replace(temporary, target)
    return target


def main(argv: list[str]) -> int:
    wanted = set(argv)
    sources = sorted(SOURCES.glob("[0-9][0-9]_*.py")) + sorted((HERE / "solutions" / "src").glob("[0-9][0-9]_*.py"))
    for source in sources:
        if wanted and source.stem.split("_", 1)[0] not in wanted:
            continue
        print(f"built {build(source).relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
