"""The deploy clients refuse bad input before sending anything.

The client points at a closed loopback port: had anything been sent, the
error would be an AliyunNetworkError, not the InputError asserted here.
"""

from __future__ import annotations

import socket

import pytest

from tests.unit._deploy_pki import Pki, pem
from acmelab.aliyun import AliyunClient, Credentials
from acmelab.deploy import apigateway, cas, cdn
from acmelab.errors import AliyunNetworkError, InputError

SECRET = "unit-test-secret-0123456789"


@pytest.fixture(scope="module")
def pki():
    return Pki.new("Clients")


@pytest.fixture
def client(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return AliyunClient(Credentials("LTAI-unit", SECRET), endpoint=f"127.0.0.1:{port}",
                        timeout=2, connect_timeout=1)


def test_good_input_is_sent(client, pki):
    """Control: with valid input the call does go out (and meets the closed port)."""
    key, leaf = pki.leaf("cdn.example.com")
    with pytest.raises(AliyunNetworkError):
        cdn.set_cdn_domain_ssl_certificate(client, "cdn.example.com", pem(leaf, pki.intermediate), key)


@pytest.mark.parametrize("product", ["cdn", "apigateway", "cas"])
def test_mismatched_key_not_sent(client, pki, product):
    _, leaf = pki.leaf("cdn.example.com")
    other_key, _ = pki.leaf("cdn.example.com")
    chain = pem(leaf, pki.intermediate)
    with pytest.raises(InputError, match="does not match"):
        if product == "cdn":
            cdn.set_cdn_domain_ssl_certificate(client, "cdn.example.com", chain, other_key)
        elif product == "apigateway":
            apigateway.set_domain_certificate(client, "0" * 32, "cdn.example.com", chain, other_key)
        else:
            cas.upload_user_certificate(client, "name", chain, other_key)


def test_other_domain_and_bad_chain_not_sent(client, pki):
    key, leaf = pki.leaf("cdn.example.com")
    with pytest.raises(InputError, match="not static.example.com"):
        cdn.set_cdn_domain_ssl_certificate(client, "static.example.com", pem(leaf, pki.intermediate), key)
    with pytest.raises(InputError, match="chain out of order"):
        apigateway.set_domain_certificate(client, "0" * 32, "cdn.example.com",
                                          pem(leaf, pki.root, pki.intermediate), key)
    with pytest.raises(InputError, match="only the leaf"):
        cdn.set_cdn_domain_ssl_certificate(client, "cdn.example.com", pem(leaf), key)


def test_repr_hides_the_secret(client):
    assert SECRET not in repr(client)


def _lab_info(endpoint):
    import certifi

    from acmelab.lab.core import LabInfo

    return LabInfo(directory_url="https://localhost:14000/dir", ca_bundle=certifi.where(),
                   management_url="https://localhost:15000", challtestsrv_url="http://127.0.0.1:8055",
                   dns_server=("127.0.0.1", 8053), aliyun_endpoint=endpoint, aliyun_access_key_id="LTAIlab",
                   aliyun_access_key_secret=SECRET, cdn_edge_port=1, apigateway_edge_port=2, run_dir="/nowhere")


def test_a_lab_without_its_alibaba_endpoint_gets_no_client_at_all():
    """An aliyun=False lab still has an AccessKey: every for_lab refuses it
    instead of sending it to the public *.aliyuncs.com endpoints."""
    from acmelab import dns
    from acmelab.aliyun import EcsRamRole
    from acmelab.deploy import lab_client
    from acmelab.dns.alidns import AlidnsProvider
    from acmelab.errors import ConfigError

    info = _lab_info(None)
    for make in (lambda: lab_client(info), lambda: AliyunClient.for_lab(info), lambda: AlidnsProvider.for_lab(info),
                 lambda: dns.for_lab("alidns", info), lambda: EcsRamRole.for_lab(info)):
        with pytest.raises(ConfigError, match=r"runs without its Alibaba Cloud endpoint \(started with aliyun=False\)"):
            make()


def test_lab_clients_talk_to_the_lab_endpoint_only():
    from acmelab.deploy import lab_client
    from acmelab.dns.alidns import AlidnsProvider

    info = _lab_info("localhost:8443")
    for client in (lab_client(info, region_id="ap-southeast-1"), AliyunClient.for_lab(info, region_id="ap-southeast-1"),
                   AlidnsProvider.for_lab(info, region_id="ap-southeast-1", backoff=0.01).client):
        assert (client.endpoint, client.region_id, client.credentials.access_key_id) == \
            ("localhost:8443", "ap-southeast-1", "LTAIlab")
    assert AlidnsProvider.for_lab(info, backoff=0.01).client.backoff == 0.01
