"""DNS-01 through Alibaba Cloud DNS, end to end against the lab.

The provider talks through the real ``aliyun-python-sdk-core`` /
``aliyunsdkalidns`` to the lab's HTTPS endpoint, which verifies the SDK's
HMAC-SHA1 signatures and mirrors TXT records into pebble-challtestsrv; Pebble
validates against that DNS.  Everything logged (DEBUG, SDK included) and every
exception text of this module is collected, and the last test checks that the
access key secret is in none of it, nor in the endpoint's own log.
"""

from __future__ import annotations

import io
import time

from urllib.parse import parse_qsl, urlsplit

import dns.message
import dns.query
import pytest
import requests
from aliyunsdkcore.auth.composer import rpc_signature_composer
from aliyunsdkalidns.request.v20150109.AddDomainRecordRequest import AddDomainRecordRequest

from acmelab import keys
from acmelab.aliyun import AliyunClient, Credentials
from acmelab.client import AcmeClient
from acmelab.dns import validation_name
from acmelab.dns.alidns import AlidnsProvider
from acmelab.dns.propagation import wait_for_txt
from acmelab.errors import (AliyunAuthError, AliyunError, AliyunNetworkError, AliyunThrottled, ChallengeFailed,
                            DnsError)
from acmelab.issue import issue_certificate
from acmelab.lab.aliyun.server import signature, string_to_sign
from tests.integration import _logs
from tests.integration._logs import debug_logs_into

pytestmark = pytest.mark.lab

#: every exception text and output of this module, scanned for the secret at the end
TRANSCRIPT: list[str] = []
LOG = io.StringIO()


@pytest.fixture(scope="module", autouse=True)
def debug_log_capture():
    """Log everything at DEBUG into LOG for the module (the SDK's loggers too)."""
    with debug_logs_into(LOG, "%(name)s %(levelname)s %(message)s"):
        yield


def remember(error: BaseException) -> BaseException:
    return _logs.remember(TRANSCRIPT, error)


_output = _logs.output_into(TRANSCRIPT)      # every test's stdout and stderr, scanned at the end


@pytest.fixture(scope="module")
def provider(lab) -> AlidnsProvider:
    return AlidnsProvider.for_lab(lab, backoff=0.01, propagation_interval=0.2)


@pytest.fixture
def acme(lab):
    """A fresh account per test (so Pebble reuses no authorization)."""
    client = AcmeClient(lab.directory_url, keys.generate_key("ec256"), verify=lab.ca_bundle)
    client.new_account()
    yield client
    client.close()


def lab_client(lab, *, key_id=None, secret=None, **kwargs) -> AliyunClient:
    credentials = Credentials(key_id or lab.aliyun_access_key_id, secret or lab.aliyun_access_key_secret)
    return AliyunClient(credentials, endpoint=lab.aliyun_endpoint, verify=lab.ca_bundle, **kwargs)


def challenge_txt_records(lab, zone: str) -> list[dict]:
    """Every ``_acme-challenge`` TXT record of ``zone`` (DescribeDomainRecords, all of them)."""
    answer = lab_client(lab).call("DescribeDomainRecords", "2015-01-09",
                                  {"DomainName": zone, "Type": "TXT", "PageSize": 500}, product="Alidns")
    TRANSCRIPT.append(repr(answer))
    return [r for r in answer["DomainRecords"]["Record"] if r["RR"].startswith("_acme-challenge")]


def served_txt(lab, name: str) -> set[str]:
    response = dns.query.udp(dns.message.make_query(name, "TXT"), lab.dns_server[0],
                             port=lab.dns_server[1], timeout=5)
    return {b"".join(r.strings).decode() for rrset in response.answer for r in rrset if rrset.rdtype == 16}


# -- zones -------------------------------------------------------------------------------

def test_zones_come_from_every_describe_domains_page(lab):
    provider = AlidnsProvider.for_lab(lab)
    zones = provider.zones()
    assert len(zones) > 20          # more than one page at the default PageSize 20
    provider.domains_page_size = 10  # three pages
    paged = provider.zones(refresh=True)
    assert paged == zones
    names = {zone.puny_code for zone in zones}
    assert {"example.com", "dev.example.com", "example.com.cn", "xn--bcher-kva.example"} <= names
    assert len(names) == len(zones)
    assert "shop19.example" in names   # the last zone, on the last page


@pytest.mark.parametrize("name, zone, rr", [
    ("*.api.team.example.com", "example.com", "_acme-challenge.api.team"),
    ("www.dev.example.com", "dev.example.com", "_acme-challenge.www"),
    ("shop.example.com.cn", "example.com.cn", "_acme-challenge.shop"),
    ("www.bücher.example", "xn--bcher-kva.example", "_acme-challenge.www"),
])
def test_zone_and_rr_of_validation_names(provider, name, zone, rr):
    found, relative = provider.find_zone(validation_name(name))
    assert (found.puny_code, relative) == (zone, rr)


