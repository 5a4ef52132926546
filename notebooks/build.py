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
    .venv/bin/python notebooks/build.py --diagrams # render new or changed diagrams
    make refresh-notebooks                         # then: real outputs

The built notebook has no outputs; ``make refresh-notebooks`` executes it
against a fresh lab and stores the real ones.  Cell ids are stable
(``<number>-<index>``), so rebuilding an unchanged source changes nothing.

Diagrams: a fenced Mermaid block with a name in a markdown cell::

    # ```mermaid thumbprint
    # flowchart LR
    #     accTitle: The account key's thumbprint
    #     jwk["JWK"] --> json["canonical JSON"]
    # ```

becomes, in the built notebook, an image ``diagrams/thumbprint.svg`` (alt
text: the diagram's ``accTitle``) followed by the Mermaid source in a
``<details>`` block, so viewers without Mermaid (GitHub, nbviewer) show the
picture and the source is kept.  ``python notebooks/build.py --diagrams``
renders the SVGs that are missing or older than their source (see
``notebooks/render_diagrams.py``; needs chromium and npm); the SVGs are committed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

from acmelab.files import write_atomically

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"

#: The folder of the rendered diagrams, relative to a notebook in notebooks/.
DIAGRAM_FOLDER = "diagrams"
#: ```` ```mermaid name ```` opens a diagram; the name is the SVG's file stem.
MERMAID_OPEN = re.compile(r"^```mermaid(?:[ \t]+(?P<name>\S+))?[ \t]*$")
DIAGRAM_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
ACC_TITLE = re.compile(r"^\s*accTitle\s*:\s*(?P<title>.+?)\s*$", re.MULTILINE)


class DiagramError(ValueError):
    """A mermaid block without a name, with a bad name, or not closed."""


def diagrams(markdown: str) -> list[tuple[str, str]]:
    """The named Mermaid blocks of one markdown cell: ``[(name, source), ...]``
    (source without the fences).  Raises :class:`DiagramError` for a block
    without a valid name or without its closing fence."""
    found = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        opening = MERMAID_OPEN.match(lines[index])
        index += 1
        if not opening:
            continue
        name = opening["name"]
        if not name or not DIAGRAM_NAME.match(name):
            raise DiagramError(f"a mermaid block needs a name of [a-z0-9-] (```mermaid NAME), got {name!r}")
        body = []
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index])
            index += 1
        if index == len(lines):
            raise DiagramError(f"mermaid block {name!r} is not closed with ```")
        index += 1
        found.append((name, "\n".join(body)))
    return found


def diagram_title(name: str, source: str) -> str:
    """The diagram's ``accTitle`` (its alt text), else its name."""
    match = ACC_TITLE.search(source)
    return match["title"] if match else name


def diagram_markdown(name: str, source: str, folder: str = DIAGRAM_FOLDER) -> str:
    """What a named Mermaid block becomes in the built notebook: the
    rendered image, then the source, folded."""
    title = diagram_title(name, source).replace("[", "(").replace("]", ")")
    return (f"![{title}]({folder}/{name}.svg)\n\n"
            "<details><summary>Mermaid source of this diagram</summary>\n\n"
            f"```mermaid\n{source}\n```\n\n"
            "</details>")


def expand_diagrams(markdown: str, folder: str = DIAGRAM_FOLDER) -> str:
    """``markdown`` with every named Mermaid block replaced by
    :func:`diagram_markdown`."""
    if "```mermaid" not in markdown:
        return markdown
    blocks = iter(diagrams(markdown))
    out, lines, index = [], markdown.splitlines(), 0
    while index < len(lines):
        if MERMAID_OPEN.match(lines[index]):
            name, source = next(blocks)
            out.append(diagram_markdown(name, source, folder))
            index += 1
            while lines[index].strip() != "```":
                index += 1
        else:
            out.append(lines[index])
        index += 1
    return "\n".join(out)


#: ``check("16.1", ...)  # solution: storm_error``: the notebook shows ``...``
#: (the comment removed), the solution notebook ``storm_error``.
SOLUTION_MARKER = re.compile(r"^(?P<code>.*?)[ \t]+# solution: (?P<answer>.+?)[ \t]*$", re.MULTILINE)
SOLUTIONS = HERE / "solutions"


