"""End to end: issue through Alibaba Cloud DNS, install on the lab's CDN and API Gateway,
prove it with a TLS handshake that validates to Pebble's root; renew; refusals; no secrets leak.

Everything is real: Pebble issues, the lab's Alibaba endpoint checks signatures and
serves the uploaded chains on its TLS edges, verify() does a real handshake.
"""

from __future__ import annotations

import logging
import uuid
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from acmelab import keys
from acmelab.aliyun import AliyunClient, Credentials
from acmelab.client import AcmeClient
from acmelab.deploy import apigateway, cas, cdn, lab_client, verify
from acmelab.deploy._rpc import post
from acmelab.dns.alidns import AlidnsProvider
from acmelab.errors import AliyunAuthError, AliyunError, DeployError, InputError
from acmelab.issue import issue_certificate
from acmelab.pkcs12 import export_pkcs12, load_pkcs12
from tests.integration._served import served_serial

pytestmark = pytest.mark.lab

RUN = uuid.uuid4().hex[:8]
CDN_DOMAIN = f"cdn-{RUN}.example.com"
API_DOMAIN = f"api-{RUN}.example.com"
OTHER_CDN_DOMAIN = f"static-{RUN}.example.com"


def key_body_lines(private_key) -> list[str]:
    """Base64 lines of the key's PEM, PKCS#8 and traditional (what SSLPri carries)."""
    lines = []
    for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        pem = private_key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()
        lines += [line for line in pem.splitlines() if len(line) > 40 and "-----" not in line]
    assert lines
    return lines


@pytest.fixture(scope="module")
def provider(lab) -> AlidnsProvider:
    return AlidnsProvider.for_lab(lab, backoff=0.01, propagation_interval=0.2)


@pytest.fixture(scope="module")
def acme(lab):
    client = AcmeClient(lab.directory_url, keys.generate_key("ec256"), verify=lab.ca_bundle)
    client.new_account()
    yield client
    client.close()


@pytest.fixture(scope="module")
def aliyun(lab) -> AliyunClient:
    return lab_client(lab)


@pytest.fixture(scope="module")
def group_id(aliyun) -> str:
    """A CDN domain pair and an API group with a bound domain, made with the real actions."""
    cdn.add_cdn_domain(aliyun, CDN_DOMAIN)
    cdn.add_cdn_domain(aliyun, OTHER_CDN_DOMAIN)
    group = apigateway.create_api_group(aliyun, f"acmelab_{RUN}")
    apigateway.set_domain(aliyun, group, API_DOMAIN)
    return group


@pytest.fixture(scope="module")
def issued(provider, acme):
    """One certificate for the CDN and the API domain, issued through the Alidns provider."""
    return issue_certificate([CDN_DOMAIN, API_DOMAIN], client=acme, dns=provider, propagation_timeout=20)


@pytest.fixture(scope="module")
def installed(lab, aliyun, group_id, issued):
    """``issued`` installed on both products."""
    on_cdn = cdn.set_cdn_domain_ssl_certificate(aliyun, CDN_DOMAIN, issued.chain_pem, issued.private_key)
    on_api = apigateway.set_domain_certificate(aliyun, group_id, API_DOMAIN, issued.chain_pem,
                                               issued.private_key)
    return on_cdn, on_api


def test_installed_certificate_is_served_and_validates_to_pebble_root(lab, aliyun, issued, installed):
    on_cdn, on_api = installed
    assert on_cdn.serial_hex == on_api.serial_hex == issued.serial_hex
    root_subjects = {x509.load_pem_x509_certificate(pem.encode()).subject.rfc4514_string() for pem in lab.roots()}
    chain = x509.load_pem_x509_certificates(issued.chain_pem.encode())

    for domain, port in ((CDN_DOMAIN, lab.cdn_edge_port), (API_DOMAIN, lab.apigateway_edge_port)):
        served = verify(domain, host="127.0.0.1", port=port, root_pem=lab.roots(),
                        expected_serial_hex=issued.serial_hex)
        assert served.serial_hex == issued.serial_hex
        assert served.not_after == issued.not_after.replace(microsecond=0)
        assert set(served.names) == {CDN_DOMAIN, API_DOMAIN}
        # exactly the uploaded chain is presented, and OpenSSL built a path to Pebble's root
        assert served.chain_subjects == tuple(c.subject.rfc4514_string() for c in chain)
        assert served.verified_chain_subjects[-1] in root_subjects
        assert served.verified_chain_subjects[:len(chain)] == served.chain_subjects

    info = cdn.describe_domain_certificate_info(aliyun, CDN_DOMAIN)
    assert info[0]["ServerCertificateStatus"] == "on"
    assert info[0]["CertName"] == on_cdn.name
    # a domain the edge does not serve gets no certificate at all
    with pytest.raises(DeployError, match="handshake .* failed"):
        verify(f"nothing-{RUN}.example.com", host="127.0.0.1", port=lab.cdn_edge_port, root_pem=lab.roots())


