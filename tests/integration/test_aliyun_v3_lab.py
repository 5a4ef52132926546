"""Alibaba Cloud's V3 signature (ACS3-HMAC-SHA256) against the lab's endpoint.

Alibaba's current SDK (``alibabacloud_alidns20150109`` on
``alibabacloud_tea_openapi``) signs with V3 by default; here it drives the
lab over TLS verified against the lab's CA.  Hand-built requests, signed by
the SDK's own ``Utils.get_authorization`` (an implementation independent of
the lab's), check each refusal: wrong secret, stale ``x-acs-date``, reused
nonce (shared with V1), a body that does not match ``x-acs-content-sha256``,
unsigned ``x-acs-*`` headers, an unknown AccessKeyId.  V1 (HMAC-SHA1, the
classic SDK) is checked to behave as before, and acmelab's own V1 nonces to
be UUIDs.

Source: Alibaba Cloud SDK docs, "Request syntax and signature method V3";
Alidns API 2015-01-09.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from alibabacloud_alidns20150109 import models as alidns_models
from alibabacloud_alidns20150109.client import Client as AlidnsClient
from alibabacloud_tea_openapi import exceptions as openapi_exceptions
from alibabacloud_tea_openapi import utils_models as openapi_models
from alibabacloud_tea_openapi.utils import Utils as OpenApiUtils
from aliyunsdkcore.auth.composer import rpc_signature_composer

import acmelab.aliyun  # noqa: F401  (installs the uuid4 SignatureNonce)
from acmelab.aliyun import AliyunClient, Credentials
from acmelab.lab.aliyun import server

pytestmark = pytest.mark.lab

VERSION = "2015-01-09"
RUN = uuid.uuid4().hex[:8]


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def sdk_client(lab, secret: str | None = None, key_id: str | None = None) -> AlidnsClient:
    """Alibaba's current Alidns SDK client (V3 signing, its default) for the lab, TLS verified."""
    return AlidnsClient(openapi_models.Config(
        access_key_id=key_id or lab.aliyun_access_key_id,
        access_key_secret=secret or lab.aliyun_access_key_secret,
        endpoint=lab.aliyun_endpoint, protocol="https", ca=str(lab.ca_bundle),
        read_timeout=10000, connect_timeout=5000))


def utc(seconds_ago: float = 0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))


def v3_headers(lab, action: str, *, query: dict | None = None, body: bytes = b"", form: bool = False,
               secret: str | None = None, key_id: str | None = None, date: str | None = None,
               nonce: str | None = None, method: str = "POST", extra: dict | None = None,
               content_sha256: str | None = None) -> dict[str, str]:
    """The headers of a V3 request, signed by the SDK's own signer."""
    headers = {
        "host": lab.aliyun_endpoint,
        "x-acs-action": action,
        "x-acs-version": VERSION,
        "x-acs-date": date or utc(),
        "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
        "x-acs-content-sha256": content_sha256 or hashlib.sha256(body).hexdigest(),
        **(extra or {}),
    }
    if form:
        headers["content-type"] = "application/x-www-form-urlencoded"
    request = SimpleNamespace(pathname="/", method=method, query=dict(query or {}), headers=dict(headers))
    headers["Authorization"] = OpenApiUtils.get_authorization(
        request, "ACS3-HMAC-SHA256", headers["x-acs-content-sha256"],
        key_id or lab.aliyun_access_key_id, secret or lab.aliyun_access_key_secret)
    return headers


def send(lab, headers: dict[str, str], *, query: dict | None = None, body: bytes = b"",
         method: str = "POST") -> requests.Response:
    url = f"https://{lab.aliyun_endpoint}/"
    if query:
        url += "?" + urlencode(query)
    return requests.request(method, url, data=body or None, headers=headers, verify=lab.ca_bundle, timeout=10)


def code_of(response: requests.Response) -> str:
    return response.json().get("Code", "")


def v1_url(lab, params: dict, *, secret: str | None = None) -> str:
    url, _ = rpc_signature_composer.get_signed_url(
        dict(params), lab.aliyun_access_key_id, secret or lab.aliyun_access_key_secret, "JSON", "GET", {})
    return f"https://{lab.aliyun_endpoint}{url}"


# --------------------------------------------------------------------------
# The SDK, V3, end to end
# --------------------------------------------------------------------------