def without_solutions(code: str) -> str:
    """A code cell for the learner: every ``# solution:`` comment removed."""
    return SOLUTION_MARKER.sub(lambda m: m["code"], code)


def with_solutions(code: str) -> str:
    """A code cell of the solution notebook: the first ``...`` of each marked
    line replaced by its ``# solution:`` answer."""
    return SOLUTION_MARKER.sub(lambda m: m["code"].replace("...", m["answer"], 1), code)


KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
CELL_MARKER = re.compile(r"^# %%(?P<rest>.*)$")


def split(text: str) -> list[tuple[str, str]]:
    """Split a percent-format source into ``[(kind, source), ...]`` where
    kind is ``"markdown"`` or ``"code"`` (Mermaid blocks left as written)."""
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


def parse(text: str, diagram_folder: str = DIAGRAM_FOLDER, solutions: bool = False) -> list[tuple[str, str]]:
    """The cells of the built notebook, ``[(kind, source), ...]``: :func:`split`,
    with every named Mermaid block turned into an image of ``diagram_folder``
    + the source (:func:`expand_diagrams`), and ``# solution:`` markers
    removed (or, with ``solutions``, filled in: :func:`with_solutions`)."""
    answer = with_solutions if solutions else without_solutions
    prose = (lambda cell: _SIBLING_LINK.sub(r"](../\g<target>", cell)) if solutions else (lambda cell: cell)
    return [(kind, prose(expand_diagrams(cell, diagram_folder)) if kind == "markdown" else answer(cell))
            for kind, cell in split(text)]


#: a link to a notebook of the series, rewritten in a solution notebook (one folder down)
_SIBLING_LINK = re.compile(r"\]\((?P<target>[0-9][0-9]_[A-Za-z0-9_]+\.ipynb)")


#: ``# NN · Title: subtitle`` -- the first line of a numbered notebook
_TITLE = re.compile(r"\A# (?P<number>[0-9][0-9]) · (?P<title>[^\n]+)")


class TitleError(ValueError):
    """A source with ``# solution:`` markers does not open with ``# NN · Title``."""


def solution_intro(source: Path, first_cell: str) -> str:
    """The first cell of a solution notebook built from ``source``'s
    ``# solution:`` markers, in the shape of the hand-written ones in
    ``notebooks/solutions/src/``: ``# NN · Solutions: <title>`` (the
    notebook's title up to its first colon), a line linking the notebook,
    and links to the neighbouring solutions.  ``first_cell`` is the
    notebook's own first cell.  Raises :class:`TitleError`."""
    match = _TITLE.match(first_cell)
    if not match:
        raise TitleError(f"{source.name}: the first cell must open with '# NN · Title', got {first_cell[:40]!r}")
    number, title = match["number"], match["title"].split(": ", 1)[0]
    stems = {path.stem[:2]: path.stem for path in SOURCES.glob("[0-9][0-9]_*.py")}
    previous, following = stems.get(f"{int(number) - 1:02d}"), stems.get(f"{int(number) + 1:02d}")
    links = [f"**Previous:** [{previous[:2]} · Solutions]({previous}.ipynb)"] if previous else []
    links.append(f"**Next:** [{following[:2]} · Solutions]({following}.ipynb)" if following
                 else "Back to [00 · Solutions](00_start_here.ipynb)")
    return (f"# {number} · Solutions: {title}\n\n"
            f"Worked answers to the exercises of [{number} · {title}](../{source.stem}.ipynb): the notebook\n"
            "itself, run with each exercise's `...` filled in. Try each one yourself first; every answer\n"
            "below is computed, then handed to `check`.\n\n"
            + " · ".join(links))


def solution_cells(source: Path) -> list[tuple[str, str]]:
    """The cells of the solution notebook built from a numbered ``source``
    with ``# solution:`` markers: :func:`parse` with the answers filled in,
    opening with :func:`solution_intro` instead of the notebook's own
    introduction."""
    cells = parse(source.read_text(encoding="utf-8"), f"../{DIAGRAM_FOLDER}", solutions=True)
    if not cells or cells[0][0] != "markdown":
        raise TitleError(f"{source.name}: the first cell must be markdown with the title")
    return [("markdown", solution_intro(source, cells[0][1]))] + cells[1:]