def test_renewed_certificate_changes_served_serial(lab, aliyun, group_id, provider, acme, installed):
    before_cdn = served_serial(lab, CDN_DOMAIN, lab.cdn_edge_port)
    renewed = issue_certificate([CDN_DOMAIN, API_DOMAIN], client=acme, dns=provider, propagation_timeout=20)
    assert renewed.serial_hex != before_cdn
    cdn.set_cdn_domain_ssl_certificate(aliyun, CDN_DOMAIN, renewed.chain_pem, renewed.private_key)
    apigateway.set_domain_certificate(aliyun, group_id, API_DOMAIN, renewed.chain_pem, renewed.private_key)
    assert served_serial(lab, CDN_DOMAIN, lab.cdn_edge_port) == renewed.serial_hex
    assert served_serial(lab, API_DOMAIN, lab.apigateway_edge_port) == renewed.serial_hex
    # and the renewed key + chain export to PKCS#12 for IIS
    bundle = load_pkcs12(export_pkcs12(renewed.private_key, renewed.chain_pem, password="iis",
                                       profile="legacy"), password="iis")
    assert bundle.serial_hex == renewed.serial_hex and len(bundle.chain) >= 1


def test_mismatched_key_refused_before_sending_and_by_the_service(lab, aliyun, group_id, issued, installed):
    before = served_serial(lab, CDN_DOMAIN, lab.cdn_edge_port)
    wrong_key = keys.generate_key("ec256")
    with pytest.raises(InputError, match="private key does not match the certificate"):
        cdn.set_cdn_domain_ssl_certificate(aliyun, CDN_DOMAIN, issued.chain_pem, wrong_key)
    with pytest.raises(InputError, match="private key does not match the certificate"):
        apigateway.set_domain_certificate(aliyun, group_id, API_DOMAIN, issued.chain_pem, wrong_key)
    # A client without our checks: the endpoint refuses as Alibaba does.
    wrong_pem = keys.private_key_pem(wrong_key).decode()
    with pytest.raises(AliyunError, match="InvalidSSLPri: The specified SSLPri does not match") as caught:
        post(aliyun, "SetCdnDomainSSLCertificate", "2018-05-10", "Cdn",
             {"DomainName": CDN_DOMAIN, "SSLProtocol": "on", "CertType": "upload"},
             {"SSLPub": issued.chain_pem, "SSLPri": wrong_pem})
    assert caught.value.code == "InvalidSSLPri"
    with pytest.raises(AliyunError, match="CertificateMismatch"):
        post(aliyun, "SetDomainCertificate", "2016-07-14", "CloudAPI",
             {"GroupId": group_id, "DomainName": API_DOMAIN, "CertificateName": "x"},
             {"CertificateBody": issued.chain_pem, "CertificatePrivateKey": wrong_pem})
    assert served_serial(lab, CDN_DOMAIN, lab.cdn_edge_port) == before   # nothing lost


def test_certificate_for_another_domain_refused(lab, aliyun, issued, installed):
    with pytest.raises(InputError, match=f"not {OTHER_CDN_DOMAIN}"):
        cdn.set_cdn_domain_ssl_certificate(aliyun, OTHER_CDN_DOMAIN, issued.chain_pem, issued.private_key)
    with pytest.raises(AliyunError, match=f"InvalidSSLPub: .*not the domain {OTHER_CDN_DOMAIN}"):
        post(aliyun, "SetCdnDomainSSLCertificate", "2018-05-10", "Cdn",
             {"DomainName": OTHER_CDN_DOMAIN, "SSLProtocol": "on", "CertType": "upload"},
             {"SSLPub": issued.chain_pem, "SSLPri": keys.private_key_pem(issued.private_key).decode()})
    with pytest.raises(DeployError, match="handshake"):
        verify(OTHER_CDN_DOMAIN, host="127.0.0.1", port=lab.cdn_edge_port, root_pem=lab.roots())