# -- present / cleanup at the endpoint and in DNS -------------------------------------------

def test_two_values_on_one_name_and_cleanup_removes_only_its_own(lab, provider):
    name = "_acme-challenge.both.example.org"
    client = lab_client(lab)
    # Someone else's TXT value and a non-TXT record on the same name must survive.
    foreign = client.call("AddDomainRecord", "2015-01-09", {"DomainName": "example.org", "RR": "_acme-challenge.both",
                                                           "Type": "TXT", "Value": "foreign-value"}, product="Alidns")
    provider.present(name, "value-one")
    provider.present(name, "value-two")
    provider.wait_until_visible(name, "value-one", 10)
    assert served_txt(lab, name) == {"foreign-value", "value-one", "value-two"}

    provider.cleanup(name, "value-one")
    assert served_txt(lab, name) == {"foreign-value", "value-two"}
    # A new process knows no RecordId: cleanup looks the record up by exact value.
    AlidnsProvider.for_lab(lab).cleanup(name, "value-two")
    assert served_txt(lab, name) == {"foreign-value"}
    AlidnsProvider.for_lab(lab).cleanup(name, "value-")      # a prefix is not our value: nothing happens
    records = challenge_txt_records(lab, "example.org")
    assert [(r["RecordId"], r["Value"]) for r in records] == [(foreign["RecordId"], "foreign-value")]
    client.call("DeleteDomainRecord", "2015-01-09", {"RecordId": foreign["RecordId"]}, product="Alidns")
    assert challenge_txt_records(lab, "example.org") == []


def test_duplicate_value_is_adopted_and_cleaned_up(lab, provider):
    name = "_acme-challenge.dup.example.org"
    lab_client(lab).call("AddDomainRecord", "2015-01-09", {"DomainName": "example.org", "RR": "_acme-challenge.dup",
                                                          "Type": "TXT", "Value": "left-over"}, product="Alidns")
    provider.present(name, "left-over")          # DomainRecordDuplicate -> already present
    provider.cleanup(name, "left-over")
    assert challenge_txt_records(lab, "example.org") == []
    assert served_txt(lab, name) == set()


def test_propagation_timeout_names_name_value_and_server(lab, provider):
    with pytest.raises(DnsError) as caught:
        provider.wait_until_visible("_acme-challenge.absent.example.org", "never-published", 0.5)
    remember(caught.value)
    text = str(caught.value)
    assert "_acme-challenge.absent.example.org" in text and "never-published" in text
    assert f"{lab.dns_server[0]}:{lab.dns_server[1]}" in text


def test_propagation_follows_a_cname(lab, provider):
    client = lab_client(lab)
    cname = client.call("AddDomainRecord", "2015-01-09", {"DomainName": "example.com", "RR": "_acme-challenge.delegated",
                                                         "Type": "CNAME", "Value": "_acme-challenge.delegated.example.net"},
                        product="Alidns")
    try:
        provider.present("_acme-challenge.delegated.example.net", "via-cname")
        found = wait_for_txt("_acme-challenge.delegated.example.com", "via-cname",
                             nameservers=[lab.dns_server], timeout=10, interval=0.2)
        assert found == "_acme-challenge.delegated.example.net"
    finally:
        provider.cleanup("_acme-challenge.delegated.example.net", "via-cname")
        client.call("DeleteDomainRecord", "2015-01-09", {"RecordId": cname["RecordId"]}, product="Alidns")


# -- issuance: Pebble validates what the provider published ---------------------------------

ISSUANCE_CASES = {
    "single name": (["www.example.com"], ["example.com"]),
    "wildcard plus base name": (["*.example.net", "example.net"], ["example.net"]),
    "third-level wildcard": (["*.api.team.example.com"], ["example.com"]),
    "separately hosted sub-zone": (["www.dev.example.com"], ["dev.example.com", "example.com"]),
}


@pytest.mark.parametrize("case", list(ISSUANCE_CASES))
def test_pebble_issues_through_alidns(lab, provider, acme, case):
    names, zones = ISSUANCE_CASES[case]
    issued = issue_certificate(names, client=acme, dns=provider, propagation_timeout=20)
    assert list(issued.names) == names
    assert issued.certificate_pem.startswith("-----BEGIN CERTIFICATE-----")
    assert issued.chain_pem.count("BEGIN CERTIFICATE") >= 2
    for zone in zones:
        assert challenge_txt_records(lab, zone) == []
    for name in names:
        assert served_txt(lab, validation_name(name)) == set()


