"""JSON Web Signature for ACME: base64url, flattened JWS, EAB, key change.

Theory of operation
-------------------
Every ACME POST body is a JWS in the flattened JSON serialisation
(RFC 7515 §7.2.2, RFC 8555 §6.2)::

    {"protected": b64url(JSON header), "payload": b64url(JSON body),
     "signature": b64url(signature over "<protected>.<payload>")}

The protected header always has ``alg``, ``nonce`` (RFC 8555 §6.5) and
``url`` (§6.4), and exactly one of:

* ``jwk`` -- the account's public key, for ``newAccount`` and for revoking
  with the certificate's own key (§6.2);
* ``kid`` -- the account URL, for every other request.

A POST-as-GET (§6.3) has the empty string as payload.

Algorithms (RFC 7518 §3): RS256 is RSASSA-PKCS1-v1_5 with SHA-256; ES256 /
ES384 are ECDSA with SHA-256 / SHA-384 whose signature is the fixed-length
concatenation r||s (§3.4) -- *not* the DER that ``cryptography`` produces,
so we convert both ways.  HS256 (HMAC-SHA256) appears only inside the
External Account Binding (RFC 8555 §7.3.4).

Two requests carry a JWS *inside* the payload of the outer JWS:
:func:`external_account_binding` (newAccount with EAB, §7.3.4) and
:func:`key_change` (account key rollover, §7.3.5).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from acmelab.errors import InputError
from acmelab.keys import PrivateKey, PublicKey, jws_algorithm, public_jwk, public_key_from_jwk

# ECDSA alg -> (hash, length of r and of s in bytes), RFC 7518 §3.4
_ECDSA: dict[str, tuple[hashes.HashAlgorithm, int]] = {
    "ES256": (hashes.SHA256(), 32),
    "ES384": (hashes.SHA384(), 48),
}


# --------------------------------------------------------------------------
# base64url (RFC 7515 §2, §C)
# --------------------------------------------------------------------------

def b64url(data: bytes | str) -> str:
    """Base64url-encode without ``=`` padding (RFC 7515 §2).

    Args:
        data: bytes, or str (encoded as UTF-8 first).

    Returns:
        ASCII text of ``[A-Za-z0-9_-]``.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str | bytes) -> bytes:
    """Decode base64url with or without padding (RFC 7515 §2).

    Raises:
        InputError: characters outside the base64url alphabet, or an
            impossible length.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise InputError("base64url text must be ASCII") from None
    if not isinstance(text, str):
        raise InputError(f"expected base64url text, not {type(text).__name__}")
    stripped = text.rstrip("=")
    if any(c not in _B64URL_ALPHABET for c in stripped) or len(stripped) % 4 == 1:
        raise InputError("not valid base64url text")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError):
        raise InputError("not valid base64url text") from None


_B64URL_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def json_bytes(value: Any) -> bytes:
    """Compact JSON (no spaces) as UTF-8, the form we sign.

    Raises:
        InputError: the value is not JSON-serialisable (or holds NaN/Infinity).
    """
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InputError(f"cannot serialise as JSON: {exc}") from None


# --------------------------------------------------------------------------
# Raw signatures: RS256, ES256, ES384 (RFC 7518 §3.3, §3.4)
# --------------------------------------------------------------------------

def sign_bytes(key: PrivateKey, signing_input: bytes) -> bytes:
    """Sign the JWS signing input (``ASCII(protected || "." || payload)``).

    Returns:
        the raw signature: RSASSA-PKCS1-v1_5/SHA-256 for RSA keys (RS256,
        RFC 7518 §3.3), or r||s, each padded to 32 (P-256, ES256) or 48
        (P-384, ES384) bytes (RFC 7518 §3.4).

    Raises:
        InputError: unsupported key (see :func:`acmelab.keys.key_type_of`).
    """
    alg = jws_algorithm(key)
    if alg == "RS256":
        return key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[call-arg,union-attr]
    hash_algorithm, size = _ECDSA[alg]
    der = key.sign(signing_input, ec.ECDSA(hash_algorithm))  # type: ignore[call-arg,union-attr]
    r, s = decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def verify_bytes(public_key: PublicKey | PrivateKey, signing_input: bytes, signature: bytes) -> None:
    """Check a raw RS256 / ES256 / ES384 signature (inverse of :func:`sign_bytes`).

    Raises:
        InputError: the signature does not verify, has the wrong length, or
            the key is unsupported.
    """
    alg = jws_algorithm(public_key)
    if hasattr(public_key, "private_bytes"):
        public_key = public_key.public_key()  # type: ignore[union-attr]
    try:
        if alg == "RS256":
            public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[call-arg,union-attr]
        else:
            hash_algorithm, size = _ECDSA[alg]
            if len(signature) != 2 * size:
                raise InputError(f"{alg} signature must be {2 * size} bytes (r||s), got {len(signature)}")
            r = int.from_bytes(signature[:size], "big")
            s = int.from_bytes(signature[size:], "big")
            public_key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hash_algorithm))  # type: ignore[call-arg,union-attr]
    except InvalidSignature:
        raise InputError(f"{alg} signature does not verify") from None


# --------------------------------------------------------------------------
# Flattened JWS (RFC 7515 §7.2.2) for ACME (RFC 8555 §6.2)
# --------------------------------------------------------------------------

def _payload_bytes(payload: Mapping[str, Any] | list[Any] | bytes | None) -> bytes:
    if payload is None:
        return b""  # POST-as-GET, RFC 8555 §6.3
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, (Mapping, list)):
        return json_bytes(dict(payload) if isinstance(payload, Mapping) else payload)
    raise InputError(f"JWS payload must be a dict, bytes or None, not {type(payload).__name__}")


def flattened(protected: Mapping[str, Any], payload: bytes, key: PrivateKey) -> dict[str, str]:
    """Sign ``payload`` under an arbitrary protected header (RFC 7515 §5.1,
    flattened JSON serialisation §7.2.2).  :func:`sign` builds the ACME
    header and calls this; it is public for the RFC 7515 examples.

    Args:
        protected: the protected header (serialised as compact JSON).
        payload: the exact payload bytes.
        key: RSA or EC private key; ``protected["alg"]`` should match it.

    Returns:
        ``{"protected", "payload", "signature"}``, all base64url.

    Raises:
        InputError: unsupported key, or ``protected["alg"]`` not the key's.
    """
    alg = jws_algorithm(key)
    if protected.get("alg") != alg:
        raise InputError(f"protected header alg {protected.get('alg')!r} does not match the key ({alg})")
    protected_b64 = b64url(json_bytes(dict(protected)))
    payload_b64 = b64url(payload)
    signature = sign_bytes(key, f"{protected_b64}.{payload_b64}".encode("ascii"))
    return {"protected": protected_b64, "payload": payload_b64, "signature": b64url(signature)}


def sign(payload: Mapping[str, Any] | bytes | None, key: PrivateKey, *, url: str,
         nonce: str | None, kid: str | None = None) -> dict[str, str]:
    """Sign an ACME request body as a flattened JWS (RFC 8555 §6.2).

    Args:
        payload: the request object (dict, serialised as compact JSON), raw
            bytes, or None for POST-as-GET (empty payload ``""``, §6.3).
        key: the account key (or, to revoke, the certificate's key).
        url: the exact URL being POSTed to (``url`` header, §6.4).
        nonce: a fresh ``Replay-Nonce`` (§6.5); None leaves ``nonce`` out
            (only for inner JWS objects).
        kid: the account URL; when given the header has ``kid`` and no
            ``jwk``, otherwise it carries the key's public ``jwk``.

    Returns:
        ``{"protected": str, "payload": str, "signature": str}``, all
        base64url; send it as ``application/jose+json``.

    Raises:
        InputError: unsupported key, empty url, or a payload of another type.
    """
    if not isinstance(url, str) or not url:
        raise InputError("the JWS url header must be the non-empty request URL")
    protected: dict[str, Any] = {"alg": jws_algorithm(key)}
    if kid is not None:
        protected["kid"] = kid
    else:
        protected["jwk"] = public_jwk(key)
    if nonce is not None:
        protected["nonce"] = nonce
    protected["url"] = url
    return flattened(protected, _payload_bytes(payload), key)


def _decode_json(text: str, what: str) -> Any:
    try:
        return json.loads(b64url_decode(text))
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"JWS {what} is not base64url-encoded JSON") from None


def verify(jws: Mapping[str, Any], public_key: PublicKey | PrivateKey | Mapping[str, Any] | bytes) -> dict[str, Any]:
    """Verify a flattened JWS and decode it.

    Args:
        jws: ``{"protected", "payload", "signature"}`` as produced by
            :func:`sign`, :func:`external_account_binding` or
            :func:`key_change`.
        public_key: a ``cryptography`` public (or private) key, a public JWK
            dict, or -- for HS256 only -- the HMAC key as bytes.

    Returns:
        ``{"protected": dict, "payload": dict | list | bytes | None}``:
        the decoded protected header, and the payload parsed as JSON, None
        for the empty POST-as-GET payload, or raw bytes if it is not JSON.

    Raises:
        InputError: malformed JWS, ``alg`` that does not match the key
            (RS256/ES256/ES384/HS256 only), or a signature that does not verify.
    """
    if not isinstance(jws, Mapping) or not all(isinstance(jws.get(m), str)
                                                for m in ("protected", "payload", "signature")):
        raise InputError("a flattened JWS needs string members protected, payload and signature")
    header = _decode_json(jws["protected"], "protected header")
    if not isinstance(header, dict):
        raise InputError("JWS protected header is not a JSON object")
    signing_input = f"{jws['protected']}.{jws['payload']}".encode("ascii")
    signature = b64url_decode(jws["signature"])
    alg = header.get("alg")

    if isinstance(public_key, (bytes, bytearray)):
        if alg != "HS256":
            raise InputError(f"an HMAC key verifies HS256 only, the JWS says alg {alg!r}")
        expected = hmac.new(bytes(public_key), signing_input, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, signature):
            raise InputError("HS256 signature does not verify")
    else:
        if isinstance(public_key, Mapping):
            public_key = public_key_from_jwk(public_key)
        expected_alg = jws_algorithm(public_key)
        if alg != expected_alg:
            raise InputError(f"JWS alg {alg!r} does not match the key ({expected_alg})")
        verify_bytes(public_key, signing_input, signature)

    raw_payload = b64url_decode(jws["payload"])
    payload: Any
    if raw_payload == b"":
        payload = None
    else:
        try:
            payload = json.loads(raw_payload)
        except (UnicodeDecodeError, ValueError):
            payload = raw_payload
    return {"protected": header, "payload": payload}


# --------------------------------------------------------------------------
# Inner JWS objects: External Account Binding (§7.3.4), key change (§7.3.5)
# --------------------------------------------------------------------------

def external_account_binding(account_key: PrivateKey | PublicKey, *, eab_kid: str,
                             hmac_key: bytes | str, url: str) -> dict[str, str]:
    """The ``externalAccountBinding`` member of a newAccount request
    (RFC 8555 §7.3.4).

    A JWS signed with HS256 by the CA-issued MAC key, whose payload is the
    account's public JWK, binding the new ACME account to the CA's
    existing customer account.

    Args:
        account_key: the ACME account key (only its public JWK is used).
        eab_kid: the key identifier the CA gave out (``kid`` header).
        hmac_key: the MAC key -- raw bytes, or base64url text as CAs hand it
            out (padding optional).
        url: the ``newAccount`` URL (``url`` header).

    Returns:
        ``{"protected", "payload", "signature"}`` (protected header
        ``{"alg": "HS256", "kid": eab_kid, "url": url}``, no nonce).

    Raises:
        InputError: empty kid/url, empty or non-base64url MAC key, unsupported
            account key.
    """
    if not eab_kid or not isinstance(eab_kid, str):
        raise InputError("the External Account Binding key identifier (eab_kid) is empty")
    if not url or not isinstance(url, str):
        raise InputError("the External Account Binding url (newAccount URL) is empty")
    if isinstance(hmac_key, str):
        try:
            mac_key = b64url_decode(hmac_key.strip())
        except InputError:
            raise InputError("the External Account Binding MAC key is not base64url text") from None
    elif isinstance(hmac_key, (bytes, bytearray)):
        mac_key = bytes(hmac_key)
    else:
        raise InputError("the External Account Binding MAC key must be bytes or base64url text")
    if not mac_key:
        raise InputError("the External Account Binding MAC key is empty")

    protected_b64 = b64url(json_bytes({"alg": "HS256", "kid": eab_kid, "url": url}))
    payload_b64 = b64url(json_bytes(public_jwk(account_key)))
    mac = hmac.new(mac_key, f"{protected_b64}.{payload_b64}".encode("ascii"), hashlib.sha256).digest()
    return {"protected": protected_b64, "payload": payload_b64, "signature": b64url(mac)}


def key_change(*, account_url: str, old_key: PrivateKey | PublicKey, new_key: PrivateKey,
               url: str) -> dict[str, str]:
    """The inner JWS of an account key rollover (RFC 8555 §7.3.5).

    Signed by the *new* key, with its ``jwk`` in the protected header and no
    nonce; the payload names the account and its old key.  The caller signs
    the result again, as the payload of an ordinary ``kid`` request with
    the *old* key, to the same ``keyChange`` URL.

    Args:
        account_url: the account URL (``kid`` of the outer JWS).
        old_key: the current account key (its public JWK becomes ``oldKey``).
        new_key: the replacement account private key.
        url: the directory's ``keyChange`` URL.

    Returns:
        ``{"protected", "payload", "signature"}`` with protected header
        ``{"alg", "jwk": <new key>, "url"}`` and payload
        ``{"account": account_url, "oldKey": <old key JWK>}``.

    Raises:
        InputError: empty account_url/url, unsupported key, or the same key
            as old and new.
    """
    if not account_url or not isinstance(account_url, str):
        raise InputError("key change needs the account URL")
    old_jwk = public_jwk(old_key)
    new_jwk = public_jwk(new_key)
    if old_jwk == new_jwk:
        raise InputError("the new account key is the same as the old one")
    return sign({"account": account_url, "oldKey": old_jwk}, new_key, url=url, nonce=None)
