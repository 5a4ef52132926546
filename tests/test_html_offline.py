"""The ``make run`` HTML works offline: opened in a headless chromium it
requests nothing from the network and draws every diagram.

The pages are made by the export ``make run`` uses
(:func:`acmelab.lab.html_export.notebook_html`) from the stored notebooks;
chromium is driven over its DevTools protocol, which reports every request
the page makes (``Network.requestWillBeSent``) and lets the test measure the
drawn SVGs.  The same check run on nbconvert's default export (which loads
require.js, MathJax and Mermaid from a CDN) must see those requests, so the
check itself can fail.  Without chromium the test is skipped, except under
``CI=true``, where it fails (``.ci/run`` installs chromium).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from acmelab.lab import html_export, run_series

NOTEBOOKS = run_series.NOTEBOOKS
DIAGRAM_IMAGE = re.compile(r"!\[[^\]]*\]\((?:\.\./)?diagrams/(?P<name>[a-z0-9-]+)\.svg\)")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--host-resolver-rules=MAP * ~NOTFOUND")  # nothing could leave the machine anyway


def diagram_names(notebook) -> list[str]:
    return [match["name"] for cell in notebook.cells if cell.cell_type == "markdown"
            for match in DIAGRAM_IMAGE.finditer(cell.source)]


def notebooks_with_diagrams() -> list[Path]:
    return [path for path in run_series.notebook_paths()
            if diagram_names(nbformat.read(path, as_version=4))]


def chromium_binary() -> str:
    binary = os.environ.get("ACMELAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not binary:
        message = "chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; .ci/run must install it")
        pytest.skip(message)
    return binary


class Browser:
    """One headless chromium, driven over the DevTools protocol."""

    def __init__(self, binary: str, profile: Path) -> None:
        import websocket  # websocket-client

        self.process = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                                         "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            page = next(target for target in json.load(answer) if target["type"] == "page")
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []
        self.call("Network.enable")
        self.call("Page.enable")
        self.call("Network.setCacheDisabled", cacheDisabled=True)

    def call(self, method: str, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(event.get("method") == method for event in self.events):
                return
            self.events.append(json.loads(self.socket.recv()))
        raise TimeoutError(method)

    def open(self, url: str) -> list[str]:
        """Load ``url``; returns the URL of every request the page made."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        time.sleep(1.0)  # module scripts and their imports start after the load event
        self.call("Runtime.evaluate", expression="1")  # drain the events that arrived meanwhile
        return [event["params"]["request"]["url"] for event in self.events
                if event.get("method") == "Network.requestWillBeSent"]

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def close(self) -> None:
        if getattr(self, "socket", None):
            self.socket.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


MEASURE = """JSON.stringify([...document.querySelectorAll('figure.acmelab-diagram')].map(figure => {
  const svg = figure.querySelector(':scope > svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  const texts = svg ? [...svg.querySelectorAll('text')].map(t => t.textContent.trim()).filter(Boolean) : [];
  const drawn = svg ? [...svg.querySelectorAll('text')].filter(t => t.getBBox().width > 0).length : 0;
  return {name: figure.dataset.diagram, width: box.width, height: box.height, texts: texts.length, drawn,
          sample: texts.slice(0, 3)};
}))"""


def remote(urls: list[str]) -> list[str]:
    return [url for url in urls if not url.startswith(("file:", "data:", "about:", "blob:"))]


class _References(HTMLParser):
    """src/href of script, link, img, iframe, and url(...) in style."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "iframe", "source") and attrs.get("src"):
            self.found.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.found.append(attrs["href"])


def test_the_export_references_no_remote_script_style_or_image():
    path = notebooks_with_diagrams()[0]
    page = html_export.notebook_html(nbformat.read(path, as_version=4), NOTEBOOKS)
    parser = _References()
    parser.feed(page)
    assert [ref for ref in parser.found if re.match(r"(https?:)?//", ref)] == []
    assert not re.search(r"""import\(\s*["'](https?:)?//""", page)
    assert not re.search(r"""@import\s+(url\()?["']?(https?:)?//""", page)
    assert not re.search(r'src="(\.\./)?diagrams/', page), "a diagram left as an image file"
    assert page.count('<figure class="acmelab-diagram"') == len(diagram_names(nbformat.read(path, as_version=4)))


def test_headless_chromium_loads_nothing_remote_and_draws_every_diagram(tmp_path):
    binary = chromium_binary()
    paths = notebooks_with_diagrams()
    assert paths, "no notebook shows a diagram"
    pages = {}
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        target = tmp_path / f"{path.stem}.html"
        target.write_text(html_export.notebook_html(notebook, NOTEBOOKS), encoding="utf-8")
        pages[path.stem] = (target, diagram_names(notebook))
    # the same notebook through nbconvert's default export: the detector must see the CDN
    from nbconvert import HTMLExporter

    default = tmp_path / "default-export.html"
    default.write_text(HTMLExporter().from_notebook_node(nbformat.read(paths[0], as_version=4))[0], encoding="utf-8")

    browser = Browser(binary, tmp_path / "profile")
    try:
        cdn_requests = remote(browser.open(default.as_uri()))
        assert any("cdnjs" in url for url in cdn_requests), cdn_requests
        drawn = {}
        for stem, (target, names) in pages.items():
            requests = browser.open(target.as_uri())
            assert remote(requests) == [], f"{stem}.html requested {remote(requests)}"
            assert [url for url in requests if url != target.as_uri()] == [], f"{stem}.html loaded other files"
            figures = json.loads(browser.evaluate(MEASURE))
            assert [figure["name"] for figure in figures] == names, stem
            for figure in figures:
                assert figure["width"] > 100 and figure["height"] > 30, (stem, figure)
                assert figure["texts"] >= 2 and figure["drawn"] == figure["texts"], (stem, figure)
            assert browser.evaluate("document.querySelectorAll('img[src*=\"diagrams/\"]').length") == 0
            drawn.update({figure["name"]: figure for figure in figures})
    finally:
        browser.close()
    assert len(drawn) >= 4


def test_run_series_inlines_a_solution_notebooks_diagrams_from_its_own_folder(tmp_path):
    """A solution notebook (``notebooks/solutions/``) shows ``../diagrams/<name>.svg``:
    ``make run`` resolves it against the notebook's folder, not ``notebooks/``."""
    paths = [path for path in run_series.notebook_paths(["solutions"], solutions=True)
             if diagram_names(nbformat.read(path, as_version=4))]
    assert paths, "no solution notebook shows a diagram"
    path = paths[0]
    notebook = nbformat.read(path, as_version=4)
    assert any("](../diagrams/" in cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    target = tmp_path / "solutions" / f"{path.stem}.html"
    target.parent.mkdir()
    run_series.write_html(notebook, target, path.parent)
    page = target.read_text(encoding="utf-8")
    names = diagram_names(notebook)
    assert re.findall(r'<figure class="acmelab-diagram" data-diagram="([a-z0-9-]+)"', page) == names
    assert not re.search(r'src="(\.\./)?diagrams/', page), "a diagram left as an image file"
    # its links to the numbered notebooks (one folder up) point at their pages too
    assert re.search(rf'href="\.\./{path.stem}\.html"', page)
    assert not re.search(r'href="(\.\./)?[0-9][0-9]_[A-Za-z0-9_]+\.ipynb', page)
    with pytest.raises(html_export.MissingDiagram):
        run_series.write_html(notebook, tmp_path / "wrong.html", NOTEBOOKS)  # the old bug: the wrong folder
