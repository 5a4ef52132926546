"""Credentials beyond the AccessKey, against the lab: an STS token, a RAM role
assumed by ARN (Sts 2015-04-01 AssumeRole) and the ECS instance RAM role (the
lab's loopback metadata answer; no test sends anything to 100.100.100.200).

Each issues a certificate through Alibaba Cloud DNS (dns-01, Pebble) and
installs it on the lab's CDN, proven by a TLS handshake.  The endpoint checks
the SecurityToken and answers Alibaba's codes for a bad or expired one.
Everything logged (DEBUG, the SDK's HTTP dump and its vendored urllib3
included), every exception and repr is collected; the last test checks no secret or token is in any of it.
"""

from __future__ import annotations

import io
import uuid
from urllib.parse import quote

import pytest
import requests

from acmelab import keys
from acmelab.aliyun import AliyunClient, Credentials, EcsRamRole, RamRoleArn
from acmelab.client import AcmeClient
from acmelab.deploy import cdn, verify
from acmelab.dns.alidns import AlidnsProvider
from acmelab.errors import AliyunAuthError, AliyunError
from acmelab.issue import issue_certificate
from acmelab.lab.aliyun import sts
from tests.integration import _logs
from tests.integration._logs import debug_logs_into

pytestmark = pytest.mark.lab

RUN = uuid.uuid4().hex[:8]
LOG = io.StringIO()
TRANSCRIPT: list[str] = []
SECRETS: set[str] = set()


@pytest.fixture(scope="module", autouse=True)
def debug_log_capture():
    with debug_logs_into(LOG):
        yield


def lab_key(lab) -> Credentials:
    SECRETS.add(lab.aliyun_access_key_secret)
    return Credentials(lab.aliyun_access_key_id, lab.aliyun_access_key_secret)


def client_for(lab, credentials) -> AliyunClient:
    client = AliyunClient(credentials, endpoint=lab.aliyun_endpoint, verify=lab.ca_bundle, backoff=0.01)
    TRANSCRIPT.extend([repr(credentials), str(credentials), repr(client)])
    return client


def assume_role(lab, role: str = "acmelab-dns", duration: int = 900) -> Credentials:
    """AssumeRole with the lab's AccessKey: temporary credentials (STS token)."""
    answer = client_for(lab, lab_key(lab)).call(
        "AssumeRole", sts.VERSION, {"RoleArn": sts.role_arn(role), "RoleSessionName": f"test-{RUN}",
                                    "DurationSeconds": duration}, product="Sts")
    given = answer["Credentials"]
    SECRETS.update([given["AccessKeySecret"], given["SecurityToken"]])
    assert given["AccessKeyId"].startswith("STS.") and given["Expiration"].endswith("Z")
    assert answer["AssumedRoleUser"]["Arn"] == f"{sts.role_arn(role)}/test-{RUN}"
    return Credentials(given["AccessKeyId"], given["AccessKeySecret"], given["SecurityToken"])


def remember(error: BaseException) -> BaseException:
    return _logs.remember(TRANSCRIPT, error)


_output = _logs.output_into(TRANSCRIPT)      # every test's stdout and stderr, scanned at the end


@pytest.fixture(scope="module")
def acme(lab):
    client = AcmeClient(lab.directory_url, keys.generate_key("ec256"), verify=lab.ca_bundle)
    client.new_account()
    yield client
    client.close()


def issue_and_install(lab, acme, client: AliyunClient, label: str) -> None:
    """dns-01 through Alibaba Cloud DNS and a CDN install, both signed by ``client``."""
    domain = f"cdn-{label}-{RUN}.example.com"
    provider = AlidnsProvider(client=client, nameservers=[tuple(lab.dns_server)], propagation_interval=0.1)
    TRANSCRIPT.append(repr(provider))
    issued = issue_certificate([domain], client=acme, dns=provider, propagation_timeout=20)
    cdn.add_cdn_domain(client, domain)
    installed = cdn.set_cdn_domain_ssl_certificate(client, domain, issued.chain_pem, issued.private_key)
    served = verify(domain, host="127.0.0.1", port=lab.cdn_edge_port, root_pem=lab.roots(),
                    expected_serial_hex=issued.serial_hex)
    assert installed.serial_hex == served.serial_hex == issued.serial_hex
    assert client.signing_access_key_id.startswith("STS.")


