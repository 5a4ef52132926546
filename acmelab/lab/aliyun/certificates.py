"""How the lab's products check an uploaded certificate -- the lab's own checks.

Alibaba Cloud refuses an upload whose PEM does not parse, whose key is not
the certificate's, whose chain is out of order, that has expired or that does
not cover the domain.  The lab does the same here, written independently of
the client's pre-send checks (``acmelab.deploy``): the mock must be able to
catch a bug in those, so it never calls them.

:func:`check_upload` runs every check with one product's error codes
(:class:`Codes`) and returns the leaf; :class:`Installed` is what a product
keeps for one binding (the key stays out of repr); :func:`certificate_info`
is the certificate part of an answer (never the key).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import idna
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from acmelab.lab.aliyun.server import ApiFault, require


@dataclass(frozen=True)
class Codes:
    """One product's error codes (and messages) for a bad upload."""

    certificate: str       # malformed / out of order / expired / wrong domain
    certificate_message: str
    key: str               # malformed key
    key_message: str
    mismatch: str          # key does not match the certificate
    mismatch_message: str


@dataclass
class Installed:
    """What a product holds for one binding (the key stays out of repr).

    Attributes:
        cert_name: the name the upload was given.
        chain_pem: the chain as uploaded, leaf first.
        key_pem: the private key PEM (only ever used to serve TLS).
        leaf: the parsed leaf certificate.
        cert_type: ``"upload"`` or ``"cas"`` (CDN).
        cert_id: the CAS CertId, or the SLB ServerCertificateId, else None.
    """

    cert_name: str
    chain_pem: str = field(repr=False)
    key_pem: str = field(repr=False)
    leaf: x509.Certificate = field(repr=False)
    cert_type: str = "upload"
    cert_id: int | str | None = None
    installed_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))


def domain_name(text: str) -> str:
    """``text`` as the lab stores domain names: lower case, no trailing dot,
    non-ASCII labels as IDNA A-labels (UTS #46); ``*`` and ``_x`` labels kept.

    Raises:
        ValueError: empty, or a label IDNA refuses.
    """
    name = text.strip().rstrip(".").lower()
    if not name:
        raise ValueError("empty domain name")
    labels = []
    for label in name.split("."):
        if not label:
            raise ValueError(f"empty label in {text!r}")
        labels.append(label if label.isascii() else idna.encode(label, uts46=True).decode("ascii"))
    return ".".join(labels)


def domain_param(params: dict[str, str], name: str = "DomainName") -> str:
    """The domain parameter ``name``; ``Missing<name>`` / ``Invalid<name>`` (400)."""
    try:
        return domain_name(require(params, name))
    except (ValueError, idna.IDNAError):
        raise ApiFault(f"Invalid{name}", f"The specified {name} is invalid.") from None


def names_of(leaf: x509.Certificate) -> list[str]:
    """The DNS names in the leaf's subjectAltName (the CN only without a SAN)."""
    try:
        extension = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return [str(attribute.value).lower() for attribute in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return [name.lower() for name in extension.value.get_values_for_type(x509.DNSName)]


def covers(name: str, domain: str) -> bool:
    """Does certificate name ``name`` cover ``domain``?  Equal, or
    ``*.rest`` and ``domain`` is one label more than ``rest`` (RFC 6125 §6.4.3)."""
    if name == domain:
        return True
    if not name.startswith("*."):
        return False
    first, dot, rest = domain.partition(".")
    return bool(dot) and first not in ("", "*") and rest == name[2:]


def _same_public_key(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, leaf: x509.Certificate) -> bool:
    public = leaf.public_key()
    if isinstance(key, rsa.RSAPrivateKey) and isinstance(public, rsa.RSAPublicKey):
        return key.public_key().public_numbers() == public.public_numbers()
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(public, ec.EllipticCurvePublicKey):
        return key.public_key().public_numbers() == public.public_numbers()
    return False


def check_upload(chain_pem: str, key_pem: str, domain: str | None, codes: Codes,
                 now: dt.datetime | None = None) -> x509.Certificate:
    """The leaf of an acceptable upload, else ApiFault (HTTP 400) with the
    product's code: the chain parses (leaf first), the key is a PEM RSA/EC
    key whose public half is the leaf's, each certificate is signed by the
    next, the leaf is valid ``now``, and covers ``domain`` (if not None)."""
    try:
        chain = x509.load_pem_x509_certificates(chain_pem.encode("ascii", "replace"))
    except ValueError:
        raise ApiFault(codes.certificate, f"{codes.certificate_message}: not a PEM certificate chain.") from None
    leaf = chain[0]
    try:
        key = serialization.load_pem_private_key(key_pem.encode("ascii", "replace"), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ApiFault(codes.key, f"{codes.key_message}: not a PEM RSA or EC private key.")
    if not _same_public_key(key, leaf):
        raise ApiFault(codes.mismatch, f"{codes.mismatch_message} (certificate serial {leaf.serial_number:x}).")
    for position in range(len(chain) - 1):
        try:
            chain[position].verify_directly_issued_by(chain[position + 1])
        except (ValueError, TypeError, InvalidSignature):
            raise ApiFault(codes.certificate, f"{codes.certificate_message}: certificate {position} of the chain "
                           f"is not issued by certificate {position + 1} (leaf first, then its issuers).") from None
    now = now or dt.datetime.now(dt.timezone.utc)
    if not leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc:
        raise ApiFault(codes.certificate, f"{codes.certificate_message}: the certificate is valid from "
                       f"{leaf.not_valid_before_utc:%Y-%m-%d %H:%M} to {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, "
                       "not now (expired or not yet valid).")
    if domain is not None:
        names = names_of(leaf)
        if not any(covers(name, domain) for name in names):
            raise ApiFault(codes.certificate, f"{codes.certificate_message}: the certificate covers "
                           f"{', '.join(names)}, not the domain {domain}.")
    return leaf


def format_time(moment: dt.datetime) -> str:
    """``2026-05-13T08:00:00Z`` (Alibaba's UTC timestamps)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def certificate_info(installed: Installed) -> dict[str, str]:
    """The certificate fields CDN answers about a binding (never the key)."""
    leaf = installed.leaf
    return {
        "CertName": installed.cert_name, "CertType": installed.cert_type,
        "CertId": str(installed.cert_id or ""),
        "CertDomainName": ",".join(names_of(leaf)),
        "CertStartTime": format_time(leaf.not_valid_before_utc),
        "CertExpireTime": format_time(leaf.not_valid_after_utc),
        "CertLife": f"{(leaf.not_valid_after_utc - leaf.not_valid_before_utc).days} days",
        "CertOrg": leaf.issuer.rfc4514_string(), "CertUpdateTime": format_time(installed.installed_at),
        "ServerCertificate": installed.chain_pem,
    }
