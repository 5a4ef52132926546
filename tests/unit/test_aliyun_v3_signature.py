"""The lab endpoint's V3 signature helpers (ACS3-HMAC-SHA256), offline.

Cross-checked against the signer of Alibaba's current SDK
(``alibabacloud_tea_openapi.utils.Utils.get_authorization``), an
implementation independent of the lab's.  Source: Alibaba Cloud SDK docs,
"Request syntax and signature method V3".
"""

from __future__ import annotations

import hashlib
import time
from types import SimpleNamespace

import pytest
from alibabacloud_tea_openapi.utils import Utils as OpenApiUtils

from acmelab.lab.aliyun.server import (
    ApiFault,
    LabRequest,
    LabState,
    authenticate_v3,
    canonical_query,
    canonical_request_v3,
    parse_authorization_v3,
    signature_v3,
    string_to_sign_v3,
)

KEY_ID, SECRET = "LTAI-unit-test", "unit-test-secret-0123456789"


def signed(query: dict[str, str], body: bytes = b"", **overrides: str) -> tuple[dict[str, str], str]:
    headers = {"host": "localhost:8443", "x-acs-action": "DescribeDomains", "x-acs-version": "2015-01-09",
               "x-acs-date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "x-acs-signature-nonce": "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
               "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
               "content-type": "application/x-www-form-urlencoded", **overrides}
    request = SimpleNamespace(pathname="/", method="POST", query=dict(query), headers=dict(headers))
    return headers, OpenApiUtils.get_authorization(request, "ACS3-HMAC-SHA256", headers["x-acs-content-sha256"],
                                                   KEY_ID, SECRET)


def lab_request(query: dict[str, str], headers: dict[str, str], body: bytes = b"") -> LabRequest:
    return LabRequest("POST", "/", dict(query), {}, body, {k.lower(): [v] for k, v in headers.items()})


QUERY = {"PageSize": "5", "KeyWord": "a b+c~*é", "Empty": ""}


def test_signature_matches_the_sdk_byte_for_byte():
    headers, authorization = signed(QUERY, b"x=1")
    auth = parse_authorization_v3(authorization)
    assert (auth.algorithm, auth.access_key_id) == ("ACS3-HMAC-SHA256", KEY_ID)
    canonical = canonical_request_v3("POST", "/", QUERY, {k: [v] for k, v in headers.items()},
                                     auth.signed_headers, hashlib.sha256(b"x=1").hexdigest())
    assert signature_v3(SECRET, string_to_sign_v3(canonical)) == auth.signature
    assert canonical.split("\n")[2] == "Empty=&KeyWord=a%20b%2Bc~%2A%C3%A9&PageSize=5"


def test_canonical_query_is_shared_with_v1():
    assert canonical_query({"b": "2", "a": "x y"}) == "a=x%20y&b=2"
    assert canonical_query({"Signature": "s", "a": "1"}, exclude=("Signature",)) == "a=1"


def test_authenticate_accepts_and_refuses():
    state = LabState(KEY_ID, SECRET)
    headers, authorization = signed(QUERY, b"x=1")
    request = lab_request(QUERY, {**headers, "Authorization": authorization}, b"x=1")
    assert authenticate_v3(state, request) == ("DescribeDomains", "2015-01-09")
    with pytest.raises(ApiFault) as caught:
        authenticate_v3(state, request)                       # same nonce again
    assert caught.value.code == "SignatureNonceUsed"
    with pytest.raises(ApiFault) as caught:
        authenticate_v3(LabState(KEY_ID, "another-secret"), request)
    assert caught.value.code == "SignatureDoesNotMatch" and SECRET not in str(caught.value)


@pytest.mark.parametrize(("value", "code"), [
    ("ACS3-HMAC-SM3 Credential=a,SignedHeaders=host,Signature=00", "InvalidSignatureMethod"),
    ("ACS3-HMAC-SHA256 Credential=,SignedHeaders=host,Signature=00", "MissingAccessKeyId"),
    ("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host", "IncompleteSignature"),
    ("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=Host,Signature=00", "IncompleteSignature"),
    ("ACS3-HMAC-SHA256 Credential=a,Credential=b,SignedHeaders=host,Signature=00", "IncompleteSignature"),
    ("HMAC-SHA1 whatever", "IncompleteSignature"),
])
def test_malformed_authorization(value, code):
    with pytest.raises(ApiFault) as caught:
        parse_authorization_v3(value)
    assert caught.value.code == code
