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
