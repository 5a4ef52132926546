"""The notebook series keeps its promises (issue 7), checked on the stored files.

No kernel and no lab here (nbval, run by ``make test`` over notebooks/,
re-executes them): these tests read the ``.ipynb`` files and check that each

* opens with a goal, what it needs, and previous/next links that resolve;
* ends with a summary and two or three exercises;
* was executed top to bottom in one go (execution counts 1..n, no errors);
* has nbval ignore/skip markers on at most one code cell in ten, each with
  a comment saying why;
* stores no ``PRIVATE KEY`` material, no lab access key secret, and no
  machine-specific absolute path in its outputs;
* matches its authoring source in notebooks/src/ (rebuilt after edits).

Plus the helpers behind that: the leak check of run_series, and the sanitize
file (it must hide what changes between runs and nothing that matters).
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import nbformat
import pytest

from acmelab.lab import html_export, run_series
from tests._notebooks import NOTEBOOKS, NUMBERED as PATHS, REPO, code_cells, lab_secret, load, notebooks_build
MARKERS = ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP", "NBVAL_CHECK_OUTPUT")
IGNORING = ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP")
IGNORING_TAGS = ("nbval-ignore-output", "nbval-skip")


def markdown(notebook) -> str:
    return "\n\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")


def ignores_output(cell) -> bool:
    tags = cell.get("metadata", {}).get("tags", [])
    return any(marker in cell.source for marker in IGNORING) or any(tag in tags for tag in IGNORING_TAGS)


def test_series_is_numbered_from_00_without_gaps():
    numbers = [int(path.name[:2]) for path in PATHS]
    assert numbers[:7] == list(range(7)), [p.name for p in PATHS]
    assert numbers == list(range(len(numbers)))


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_opens_with_goal_needs_and_links(path):
    notebook = load(path)
    first = notebook.cells[0]
    assert first.cell_type == "markdown"
    number = path.name[:2]
    assert re.match(rf"# {number} · \S", first.source), "title '# NN · ...' first"
    assert "**Goal:**" in first.source
    assert "**Needs:**" in first.source
    if number != "00":
        assert "**Previous:**" in first.source
    if path != PATHS[-1]:
        assert "**Next:**" in first.source


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_links_to_notebooks_resolve_and_neighbours_are_linked(path):
    text = markdown(load(path))
    targets = re.findall(r"\]\(([^)\s]+\.ipynb)\)", text)
    for target in targets:
        assert (NOTEBOOKS / target).is_file(), f"link to missing {target}"
    index = PATHS.index(path)
    if index > 0:
        assert PATHS[index - 1].name in targets, "no link to the previous notebook"
    if index + 1 < len(PATHS):
        assert PATHS[index + 1].name in targets, "no link to the next notebook"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_ends_with_summary_and_two_or_three_exercises(path):
    text = markdown(load(path))
    assert "## Summary" in text
    assert "## Exercises" in text
    exercises = text.split("## Exercises", 1)[1]
    exercises = re.split(r"\n\*\*Previous|\n## ", exercises)[0]
    count = len(re.findall(r"^\d+\. ", exercises, flags=re.MULTILINE))
    assert 2 <= count <= 3, f"{count} exercises"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_executed_in_order_without_errors(path):
    notebook = load(path)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    counts = [cell.execution_count for cell in code_cells(notebook)]
    assert counts == list(range(1, len(counts) + 1)), "re-run with make refresh-notebooks"
    for cell in code_cells(notebook):
        assert all(output.output_type != "error" for output in cell.outputs), cell.source[:80]
        assert "NBVAL_RAISES_EXCEPTION" not in cell.source


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_ignore_markers_are_rare_and_explained(path):
    cells = code_cells(load(path))
    marked = [cell for cell in cells if ignores_output(cell)]
    assert len(marked) <= math.ceil(len(cells) / 10)
    for cell in marked:
        marker_lines = [line for line in cell.source.splitlines() if any(m in line for m in MARKERS)]
        for line in marker_lines:
            reason = re.sub(r"#\s*(" + "|".join(MARKERS) + r")\s*[:,-]?", "", line).strip()
            assert len(reason) >= 10, f"marker without a reason: {line!r}"


def test_ignore_markers_at_most_one_code_cell_in_ten_over_the_series():
    cells = [cell for path in PATHS for cell in code_cells(load(path))]
    marked = [cell for cell in cells if ignores_output(cell)]
    assert len(marked) * 10 <= len(cells)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_outputs_hold_no_secret_and_no_machine_path(path):
    notebook = load(path)
    assert run_series.leaks(notebook, [lab_secret()]) == []
    for cell in code_cells(notebook):
        for text in run_series.output_texts(cell.outputs):
            assert str(REPO) not in text, "absolute path of this checkout in an output"
            assert not re.search(r"/tmp/\w", text), "temporary path in an output"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_matches_its_source(path):
    source = NOTEBOOKS / "src" / f"{path.stem}.py"
    if not source.exists():
        pytest.skip("authored directly as .ipynb")
    expected = [(kind, text) for kind, text in notebooks_build().parse(source.read_text(encoding="utf-8"))]
    actual = [(cell.cell_type, cell.source) for cell in load(path).cells]
    assert actual == expected, f"run: python notebooks/build.py {path.name[:2]} && make refresh-notebooks"


# --------------------------------------------------------------------------
# the leak check and the sanitize file
# --------------------------------------------------------------------------

def _notebook_with_output(text: str):
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    notebook.cells.append(cell)
    return notebook


def test_leaks_finds_private_keys_and_the_secret_without_echoing_it():
    pem = "-----BEGIN " + "PRIVATE KEY-----\nMIGH\n-----END " + "PRIVATE KEY-----\n"
    assert run_series.leaks(_notebook_with_output(pem)) == ["cell 0: output contains 'PRIVATE KEY'"]
    secret = "s3cretValueOfTheLabAccessKey00"
    problems = run_series.leaks(_notebook_with_output(f"key: {secret}"), [secret])
    assert problems == ["cell 0: output contains an access key secret"]
    assert secret not in " ".join(problems)
    assert run_series.leaks(_notebook_with_output("status: valid"), [secret]) == []


def test_html_links_point_at_sibling_pages_only():
    body = ('<a href="04_jws.ipynb">04</a> <a href="05_account.ipynb#the-account">05</a> '
            '<a href="99_elsewhere.ipynb">x</a> <a href="https://example.org/a.ipynb">y</a> '
            '<p>04_jws.ipynb in text</p>')
    assert html_export.html_links(body, ["04_jws", "05_account"]) == (
        '<a href="04_jws.html">04</a> <a href="05_account.html#the-account">05</a> '
        '<a href="99_elsewhere.ipynb">x</a> <a href="https://example.org/a.ipynb">y</a> '
        '<p>04_jws.ipynb in text</p>')


def _sanitize(text: str) -> str:
    from nbval.plugin import get_sanitize_patterns

    for regex, replace in get_sanitize_patterns((NOTEBOOKS / "sanitize.cfg").read_text()):
        text = re.sub(regex, replace, text)
    return text


@pytest.mark.parametrize("first, second", [
    ('Replay-Nonce: OlfXHzBK9xIVXOyoENwZHA', 'Replay-Nonce: -A3pqzGnXPoR0ZWRQZPWTA'),
    ('"nonce": "iiH40iYFudkmpYALuqUr0A",', '"nonce": "_sYpsrL4jwOtB56mifkcjQ",'),
    ("Location: https://localhost:14000/my-account/2a96603a86dc30eb",
     "Location: https://localhost:14000/my-account/9a8b782f0d47783"),
    ('"https://localhost:14000/authZ/rim9FU-PLl6bSTLTRPx_2FYeU-92Mv8hp9VG4ViRyQc"',
     '"https://localhost:14000/authZ/mDChIh144-YsexvC9ZuzlVqhZHclxifpe7srAYip2CU"'),
    ("thumbprint: VT98YZr2nTgEHBCjnF-KgNfYavdCpYwpeR4el0qS8-4",
     "thumbprint: MNdMYprGd7GSUtELhrZQejMOVNTEcTV6gA9WnziCdBU"),
    ('"expires": "2026-11-30T23:32:34Z"', '"expires": "2026-12-07T01:02:03Z"'),
    ("subject:      CN=Pebble Root CA 7d061f", "subject:      CN=Pebble Root CA 0a1b2c"),
    ("serial:       1ac4d06cba435ec2", "serial:       4f"),
    # notebooks 07-12
    ("(serial 13c4b8351a86ae03, issuer", "(serial 4d2d311b81a4336, issuer"),
    ("thumbprint (SHA-1): 1487B29363B8E03EBD3F48EF621FF300F7BC0813",
     "thumbprint (SHA-1): 0A87B29363B8E03EBD3F48EF621FF300F7BC0899"),
    ("certificate ID: NHFBNgYND1_zRI1XZepFEwa0JVg.UyNNRdewXqg",
     "certificate ID: aYNxWfd0jcz3dVkXbLqJuGd1hJM.AJ0b3mDNG_s"),
    ("AccessKeyId       LTAI8yfsglu56yemxuS10pBI", "AccessKeyId       LTAI5tQ3n8PoX2Vb7Yc0mRzK"),
    ("GET&%2F&AccessKeyId%3DLTAI8yfsglu56yemxuS10pBI%26Action", "GET&%2F&AccessKeyId%3DLTAIab12cd34ef56gh78ij90%26Action"),
    ("SignatureNonce    b00b7ffb-4294-43d9-b796-d7351aa58216", "SignatureNonce    3F2504E0-4F89-11D3-9A0C-0305E82C3301"),
    ("AccessKeyId       LTAI…0pBI", "AccessKeyId       LTAI…x7Qz"),
    ("  CertName=cdn.example.com-20311130", "  CertName=cdn.example.com-20311201"),
    ("dns-account-01  _tdz22jtttrokknd3._acme-challenge.persist.example.com  removed",
     "dns-account-01  _ojorzm3sel566zyq._acme-challenge.persist.example.com  removed"),
    ("label: tdz22jtttrokknd3 (16 characters", "label: ojorzm3sel566zyq (16 characters"),
    ("Retry-After: 1\n", "Retry-After: Tue, 01 Dec 2026 22:10:03 GMT\n"),
    # acmelab.course's "created" lines (present or not, depending on the course folder and the lab)
    ("course: created the account key course/lab/account.key (ec256, mode 0600; notebook 01 makes it)\n"
     "account key: ec256\n", "account key: ec256\n"),
])
def test_sanitize_hides_what_changes_between_runs(first, second):
    assert first != second
    assert _sanitize(first) == _sanitize(second)


@pytest.mark.parametrize("first, second", [
    ('"status": "pending"', '"status": "valid"'),
    ("<<< HTTP 201 Created", "<<< HTTP 200 OK"),
    ('"value": "api.example.com"', '"value": "cdn.example.com"'),
    ("https://localhost:14000/sign-me-up", "https://localhost:14000/order-plz"),
    ("offered:    ['dns-01']", "offered:    ['dns-01', 'http-01']"),
    ("r||s: 64 bytes", "r||s: 72 bytes"),
    ("spare    Revoked  cessationOfOperation", "spare    Valid    cessationOfOperation"),
    ("chain length: 2", "chain length: 3"),
    ("_acme-challenge.persist.example.com", "_validation-persist.persist.example.com"),
])
def test_sanitize_keeps_what_the_course_teaches(first, second):
    assert _sanitize(first) != _sanitize(second)


def test_nbval_fails_a_cell_whose_live_output_leaks(tmp_path):
    """notebooks/conftest.py checks every executed cell's live output, even
    when it matches the stored one."""
    import os
    import shutil
    import subprocess

    shutil.copy(NOTEBOOKS / "conftest.py", tmp_path / "conftest.py")
    marker = "-----BEGIN " + "PRIVATE KEY-----"
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for index, text in enumerate(["harmless", marker]):
        cell = nbformat.v4.new_code_cell(f"print({text!r})", execution_count=index + 1)
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text + "\n")]
        notebook.cells.append(cell)
    nbformat.write(notebook, tmp_path / "leak.ipynb")
    environment = dict(os.environ, ACMELAB_LAB_DIR=str(tmp_path / "no-lab"))  # never touch the course's lab
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
                             "leak.ipynb"], cwd=tmp_path, env=environment, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1, result.stdout[-2000:]
    assert "1 failed, 1 passed" in result.stdout
    assert "output contains 'PRIVATE KEY'" in result.stdout


def test_run_series_executes_in_order_and_reports_the_failing_cell(tmp_path):
    def notebook_of(*sources: str) -> Path:
        notebook = nbformat.v4.new_notebook()
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
        path = tmp_path / f"nb{len(list(tmp_path.iterdir()))}.ipynb"
        nbformat.write(notebook, path)
        return path

    executed, seconds, error = run_series.execute(notebook_of("x = 6 * 7", "print(x)"), timeout=120)
    assert error is None and seconds > 0
    assert [cell.execution_count for cell in executed.cells] == [1, 2]
    assert executed.cells[1].outputs[0]["text"] == "42\n"
    assert all("execution" not in cell.metadata for cell in executed.cells)

    executed, _, error = run_series.execute(notebook_of("1 + 1", "raise ValueError('broken on purpose')", "2"),
                                            timeout=120)
    assert error is not None and "broken on purpose" in error and "in cell 1" in error
    assert executed.cells[2].execution_count is None  # stopped at the failing cell


# --------------------------------------------------------------------------
# one coherent run: the stored outputs agree with each other (issue 15)
# --------------------------------------------------------------------------

def _stored_text(number: str) -> str:
    path = next(NOTEBOOKS.glob(f"{number}_*.ipynb"))
    return "\n".join(text for cell in code_cells(load(path)) for text in run_series.output_texts(cell.outputs))


def test_stored_outputs_are_one_run_one_account_one_lab_one_certificate():
    texts = {number: _stored_text(number) for number in ("00", "06", "07", "09", "10", "11", "12", "13")}
    # the course account: the kid of every request 06, 07 and 09 sign by hand or through the client
    accounts = {number: set(re.findall(r"/my-account/([A-Za-z0-9_-]+)", texts[number])) for number in ("06", "07", "09")}
    assert all(len(found) == 1 for found in accounts.values()), accounts
    assert len(set.union(*accounts.values())) == 1, f"the course account differs between notebooks: {accounts}"
    assert set.union(*accounts.values()) <= set(re.findall(r"/my-account/([A-Za-z0-9_-]+)", texts["13"]))
    # the lab's roots: 09 shows both chains; every root named anywhere is one of them
    roots = set(re.findall(r"Pebble Root CA ([0-9a-f]{6})", texts["09"]))
    assert len(roots) == 2, roots
    for number, text in texts.items():
        named = set(re.findall(r"Pebble Root CA ([0-9a-f]{6})", text))
        assert named <= roots, f"notebook {number} names roots {named - roots} of another lab"
    assert set(re.findall(r"Pebble Root CA ([0-9a-f]{6})", texts["00"])), "00 shows the lab's root"
    # the certificate 09 issued is the one 10, 11 and 12 use
    leaf = re.search(r"serial(?: number)?:\s+([0-9a-f]{8,})", texts["09"]).group(1)
    for number in ("10", "11", "12"):
        assert leaf in texts[number], f"notebook {number} does not use 09's certificate (serial {leaf})"