class WrongValueProvider(AlidnsProvider):
    """Publishes a value the CA will not accept (a broken DNS-01 answer)."""

    def present(self, name, value):
        super().present(name, "wrong-" + value)

    def cleanup(self, name, value):
        super().cleanup(name, "wrong-" + value)

    def wait_until_visible(self, name, value, timeout=120.0):
        super().wait_until_visible(name, "wrong-" + value, timeout)


def test_failed_validation_leaves_no_record(lab, acme):
    provider = WrongValueProvider.for_lab(lab, propagation_interval=0.2)
    with pytest.raises(ChallengeFailed) as caught:
        issue_certificate(["*.example.com.cn", "example.com.cn"], client=acme, dns=provider, propagation_timeout=20)
    remember(caught.value)
    assert caught.value.problem is not None and caught.value.problem.name in ("unauthorized", "incorrectResponse")
    assert challenge_txt_records(lab, "example.com.cn") == []
    assert served_txt(lab, "_acme-challenge.example.com.cn") == set()


# -- errors ---------------------------------------------------------------------------------

def test_wrong_secret_is_a_clear_signature_error(lab):
    provider = AlidnsProvider(lab.aliyun_access_key_id, "not-the-lab-secret-0000000000",
                              endpoint=lab.aliyun_endpoint, verify=lab.ca_bundle)
    with pytest.raises(AliyunAuthError) as caught:
        provider.present("_acme-challenge.www.example.com", "value")
    remember(caught.value)
    assert caught.value.code == "SignatureDoesNotMatch"
    assert caught.value.http_status == 400 and caught.value.request_id
    assert "the access key secret is wrong for this AccessKeyId" in str(caught.value)
    # Same through an SDK request class (the SDK renames the code; we do not).
    with pytest.raises(AliyunAuthError) as caught:
        lab_client(lab, secret="not-the-lab-secret-0000000000").send(AddDomainRecordRequest())
    remember(caught.value)
    assert caught.value.code == "SignatureDoesNotMatch"


def test_unknown_access_key(lab):
    with pytest.raises(AliyunAuthError) as caught:
        AlidnsProvider("LTAI-no-such-key", lab.aliyun_access_key_secret, endpoint=lab.aliyun_endpoint,
                       verify=lab.ca_bundle).zones()
    remember(caught.value)
    assert caught.value.code == "InvalidAccessKeyId.NotFound" and caught.value.http_status == 404
    assert "LTAI-no-such-key" in str(caught.value) and "does not exist" in str(caught.value)


def test_unknown_zone(lab, provider):
    with pytest.raises(DnsError, match="no zone of this Alibaba Cloud DNS account holds") as caught:
        provider.present("_acme-challenge.www.not-hosted.example", "value")
    remember(caught.value)
    with pytest.raises(AliyunError) as caught:
        lab_client(lab).call("AddDomainRecord", "2015-01-09", {"DomainName": "not-hosted.example", "RR": "x",
                                                              "Type": "TXT", "Value": "v"}, product="Alidns")
    remember(caught.value)
    assert caught.value.code == "InvalidDomainName.NoExist" and "not-hosted.example" in str(caught.value)


def _throttle(lab, count: int) -> None:
    lab_client(lab).call("AcmelabSetThrottling", "2015-01-09", {"Count": count}, product="Alidns")


def test_throttled_call_is_retried_and_succeeds(lab):
    client = lab_client(lab, max_retries=3, backoff=0.01)
    _throttle(lab, 2)
    try:
        answer = client.call("DescribeDomains", "2015-01-09", {"PageSize": 1}, product="Alidns")
        assert answer["Domains"]["Domain"][0]["DomainName"] == "example.com"
        # The throttle is used up: exactly 2 calls were refused, the third succeeded.
        assert client.call("DescribeDomains", "2015-01-09", {}, product="Alidns")["TotalCount"] > 20
    finally:
        _throttle(lab, 0)


def test_throttling_gives_up_after_the_bound(lab):
    client = lab_client(lab, max_retries=2, backoff=0.01)
    _throttle(lab, 3)
    try:
        with pytest.raises(AliyunThrottled) as caught:
            client.call("DescribeDomains", "2015-01-09", {}, product="Alidns")
        remember(caught.value)
        assert caught.value.code == "Throttling.User" and "gave up after 2 retries" in str(caught.value)
        # the bound is exact: 1 call + 2 retries used all 3 refusals, the next call passes
        assert client.call("DescribeDomains", "2015-01-09", {}, product="Alidns")["TotalCount"] > 20
    finally:
        _throttle(lab, 0)


