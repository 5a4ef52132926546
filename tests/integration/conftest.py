"""Fixtures of the integration tests.

* ``fault_proxy(info)`` -- a factory: a :class:`acmelab.lab.faultproxy.FaultProxy`
  in front of the Pebble of ``info`` (a LabInfo), stopped at the end of the
  test.  Point the client at ``proxy.directory_url`` with
  ``verify=proxy.ca_bundle``.
"""

from __future__ import annotations

import pytest

from tests.faultproxy import FaultProxy


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
