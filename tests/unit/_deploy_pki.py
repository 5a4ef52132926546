"""A throw-away PKI for the deploy and PKCS#12 unit tests: root -> intermediate -> leaf.

Real certificates made with ``cryptography`` (no mocks); each call makes new keys.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

NOW = dt.datetime.now(dt.timezone.utc)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject_cn, subject_key, issuer_cn, issuer_key, *, ca, names=(), not_before=None, not_after=None,
          serial=None):
    builder = (x509.CertificateBuilder()
               .subject_name(_name(subject_cn)).issuer_name(_name(issuer_cn))
               .public_key(subject_key.public_key())
               .serial_number(serial if serial is not None else x509.random_serial_number())
               .not_valid_before(not_before or NOW - dt.timedelta(days=1))
               .not_valid_after(not_after or NOW + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def pem(*certs: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def key_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@dataclass
class Pki:
    root_key: object = field(repr=False)
    root: x509.Certificate
    intermediate_key: object = field(repr=False)
    intermediate: x509.Certificate

    @classmethod
    def new(cls, label: str = "Test") -> "Pki":
        root_key = ec.generate_private_key(ec.SECP256R1())
        root = _cert(f"{label} Root", root_key, f"{label} Root", root_key, ca=True)
        intermediate_key = ec.generate_private_key(ec.SECP256R1())
        intermediate = _cert(f"{label} Intermediate", intermediate_key, f"{label} Root", root_key, ca=True)
        return cls(root_key, root, intermediate_key, intermediate)

    def leaf(self, *names: str, key=None, rsa_key: bool = False, not_before=None, not_after=None, serial=None):
        """(key, leaf certificate) for ``names`` (``serial``: random unless given)."""
        if key is None:
            key = rsa.generate_private_key(65537, 2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
        issuer_cn = self.intermediate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        cert = _cert(names[0], key, issuer_cn, self.intermediate_key,
                     ca=False, names=names, not_before=not_before, not_after=not_after, serial=serial)
        return key, cert

    @property
    def root_pem(self) -> str:
        return pem(self.root)
