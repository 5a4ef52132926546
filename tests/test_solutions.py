"""The worked solutions (issue 15), checked on the stored files.

``notebooks/solutions/NN_name.ipynb`` answers the exercises of
``notebooks/NN_name.ipynb``: one solution per numbered notebook from 01 on
(00 has exercises too, so it has one), every exercise id of
:mod:`acmelab.exercises` handed to ``check`` in exactly one solution -- the
one of its notebook -- and the stored run printing ``right`` for each.  Like
the numbered notebooks, each solution opens with its title and links, was
executed top to bottom without errors, stores no secret and no machine path,
and matches its source in ``notebooks/solutions/src/``.  nbval re-runs them
(``pytest --nbval notebooks`` collects ``notebooks/solutions/``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from acmelab.exercises import EXERCISES
from acmelab.lab import run_series
from tests._notebooks import (NOTEBOOKS, NUMBERED, REPO, SOLUTION_PATHS as PATHS, SOLUTIONS, code_cells,
                              lab_secret, load, notebooks_build)

CHECK_CALL = re.compile(r"""\bcheck\(\s*["'](?P<id>\d\d\.\d+)["']""")


def output_text(notebook) -> str:
    return "\n".join(text for cell in code_cells(notebook) for text in run_series.output_texts(cell.outputs))


def checked_ids(path: Path) -> list[str]:
    return [match["id"] for cell in code_cells(load(path)) for match in CHECK_CALL.finditer(cell.source)]


def test_every_numbered_notebook_from_01_has_a_solution():
    wanted = {path.name for path in NUMBERED if path.name[:2] != "00"}
    have = {path.name for path in PATHS}
    assert wanted, "no numbered notebooks found"
    assert wanted <= have, f"no solution for {sorted(wanted - have)}"
    assert have <= {path.name for path in NUMBERED}, f"solutions without a notebook: {sorted(have - wanted)}"


def test_every_exercise_is_answered_in_exactly_one_solution_its_own():
    where: dict[str, list[str]] = {}
    for path in PATHS:
        for exercise_id in set(checked_ids(path)):
            where.setdefault(exercise_id, []).append(path.name)
    missing = sorted(set(EXERCISES) - set(where))
    assert not missing, f"exercises without a worked solution: {missing}"
    unknown = sorted(set(where) - set(EXERCISES))
    assert not unknown, f"solutions check ids acmelab.exercises does not know: {unknown}"
    twice = {exercise_id: names for exercise_id, names in where.items() if len(names) > 1}
    assert not twice, f"answered in more than one solution: {twice}"
    for exercise_id, (name,) in where.items():
        assert name[:2] == exercise_id[:2], f"{exercise_id} is answered in {name}, not in its notebook's solution"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_stored_run_says_right_for_every_exercise(path):
    text = output_text(load(path))
    assert "not yet" not in text and "not answered yet" not in text
    for exercise_id in checked_ids(path):
        assert f"{exercise_id} right." in text, f"{exercise_id}: the stored output does not say right"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_opens_with_title_and_links_to_its_notebook(path):
    notebook = load(path)
    first = notebook.cells[0]
    assert first.cell_type == "markdown"
    number = path.name[:2]
    assert first.source.startswith(f"# {number} · Solutions: ")
    assert f"(../{path.name})" in first.source, "the intro links its numbered notebook"
    text = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    for target in re.findall(r"\]\(([^)#]+\.ipynb)", text):
        assert (SOLUTIONS / target).resolve().is_file(), f"link to missing {target}"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_executed_in_order_without_errors_or_leaks(path):
    notebook = load(path)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    counts = [cell.execution_count for cell in code_cells(notebook)]
    assert counts == list(range(1, len(counts) + 1)), "re-run with make refresh-notebooks"
    for cell in code_cells(notebook):
        assert all(output.output_type != "error" for output in cell.outputs), cell.source[:80]
        assert not any(marker in cell.source for marker in ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP",
                                                            "NBVAL_RAISES_EXCEPTION"))
    assert run_series.leaks(notebook, [lab_secret()]) == []
    text = output_text(notebook)
    assert str(REPO) not in text, "absolute path of this checkout in an output"
    assert not re.search(r"/tmp/\w", text), "temporary path in an output"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_solution_matches_its_source(path):
    build = notebooks_build()
    source = SOLUTIONS / "src" / f"{path.stem}.py"
    marked = NOTEBOOKS / "src" / f"{path.stem}.py"  # or built from its notebook's "# solution:" answers
    if source.exists():
        expected = list(build.parse(source.read_text(encoding="utf-8")))
    elif marked.exists() and build.has_solutions(marked):
        expected = build.solution_cells(marked)
    else:
        pytest.skip("authored directly as .ipynb")
    actual = [(cell.cell_type, cell.source) for cell in load(path).cells]
    assert actual == expected, f"run: python notebooks/build.py {path.name[:2]} && make refresh-notebooks"


def test_run_series_runs_the_solutions_after_the_series():
    every = run_series.notebook_paths(solutions=True)
    assert every == NUMBERED + PATHS
    assert run_series.notebook_paths() == NUMBERED  # the old call: the series alone
    five = [p for p in NUMBERED if p.name[:2] == "05"] + [p for p in PATHS if p.name[:2] == "05"]
    assert len(five) == 2 and run_series.notebook_paths(["05"], solutions=True) == five
    assert run_series.notebook_paths(["solutions/05"], solutions=True) == [p for p in PATHS if p.name[:2] == "05"]
    assert run_series.notebook_paths(["solutions"], solutions=True) == PATHS
