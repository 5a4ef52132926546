"""A notebook as one offline HTML page: the ``make run`` export.

nbconvert's ``lab`` template loads require.js, MathJax and Mermaid from a
CDN; a page that needs the network shows blank gaps offline.  This export
uses the same template with those three script blocks left out, and puts
each diagram in the page itself: a stored notebook shows a diagram as an
image of a committed SVG (``![title](diagrams/<name>.svg)``, see
``notebooks/build.py``), and here that ``<img>`` becomes the SVG element
(``<figure class="acmelab-diagram">``).  The Mermaid source below it stays
readable as text.  The page then loads nothing: no script, no style sheet,
no font, no image from elsewhere (``tests/test_html_offline.py`` checks
this in a headless chromium).
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any, Iterable

#: nbconvert's lab template without the three blocks that load from a CDN.
TEMPLATE_NAME = "acmelab_offline.html.j2"
TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""

#: Styles for the inlined diagrams and for the Mermaid source as plain text
#: (nbconvert's CSS hides a ``pre.mermaid`` until Mermaid has drawn it).
STYLE = """<style type="text/css">
figure.acmelab-diagram { margin: 1em 0; }
figure.acmelab-diagram svg { max-width: 100%; height: auto; }
.jp-RenderedMarkdown .jp-Mermaid pre.mermaid { display: block; visibility: visible; white-space: pre;
  background: var(--jp-layout-color2, #f5f5f5); padding: 0.5em; overflow-x: auto; }
</style>
"""

#: ``href="NN_name.ipynb"`` (or ``../NN_name.ipynb``, from a solution;
#: optionally with ``#fragment``) in nbconvert's HTML.
_NOTEBOOK_HREF = re.compile(r'href="(?P<up>\.\./)?(?P<stem>[0-9][0-9]_[A-Za-z0-9_]+)\.ipynb(?P<fragment>#[^"]*)?"')
#: nbconvert's ``<img>`` for a diagram image of the stored notebook.
_DIAGRAM_IMG = re.compile(r'<img\b(?=[^>]*\bsrc="(?P<src>(?:\.\./)?diagrams/(?P<name>[a-z0-9-]+)\.svg)")[^>]*>')
_ALT = re.compile(r'\balt="(?P<alt>[^"]*)"')
_PROLOGUE = re.compile(r"\A\s*(<\?xml[^>]*\?>\s*)?(<!--.*?-->\s*)*", re.S)


class MissingDiagram(FileNotFoundError):
    """A notebook shows ``diagrams/<name>.svg`` and that file does not exist."""


def html_links(body: str, siblings: Iterable[str]) -> str:
    """Point links to sibling notebooks (``NN_name.ipynb`` or, from a
    solution, ``../NN_name.ipynb``; stems in ``siblings``) at their HTML
    pages (``NN_name.html``, ``../NN_name.html``); other links are left as
    they are."""
    siblings = set(siblings)

    def rewrite(match: re.Match[str]) -> str:
        if match["stem"] not in siblings:
            return match[0]
        return f'href="{match["up"] or ""}{match["stem"]}.html{match["fragment"] or ""}"'

    return _NOTEBOOK_HREF.sub(rewrite, body)


def inline_diagrams(body: str, base: Path) -> str:
    """Replace every ``<img src="diagrams/<name>.svg">`` by the SVG element
    of ``base/diagrams/<name>.svg`` in a ``<figure class="acmelab-diagram">``
    (its ``alt`` text as ``aria-label``).  Raises :class:`MissingDiagram`."""

    def inline(match: re.Match[str]) -> str:
        path = base / match["src"]
        if not path.is_file():
            raise MissingDiagram(f"{match['src']} (shown by the notebook) does not exist; "
                                 "run: python notebooks/build.py --diagrams")
        svg = _PROLOGUE.sub("", path.read_text(encoding="utf-8"), count=1)
        alt = _ALT.search(match[0])
        label = f' aria-label="{alt["alt"]}"' if alt else ""
        return f'<figure class="acmelab-diagram" data-diagram="{html.escape(match["name"])}" role="img"{label}>{svg}</figure>'

    return _DIAGRAM_IMG.sub(inline, body)


def notebook_html(notebook: Any, base: Path, siblings: Iterable[str] = ()) -> str:
    """The executed ``notebook`` as one self-contained HTML page (a string).

    ``base`` is the folder the notebook's relative paths start from: its
    own folder (``notebooks/``, ``notebooks/solutions/``); links to
    ``siblings`` (notebook stems) point at their ``.html`` pages."""
    import jinja2
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(extra_loaders=[jinja2.DictLoader({TEMPLATE_NAME: TEMPLATE})],
                            template_file=TEMPLATE_NAME)
    body, _ = exporter.from_notebook_node(notebook)
    body = body.replace("</head>", STYLE + "</head>", 1)
    return html_links(inline_diagrams(body, base), siblings)
