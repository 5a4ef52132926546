"""Checks before a certificate leaves the machine.

Installing a certificate on CDN or API Gateway that cannot work -- a key from
another certificate, a chain in the wrong order, a certificate for another
domain, one that has expired -- breaks a live site.  Alibaba Cloud refuses
some of these itself, but only after the private key has crossed the
network.  So every deploy client calls :func:`check_certificate` first and
sends nothing when it raises.

Every failure is an :class:`~acmelab.errors.InputError` whose message names
what differs (subjects, serials, names, dates) and never contains the key.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from acmelab.certificates import certificate_names, key_matches, load_certificates, name_matches, serial_hex
from acmelab.csr import ascii_name
from acmelab.errors import InputError


@dataclass(frozen=True)
class CheckedCertificate:
    """A certificate, its chain and key that passed :func:`check_certificate`.

    Attributes:
        domain: the domain it was checked for (normalised, str), or None.
        chain: the certificates, leaf first (tuple of x509.Certificate).
        chain_pem: the same as PEM text, leaf first (what ``SSLPub`` /
            ``CertificateBody`` / ``Cert`` carry).
        private_key_pem: the key as unencrypted PEM (traditional OpenSSL
            format, ``BEGIN RSA PRIVATE KEY`` / ``BEGIN EC PRIVATE KEY``,
            which every Alibaba product accepts); hidden from ``repr``.
        names: the DNS names the leaf covers (tuple of str).
        serial_hex: the leaf's serial number, lower-case hex.
        not_after: the leaf's expiry (aware UTC datetime).
    """

    domain: str | None
    chain: tuple[x509.Certificate, ...] = field(repr=False)
    chain_pem: str = field(repr=False)
    private_key_pem: str = field(repr=False)
    names: tuple[str, ...]
    serial_hex: str
    not_after: dt.datetime

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]


#: a service domain as the products' APIs take it (lower-case A-labels, no trailing dot):
#: :func:`acmelab.csr.ascii_name`, the one whole-name IDNA conversion
normalize_domain = ascii_name


def parse_chain(chain_pem: str | bytes) -> list[x509.Certificate]:
    """The certificates of a PEM text, in order.

    Raises:
        InputError: no PEM certificate in the text, or a corrupt one.
    """
    return load_certificates(chain_pem)


def load_key(private_key) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """A private key object from an object or unencrypted PEM (str/bytes).

    Raises:
        InputError: not an unencrypted PEM RSA or EC private key.
    """
    if isinstance(private_key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        return private_key
    if isinstance(private_key, (str, bytes)):
        data = private_key.encode("ascii", "replace") if isinstance(private_key, str) else private_key
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise InputError("the private key is not an unencrypted PEM private key") from None
        if isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            return key
        raise InputError(f"unsupported private key type {type(key).__name__}; use RSA or EC")
    raise InputError(f"expected a private key object or PEM, got {type(private_key).__name__}")


def key_matches_certificate(private_key, certificate: x509.Certificate) -> bool:
    """True when the certificate's public key is the private key's public half."""
    return key_matches(load_key(private_key), certificate)


def describe(certificate: x509.Certificate) -> str:
    """One line naming a certificate: subject, serial, issuer."""
    return (f"{certificate.subject.rfc4514_string() or '(empty subject)'} "
            f"(serial {serial_hex(certificate.serial_number)}, issuer {certificate.issuer.rfc4514_string()})")


def check_chain_order(chain: list[x509.Certificate]) -> None:
    """Each certificate must be issued and signed by the next one (leaf first).

    Raises:
        InputError: naming the first pair out of order.
    """
    for position, (child, parent) in enumerate(zip(chain, chain[1:])):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            raise InputError(
                f"chain out of order at position {position}: {describe(child)} "
                f"is not issued by the next certificate, {describe(parent)}; "
                "give the leaf first, then each issuer") from None


def check_validity(certificate: x509.Certificate, now: dt.datetime | None = None) -> None:
    """Raises InputError when the certificate is expired or not yet valid."""
    now = now or dt.datetime.now(dt.timezone.utc)
    if certificate.not_valid_after_utc <= now:
        raise InputError(f"certificate {describe(certificate)} expired on "
                         f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC")
    if certificate.not_valid_before_utc > now:
        raise InputError(f"certificate {describe(certificate)} is not valid before "
                         f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC")


def check_certificate(chain_pem: str | bytes, private_key, domain: str | None, *,
                      now: dt.datetime | None = None,
                      require_intermediate: bool = True) -> CheckedCertificate:
    """Every pre-send check at once; nothing is sent when this raises.

    Checks, in order: the PEM parses; the leaf is valid now; the key matches
    the leaf's public key; the chain is leaf first, each certificate signed
    by the next; at least one intermediate is present (a leaf alone makes
    browsers without the intermediate cached fail); the leaf covers
    ``domain`` (a wildcard covers exactly one label).

    Args:
        chain_pem: full chain PEM, leaf first (``IssuedCertificate.chain_pem``).
        private_key: the certificate's private key (object or unencrypted PEM).
        domain: the domain the service will serve (str); None skips that
            check (a CAS upload is not tied to one domain).
        now: the time to check validity at (aware datetime, default now).
        require_intermediate: refuse a leaf without its issuer (default True).

    Returns:
        :class:`CheckedCertificate` with the PEM texts to send.

    Raises:
        InputError: naming what is wrong.
    """
    domain = ascii_name(domain) if domain is not None else None
    chain = parse_chain(chain_pem)
    leaf = chain[0]
    check_validity(leaf, now)
    key = load_key(private_key)
    if not key_matches_certificate(key, leaf):
        raise InputError(f"the private key does not match the certificate {describe(leaf)}: "
                         "its public key is a different one (key from another certificate?)")
    check_chain_order(chain)
    if require_intermediate and len(chain) == 1 and leaf.issuer != leaf.subject:
        raise InputError(f"only the leaf {describe(leaf)} was given; send the full chain "
                         "(leaf + intermediates, e.g. IssuedCertificate.chain_pem)")
    names = certificate_names(leaf)
    if domain is not None and not any(name_matches(name, domain) for name in names):
        raise InputError(f"certificate {describe(leaf)} covers {', '.join(names) or 'no names'}, "
                         f"not {domain}")
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode("ascii")
    chain_text = "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in chain)
    return CheckedCertificate(domain=domain, chain=tuple(chain), chain_pem=chain_text,
                              private_key_pem=key_pem, names=tuple(names),
                              serial_hex=serial_hex(leaf.serial_number),
                              not_after=leaf.not_valid_after_utc)
