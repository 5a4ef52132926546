"""Render the notebooks' Mermaid diagrams to SVG: ``notebooks/diagrams/<name>.svg``.

Usage (from the repository root)::

    .venv/bin/python notebooks/build.py --diagrams            # the missing or stale ones
    .venv/bin/python notebooks/build.py --diagrams --force    # all of them
    .venv/bin/python notebooks/build.py --diagrams thumbprint # only these names

A diagram is a named Mermaid block in a notebook source (see ``build.py``).
Rendering needs Debian's ``chromium`` (headless, offline) and ``npm``: the
``mermaid`` package at :data:`MERMAID_VERSION` is installed from the npm
registry into ``build/diagram-tools/`` (git-ignored) the first time.  Each
SVG starts with a comment naming the Mermaid version and the SHA-256 of the
diagram's source, so ``tests/unit/test_diagrams.py`` can tell, without a
renderer, that every committed SVG is the picture of its current source.
The SVGs are written with their size as ``width``/``height`` (an ``<img>``
of them has an intrinsic size) and as well-formed XML (labels as SVG
``<text>``, no HTML in ``foreignObject``), so GitHub, nbviewer, JupyterLab
and the ``make run`` HTML (which inlines them) all show them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DIAGRAMS = HERE / "diagrams"

#: The pinned ``mermaid`` package (npm registry).
MERMAID_VERSION = "11.12.2"
TOOLS = REPO / "build" / "diagram-tools" / f"mermaid-{MERMAID_VERSION}"
BUNDLE = TOOLS / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"

#: Headless, offline, no profile of anyone's (a fresh --user-data-dir is added).
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--host-resolver-rules=MAP * ~NOTFOUND")

#: Mermaid's settings for every diagram: labels as SVG text, one font that
#: every viewer has a metric twin of (Arial / Liberation Sans).
MERMAID_CONFIG = {
    "startOnLoad": False, "theme": "default", "securityLevel": "strict", "deterministicIds": True,
    "fontFamily": "Arial, 'Liberation Sans', Helvetica, sans-serif", "htmlLabels": False,
    "flowchart": {"htmlLabels": False}, "state": {"htmlLabels": False},
}

HEADER = re.compile(r"<!-- acmelab diagram (?P<name>\S+): mermaid (?P<version>\S+), source sha256 (?P<digest>[0-9a-f]{64}) -->")
_VOID = re.compile(r"<\s*(area|base|br|col|embed|hr|img|input|link|meta|param|source|track|wbr)\b([^>]*?)\s*/?\s*>", re.I)
_ROOT = re.compile(r"<svg\b[^>]*>")
_GEOMETRY = re.compile(r'\s(d|points|transform|x|y|x1|x2|y1|y2|cx|cy|r|rx|ry|width|height)="[^"]*"')
_LONG_NUMBER = re.compile(r"(-?\d+\.\d{2})\d+")


def chromium() -> str | None:
    """The chromium binary (``ACMELAB_CHROMIUM`` or ``chromium`` on PATH), or None."""
    return os.environ.get("ACMELAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def digest(source: str) -> str:
    """SHA-256 (hex) of a diagram's Mermaid source."""
    return hashlib.sha256(source.strip().encode("utf-8")).hexdigest()


def svg_path(name: str) -> Path:
    return DIAGRAMS / f"{name}.svg"


def rendered_digest(name: str) -> str | None:
    """The source digest recorded in ``diagrams/<name>.svg`` (None if none)."""
    path = svg_path(name)
    if not path.exists():
        return None
    match = HEADER.search(path.read_text(encoding="utf-8")[:400])
    return match["digest"] if match else None


def mermaid_bundle() -> Path:
    """``mermaid.min.js`` of :data:`MERMAID_VERSION`, installed with npm into
    ``build/diagram-tools/`` if it is not there yet."""
    if not BUNDLE.exists():
        TOOLS.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(TOOLS), "--no-save", "--no-audit", "--no-fund",
                        "--loglevel=error", f"mermaid@{MERMAID_VERSION}"], check=True)
    return BUNDLE


def _page(diagrams: dict[str, str], bundle: Path) -> str:
    data = json.dumps(diagrams).replace("</", "<\\/")
    config = json.dumps(MERMAID_CONFIG)
    return f"""<!doctype html><html><head><meta charset="utf-8">
<script src="{bundle.as_uri()}"></script></head><body><pre id="out">pending</pre>
<script type="application/json" id="diagrams">{data}</script>
<script>
(async () => {{
  const diagrams = JSON.parse(document.getElementById("diagrams").textContent);
  const result = {{}};
  for (const [name, source] of Object.entries(diagrams)) {{
    mermaid.initialize(Object.assign({config}, {{deterministicIDSeed: name}}));
    try {{
      const {{svg}} = await mermaid.render("diagram-" + name, source);
      result[name] = {{svg: btoa(unescape(encodeURIComponent(svg)))}};
    }} catch (error) {{
      result[name] = {{error: String(error && error.message || error)}};
    }}
  }}
  document.getElementById("out").textContent = JSON.stringify(result);
}})();
</script></body></html>"""


