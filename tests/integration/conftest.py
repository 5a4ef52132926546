"""Fixtures of the integration tests.

* ``fault_proxy(info)`` -- a factory: a :class:`acmelab.lab.faultproxy.FaultProxy`
  in front of the Pebble of ``info`` (a LabInfo), stopped at the end of the
  test.  Point the client at ``proxy.directory_url`` with
  ``verify=proxy.ca_bundle``.
"""

from __future__ import annotations

import json

import pytest

from acmelab.lab.faultproxy import FaultProxy


@pytest.fixture
def fault_proxy(tmp_path):
    proxies: list[FaultProxy] = []

    def start(info) -> FaultProxy:
        proxy = FaultProxy(info, tmp_path / f"proxy{len(proxies)}")
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def cli_json(lab, tmp_path, capsys):
    """``cli_json(*argv) -> (exit code, JSON stdout or None, stderr)``: the
    command against the shared ``lab`` with a private state directory
    (``cli_json.state``), ``--json`` added."""
    from acmelab import cli

    state = tmp_path / "state"

    def call(*argv: str):
        code = cli.main([*argv, "--lab-dir", str(lab.run_dir), "--state-dir", str(state), "--json"])
        captured = capsys.readouterr()
        return code, json.loads(captured.out) if captured.out.strip() else None, captured.err

    call.state = state
    return call
