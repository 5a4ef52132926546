"""acmelab.jws: base64url, RS256/ES256/ES384 against published vectors and
cryptography, ACME header rules (RFC 8555 §6.2), EAB (§7.3.4), key change (§7.3.5)."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from acmelab import jws, keys
from acmelab.errors import InputError

# ---------------------------------------------------------------------------
# RFC 7515 Appendix A.2: RS256.  The RSA key of A.2.1 (n, e, d, p, q), the
# JWS Protected Header {"alg":"RS256"}, the JWS Payload of A.1 (with CR LF
# line breaks) and the resulting signature.
# ---------------------------------------------------------------------------
A2_N = ("ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-"
        "SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-"
        "UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethF"
        "kMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ")
A2_E = "AQAB"
A2_D = ("Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395I"
        "W_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_"
        "0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyG"
        "WSeWjnczT0QU91p1DhOVRuOopznQ")
A2_P = ("4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdTJNPY8cQn7"
        "ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc")
A2_Q = ("uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_YwD66t62wD"
        "mpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc")
A1_PAYLOAD = b'{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}'
A2_PROTECTED_B64 = "eyJhbGciOiJSUzI1NiJ9"
A2_PAYLOAD_B64 = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
A2_SIGNATURE_B64 = (
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9"
    "CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOL"
    "n6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtV"
    "rBp0igcN_IoypGlUPQGe77Rw")

# RFC 7515 Appendix A.3: ES256 key and the published (non-deterministic) signature.
A3_JWK = {"kty": "EC", "crv": "P-256",
          "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
          "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
A3_D = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"
A3_PROTECTED_B64 = "eyJhbGciOiJFUzI1NiJ9"
A3_SIGNATURE_B64 = "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"


def _int(text: str) -> int:
    return int.from_bytes(jws.b64url_decode(text), "big")


def rfc7515_a2_key() -> rsa.RSAPrivateKey:
    p, q, d = _int(A2_P), _int(A2_Q), _int(A2_D)
    public = rsa.RSAPublicNumbers(_int(A2_E), _int(A2_N))
    return rsa.RSAPrivateNumbers(
        p=p, q=q, d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p), dmq1=rsa.rsa_crt_dmq1(d, q), iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=public,
    ).private_key()


@pytest.fixture(scope="module")
def account_keys() -> dict[str, keys.PrivateKey]:
    return {t: keys.generate_key(t) for t in ("rsa2048", "ec256", "ec384")}


# --- base64url ---------------------------------------------------------------

@pytest.mark.parametrize("raw,text", [
    (b"", ""), (b"f", "Zg"), (b"fo", "Zm8"), (b"foo", "Zm9v"),
    (b"\xfb\xff\xfe", "-__-"),  # the two url-safe characters
    (bytes([3, 236, 255, 224, 193]), "A-z_4ME"),  # RFC 7515 Appendix C
])
def test_b64url_round_trip(raw, text) -> None:
    assert jws.b64url(raw) == text
    assert jws.b64url_decode(text) == raw


def test_b64url_of_str_is_utf8() -> None:
    assert jws.b64url("é") == jws.b64url("é".encode("utf-8")) == "w6k"


def test_b64url_decode_accepts_padding() -> None:
    assert jws.b64url_decode("Zg==") == b"f"


@pytest.mark.parametrize("bad", ["Zm9v+", "Zm9v/", "a b", "Z", "Zm9v!", "é"])
def test_b64url_decode_rejects(bad) -> None:
    with pytest.raises(InputError):
        jws.b64url_decode(bad)


# --- published vectors ---------------------------------------------------------

def test_rfc7515_a2_rs256_byte_for_byte() -> None:
    key = rfc7515_a2_key()
    assert keys.jws_algorithm(key) == "RS256"
    assert jws.b64url(b'{"alg":"RS256"}') == A2_PROTECTED_B64
    assert jws.b64url(A1_PAYLOAD) == A2_PAYLOAD_B64
    signing_input = f"{A2_PROTECTED_B64}.{A2_PAYLOAD_B64}".encode("ascii")
    signature = jws.sign_bytes(key, signing_input)
    assert jws.b64url(signature) == A2_SIGNATURE_B64
    # and the whole flattened JWS
    flattened = jws.flattened({"alg": "RS256"}, A1_PAYLOAD, key)
    assert flattened == {"protected": A2_PROTECTED_B64, "payload": A2_PAYLOAD_B64,
                         "signature": A2_SIGNATURE_B64}
    decoded = jws.verify(flattened, key.public_key())
    assert decoded["protected"] == {"alg": "RS256"}
    assert decoded["payload"] == {"iss": "joe", "exp": 1300819380, "http://example.com/is_root": True}


def test_rfc7515_a3_es256_signature_verifies() -> None:
    public = keys.public_key_from_jwk(A3_JWK)
    private = ec.derive_private_key(_int(A3_D), ec.SECP256R1())
    assert keys.public_jwk(private) == keys.public_jwk(public)
    signing_input = f"{A3_PROTECTED_B64}.{A2_PAYLOAD_B64}".encode("ascii")
    signature = jws.b64url_decode(A3_SIGNATURE_B64)
    assert len(signature) == 64
    jws.verify_bytes(public, signing_input, signature)  # no exception
    # cryptography agrees after converting r||s to DER
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    public.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    # one flipped bit breaks it
    broken = bytes([signature[0] ^ 1]) + signature[1:]
    with pytest.raises(InputError, match="does not verify"):
        jws.verify_bytes(public, signing_input, broken)


@pytest.mark.parametrize("key_type,hash_algorithm,size", [("ec256", hashes.SHA256(), 32),
                                                          ("ec384", hashes.SHA384(), 48)])
def test_ecdsa_signature_is_fixed_length_r_s(account_keys, key_type, hash_algorithm, size) -> None:
    key = account_keys[key_type]
    for message in (b"", b"x", b"payload" * 100):
        signature = jws.sign_bytes(key, message)
        assert len(signature) == 2 * size
        r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        key.public_key().verify(encode_dss_signature(r, s), message, ec.ECDSA(hash_algorithm))


def test_rs256_verified_by_cryptography(account_keys) -> None:
    key = account_keys["rsa2048"]
    signature = jws.sign_bytes(key, b"message")
    assert len(signature) == 256
    key.public_key().verify(signature, b"message", padding.PKCS1v15(), hashes.SHA256())


# --- ACME JWS (RFC 8555 §6.2) ---------------------------------------------------

def _header(flattened: dict) -> dict:
    return json.loads(jws.b64url_decode(flattened["protected"]))


@pytest.mark.parametrize("key_type,alg", [("rsa2048", "RS256"), ("ec256", "ES256"), ("ec384", "ES384")])
def test_sign_new_account_uses_jwk(account_keys, key_type, alg) -> None:
    key = account_keys[key_type]
    body = jws.sign({"termsOfServiceAgreed": True}, key, url="https://ca/new-acct", nonce="nonce-1")
    assert set(body) == {"protected", "payload", "signature"}
    header = _header(body)
    assert header == {"alg": alg, "jwk": keys.public_jwk(key), "nonce": "nonce-1", "url": "https://ca/new-acct"}
    assert "kid" not in header
    assert jws.b64url_decode(body["payload"]) == b'{"termsOfServiceAgreed":true}'
    assert jws.verify(body, key.public_key())["payload"] == {"termsOfServiceAgreed": True}
    assert jws.verify(body, header["jwk"])["protected"] == header  # the embedded key verifies it


def test_sign_with_kid_excludes_jwk(account_keys) -> None:
    key = account_keys["ec256"]
    body = jws.sign({"identifiers": []}, key, url="https://ca/new-order", nonce="n2", kid="https://ca/acct/1")
    header = _header(body)
    assert header == {"alg": "ES256", "kid": "https://ca/acct/1", "nonce": "n2", "url": "https://ca/new-order"}
    assert "jwk" not in header


def test_post_as_get_payload_is_empty_string(account_keys) -> None:
    key = account_keys["ec256"]
    body = jws.sign(None, key, url="https://ca/order/1", nonce="n3", kid="https://ca/acct/1")
    assert body["payload"] == ""
    assert jws.verify(body, key)["payload"] is None


def test_empty_object_payload_is_not_post_as_get(account_keys) -> None:
    # Responding to a challenge posts "{}" (RFC 8555 §7.5.1), not "".
    body = jws.sign({}, account_keys["ec256"], url="https://ca/chall/1", nonce="n", kid="k")
    assert body["payload"] == jws.b64url(b"{}") == "e30"


def test_nonce_none_is_omitted(account_keys) -> None:
    body = jws.sign({"a": 1}, account_keys["ec256"], url="https://ca/x", nonce=None)
    assert "nonce" not in _header(body)


def test_verify_rejects_tampering_and_wrong_key(account_keys) -> None:
    key = account_keys["ec256"]
    body = jws.sign({"a": 1}, key, url="https://ca/x", nonce="n")
    tampered = dict(body, payload=jws.b64url(b'{"a":2}'))
    with pytest.raises(InputError, match="does not verify"):
        jws.verify(tampered, key.public_key())
    with pytest.raises(InputError, match="does not match the key"):
        jws.verify(body, account_keys["ec384"].public_key())
    other = keys.generate_key("ec256")
    with pytest.raises(InputError, match="does not verify"):
        jws.verify(body, other.public_key())


# --- External Account Binding (RFC 8555 §7.3.4) ---------------------------------

def test_external_account_binding_mac_verified_with_hmac(account_keys) -> None:
    account_key = account_keys["ec256"]
    mac_key = bytes(range(32))
    mac_key_text = jws.b64url(mac_key)  # as a CA hands it out
    binding = jws.external_account_binding(account_key, eab_kid="kid-1", hmac_key=mac_key_text,
                                           url="https://ca/new-acct")
    assert json.loads(jws.b64url_decode(binding["protected"])) == {
        "alg": "HS256", "kid": "kid-1", "url": "https://ca/new-acct"}
    assert json.loads(jws.b64url_decode(binding["payload"])) == keys.public_jwk(account_key)
    expected = hmac.new(mac_key, f"{binding['protected']}.{binding['payload']}".encode(), hashlib.sha256).digest()
    assert jws.b64url_decode(binding["signature"]) == expected
    # bytes key gives the same object; padded text too
    assert jws.external_account_binding(account_key, eab_kid="kid-1", hmac_key=mac_key,
                                        url="https://ca/new-acct") == binding
    assert jws.external_account_binding(account_key, eab_kid="kid-1", hmac_key=mac_key_text + "=",
                                        url="https://ca/new-acct") == binding
    assert jws.verify(binding, mac_key)["payload"] == keys.public_jwk(account_key)
    with pytest.raises(InputError):
        jws.verify(binding, b"another key")


# --- key change (RFC 8555 §7.3.5) -----------------------------------------------

def test_key_change_inner_jws(account_keys) -> None:
    old_key, new_key = account_keys["rsa2048"], account_keys["ec384"]
    inner = jws.key_change(account_url="https://ca/acct/7", old_key=old_key, new_key=new_key,
                           url="https://ca/key-change")
    header = _header(inner)
    assert header == {"alg": "ES384", "jwk": keys.public_jwk(new_key), "url": "https://ca/key-change"}
    assert "nonce" not in header and "kid" not in header
    decoded = jws.verify(inner, new_key.public_key())
    assert decoded["payload"] == {"account": "https://ca/acct/7", "oldKey": keys.public_jwk(old_key)}
    with pytest.raises(InputError):
        jws.verify(inner, old_key.public_key())
    # the outer request: signed by the old key with kid, same url
    outer = jws.sign(inner, old_key, url="https://ca/key-change", nonce="n", kid="https://ca/acct/7")
    assert jws.verify(outer, old_key)["payload"] == inner


def test_key_change_same_key_refused(account_keys) -> None:
    key = account_keys["ec256"]
    with pytest.raises(InputError, match="same"):
        jws.key_change(account_url="https://ca/acct/7", old_key=key, new_key=key, url="https://ca/key-change")


def test_flattened_refuses_alg_that_does_not_match_the_key(account_keys) -> None:
    with pytest.raises(InputError, match="does not match"):
        jws.flattened({"alg": "RS256"}, b"{}", account_keys["ec256"])
    with pytest.raises(InputError, match="does not match"):
        jws.flattened({"alg": "none"}, b"{}", account_keys["rsa2048"])


def test_payload_that_is_not_json_serialisable(account_keys) -> None:
    with pytest.raises(InputError, match="JSON"):
        jws.sign({"when": object()}, account_keys["ec256"], url="https://ca/x", nonce="n")
    with pytest.raises(InputError, match="JSON"):
        jws.sign({"value": float("nan")}, account_keys["ec256"], url="https://ca/x", nonce="n")