def render(diagrams: dict[str, str]) -> dict[str, str]:
    """Render ``{name: mermaid source}`` in one headless chromium run;
    returns ``{name: svg text}`` as produced by Mermaid.  Raises
    RuntimeError naming the diagram Mermaid could not parse."""
    browser = chromium()
    if not browser:
        raise RuntimeError("chromium not found: apt-get install -y chromium (or set ACMELAB_CHROMIUM)")
    bundle = mermaid_bundle()
    with tempfile.TemporaryDirectory(prefix="acmelab-diagrams-") as folder:
        page = Path(folder) / "render.html"
        page.write_text(_page(diagrams, bundle), encoding="utf-8")
        completed = subprocess.run(
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={folder}/profile", "--virtual-time-budget=60000",
             "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=300, check=False)
    match = re.search(r'<pre id="out">(.*?)</pre>', completed.stdout, re.S)
    if not match or match[1] == "pending":
        raise RuntimeError(f"chromium rendered nothing (exit status {completed.returncode}): {completed.stderr[-500:]}")
    result = json.loads(match[1].replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    errors = {name: entry["error"] for name, entry in result.items() if "error" in entry}
    if errors:
        raise RuntimeError("mermaid could not render: " + "; ".join(f"{n}: {e}" for n, e in errors.items()))
    return {name: base64.b64decode(entry["svg"]).decode("utf-8") for name, entry in result.items()}


def finish(name: str, source: str, svg: str) -> str:
    """Mermaid's SVG as a stand-alone file: the header comment, void HTML
    elements closed (well-formed XML), the viewBox's size as width/height.
    Raises ValueError if the result is not well-formed XML."""
    svg = _VOID.sub(lambda m: f"<{m[1]}{m[2].rstrip('/').rstrip()} />", svg)
    # two decimals are plenty for a picture (Mermaid writes 15; state diagrams grow to 400 kB)
    svg = _GEOMETRY.sub(lambda m: _LONG_NUMBER.sub(r"\1", m[0]), svg)
    root = _ROOT.search(svg)
    if root is None:
        raise ValueError(f"{name}: no <svg> element in Mermaid's output")
    tag = root[0]
    view_box = re.search(r'viewBox="([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+)"', tag)
    if view_box:
        width, height = (str(math.ceil(float(v))) for v in view_box.groups()[2:])
        tag = re.sub(r'\s(width|height)="[^"]*"', "", tag)
        tag = re.sub(r'\sstyle="max-width:[^"]*"', "", tag)
        tag = tag.replace("<svg", f'<svg width="{width}" height="{height}"', 1)
    svg = svg[:root.start()] + tag + svg[root.end():]
    text = (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<!-- acmelab diagram {name}: mermaid {MERMAID_VERSION}, source sha256 {digest(source)} -->\n"
            f"{svg.strip()}\n")
    ElementTree.fromstring(text.encode("utf-8"))  # well-formed, or ValueError (ParseError)
    return text


def main(argv: list[str]) -> int:
    import build  # notebooks/build.py (this folder is on sys.path when run through it)

    force = "--force" in argv
    names = [arg for arg in argv if not arg.startswith("--")]
    wanted = build.source_diagrams()
    unknown = sorted(set(names) - set(wanted))
    if unknown:
        print(f"no such diagram: {', '.join(unknown)}", file=sys.stderr)
        return 2
    if names:
        wanted = {name: wanted[name] for name in names}
    stale = {name: source for name, source in wanted.items() if force or rendered_digest(name) != digest(source)}
    if not stale:
        print(f"{len(wanted)} diagrams, all current")
        return 0
    DIAGRAMS.mkdir(exist_ok=True)
    for name, svg in render(stale).items():
        text = finish(name, stale[name], svg)
        handle, temporary = tempfile.mkstemp(dir=DIAGRAMS, prefix=f".{name}.")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, svg_path(name))
        print(f"rendered {svg_path(name).relative_to(REPO)}")
    orphans = sorted(p.stem for p in DIAGRAMS.glob("*.svg") if p.stem not in build.source_diagrams())
    if orphans:
        print(f"not used by any source (delete them?): {', '.join(orphans)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main(sys.argv[1:]))
