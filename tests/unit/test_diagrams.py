"""The notebooks' diagrams: the convention in notebooks/build.py and the
committed SVGs in notebooks/diagrams/ (current, well-formed, drawn as text).

No renderer is needed here: each SVG records the SHA-256 of the Mermaid
source it was drawn from, so a changed diagram whose SVG was not re-rendered
fails (``python notebooks/build.py --diagrams``)."""

from __future__ import annotations

import importlib.util
import re
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
SVG = "{http://www.w3.org/2000/svg}"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"acmelab_notebooks_{name}", NOTEBOOKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)  # render_diagrams imports build by name
    spec.loader.exec_module(module)
    return module


build = _load("build")
render = _load("render_diagrams")
DIAGRAMS = build.source_diagrams()


def test_the_sources_name_their_diagrams():
    assert len(DIAGRAMS) >= 16
    for name in ("thumbprint", "key-authorization", "renewal-timeline", "lifetimes"):
        assert name in DIAGRAMS, f"the {name} picture is missing"


@pytest.mark.parametrize("name", sorted(DIAGRAMS))
def test_each_diagram_has_a_current_svg_drawn_as_text(name):
    path = render.svg_path(name)
    assert path.exists(), f"run: python notebooks/build.py --diagrams {name}"
    assert render.rendered_digest(name) == render.digest(DIAGRAMS[name]), \
        f"the SVG is older than its source; run: python notebooks/build.py --diagrams {name}"
    root = ElementTree.fromstring(path.read_bytes())
    assert root.tag == f"{SVG}svg"
    assert float(root.get("width")) > 50 and float(root.get("height")) > 20  # an <img> of it has a size
    assert root.find(f".//{SVG}foreignObject") is None  # labels are SVG text, shown by every viewer
    texts = " ".join("".join(element.itertext()) for element in root.iter(f"{SVG}text"))
    drawn_source = re.sub(r"^\s*acc(Title|Descr)\s*:.*$", "", DIAGRAMS[name], flags=re.M)  # not drawn
    label = re.search(r'\["([^"<#]{3,})|: ([A-Za-z][^\n<#]{3,})', drawn_source)
    if label:
        word = re.findall(r"[A-Za-z]{3,}", label.group(label.lastindex))[0]
        assert word in texts, f"{name}: the label word {word!r} is not drawn"


def test_no_svg_without_a_source():
    assert sorted(path.stem for path in render.DIAGRAMS.glob("*.svg")) == sorted(DIAGRAMS)


def test_every_image_a_stored_notebook_shows_exists():
    image = re.compile(r"\]\((?P<path>(?:\.\./)?diagrams/[^)]+\.svg)\)")
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) + sorted((NOTEBOOKS / "solutions").glob("*.ipynb"))
    shown = 0
    for path in paths:
        for cell in nbformat.read(path, as_version=4).cells:
            for match in image.finditer(cell.source if cell.cell_type == "markdown" else ""):
                assert (path.parent / match["path"]).is_file(), f"{path.name}: {match['path']}"
                shown += 1
    assert shown >= len(DIAGRAMS)


def test_a_named_block_becomes_the_image_and_the_folded_source():
    source = "Before.\n\n```mermaid demo\nflowchart LR\n    accTitle: A [demo]\n    a --> b\n```\n\nAfter."
    built = build.expand_diagrams(source)
    assert built.startswith("Before.\n\n![A (demo)](diagrams/demo.svg)\n\n<details>")
    assert "```mermaid\nflowchart LR\n    accTitle: A [demo]\n    a --> b\n```" in built
    assert built.endswith("</details>\n\nAfter.")
    assert build.expand_diagrams(source, folder="../diagrams").count("](../diagrams/demo.svg)") == 1
    assert build.diagrams(source) == [("demo", "flowchart LR\n    accTitle: A [demo]\n    a --> b")]


@pytest.mark.parametrize("bad", ["```mermaid\nflowchart LR\n```", "```mermaid Big_Name\na-->b\n```",
                                 "```mermaid open\nflowchart LR\n"])
def test_an_unnamed_or_unclosed_block_is_refused(bad):
    with pytest.raises(build.DiagramError):
        build.expand_diagrams(bad)


def test_one_name_for_two_pictures_is_refused(tmp_path):
    for number, body in (("01", "a --> b"), ("02", "a --> c")):
        (tmp_path / f"{number}_x.py").write_text(f"# %% [markdown]\n# ```mermaid same\n# flowchart LR\n# {body}\n# ```\n")
    with pytest.raises(build.DiagramError, match="same"):
        build.source_diagrams(sorted(tmp_path.glob("*.py")))


def test_finish_makes_a_sized_well_formed_file():
    mermaid_output = ('<svg id="diagram-x" width="100%" xmlns="http://www.w3.org/2000/svg" '
                      'style="max-width: 120.123456px;" viewBox="0 0 120.123456 40.5"><g><text>a<br>b</text>'
                      '<path d="M1.123456 2.98765"/></g></svg>')
    text = render.finish("x", "flowchart LR\na-->b", mermaid_output)
    root = ElementTree.fromstring(text.encode())
    assert (root.get("width"), root.get("height")) == ("121", "41")
    assert root.find(f".//{SVG}path").get("d") == "M1.12 2.98"
    assert render.HEADER.search(text)["digest"] == render.digest("flowchart LR\na-->b")
