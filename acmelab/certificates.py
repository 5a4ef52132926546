"""One home for what every part asks of a certificate: its serial, its names, its key, its chain.

* :func:`serial_hex` -- the one spelling of a serial number acmelab prints
  and stores everywhere (the CLI, the state directory,
  ``IssuedCertificate.serial_hex``, :func:`acmelab.deploy.verify`);
* :func:`certificate_names`, :func:`name_matches` -- the DNS names a
  certificate covers (RFC 6125 §6.4.3 wildcards);
* :func:`key_matches` -- the certificate's public key is the private key's
  public half (SubjectPublicKeyInfo compared);
* :func:`chain_leads_to` -- a chain is signed link by link up to given roots;
* :func:`load_certificates` -- certificates from an object, PEM text or a
  list of them (what the PKCS#12 writer, the TLS check and the deploy
  checks accept).

Part of the protocol core: ``cryptography`` only, no edge imports.  (The
lab's mock checks uploads with its own minimal code, not with this.)
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence, Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from acmelab.errors import InputError

__all__ = ["certificate_names", "chain_leads_to", "key_matches", "load_certificates", "name_matches", "same_serial",
           "serial_hex"]

#: one certificate as the edges accept it: an object or PEM text (one or several certificates)
CertificateInput = Union[x509.Certificate, str, bytes]


def serial_hex(serial: int | str) -> str:
    """A certificate serial number as acmelab prints and stores it
    everywhere: the full number in lower-case hex, padded with a leading
    zero to an even length (whole bytes, as ``openssl x509 -serial`` shows
    it), no ``0x``, no colons.  ``serial`` is an int or hex text in any of
    those spellings (``"A:BC"``, ``"0abc"``).  Raises InputError for text
    that is not hexadecimal."""
    if isinstance(serial, str):
        try:
            serial = int(serial.strip().replace(":", ""), 16)
        except ValueError:
            raise InputError(f"not a hexadecimal serial number: {serial!r}") from None
    text = format(serial, "x")
    return text.zfill(len(text) + len(text) % 2)


def same_serial(recorded: Any, live: str) -> bool:
    """True if ``recorded`` (hex text in any spelling, e.g. unpadded as
    older acmelab wrote it) is the serial ``live``; False for anything else."""
    try:
        return isinstance(recorded, str) and serial_hex(recorded) == serial_hex(live)
    except InputError:
        return False


def certificate_names(certificate: x509.Certificate) -> list[str]:
    """The DNS names a certificate covers, lower-case: its subjectAltName DNS
    entries, or (only when it has no SAN extension) its common name."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        return [name.lower() for name in san.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        return [str(a.value).lower() for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def load_certificates(value: CertificateInput | Iterable[CertificateInput] | None, *,
                      what: str = "") -> list[x509.Certificate]:
    """The certificates of ``value``, in order: an ``x509.Certificate``, PEM
    text (str or bytes, one certificate or several: a chain), a list of
    those, or None (no certificate: ``[]``).

    Args:
        what: names the argument in the error (``"root_pem"``).

    Raises:
        InputError: PEM text without ``-----BEGIN CERTIFICATE-----``, or a
            corrupt certificate in it.
    """
    prefix = f"{what}: " if what else ""
    if value is None:
        return []
    if isinstance(value, x509.Certificate):
        return [value]
    if isinstance(value, (str, bytes)):
        data = value.encode("ascii", "replace") if isinstance(value, str) else bytes(value)
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise InputError(f"{prefix}no PEM certificate found (expected -----BEGIN CERTIFICATE-----)")
        try:
            return list(x509.load_pem_x509_certificates(data))
        except ValueError as exc:
            raise InputError(f"{prefix}corrupt PEM certificate: {exc}") from None
    return [certificate for item in value for certificate in load_certificates(item, what=what)]


def name_matches(pattern: str, domain: str) -> bool:
    """RFC 6125 §6.4.3 matching: exact, or ``*.example.com`` for exactly one
    extra leftmost label (``www.example.com``, not ``example.com`` nor
    ``a.b.example.com``).  A wildcard *domain* (a CDN wildcard accelerated
    domain) is covered only by the same wildcard name."""
    pattern, domain = pattern.lower().rstrip("."), domain.lower().rstrip(".")
    if pattern == domain:          # also a wildcard domain (CDN "*.img.example.com") by its own name
        return True
    if pattern.startswith("*."):
        head, _, rest = domain.partition(".")
        return bool(head) and head != "*" and rest == pattern[2:]
    return False


def _spki(public_key: Any) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches(private_key: Any, certificate: x509.Certificate) -> bool:
    """True when ``certificate``'s public key is ``private_key``'s public half
    (a ``cryptography`` private key object; SubjectPublicKeyInfo compared)."""
    return _spki(private_key.public_key()) == _spki(certificate.public_key())


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
        return True
    except (InvalidSignature, ValueError, TypeError):   # wrong issuer name, key or signature
        return False


def _load_all(pem: str | bytes) -> list[x509.Certificate]:
    return list(x509.load_pem_x509_certificates(pem.encode("ascii") if isinstance(pem, str) else pem))


def chain_leads_to(chain_pem: str | bytes, roots_pem: Sequence[str | bytes]) -> bool:
    """True if the chain (leaf first) is signed link by link and its last
    certificate is one of ``roots_pem`` or directly issued by one of them
    (signature checked, RFC 5280 §6.1 in its simplest form; no dates, no
    name constraints -- this only asks "is it from this CA?").  Unparsable
    roots are ignored; an unparsable chain is False."""
    try:
        chain = _load_all(chain_pem)
    except ValueError:
        return False
    roots: list[x509.Certificate] = []
    for pem in roots_pem:
        try:
            roots.extend(_load_all(pem))
        except ValueError:
            continue
    if not chain or any(not _issued_by(child, parent) for child, parent in zip(chain, chain[1:])):
        return False
    last = chain[-1]
    return any(last == root or _issued_by(last, root) for root in roots)
