"""The lab's throw-away certificate authority.

Pebble's HTTPS listeners and the local Alibaba Cloud endpoint need a TLS
certificate for ``localhost`` / ``127.0.0.1``.  Instead of shipping one (and
its private key) in the repository, every lab start makes a fresh CA with
``cryptography`` and signs the listener certificates with it.  Clients then
trust exactly that CA (``requests.get(..., verify=info.ca_bundle)``) --
verification stays on, and nothing here is trusted anywhere else.

This CA only secures the lab's *listeners*.  The certificates Pebble issues
over ACME chain to Pebble's own, separate roots (see
:meth:`acmelab.lab.LabInfo.roots`).

Files are written atomically (temp file in the same directory, then
``os.replace``); private keys get mode 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from acmelab.files import write_atomically

#: names every lab listener certificate covers (DNS names and IP addresses)
LISTENER_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class ListenerFiles:
    """Where one listener's certificate and key were written.

    Attributes:
        certificate: PEM file with the leaf certificate followed by the lab CA.
        private_key: PEM file (PKCS#8, unencrypted, mode 0600).
    """

    certificate: Path
    private_key: Path


class LabCertificateAuthority:
    """A throw-away CA (EC P-256, valid one year) living in memory.

    Example::

        ca = LabCertificateAuthority.generate()
        ca.write_bundle(run_dir / "ca.pem")
        files = ca.issue_listener(run_dir / "tls" / "pebble")

    The CA's private key is never written to disk: listener certificates are
    all issued at start, so nothing needs it afterwards.
    """

    def __init__(self, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> None:
        self._key = key
        self.certificate = certificate

    def __repr__(self) -> str:
        return f"LabCertificateAuthority(subject={self.certificate.subject.rfc4514_string()!r})"

    @classmethod
    def generate(cls, common_name: str = "acmelab throw-away lab CA") -> "LabCertificateAuthority":
        """Make a fresh self-signed CA (basicConstraints CA:TRUE, pathlen 0)."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "acmelab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    def certificate_pem(self) -> bytes:
        """The CA certificate, PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def write_bundle(self, path: Path) -> Path:
        """Write the CA certificate (PEM) to ``path`` -- the file to pass as
        ``requests``' ``verify=``."""
        return write_atomically(Path(path), self.certificate_pem(), mode=0o644, parents=True)

    def issue_listener(self, directory: Path, names: tuple[str, ...] = LISTENER_NAMES) -> ListenerFiles:
        """Issue a server certificate for ``names`` (DNS names or IP
        addresses; the first one is the CN) and write ``cert.pem`` (leaf +
        CA) and ``key.pem`` (0600) into ``directory``.

        Returns:
            :class:`ListenerFiles`.
        """
        directory = Path(directory)
        key = ec.generate_private_key(ec.SECP256R1())
        alternative_names: list[x509.GeneralName] = []
        for name in names:
            try:
                alternative_names.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alternative_names.append(x509.DNSName(name))
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        chain_pem = certificate.public_bytes(serialization.Encoding.PEM) + self.certificate_pem()
        private_key = write_atomically(directory / "key.pem", key_pem, mode=0o600, parents=True)
        certificate_path = write_atomically(directory / "cert.pem", chain_pem, mode=0o644, parents=True)
        return ListenerFiles(certificate=certificate_path, private_key=private_key)