def has_solutions(source: Path) -> bool:
    """Whether the source marks answers with ``# solution:`` (then
    ``notebooks/solutions/<stem>.ipynb`` is built from it too)."""
    return any(kind == "code" and SOLUTION_MARKER.search(cell) for kind, cell in split(source.read_text(encoding="utf-8")))


def build(source: Path, keep_outputs: bool = True, solutions: bool = False) -> Path:
    """Write ``notebooks/<source stem>.ipynb`` from ``source``; returns its path.

    With ``keep_outputs`` and an existing notebook whose code cells are the
    same, in the same order, as the source's (only prose or diagrams
    changed), their stored outputs are kept; otherwise the notebook has none
    until ``make refresh-notebooks``.  With ``solutions``: the solution
    notebook ``notebooks/solutions/<stem>.ipynb`` (:func:`solution_cells`)."""
    number = source.stem.split("_", 1)[0]
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    notebook.metadata["language_info"] = {"name": "python"}
    # a solution: built from a numbered source's "# solution:" answers, or
    # written on its own in notebooks/solutions/src/ (src/ sits beside its notebooks)
    in_solutions = solutions or source.parent.parent == SOLUTIONS
    folder = SOLUTIONS if in_solutions else HERE
    cells = solution_cells(source) if solutions else parse(
        source.read_text(encoding="utf-8"), f"../{DIAGRAM_FOLDER}" if in_solutions else DIAGRAM_FOLDER)
    for index, (kind, text) in enumerate(cells):
        cell = nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text)
        cell["id"] = f"{number}-{index:02d}"
        notebook.cells.append(cell)
    folder.mkdir(exist_ok=True)
    target = folder / f"{source.stem}.ipynb"
    if keep_outputs and target.exists():
        stored = nbformat.read(target, as_version=4)
        old = [cell for cell in stored.cells if cell.cell_type == "code"]
        new = [cell for cell in notebook.cells if cell.cell_type == "code"]
        if [cell.source for cell in old] == [cell.source for cell in new]:
            for old_cell, new_cell in zip(old, new):
                new_cell["outputs"] = old_cell.get("outputs", [])
                new_cell["execution_count"] = old_cell.get("execution_count")
                new_cell["metadata"] = old_cell.get("metadata", {})
            # the kernel's language_info came with those outputs
            notebook.metadata["language_info"] = stored.metadata.get("language_info", {"name": "python"})
    nbformat.validate(notebook)
    write_atomically(target, nbformat.writes(notebook) + "\n", mode=0o644)
    return target


def source_diagrams(sources: list[Path] | None = None) -> dict[str, str]:
    """Every named diagram of the notebook sources: ``{name: mermaid source}``.
    Raises :class:`DiagramError` when one name stands for two different
    diagrams."""
    found: dict[str, str] = {}
    for source in sources if sources is not None else sorted(SOURCES.glob("[0-9][0-9]_*.py")):
        for kind, cell in split(source.read_text(encoding="utf-8")):
            for name, body in diagrams(cell) if kind == "markdown" else ():
                if found.get(name, body) != body:
                    raise DiagramError(f"diagram {name!r} is defined twice with different sources ({source.name})")
                found[name] = body
    return found


def main(argv: list[str]) -> int:
    if argv[:1] == ["--diagrams"]:
        sys.path.insert(0, str(HERE))
        import render_diagrams  # notebooks/render_diagrams.py

        return render_diagrams.main(argv[1:])
    wanted = set(argv)
    sources = sorted(SOURCES.glob("[0-9][0-9]_*.py")) + sorted((HERE / "solutions" / "src").glob("[0-9][0-9]_*.py"))
    for source in sources:
        if wanted and source.stem.split("_", 1)[0] not in wanted:
            continue
        print(f"built {build(source).relative_to(HERE.parent)}")
        if has_solutions(source):
            print(f"built {build(source, solutions=True).relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
