"""Account keys and certificate keys: generate, save, load, JWK, thumbprint.

Theory of operation
-------------------
ACME uses two kinds of key pairs.  The *account key* signs every request
(RFC 8555 §6.2) and is identified by its public JWK (RFC 7517) or, once the
account exists, by the account URL (``kid``).  The *certificate key* is the
one the certificate is issued for; it only signs the CSR.

Both are ordinary ``cryptography`` private key objects.  We support what
Let's Encrypt supports and what the JWS algorithms of RFC 7518 map to:

==========  ===============================  =============
key type    key                              JWS ``alg``
==========  ===============================  =============
rsa2048     RSA, 2048-bit modulus, e=65537   RS256
rsa3072     RSA, 3072-bit modulus            RS256
rsa4096     RSA, 4096-bit modulus            RS256
ec256       ECDSA on P-256 (secp256r1)       ES256
ec384       ECDSA on P-384 (secp384r1)       ES384
==========  ===============================  =============

Private keys on disk are PEM PKCS#8, optionally encrypted with a passphrase,
written atomically with mode 0600 and never overwritten unless asked.
Nothing in this module prints, logs or puts key material in an exception.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping, Union

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from acmelab.errors import InputError, KeyExistsError
from acmelab.files import write_atomically

#: Every key type acmelab generates and accepts.
KEY_TYPES = ("rsa2048", "rsa3072", "rsa4096", "ec256", "ec384")

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]
PublicKey = Union[rsa.RSAPublicKey, ec.EllipticCurvePublicKey]

# EC curve name in cryptography -> (key type, JWK "crv", coordinate bytes, JWS alg)
_CURVES: dict[str, tuple[str, str, int, str]] = {
    "secp256r1": ("ec256", "P-256", 32, "ES256"),
    "secp384r1": ("ec384", "P-384", 48, "ES384"),
}
_RSA_MIN_BITS = 2048


# --------------------------------------------------------------------------
# Generate
# --------------------------------------------------------------------------

def generate_key(key_type: str = "ec256") -> PrivateKey:
    """Generate a fresh private key.

    Args:
        key_type: one of :data:`KEY_TYPES` (``"ec256"`` by default).

    Returns:
        a ``cryptography`` RSA private key (public exponent 65537) or EC
        private key (P-256 / P-384).

    Raises:
        InputError: ``key_type`` is not one of :data:`KEY_TYPES`.
    """
    if key_type in ("rsa2048", "rsa3072", "rsa4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    if key_type == "ec256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec384":
        return ec.generate_private_key(ec.SECP384R1())
    raise InputError(f"unsupported key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}")


def key_type_of(key: PrivateKey | PublicKey) -> str:
    """Name the type of a private or public key.

    Returns:
        one of :data:`KEY_TYPES`, e.g. ``"rsa2048"`` or ``"ec256"``.

    Raises:
        InputError: the key is not RSA >= 2048 bits with one of the sizes
            2048/3072/4096, nor EC on P-256/P-384 (e.g. Ed25519, DSA,
            RSA-1024, P-521).
    """
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        bits = key.key_size
        if bits < _RSA_MIN_BITS:
            raise InputError(f"RSA key of {bits} bits is too short; at least {_RSA_MIN_BITS} bits are required")
        name = f"rsa{bits}"
        if name not in KEY_TYPES:
            raise InputError(f"RSA key of {bits} bits is not supported; use 2048, 3072 or 4096 bits")
        return name
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        curve = key.curve.name
        if curve not in _CURVES:
            raise InputError(f"EC curve {curve} is not supported; use P-256 or P-384")
        return _CURVES[curve][0]
    raise InputError(f"unsupported key kind {type(key).__name__}; use RSA (2048/3072/4096) or EC (P-256/P-384)")


def jws_algorithm(key: PrivateKey | PublicKey) -> str:
    """The JWS ``alg`` for a key (RFC 7518 §3.1): ``"RS256"`` for RSA,
    ``"ES256"`` for P-256, ``"ES384"`` for P-384.

    Raises:
        InputError: unsupported key (see :func:`key_type_of`).
    """
    key_type = key_type_of(key)
    if key_type.startswith("rsa"):
        return "RS256"
    return "ES256" if key_type == "ec256" else "ES384"


# --------------------------------------------------------------------------
# PEM: serialise, save, load
# --------------------------------------------------------------------------

def _passphrase_bytes(passphrase: bytes | str | None) -> bytes | None:
    if passphrase is None:
        return None
    if isinstance(passphrase, str):
        passphrase = passphrase.encode("utf-8")
    if not isinstance(passphrase, bytes):
        raise InputError("passphrase must be bytes, str or None")
    if not passphrase:
        raise InputError("passphrase is empty; pass None for an unencrypted key")
    return passphrase


def private_key_pem(key: PrivateKey, passphrase: bytes | str | None = None) -> bytes:
    """Serialise a private key as PEM PKCS#8 (RFC 5958, RFC 7468).

    Args:
        key: an RSA or EC private key of a supported type.
        passphrase: if given (non-empty bytes or str, UTF-8), the PEM is
            encrypted (``-----BEGIN ENCRYPTED PRIVATE KEY-----``) with
            ``cryptography``'s best available encryption.

    Returns:
        PEM bytes.  Secret: never print or log them.

    Raises:
        InputError: unsupported key or empty passphrase.
    """
    key_type_of(key)
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise InputError("a private key is required, not a public key")
    secret = _passphrase_bytes(passphrase)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(secret) if secret else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def write_private_file(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False) -> Path:
    """Write secret bytes to ``path`` atomically with mode 0600
    (:func:`acmelab.files.write_atomically`: the mode is set before any
    byte is written; readers see the old file or the new one).

    Raises:
        KeyExistsError: ``path`` exists (or appears meanwhile) and
            ``overwrite`` is False.
        InputError: the directory does not exist or is not writable.
    """
    return write_atomically(path, data, mode=0o600, overwrite=overwrite, exists_error=KeyExistsError)


def save_private_key(key: PrivateKey, path: str | os.PathLike[str], *,
                     passphrase: bytes | str | None = None, overwrite: bool = False) -> Path:
    """Save a private key as PEM PKCS#8, atomically, mode 0600.

    Args:
        key: an RSA or EC private key of a supported type.
        path: target file; its directory must exist.
        passphrase: encrypt the PEM with it (non-empty bytes or str).
        overwrite: replace an existing file (still atomically).

    Returns:
        the path written, as :class:`pathlib.Path`.

    Raises:
        KeyExistsError: the file exists and ``overwrite`` is False (nothing
            is written).
        InputError: unsupported key, empty passphrase, missing directory.
    """
    data = private_key_pem(key, passphrase)
    return write_private_file(path, data, overwrite=overwrite)


_PEM_KEY_LABELS = (b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"ENCRYPTED PRIVATE KEY")


def _read_pem_input(path_or_pem: Path | str | bytes) -> tuple[bytes, str]:
    """Return (data, description) for a path or in-memory PEM."""
    if isinstance(path_or_pem, bytes):
        return path_or_pem, "the PEM data"
    if isinstance(path_or_pem, str) and "-----BEGIN" in path_or_pem:
        return path_or_pem.encode("utf-8", "replace"), "the PEM text"
    if isinstance(path_or_pem, (str, os.PathLike)):
        path = Path(path_or_pem)
        try:
            return path.read_bytes(), str(path)
        except FileNotFoundError:
            raise InputError(f"key file {path} does not exist") from None
        except IsADirectoryError:
            raise InputError(f"{path} is a directory, not a key file") from None
        except OSError as exc:
            raise InputError(f"cannot read key file {path}: {exc.strerror}") from None
    raise InputError(f"expected a path, PEM str or PEM bytes, not {type(path_or_pem).__name__}")


def load_private_key(path_or_pem: Path | str | bytes, passphrase: bytes | str | None = None) -> PrivateKey:
    """Load a private key from a PEM file or PEM text.

    Accepts PKCS#8 (``PRIVATE KEY``, ``ENCRYPTED PRIVATE KEY``) and the
    traditional ``RSA PRIVATE KEY`` / ``EC PRIVATE KEY`` forms.

    Args:
        path_or_pem: a path (``Path`` or str without ``-----BEGIN``), or the
            PEM itself as str or bytes.
        passphrase: for an encrypted key (bytes or str, UTF-8).

    Returns:
        the RSA or EC private key.

    Raises:
        InputError: missing or empty file, not PEM, a certificate or CSR or
            public key instead of a private key, truncated PEM, encrypted key
            without passphrase, wrong passphrase, passphrase for an
            unencrypted key, unsupported key (Ed25519, DSA, RSA < 2048,
            curves other than P-256/P-384).  Messages never contain key
            material.
    """
    data, where = _read_pem_input(path_or_pem)
    if not data.strip():
        raise InputError(f"{where} is empty; expected a PEM private key")
    if b"-----BEGIN" not in data:
        raise InputError(f"{where} is not PEM (no '-----BEGIN' line); expected a PEM private key")
    labels = [line.split(b"-----BEGIN ", 1)[1].split(b"-----", 1)[0].strip()
              for line in data.splitlines() if b"-----BEGIN " in line]
    key_labels = [label for label in labels if label in _PEM_KEY_LABELS]
    if not key_labels:
        found = labels[0].decode("ascii", "replace") if labels else "?"
        raise InputError(f"{where} holds a {found}, not a private key")
    encrypted = b"ENCRYPTED PRIVATE KEY" in key_labels or b"Proc-Type: 4,ENCRYPTED" in data
    secret = _passphrase_bytes(passphrase)
    if encrypted and secret is None:
        raise InputError(f"{where} holds an encrypted private key; a passphrase is required")
    if not encrypted and secret is not None:
        raise InputError(f"{where} holds an unencrypted private key, but a passphrase was given")
    try:
        key = serialization.load_pem_private_key(data, password=secret)
    except TypeError:
        # cryptography: password given for an unencrypted key, or missing.
        if secret is None:
            raise InputError(f"{where} holds an encrypted private key; a passphrase is required") from None
        raise InputError(f"{where} holds an unencrypted private key, but a passphrase was given") from None
    except UnsupportedAlgorithm:
        raise InputError(f"{where} holds a private key of an unsupported type") from None
    except ValueError:
        if encrypted:
            raise InputError(f"cannot decrypt {where}: wrong passphrase or damaged file") from None
        raise InputError(f"{where} is not a valid PEM private key (truncated or damaged)") from None
    key_type_of(key)  # Ed25519, DSA, RSA-1024, P-521 ... -> InputError
    return key  # type: ignore[return-value]


# --------------------------------------------------------------------------
# JWK (RFC 7517 / RFC 7518 §6) and thumbprint (RFC 7638)
# --------------------------------------------------------------------------

def _b64url_uint(value: int, length: int | None = None) -> str:
    """Base64url of a non-negative integer, big-endian (RFC 7518 §2,
    "Base64urlUInt"); padded to ``length`` bytes when given (EC
    coordinates, RFC 7518 §6.2.1.2)."""
    if length is None:
        length = max(1, (value.bit_length() + 7) // 8)
    return base64.urlsafe_b64encode(value.to_bytes(length, "big")).rstrip(b"=").decode("ascii")


def public_jwk(key: PrivateKey | PublicKey) -> dict[str, str]:
    """The public JWK of a key, with only the required members.

    RSA (RFC 7518 §6.3.1): ``{"e", "kty": "RSA", "n"}``.
    EC (RFC 7518 §6.2.1): ``{"crv": "P-256"|"P-384", "kty": "EC", "x", "y"}``,
    with x and y padded to the curve's byte length (32 / 48).
    Members are in lexicographic order, as RFC 7638 §3 hashes them.

    Raises:
        InputError: unsupported key (see :func:`key_type_of`).
    """
    key_type = key_type_of(key)
    public = key.public_key() if hasattr(key, "private_bytes") else key
    if key_type.startswith("rsa"):
        numbers = public.public_numbers()  # type: ignore[union-attr]
        return {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
    _, crv, size, _ = _CURVES[public.curve.name]  # type: ignore[union-attr]
    numbers = public.public_numbers()  # type: ignore[union-attr]
    return {"crv": crv, "kty": "EC", "x": _b64url_uint(numbers.x, size), "y": _b64url_uint(numbers.y, size)}


_REQUIRED_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}


def thumbprint(key_or_jwk: PrivateKey | PublicKey | Mapping[str, Any]) -> str:
    """JWK thumbprint (RFC 7638 §3): base64url (no padding) of the SHA-256
    of the JWK's required members, in lexicographic order, without
    whitespace.

    Args:
        key_or_jwk: a private or public key, or a JWK dict (extra members such
            as ``"kid"`` or ``"alg"`` are ignored, as §3.2 says).

    Returns:
        43-character base64url text (used in the key authorization,
        RFC 8555 §8.1).

    Raises:
        InputError: unsupported key, or a JWK dict missing a required member.
    """
    if isinstance(key_or_jwk, Mapping):
        kty = key_or_jwk.get("kty")
        if kty not in _REQUIRED_MEMBERS:
            raise InputError(f"JWK kty {kty!r} is not supported; expected 'RSA' or 'EC'")
        missing = [m for m in _REQUIRED_MEMBERS[kty] if not isinstance(key_or_jwk.get(m), str)]
        if missing:
            raise InputError(f"JWK is missing required member(s): {', '.join(missing)}")
        jwk = {m: key_or_jwk[m] for m in _REQUIRED_MEMBERS[kty]}
    else:
        jwk = public_jwk(key_or_jwk)
    canonical = json.dumps(jwk, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    digest = hashlib.sha256(canonical.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def public_key_from_jwk(jwk: Mapping[str, Any]) -> PublicKey:
    """Build a ``cryptography`` public key from an RSA or EC JWK (RFC 7518 §6).

    Raises:
        InputError: wrong ``kty``/``crv``, missing or non-base64url members,
            or a point not on the curve.
    """
    def number(member: str) -> int:
        text = jwk.get(member)
        if not isinstance(text, str) or not text:
            raise InputError(f"JWK member {member!r} is missing")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (ValueError, TypeError):
            raise InputError(f"JWK member {member!r} is not base64url") from None
        return int.from_bytes(raw, "big")

    kty = jwk.get("kty")
    try:
        if kty == "RSA":
            key: PublicKey = rsa.RSAPublicNumbers(number("e"), number("n")).public_key()
        elif kty == "EC":
            curves = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}
            curve = curves.get(jwk.get("crv"))  # type: ignore[arg-type]
            if curve is None:
                raise InputError(f"JWK crv {jwk.get('crv')!r} is not supported; expected P-256 or P-384")
            key = ec.EllipticCurvePublicNumbers(number("x"), number("y"), curve).public_key()
        else:
            raise InputError(f"JWK kty {kty!r} is not supported; expected 'RSA' or 'EC'")
    except ValueError as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"JWK does not describe a valid {kty} public key") from None
    key_type_of(key)
    return key
