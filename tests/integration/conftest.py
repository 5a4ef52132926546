"""Fixtures of the integration tests.

* ``fault_proxy(info)`` -- a factory: a :class:`acmelab.lab.faultproxy.FaultProxy`
  in front of the Pebble of ``info`` (a LabInfo), stopped at the end of the
  test.  Point the client at ``proxy.directory_url`` with
  ``verify=proxy.ca_bundle``.
* ``proxied`` -- the application's environment (``operations.environment``)
  for the shared ``lab`` with the CA seen through a fault proxy:
  ``(env, proxy, state)``, and ``proxied.orders()``, the newOrder requests
  that reached the proxy so far.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import pytest

from acmelab.lab.faultproxy import FaultProxy
from acmelab.state import StateDir


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


class Proxied(NamedTuple):
    """An environment whose CA is ``lab``'s Pebble through ``proxy``."""
    env: Any                  # acmelab.operations' environment
    proxy: FaultProxy
    state: StateDir

    def orders(self) -> int:
        """How many newOrder requests (RFC 8555 §7.4) reached the proxy."""
        return len(self.proxy.requests("POST", "/order-plz"))


@pytest.fixture
def proxied(lab, fault_proxy, tmp_path) -> Proxied:
    from acmelab import operations
    from acmelab.backends import LabBackend

    proxy = fault_proxy(lab)
    backend = LabBackend(lab, acme_verify=str(proxy.ca_bundle))
    backend.directory_url = proxy.directory_url
    state = StateDir(tmp_path / "state")
    return Proxied(operations.environment(backend, state), proxy, state)


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
