"""Shared pytest fixtures.

The lab (lab engineer):

* ``lab`` -- session-scoped :class:`acmelab.lab.LabInfo` of a lab on free
  ephemeral ports in a tmp run dir, with ``PEBBLE_WFE_NONCEREJECT=0`` (no
  random badNonce); shared by every test that uses it.
* ``lab_factory(**kwargs)`` -- session-scoped factory for labs with special
  settings, e.g. ``lab_factory(pebble_env={"PEBBLE_WFE_NONCEREJECT": "50"})``,
  ``lab_factory(strict=True)``, ``lab_factory(eab_keys={"kid-1": "..."})``.
  kwargs are :class:`acmelab.lab.Lab` keyword arguments (``ports`` and
  ``run_dir`` are chosen for you; ``PEBBLE_WFE_NONCEREJECT=0`` unless
  ``pebble_env`` sets it); identical kwargs share one lab, pass
  ``fresh=True`` for a lab of your own.  Every lab stops at session end.
* ``challtestsrv`` -- :class:`acmelab.lab.challtestsrv.ChallTestSrv` for ``lab``.
"""

from __future__ import annotations

import json

import pytest

from acmelab.errors import LabError
from acmelab.lab import Lab, LabInfo, LabPorts
from acmelab.lab.challtestsrv import ChallTestSrv

#: what the shared ``lab`` fixture passes to Pebble
LAB_PEBBLE_ENV = {"PEBBLE_WFE_NONCEREJECT": "0"}


@pytest.fixture(scope="session")
def lab_factory(tmp_path_factory):
    labs: list[Lab] = []
    shared: dict[str, LabInfo] = {}

    def start(*, fresh: bool = False, **kwargs) -> LabInfo:
        kwargs["pebble_env"] = {**LAB_PEBBLE_ENV, **(kwargs.get("pebble_env") or {})}
        key = json.dumps(kwargs, sort_keys=True, default=str)
        if not fresh and key in shared:
            return shared[key]
        for attempt in range(3):
            lab = Lab(tmp_path_factory.mktemp("lab"), ports=LabPorts.free(), **kwargs)
            try:
                info = lab.start()
                break
            except LabError as error:
                # Another test run may grab a just-chosen free port; choose again.
                if attempt == 2 or "in use" not in str(error):
                    raise
        labs.append(lab)
        if not fresh:
            shared[key] = info
        return info

    yield start
    for lab in reversed(labs):
        lab.stop()


@pytest.fixture(scope="session")
def lab(lab_factory) -> LabInfo:
    return lab_factory()


@pytest.fixture
def challtestsrv(lab) -> ChallTestSrv:
    return ChallTestSrv(lab.challtestsrv_url)