def test_wrong_access_key_secret_refused_and_nothing_leaks(lab, group_id, issued, installed, caplog):
    caplog.set_level(logging.DEBUG)
    # the SDK's own logger too: the CLI (run in-process by other tests) quiets it
    caplog.set_level(logging.DEBUG, logger="aliyunsdkcore")
    before = served_serial(lab, CDN_DOMAIN, lab.cdn_edge_port)
    wrong_secret = "wrong-secret-" + uuid.uuid4().hex
    client = AliyunClient(Credentials(lab.aliyun_access_key_id, wrong_secret),
                          endpoint=lab.aliyun_endpoint, verify=lab.ca_bundle)
    errors = []
    with pytest.raises(AliyunAuthError, match="access key secret is wrong") as caught:
        cdn.set_cdn_domain_ssl_certificate(client, CDN_DOMAIN, issued.chain_pem, issued.private_key)
    errors.append(caught.value)
    with pytest.raises(AliyunAuthError, match="access key secret is wrong") as caught:
        apigateway.set_domain_certificate(client, group_id, API_DOMAIN, issued.chain_pem, issued.private_key)
    errors.append(caught.value)
    assert served_serial(lab, CDN_DOMAIN, lab.cdn_edge_port) == before   # nothing changed

    secrets = [lab.aliyun_access_key_secret, wrong_secret] + key_body_lines(issued.private_key)
    secrets += [quote(s, safe="") for s in key_body_lines(issued.private_key)]
    texts = [caplog.text] + [str(e) for e in errors] + [repr(e) for e in errors]
    texts += [repr(client), repr(issued)]
    logs = sorted(lab.run_dir.rglob("*.log"))
    texts += [p.read_text(errors="replace") for p in logs]
    assert "SetCdnDomainSSLCertificate -> https://" in caplog.text      # the client's request log was captured
    assert "ServerException occurred" in caplog.text                    # and the SDK's error log
    assert logs, "the lab's process logs should be scanned too"
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_unknown_domain_and_group_are_clear(aliyun, group_id, issued, installed):
    with pytest.raises(DeployError, match=r"not an accelerated domain of this account \(InvalidDomain.NotFound"):
        cdn.disable_cdn_domain_ssl(aliyun, f"nope-{RUN}.example.com")
    with pytest.raises(DeployError, match="no API group 0123456789abcdef0123456789abcdef .*NotFoundGroup"):
        apigateway.set_domain_certificate(aliyun, "0123456789abcdef0123456789abcdef", API_DOMAIN,
                                          issued.chain_pem, issued.private_key)
    with pytest.raises(DeployError, match=f"{CDN_DOMAIN} is not bound to group {group_id} .*NotFoundDomain"):
        apigateway.set_domain_certificate(aliyun, group_id, CDN_DOMAIN, issued.chain_pem, issued.private_key)
    described = apigateway.describe_domain(aliyun, group_id, API_DOMAIN)
    assert described["CertificateBody"].startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" not in repr(described)


def test_one_cas_upload_serves_a_cdn_domain(lab, aliyun, issued, installed):
    uploaded = cas.upload_user_certificate(aliyun, f"acmelab-{RUN}", issued.chain_pem, issued.private_key)
    assert uploaded.cert_id and uploaded.serial_hex == issued.serial_hex
    with pytest.raises(AliyunError, match="NameRepeat"):
        cas.upload_user_certificate(aliyun, f"acmelab-{RUN}", issued.chain_pem, issued.private_key)
    cdn.set_cdn_domain_cas_certificate(aliyun, CDN_DOMAIN, uploaded.cert_id)
    assert served_serial(lab, CDN_DOMAIN, lab.cdn_edge_port) == issued.serial_hex
    assert cdn.describe_domain_certificate_info(aliyun, CDN_DOMAIN)[0]["CertType"] == "cas"


def test_https_off_stops_serving_and_system_store_does_not_trust_pebble(lab, aliyun, issued, installed):
    # The system store does not know Pebble's root: verification stays on and fails.
    with pytest.raises(DeployError, match="does not validate: depth"):
        verify(CDN_DOMAIN, host="127.0.0.1", port=lab.cdn_edge_port, root_pem=None)
    cdn.disable_cdn_domain_ssl(aliyun, CDN_DOMAIN)
    assert cdn.describe_domain_certificate_info(aliyun, CDN_DOMAIN)[0]["ServerCertificateStatus"] == "off"
    with pytest.raises(DeployError, match="handshake .* failed"):
        verify(CDN_DOMAIN, host="127.0.0.1", port=lab.cdn_edge_port, root_pem=lab.roots())
    cdn.set_cdn_domain_ssl_certificate(aliyun, CDN_DOMAIN, issued.chain_pem, issued.private_key)
    assert served_serial(lab, CDN_DOMAIN, lab.cdn_edge_port) == issued.serial_hex


def test_wildcard_cdn_domain_serves_one_label(lab, aliyun, provider, acme):
    wildcard = f"*.img-{RUN}.example.com"
    cdn.add_cdn_domain(aliyun, wildcard)
    issued = issue_certificate([wildcard], client=acme, dns=provider, propagation_timeout=20)
    cdn.set_cdn_domain_ssl_certificate(aliyun, wildcard, issued.chain_pem, issued.private_key)
    served = verify(f"a.img-{RUN}.example.com", host="127.0.0.1", port=lab.cdn_edge_port, root_pem=lab.roots())
    assert served.serial_hex == issued.serial_hex and served.names == (wildcard,)
    with pytest.raises(DeployError, match="handshake"):
        verify(f"a.b.img-{RUN}.example.com", host="127.0.0.1", port=lab.cdn_edge_port, root_pem=lab.roots())