def test_sdk_v3_adds_finds_and_deletes_a_record(lab, monkeypatch, caplog):
    signed_with: list[str] = []
    original = OpenApiUtils.get_authorization

    def spy(request, sign_type, *args):
        signed_with.append(sign_type)
        return original(request, sign_type, *args)

    monkeypatch.setattr(OpenApiUtils, "get_authorization", staticmethod(spy))
    caplog.set_level(logging.DEBUG)
    client = sdk_client(lab)

    domains = client.describe_domains(alidns_models.DescribeDomainsRequest(page_size=100)).body
    assert "example.com" in [d.domain_name for d in domains.domains.domain]

    rr = f"_acme-challenge.v3-{RUN}"
    value = f"v3-token-{RUN}"
    added = client.add_domain_record(alidns_models.AddDomainRecordRequest(
        domain_name="example.com", rr=rr, type="TXT", value=value, ttl=600)).body
    assert added.record_id

    found = client.describe_sub_domain_records(alidns_models.DescribeSubDomainRecordsRequest(
        sub_domain=f"{rr}.example.com", type="TXT")).body
    assert [(r.record_id, r.value) for r in found.domain_records.record] == [(added.record_id, value)]

    client.delete_domain_record(alidns_models.DeleteDomainRecordRequest(record_id=added.record_id))
    gone = client.describe_sub_domain_records(alidns_models.DescribeSubDomainRecordsRequest(
        sub_domain=f"{rr}.example.com", type="TXT")).body
    assert gone.total_count == 0

    assert signed_with and set(signed_with) == {"ACS3-HMAC-SHA256"}   # really V3, every call
    assert lab.aliyun_access_key_secret not in caplog.text


def test_sdk_v3_wrong_secret_is_signature_does_not_match(lab):
    wrong = "wrong-secret-" + uuid.uuid4().hex
    with pytest.raises(openapi_exceptions.AlibabaCloudException) as caught:
        sdk_client(lab, secret=wrong).describe_domains(alidns_models.DescribeDomainsRequest())
    assert caught.value.code == "SignatureDoesNotMatch"
    text = f"{caught.value}{caught.value!r}{caught.value.data}"
    assert wrong not in text and lab.aliyun_access_key_secret not in text


def test_sdk_v3_unknown_access_key_is_not_found(lab):
    with pytest.raises(openapi_exceptions.AlibabaCloudException) as caught:
        sdk_client(lab, key_id="LTAI-no-such-key").describe_domains(alidns_models.DescribeDomainsRequest())
    assert caught.value.code == "InvalidAccessKeyId.NotFound"


# --------------------------------------------------------------------------
# Hand-built V3 requests: each check
# --------------------------------------------------------------------------

def test_v3_query_and_form_body_parameters_both_reach_the_action(lab):
    query = {"DomainName": "example.com"}
    body = urlencode({"RR": f"_acme-challenge.form-{RUN}", "Type": "TXT", "Value": "a b+c~*"}).encode()
    answer = send(lab, v3_headers(lab, "AddDomainRecord", query=query, body=body, form=True), query=query, body=body)
    assert answer.status_code == 200, answer.text
    record_id = answer.json()["RecordId"]
    query = {"RecordId": record_id}
    answer = send(lab, v3_headers(lab, "DeleteDomainRecord", query=query), query=query)
    assert answer.status_code == 200 and answer.json()["RecordId"] == record_id


def test_v3_get_with_query_only(lab):
    query = {"PageSize": "1", "KeyWord": "example"}
    answer = send(lab, v3_headers(lab, "DescribeDomains", query=query, method="GET"), query=query, method="GET")
    assert answer.status_code == 200 and answer.json()["PageSize"] == 1


def test_v3_stale_date_is_expired(lab):
    answer = send(lab, v3_headers(lab, "DescribeDomains", date=utc(2 * 3600)))
    assert answer.status_code == 400 and code_of(answer) == "InvalidTimeStamp.Expired"
    answer = send(lab, v3_headers(lab, "DescribeDomains", date=utc(-2 * 3600)))   # far in the future too
    assert code_of(answer) == "InvalidTimeStamp.Expired"
    answer = send(lab, v3_headers(lab, "DescribeDomains", date=utc(5 * 60)))      # inside the window
    assert answer.status_code == 200


def test_v3_bad_date_format(lab):
    answer = send(lab, v3_headers(lab, "DescribeDomains", date="2026-01-01 00:00:00"))
    assert answer.status_code == 400 and code_of(answer) == "InvalidTimeStamp.Format"


def test_v3_reused_nonce_is_refused_and_shared_with_v1(lab):
    headers = v3_headers(lab, "DescribeDomains")
    assert send(lab, headers).status_code == 200
    replay = send(lab, headers)
    assert replay.status_code == 400 and code_of(replay) == "SignatureNonceUsed"
    assert set(replay.json()) == {"RequestId", "HostId", "Code", "Message", "Recommend"}

    # A V1 request reusing the V3 nonce is refused too (one nonce store).
    v1 = dict(parse_qsl(urlsplit(v1_url(lab, {"Action": "DescribeDomains", "Version": VERSION})).query))
    v1["SignatureNonce"] = headers["x-acs-signature-nonce"]
    v1["Signature"] = server.signature(lab.aliyun_access_key_secret, server.string_to_sign("GET", v1))
    answer = requests.get(f"https://{lab.aliyun_endpoint}/", params=v1, verify=lab.ca_bundle, timeout=10)
    assert code_of(answer) == "SignatureNonceUsed"


def test_v3_wrong_secret(lab):
    answer = send(lab, v3_headers(lab, "DescribeDomains", secret="not-the-secret"))
    assert answer.status_code == 400 and code_of(answer) == "SignatureDoesNotMatch"
    assert lab.aliyun_access_key_secret not in answer.text


