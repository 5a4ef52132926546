"""Authorization reuse, and giving valid authorizations up
(``AcmeClient.deactivate_valid_authorizations``, RFC 8555 §7.5.2 through
the orders list of §7.1.2.1), against a Pebble that reuses every valid
authorization it can (``PEBBLE_AUTHZREUSE=100``): without the call, the next
order arrives with its authorizations ``valid``; after it, ``pending``.

This is what the course and the tests rely on where a run must show the
whole flow: Pebble's ``PEBBLE_AUTHZREUSE=0`` still reuses about 1 time in
100 (wfe.go: ``rand.Intn(100) > percent``)."""

from __future__ import annotations

import uuid

import pytest

from acmelab import keys
from acmelab.client import AcmeClient
from acmelab.dns.challtestsrv import ChallTestSrvProvider
from acmelab.issue import issue_certificate

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab(lab_factory):
    return lab_factory(aliyun=False, pebble_env={"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "100"})


def _statuses(client: AcmeClient, names: list[str]) -> dict[str, str]:
    order = client.new_order(names)
    return {a.name: a.status for a in client.fetch_authorizations(order.authorizations)}


def test_deactivated_authorizations_are_not_reused(lab):
    run = uuid.uuid4().hex[:8]
    base, other = f"reuse-{run}.example.com", f"kept-{run}.example.com"
    client = AcmeClient(lab.directory_url, keys.generate_key("ec256"), verify=str(lab.ca_bundle))
    client.new_account()
    dns = ChallTestSrvProvider(lab.challtestsrv_url, tuple(lab.dns_server))
    issue_certificate([f"*.{base}", base, other], client=client, dns=dns)

    # reuse at 100%: a new order for the same names is authorized already
    assert _statuses(client, [base, other]) == {base: "valid", other: "valid"}

    # the wildcard names its base: one authorization per identifier, both given up
    deactivated = client.deactivate_valid_authorizations([f"*.{base}"])
    assert len(deactivated) == 2
    assert {client.fetch_authorization(url).status for url in deactivated} == {"deactivated"}
    assert _statuses(client, [base, other]) == {base: "pending", other: "valid"}

    # nothing valid is left for the name: a second call gives up nothing
    assert client.deactivate_valid_authorizations([base.upper()]) == []
