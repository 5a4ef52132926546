"""Certificate Signing Requests: names, make, inspect.

Theory of operation
-------------------
To finalize an order (RFC 8555 §7.4) the client sends a PKCS#10 CSR
(RFC 2986) in DER, base64url-encoded.  The CA reads the names from the
subjectAltName extension (RFC 5280 §4.2.1.6) and checks they are exactly the
order's identifiers, so we normalise every name the same way before it goes
into an order or a CSR:

1. lower-case, internationalised labels to their IDNA 2008 A-label
   (punycode, RFC 5891) -- ``"Bücher.Example"`` -> ``"xn--bcher-kva.example"``;
2. one trailing dot removed (``"example.com."`` is the same name);
3. a wildcard only as the whole leftmost label (``"*.example.com"``,
   RFC 8555 §7.1.3), never on a bare top-level domain;
4. every label 1-63 characters of letters, digits and hyphens (LDH, RFC 1035
   §2.3.1 / RFC 5891 §4.2.3), no leading or trailing hyphen; the whole name
   at most 253 characters; the last label not all digits.

IP addresses are refused: acmelab orders ``dns`` identifiers only.  Names
with underscores are refused too: they are valid in DNS records (like
``_acme-challenge``) but not in certificates (RFC 5280 §4.2.1.6 requires
preferred name syntax).

Duplicates: :func:`normalize_names` drops a name that normalises to one
already in the list, keeping the first occurrence and the order.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import idna
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from acmelab.errors import InputError
from acmelab.keys import PrivateKey, key_type_of

#: Longest subject commonName (RFC 5280 Appendix A, ub-common-name).
MAX_COMMON_NAME = 64
#: Most names in one certificate that Let's Encrypt accepts.
MAX_NAMES = 100

_LDH_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------

def a_label(label: str, name: str | None = None) -> str:
    """One DNS label in its lower-case ASCII form: an ASCII label as it is,
    lower-cased; any other mapped by UTS #46 and encoded as an A-label
    (IDNA 2008, RFC 5891 §4: ``"bücher"`` -> ``"xn--bcher-kva"``).  No
    other check: callers add theirs (certificate names: LDH below; DNS
    record names keep ``_acme-challenge``).  The one IDNA conversion of the
    client side.

    Raises:
        InputError: not a valid internationalised label (``name``, the
            whole name, is quoted in the message when given).
    """
    if label.isascii():
        return label.lower()
    try:
        return idna.encode(label, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InputError(f"{name if name is not None else label!r} is not a valid internationalised name: {exc}") \
            from None


def ascii_name(name: str) -> str:
    """A whole DNS name in its lower-case ASCII form, as API calls and
    comparisons want it: surrounding whitespace and the trailing dot
    dropped, non-ASCII text mapped by UTS #46 (case, full-width dots) and
    every label through :func:`a_label` -- ``"Bücher.Example."`` ->
    ``"xn--bcher-kva.example"``, ``"faß.de"`` -> ``"xn--fa-hia.de"``
    (IDNA 2008, as certificates are ordered; not IDNA 2003's
    ``"fass.de"``).  No other check: record names keep ``_acme-challenge``,
    a wildcard keeps ``*``; certificate names are checked by
    :func:`normalize_name`.

    Raises:
        InputError: not a str, empty, or a label that is not a valid
            internationalised label.
    """
    if not isinstance(name, str) or not name.strip().rstrip("."):
        raise InputError(f"not a domain name: {name!r}")
    text = name.strip()
    if not text.isascii():
        try:  # UTS #46 mapping of the whole name: full-width dots become dots
            text = idna.uts46_remap(text, std3_rules=False, transitional=False)
        except idna.IDNAError as exc:
            raise InputError(f"{name!r} is not a valid internationalised name: {exc}") from None
    return ".".join(a_label(label, name) for label in text.rstrip(".").split("."))


def _label_to_ascii(label: str, name: str) -> str:
    """One label -> lower-case A-label, LDH-checked."""
    if not label:
        raise InputError(f"{name!r} has an empty label (two dots in a row, or a leading dot)")
    label = a_label(label, name)
    if "_" in label:
        raise InputError(f"{name!r} contains an underscore, which is not allowed in certificate names")
    if len(label) > 63:
        raise InputError(f"{name!r} has a label longer than 63 characters")
    if not _LDH_LABEL.match(label):
        raise InputError(f"{name!r} has an invalid label {label!r}: only letters, digits and hyphens, "
                         "not starting or ending with a hyphen")
    if label[2:4] == "--":
        if not label.startswith("xn--"):
            raise InputError(f"{name!r} has label {label!r} with '--' in positions 3-4, reserved for IDNA (RFC 5891 §4.2.3.1)")
        try:
            idna.ulabel(label)
        except idna.IDNAError:
            raise InputError(f"{name!r} has an invalid punycode label {label!r}") from None
    return label


def normalize_name(name: str) -> str:
    """Normalise one DNS name for an order identifier or a CSR.

    Args:
        name: e.g. ``"Bücher.Example."`` or ``"*.example.com"``.

    Returns:
        the canonical ASCII form, e.g. ``"xn--bcher-kva.example"``.

    Raises:
        InputError: not a str, empty, whitespace, an IP address, a misplaced
            or bare-TLD wildcard, an underscore, an invalid IDN, a label
            outside 1-63 LDH characters, a name over 253 characters, an
            all-numeric last label, or a single label (``"localhost"``,
            ``"com"``): an ACME CA issues only for names under a public
            suffix, so a bare label is never a valid identifier.
    """
    if not isinstance(name, str):
        raise InputError(f"a domain name must be a str, not {type(name).__name__}")
    if not name:
        raise InputError("the domain name is empty")
    if any(c.isspace() for c in name):
        raise InputError(f"{name!r} contains whitespace")
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        pass
    else:
        raise InputError(f"{name!r} is an IP address; acmelab orders DNS names only")
    text = name
    if not text.isascii():
        try:  # UTS #46 mapping: case folding, full-width dots and the like
            text = idna.uts46_remap(text, std3_rules=False, transitional=False)
        except idna.IDNAError as exc:
            raise InputError(f"{name!r} is not a valid internationalised name: {exc}") from None
    if text.endswith("."):
        text = text[:-1]
    if not text:
        raise InputError(f"{name!r} is not a domain name")
    wildcard = False
    if text.startswith("*."):
        wildcard, text = True, text[2:]
    if "*" in text:
        raise InputError(f"{name!r}: a wildcard must be the whole leftmost label, as in '*.example.com'")
    labels = [_label_to_ascii(label, name) for label in text.split(".")]
    if wildcard and len(labels) < 2:
        raise InputError(f"{name!r}: a wildcard on a bare top-level domain is not allowed")
    if len(labels) < 2:
        raise InputError(f"{name!r} is a single label; a CA issues only for names under a public suffix, "
                         "such as 'example.com'")
    if labels[-1].isdigit():
        raise InputError(f"{name!r}: the top-level label cannot be all digits")
    result = ("*." if wildcard else "") + ".".join(labels)
    if len(result) > 253:
        raise InputError(f"{name!r} is longer than 253 characters")
    return result


def normalize_names(names: Iterable[str]) -> list[str]:
    """Normalise a list of names (:func:`normalize_name`), dropping later
    duplicates and keeping the order.

    Raises:
        InputError: a bare str instead of a list, no names, more than
            :data:`MAX_NAMES`, or any invalid name.
    """
    if isinstance(names, (str, bytes)):
        raise InputError("names must be a list of domain names, not a single string")
    result: list[str] = []
    for name in names:
        normal = normalize_name(name)
        if normal not in result:
            result.append(normal)
    if not result:
        raise InputError("at least one domain name is required")
    if len(result) > MAX_NAMES:
        raise InputError(f"{len(result)} names is more than the {MAX_NAMES} a certificate may carry")
    return result


# --------------------------------------------------------------------------
# Make
# --------------------------------------------------------------------------

def make_csr(key: PrivateKey, names: list[str]) -> x509.CertificateSigningRequest:
    """Build and sign a CSR for ``names`` (RFC 2986, RFC 8555 §7.4).

    Args:
        key: the certificate's private key (RSA 2048/3072/4096, EC P-256/P-384),
            never the account key.
        names: DNS names; normalised with :func:`normalize_names` (duplicates
            dropped, order kept).

    Returns:
        the CSR: subject CN = the first name if it is at most 64 characters
        (otherwise an empty subject), subjectAltName with every name as a
        dNSName, signed with SHA-256.

    Raises:
        InputError: invalid names or unsupported key.
    """
    key_type_of(key)
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise InputError("make_csr needs the certificate's private key")
    normal = normalize_names(names)
    subject = []
    if len(normal[0]) <= MAX_COMMON_NAME:
        subject.append(x509.NameAttribute(NameOID.COMMON_NAME, normal[0]))
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(subject))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in normal]), critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def csr_der(csr: x509.CertificateSigningRequest) -> bytes:
    """The CSR in DER, as RFC 8555 §7.4 finalize wants it (base64url it
    with :func:`acmelab.jws.b64url`)."""
    return csr.public_bytes(serialization.Encoding.DER)


def csr_pem(csr: x509.CertificateSigningRequest) -> bytes:
    """The CSR as PEM (``-----BEGIN CERTIFICATE REQUEST-----``, RFC 7468 §7)."""
    return csr.public_bytes(serialization.Encoding.PEM)


# --------------------------------------------------------------------------
# Inspect
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class CsrInfo:
    """What a CSR asks for.

    Attributes:
        names: the subjectAltName dNSNames, in the CSR's order (list of str).
        common_name: the subject CN, or None.
        key_type: ``"rsa2048"``, ... ``"ec384"`` (see acmelab.keys.KEY_TYPES),
            or a description of an unsupported key (``"rsa1024"``,
            ``"ec521"``, ``"ed25519"``, ``"dsa"``).
        signature_valid: the CSR's self-signature verifies (bool).
    """

    names: list[str]
    common_name: str | None
    key_type: str
    signature_valid: bool


def load_csr(csr_or_pem: x509.CertificateSigningRequest | bytes | str | os.PathLike[str]) -> x509.CertificateSigningRequest:
    """Parse a CSR from PEM (bytes or str), DER bytes, a file path, or
    return a CSR object unchanged.

    Raises:
        InputError: missing file, or data that is not a CSR.
    """
    if isinstance(csr_or_pem, x509.CertificateSigningRequest):
        return csr_or_pem
    if isinstance(csr_or_pem, os.PathLike):
        try:
            csr_or_pem = Path(csr_or_pem).read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read CSR file {os.fspath(csr_or_pem)}: {exc.strerror}") from None
    if isinstance(csr_or_pem, str):
        csr_or_pem = csr_or_pem.encode("utf-8", "replace")
    if not isinstance(csr_or_pem, bytes):
        raise InputError(f"expected a CSR, PEM or DER, not {type(csr_or_pem).__name__}")
    if not csr_or_pem.strip():
        raise InputError("the CSR is empty")
    try:
        if b"-----BEGIN" in csr_or_pem:
            if b"CERTIFICATE REQUEST-----" not in csr_or_pem:
                raise InputError("the PEM does not hold a CERTIFICATE REQUEST")
            return x509.load_pem_x509_csr(csr_or_pem)
        return x509.load_der_x509_csr(csr_or_pem)
    except ValueError as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError("not a valid CSR (expected PEM 'CERTIFICATE REQUEST' or DER PKCS#10)") from None


def _describe_key(public_key: object) -> str:
    try:
        return key_type_of(public_key)  # type: ignore[arg-type]
    except InputError:
        pass
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"rsa{public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"ec{public_key.curve.key_size}"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "ed448"
    if isinstance(public_key, dsa.DSAPublicKey):
        return "dsa"
    return type(public_key).__name__.lower()


def inspect_csr(csr_or_pem: x509.CertificateSigningRequest | bytes | str | os.PathLike[str]) -> CsrInfo:
    """Read the names, key type and signature status of a CSR.

    Args:
        csr_or_pem: a CSR object, PEM (bytes/str), DER bytes, or a path.

    Returns:
        :class:`CsrInfo`.

    Raises:
        InputError: not a CSR, or a CSR cryptography cannot parse.
    """
    csr = load_csr(csr_or_pem)
    try:
        extension = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = list(extension.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = []
    except ValueError:
        raise InputError("the CSR's extensions cannot be parsed") from None
    common_names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(common_names[0].value) if common_names else None
    try:
        public_key = csr.public_key()
        key_type = _describe_key(public_key)
    except (ValueError, TypeError):
        key_type = "unknown"
    try:
        signature_valid = csr.is_signature_valid
    except (ValueError, TypeError, UnsupportedAlgorithm):  # e.g. an unknown signature algorithm
        signature_valid = False
    return CsrInfo(names=names, common_name=common_name, key_type=key_type, signature_valid=signature_valid)