def test_v3_tampered_query_body_or_content_hash(lab):
    query = {"PageSize": "1"}
    headers = v3_headers(lab, "DescribeDomains", query=query)
    assert code_of(send(lab, headers, query={"PageSize": "2"})) == "SignatureDoesNotMatch"

    body = urlencode({"DomainName": "example.com"}).encode()
    headers = v3_headers(lab, "DescribeDomainRecords", body=body, form=True)
    other = urlencode({"DomainName": "example.net"}).encode()
    assert code_of(send(lab, headers, body=other)) == "SignatureDoesNotMatch"      # body != x-acs-content-sha256

    headers = v3_headers(lab, "DescribeDomainRecords", body=body, form=True, content_sha256="0" * 64)
    assert code_of(send(lab, headers, body=body)) == "SignatureDoesNotMatch"


def test_v3_unknown_key_is_not_found_not_missing(lab):
    answer = send(lab, v3_headers(lab, "DescribeDomains", key_id="LTAI-no-such-key"))
    assert answer.status_code == 404 and code_of(answer) == "InvalidAccessKeyId.NotFound"


def test_v3_malformed_authorization(lab):
    headers = v3_headers(lab, "DescribeDomains")
    scheme, _, rest = headers["Authorization"].partition(" ")
    cases = {
        "ACS3-HMAC-SM3 " + rest: "InvalidSignatureMethod",
        scheme + " " + rest.replace("Credential=" + lab.aliyun_access_key_id, "Credential="): "MissingAccessKeyId",
        scheme + " " + rest.split(",Signature=")[0]: "IncompleteSignature",
        "Basic dXNlcjpwYXNz": "IncompleteSignature",
    }
    for authorization, code in cases.items():
        answer = send(lab, {**headers, "Authorization": authorization,
                            "x-acs-signature-nonce": uuid.uuid4().hex})
        assert code_of(answer) == code, authorization


def test_v3_every_x_acs_header_must_be_signed(lab):
    headers = v3_headers(lab, "DescribeDomains")
    headers["x-acs-extra"] = "not signed"
    answer = send(lab, headers)
    assert answer.status_code == 400 and code_of(answer) == "IncompleteSignature"


def test_v3_missing_action_header(lab):
    headers = v3_headers(lab, "DescribeDomains")
    del headers["x-acs-action"]
    assert code_of(send(lab, headers)) == "MissingAction"


def test_v3_unknown_action(lab):
    answer = send(lab, v3_headers(lab, "NoSuchAction"))
    assert answer.status_code == 404 and code_of(answer) == "InvalidAction.NotFound"


# --------------------------------------------------------------------------
# V1 still behaves; acmelab's V1 nonces are UUIDs
# --------------------------------------------------------------------------

def test_v1_still_checked(lab):
    params = {"Action": "DescribeDomains", "Version": VERSION, "RegionId": "cn-hangzhou"}
    url = v1_url(lab, params)
    assert requests.get(url, verify=lab.ca_bundle, timeout=10).status_code == 200
    assert code_of(requests.get(url, verify=lab.ca_bundle, timeout=10)) == "SignatureNonceUsed"
    answer = requests.get(v1_url(lab, params, secret="not-the-secret"), verify=lab.ca_bundle, timeout=10)
    assert code_of(answer) == "SignatureDoesNotMatch"
    stale = dict(parse_qsl(urlsplit(v1_url(lab, params)).query))
    stale["Timestamp"] = utc(2 * 3600)
    stale["Signature"] = server.signature(lab.aliyun_access_key_secret, server.string_to_sign("GET", stale))
    answer = requests.get(f"https://{lab.aliyun_endpoint}/", params=stale, verify=lab.ca_bundle, timeout=10)
    assert code_of(answer) == "InvalidTimeStamp.Expired"
    answer = requests.get(f"https://{lab.aliyun_endpoint}/", params=params, verify=lab.ca_bundle, timeout=10)
    assert code_of(answer) == "MissingAccessKeyId"                 # really missing: no key, no Authorization


def test_acmelab_v1_calls_carry_uuid4_nonces(lab, monkeypatch):
    client = AliyunClient(Credentials(lab.aliyun_access_key_id, lab.aliyun_access_key_secret),
                          endpoint=lab.aliyun_endpoint, verify=lab.ca_bundle)
    nonces: list[str] = []
    original = rpc_signature_composer.get_signed_url

    def spy(*args, **kwargs):
        url, text = original(*args, **kwargs)
        nonces.append(dict(parse_qsl(urlsplit(url).query))["SignatureNonce"])
        return url, text

    monkeypatch.setattr(rpc_signature_composer, "get_signed_url", spy)
    client.call("DescribeDomains", VERSION, {"PageSize": 1}, product="Alidns")
    client.call("DescribeDomains", VERSION, {"PageSize": 1}, product="Alidns")
    assert len(nonces) == 2 and nonces[0] != nonces[1]
    assert all(uuid.UUID(n).version == 4 and str(uuid.UUID(n)) == n for n in nonces)