def _signed_url(lab, params: dict, secret: str | None = None) -> str:
    url, _ = rpc_signature_composer.get_signed_url(
        dict(params), lab.aliyun_access_key_id, secret or lab.aliyun_access_key_secret, "JSON", "GET", {})
    return f"https://{lab.aliyun_endpoint}{url}"


def test_endpoint_refuses_a_replayed_nonce_and_an_old_timestamp(lab):
    params = {"Action": "DescribeDomains", "Version": "2015-01-09", "RegionId": "cn-hangzhou"}
    url = _signed_url(lab, params)
    first = requests.get(url, verify=lab.ca_bundle, timeout=10)
    assert first.status_code == 200 and first.json()["TotalCount"] > 20
    replay = requests.get(url, verify=lab.ca_bundle, timeout=10)
    assert replay.status_code == 400 and replay.json()["Code"] == "SignatureNonceUsed"
    assert set(replay.json()) == {"RequestId", "HostId", "Code", "Message", "Recommend"}

    # The SDK always stamps "now", so sign a two-hour-old request by hand.
    signed = dict(parse_qsl(urlsplit(_signed_url(lab, params)).query))
    signed["Timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7200))
    signed["SignatureNonce"] = "old-" + signed["SignatureNonce"]
    signed["Signature"] = signature(lab.aliyun_access_key_secret, string_to_sign("GET", signed))
    answer = requests.get(f"https://{lab.aliyun_endpoint}/", params=signed, verify=lab.ca_bundle, timeout=10)
    assert answer.status_code == 400 and answer.json()["Code"] == "InvalidTimeStamp.Expired"
    unknown = _signed_url(lab, dict(params, Action="NoSuchAction"))
    answer = requests.get(unknown, verify=lab.ca_bundle, timeout=10)
    assert answer.status_code == 404 and answer.json()["Code"] == "InvalidAction.NotFound"


def test_tls_is_verified(lab):
    """Without the lab's CA the endpoint's certificate is not trusted."""
    client = AliyunClient(Credentials(lab.aliyun_access_key_id, lab.aliyun_access_key_secret),
                          endpoint=lab.aliyun_endpoint)          # verify=True: certifi's bundle
    with pytest.raises(AliyunNetworkError, match="(?i)certificate") as caught:
        client.call("DescribeDomains", "2015-01-09", {}, product="Alidns")
    remember(caught.value)


class InterruptedProvider(AlidnsProvider):
    """Ctrl-C while waiting for propagation."""

    def wait_until_visible(self, name, value, timeout=120.0):
        raise KeyboardInterrupt


def test_interrupt_leaves_no_record(lab, acme):
    provider = InterruptedProvider.for_lab(lab)
    with pytest.raises(KeyboardInterrupt):
        issue_certificate(["*.shop01.example", "shop01.example"], client=acme, dns=provider)
    assert challenge_txt_records(lab, "shop01.example") == []
    assert served_txt(lab, "_acme-challenge.shop01.example") == set()


# -- the secret is nowhere -----------------------------------------------------------------

def test_body_parameters_do_not_leak_through_a_signature_error(lab):
    """A wrong secret makes the server echo its StringToSign, which holds every
    parameter; a private key sent in the POST body must not reach logs or errors."""
    from aliyunsdkcore.request import CommonRequest

    marker = "PRIVATE-KEY-MARKER-5f1c2b"
    request = CommonRequest(version="2018-07-13", action_name="UploadUserCertificate", product="cas")
    request.set_method("POST")
    request.add_body_params("Key", marker)
    with pytest.raises(AliyunAuthError) as caught:
        lab_client(lab, secret="not-the-lab-secret-0000000000").send(request)
    remember(caught.value)
    assert caught.value.code == "SignatureDoesNotMatch"
    assert marker not in "\n".join(TRANSCRIPT) and marker not in LOG.getvalue()
    assert "string to sign is:<omitted by acmelab>" in LOG.getvalue()


def test_secret_is_in_no_log_output_or_exception(lab):
    secret = lab.aliyun_access_key_secret
    assert len(secret) >= 16
    logged = LOG.getvalue()
    # The scan is meaningful: this module's calls were logged, with their key id.
    assert "AddDomainRecord" in logged and lab.aliyun_access_key_id in logged
    assert len(TRANSCRIPT) >= 8
    endpoint_log = (lab.run_dir / "logs" / "aliyun.log").read_text(errors="replace")
    assert "AddDomainRecord" in endpoint_log
    for where, text in [("log", logged), ("exceptions and output", "\n".join(TRANSCRIPT)),
                        ("endpoint log", endpoint_log), ("lab info", repr(lab) + lab.to_json())]:
        assert secret not in text, f"access key secret found in {where}"