def test_sts_token_issues_and_installs(lab, acme):
    credentials = assume_role(lab)
    assert credentials.mode == "StsToken" and "STS token" in str(credentials)
    issue_and_install(lab, acme, client_for(lab, credentials), "sts")


def test_current_sdk_signs_v3_with_the_sts_token(lab, monkeypatch):
    """Alibaba's current SDK (V3 signature, x-acs-security-token) with temporary credentials."""
    # Its own DEBUG=sdk dump (loggers alibabacloud-tea, darabonba-core) prints every
    # header, the token too; acmelab does not use that SDK, so it is not ours to mask.
    monkeypatch.delenv("DEBUG", raising=False)
    from alibabacloud_alidns20150109 import models as alidns_models
    from alibabacloud_alidns20150109.client import Client as AlidnsClient
    from alibabacloud_tea_openapi import exceptions as openapi_exceptions
    from alibabacloud_tea_openapi import utils_models as openapi_models

    credentials = assume_role(lab)

    def client(token: str) -> AlidnsClient:
        return AlidnsClient(openapi_models.Config(
            access_key_id=credentials.access_key_id, access_key_secret=credentials.access_key_secret,
            security_token=token, endpoint=lab.aliyun_endpoint, protocol="https", ca=str(lab.ca_bundle)))

    answer = client(credentials.security_token).describe_domains(alidns_models.DescribeDomainsRequest(page_size=1))
    assert answer.body.total_count > 0
    with pytest.raises(openapi_exceptions.ClientException) as caught:
        client("CAISforged").describe_domains(alidns_models.DescribeDomainsRequest(page_size=1))
    assert caught.value.code == "InvalidSecurityToken.Malformed"


def test_ram_role_arn_issues_and_installs(lab, acme):
    role = RamRoleArn(lab_key(lab), sts.role_arn("acmelab-deployer"), f"acmelab-{RUN}", duration_seconds=900)
    client = client_for(lab, role)
    issue_and_install(lab, acme, client, "role")
    session = client._sdk._signer._session_credential           # the SDK's RamRoleArnSigner holds it
    SECRETS.update(session[1:])
    assert session[0] == client.signing_access_key_id


def test_ecs_instance_role_issues_and_installs(lab, acme):
    role = EcsRamRole.for_lab(lab)                 # role name asked from the (loopback) metadata service
    assert role.metadata_url == f"https://{lab.aliyun_endpoint}/latest/meta-data/"
    client = client_for(lab, role)
    issue_and_install(lab, acme, client, "ecs")
    SECRETS.update(client._sdk._signer._session_credential[1:])
    assert client._sdk._signer._credential.role_name == sts.ECS_ROLE


def test_metadata_answer_has_the_ecs_shape_and_hardened_mode(lab):
    base = f"https://{lab.aliyun_endpoint}/latest"
    token = requests.put(f"{base}/api/token", headers={"X-aliyun-ecs-metadata-token-ttl-seconds": "60"},
                         verify=lab.ca_bundle, timeout=5).text
    listing = requests.get(f"{base}/meta-data/ram/security-credentials/", verify=lab.ca_bundle, timeout=5,
                           headers={"X-aliyun-ecs-metadata-token": token})
    assert listing.status_code == 200 and listing.text == sts.ECS_ROLE
    answer = requests.get(f"{base}/meta-data/ram/security-credentials/{sts.ECS_ROLE}", verify=lab.ca_bundle,
                          timeout=5, headers={"X-aliyun-ecs-metadata-token": token}).json()
    SECRETS.update([answer["AccessKeySecret"], answer["SecurityToken"]])
    assert answer["Code"] == "Success" and answer["AccessKeyId"].startswith("STS.")
    assert set(answer) == {"AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration", "LastUpdated", "Code"}
    bad = requests.get(f"{base}/meta-data/ram/security-credentials/{sts.ECS_ROLE}", verify=lab.ca_bundle,
                       timeout=5, headers={"X-aliyun-ecs-metadata-token": "not-a-token"})
    assert bad.status_code == 401
    assert requests.get(f"{base}/meta-data/ram/security-credentials/no-such-role", verify=lab.ca_bundle,
                        timeout=5).status_code == 404


