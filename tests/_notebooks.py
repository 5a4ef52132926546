"""The stored notebooks as the hygiene and solutions tests read them.

The paths come from this checkout (this file's place), not from
:mod:`acmelab.lab.run_series`, so that a test comparing
``run_series.notebook_paths()`` with them can fail.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import nbformat

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"
#: notebooks/NN_*.ipynb, in order
NUMBERED = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
#: notebooks/solutions/NN_*.ipynb, in order
SOLUTION_PATHS = sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))


def load(path: Path):
    return nbformat.read(path, as_version=4)


def code_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def lab_secret() -> str:
    """The access key secret of the course's lab run dir, if one exists ("" if not)."""
    from acmelab.lab import default_run_dir, status

    info = status()
    if info is not None:
        return info.aliyun_access_key_secret
    try:  # the lab keeps it per run dir (see acmelab.lab.core)
        return json.loads((default_run_dir() / "aliyun-access-key.json").read_text())["AccessKeySecret"]
    except (OSError, ValueError, KeyError):
        return ""


def notebooks_build() -> ModuleType:
    """notebooks/build.py, loaded as a module (it is a script, not in a package)."""
    spec = importlib.util.spec_from_file_location("acmelab_notebooks_build", NOTEBOOKS / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build