def describe_domains(client: AliyunClient) -> dict:
    return client.call("DescribeDomains", "2015-01-09", {"PageSize": 1}, product="Alidns")


def test_expired_unknown_and_mismatched_tokens_get_alibabas_codes(lab):
    credentials = assume_role(lab)
    other = assume_role(lab)
    assert describe_domains(client_for(lab, credentials))["TotalCount"] > 0

    cases = {
        "InvalidSecurityToken.Malformed": Credentials(credentials.access_key_id, credentials.access_key_secret,
                                                      "CAISnot-a-token-we-issued"),
        "InvalidSecurityToken.MismatchWithAccessKey": Credentials(credentials.access_key_id,
                                                                  credentials.access_key_secret,
                                                                  other.security_token),
        "InvalidAccessKeyId.NotFound": Credentials("STS.NoSuchKey0000", credentials.access_key_secret,
                                                   credentials.security_token),
    }
    for code, wrong in cases.items():
        with pytest.raises(AliyunAuthError) as caught:
            describe_domains(client_for(lab, wrong))
        remember(caught.value)
        assert caught.value.code == code, code

    client_for(lab, lab_key(lab)).call("AcmelabExpireSecurityTokens", sts.VERSION,
                                       {"TemporaryAccessKeyId": credentials.access_key_id}, product="Sts")
    with pytest.raises(AliyunAuthError) as caught:
        describe_domains(client_for(lab, credentials))
    remember(caught.value)
    assert caught.value.code == "InvalidSecurityToken.Expired"
    assert "has expired" in str(caught.value) and credentials.access_key_id in str(caught.value)
    assert describe_domains(client_for(lab, other))["TotalCount"] > 0     # only that one expired


def test_assume_role_refusals_are_clear(lab):
    with pytest.raises(AliyunAuthError) as caught:
        describe_domains(client_for(lab, RamRoleArn(lab_key(lab), f"acs:ram::{sts.LAB_ACCOUNT_ID}:role/nobody")))
    remember(caught.value)
    assert caught.value.code == "EntityNotExist.Role"
    assert f"acs:ram::{sts.LAB_ACCOUNT_ID}:role/nobody" in str(caught.value)
    with pytest.raises(AliyunError) as caught:         # the lab's role allows at most 3600 s
        describe_domains(client_for(lab, RamRoleArn(lab_key(lab), sts.role_arn("acmelab-dns"),
                                                    duration_seconds=7200)))
    remember(caught.value)
    assert caught.value.code == "InvalidParameter.DurationSeconds"
    wrong_secret = Credentials(lab.aliyun_access_key_id, "not-the-lab-secret-00000000")
    with pytest.raises(AliyunAuthError) as caught:
        describe_domains(client_for(lab, RamRoleArn(wrong_secret, sts.role_arn("acmelab-dns"))))
    remember(caught.value)
    assert caught.value.code == "SignatureDoesNotMatch"


def test_no_secret_or_token_in_logs_reprs_or_exceptions(lab):
    logged = LOG.getvalue()
    assert "AssumeRole" in logged and "SecurityToken" in logged      # the calls were logged (redacted)
    assert len(SECRETS) >= 8 and len(TRANSCRIPT) >= 10
    endpoint_log = (lab.run_dir / "logs" / "aliyun.log").read_text(errors="replace")
    for where, text in [("log", logged), ("reprs, exceptions and output", "\n".join(TRANSCRIPT)),
                        ("endpoint log", endpoint_log)]:
        for secret in SECRETS:
            for form in {secret, quote(secret, safe="")}:          # as sent, and as in a logged URL
                assert form not in text, f"a secret or token found in {where}"
