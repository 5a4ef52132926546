"""PKCS#12 (``.pfx``) bundles for Windows IIS: key + leaf + chain, one file.

The last step of the article series imports the certificate into IIS, which
wants a password-protected PKCS#12 file (RFC 7292).  Which encryption the
file may use depends on the Windows version, so we offer two named profiles:

``modern``
    Key and certificates encrypted with PBES2 (PBKDF2 with HMAC-SHA256,
    AES-256-CBC); MAC HMAC-SHA256.  Windows Server 2019 and Windows 10 1709
    and later; OpenSSL 3's own default.
``legacy``
    Key and certificates encrypted with ``pbeWithSHA1And3-KeyTripleDES-CBC``
    (PKCS#12 PBE); MAC HMAC-SHA1.  For Windows Server 2016 and older, which
    cannot read AES-encrypted files and then complain -- misleadingly -- that
    "the password you entered is incorrect".

Theory of operation: :func:`export_pkcs12` builds the bytes with
``cryptography``'s ``serialize_key_and_certificates`` and an
``encryption_builder`` set up per profile, then reads them back with
:func:`load_pkcs12` and checks the key matches the leaf, so a bundle we hand
out has been opened once already.  :func:`write_pkcs12` writes it atomically
with mode 0600 (the file holds the private key) and never overwrites unless
asked to.

An empty or missing password is refused (:class:`~acmelab.errors.InputError`)
unless the caller asks for an unencrypted bundle with ``unencrypted=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12 as _pkcs12

from acmelab.certificates import CertificateInput, certificate_names, key_matches, load_certificates, serial_hex
from acmelab.errors import InputError, KeyExistsError
from acmelab.files import write_atomically

#: The profiles :func:`export_pkcs12` knows, by name.
PROFILES = ("modern", "legacy")

#: Default PBKDF2 / PKCS#12-KDF iteration count (cryptography's default).
DEFAULT_ITERATIONS = 50_000



@dataclass(frozen=True)
class Pkcs12Bundle:
    """What a PKCS#12 file holds, read back.

    Attributes:
        private_key: the private key object (hidden from ``repr``), or None.
        certificate: the leaf certificate (``cryptography`` x509), or None.
        chain: the other certificates (intermediates, maybe a root), in
            file order, as a tuple.
        friendly_name: the leaf's ``friendlyName`` attribute (str) or None;
            IIS shows it in the certificate list.
    """

    private_key: object = field(repr=False)
    certificate: x509.Certificate | None
    chain: tuple[x509.Certificate, ...]
    friendly_name: str | None

    @property
    def serial_hex(self) -> str | None:
        """The leaf's serial number as lower-case hex, or None."""
        return serial_hex(self.certificate.serial_number) if self.certificate else None


def _password_bytes(password: str | bytes | None, unencrypted: bool) -> bytes | None:
    if unencrypted:
        if password:
            raise InputError("a password was given together with unencrypted=True; choose one")
        return None
    if password is None or password in ("", b""):
        raise InputError(
            "a PKCS#12 bundle holds the private key: give a non-empty password "
            "(or pass unencrypted=True to write it without one, knowingly)")
    return password.encode("utf-8") if isinstance(password, str) else bytes(password)


def _check_key_matches(private_key, certificate: x509.Certificate) -> None:
    if not key_matches(private_key, certificate):
        raise InputError(
            "the private key does not match the certificate's public key "
            f"(certificate subject {certificate.subject.rfc4514_string()}, "
            f"serial {serial_hex(certificate.serial_number)})")


def _default_friendly_name(certificate: x509.Certificate) -> str:
    names = certificate_names(certificate)
    if names:
        return f"{names[0]} {certificate.not_valid_after_utc:%Y-%m-%d}"
    return serial_hex(certificate.serial_number)


def _encryption(profile: str, password: bytes | None, iterations: int):
    if password is None:
        return serialization.NoEncryption()
    builder = serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(iterations)
    if profile == "modern":
        builder = (builder.key_cert_algorithm(_pkcs12.PBES.PBESv2SHA256AndAES256CBC)
                   .hmac_hash(hashes.SHA256()))
    elif profile == "legacy":
        builder = (builder.key_cert_algorithm(_pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
                   .hmac_hash(hashes.SHA1()))
    else:
        raise InputError(f"unknown PKCS#12 profile {profile!r}; choose one of {', '.join(PROFILES)}")
    return builder.build(password)


def export_pkcs12(private_key, certificate: CertificateInput,
                  chain: CertificateInput | Iterable[CertificateInput] | None = None, *,
                  password: str | bytes | None, friendly_name: str | None = None,
                  profile: str = "modern", unencrypted: bool = False,
                  iterations: int = DEFAULT_ITERATIONS) -> bytes:
    """Build a PKCS#12 bundle (RFC 7292) of key + leaf + chain.

    Args:
        private_key: a ``cryptography`` RSA or EC private key, or its PEM
            (unencrypted) as str/bytes.
        certificate: the leaf as an x509 object, or PEM.  A full-chain PEM
            (leaf first, as ``IssuedCertificate.chain_pem``) is accepted: the
            first certificate is the leaf and the rest join ``chain``.
        chain: intermediates (x509 objects, PEM text, or a list of either).
        password: the import password (str or bytes), required and non-empty
            unless ``unencrypted=True``.
        friendly_name: the name IIS shows; default "<first DNS name>
            <not-after date>".
        profile: ``"modern"`` (PBES2/PBKDF2-HMAC-SHA256/AES-256-CBC, MAC
            HMAC-SHA256) or ``"legacy"`` (PBE-SHA1-3DES, MAC HMAC-SHA1).
        unencrypted: write no encryption and no password at all.
        iterations: KDF iteration count (int, default 50 000).

    Returns:
        The DER bytes of the PKCS#12 file.

    Raises:
        InputError: missing/empty password, unknown profile, no certificate,
            unreadable PEM, or a key that does not match the leaf.
    """
    if profile not in PROFILES:
        raise InputError(f"unknown PKCS#12 profile {profile!r}; choose one of {', '.join(PROFILES)}")
    password_bytes = _password_bytes(password, unencrypted)
    if isinstance(private_key, (str, bytes)):
        data = private_key.encode("ascii", "replace") if isinstance(private_key, str) else private_key
        try:
            private_key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise InputError("the private key is not an unencrypted PEM private key") from None
    leaf_and_rest = load_certificates(certificate)
    if not leaf_and_rest:
        raise InputError("no certificate given")
    leaf, extra = leaf_and_rest[0], leaf_and_rest[1:]
    others = extra + load_certificates(chain)
    _check_key_matches(private_key, leaf)
    name = friendly_name if friendly_name is not None else _default_friendly_name(leaf)
    data = _pkcs12.serialize_key_and_certificates(
        name.encode("utf-8") if name else None, private_key, leaf, others or None,
        _encryption(profile, password_bytes, iterations))
    # Read it back once before anybody else has to: same key, leaf, chain and name.
    bundle = load_pkcs12(data, password=password_bytes, unencrypted=unencrypted)
    if bundle.certificate != leaf or list(bundle.chain) != others or bundle.friendly_name != (name or None):
        raise InputError("the PKCS#12 bundle did not read back as written (leaf, chain or friendly name differ)")
    return data


def load_pkcs12(data_or_path: bytes | str | Path, *, password: str | bytes | None,
                unencrypted: bool = False, check: bool = True) -> Pkcs12Bundle:
    """Open a PKCS#12 bundle and (by default) check it.

    Args:
        data_or_path: the file's bytes, or a path (str or Path) to it.
        password: the password (str/bytes); None/empty only with
            ``unencrypted=True``.
        check: require a private key and a leaf, and that they match.

    Returns:
        :class:`Pkcs12Bundle`.

    Raises:
        InputError: wrong password, not a PKCS#12 file, missing key or leaf,
            or a key that does not match the leaf.
    """
    if isinstance(data_or_path, (str, Path)):
        try:
            data = Path(data_or_path).read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {data_or_path}: {exc.strerror}") from None
    else:
        data = bytes(data_or_path)
    password_bytes = _password_bytes(password, unencrypted)
    try:
        loaded = _pkcs12.load_pkcs12(data, password_bytes)
    except ValueError:
        raise InputError("could not open the PKCS#12 bundle: wrong password or not a PKCS#12 file") from None
    leaf = loaded.cert.certificate if loaded.cert else None
    name = loaded.cert.friendly_name.decode("utf-8", "replace") if loaded.cert and loaded.cert.friendly_name else None
    bundle = Pkcs12Bundle(private_key=loaded.key, certificate=leaf,
                          chain=tuple(c.certificate for c in loaded.additional_certs),
                          friendly_name=name)
    if check:
        if loaded.key is None:
            raise InputError("the PKCS#12 bundle holds no private key")
        if leaf is None:
            raise InputError("the PKCS#12 bundle holds no certificate")
        _check_key_matches(loaded.key, leaf)
    return bundle


def write_pkcs12(path: str | Path, private_key, certificate: CertificateInput,
                 chain: CertificateInput | Iterable[CertificateInput] | None = None, *,
                 password: str | bytes | None, friendly_name: str | None = None,
                 profile: str = "modern", unencrypted: bool = False,
                 iterations: int = DEFAULT_ITERATIONS, overwrite: bool = False) -> Path:
    """Export with :func:`export_pkcs12` and write the file atomically, mode 0600.

    Args:
        path: where to write (``.pfx``); its directory must exist.
        overwrite: replace an existing file (default: refuse).
        (the rest as :func:`export_pkcs12`)

    Returns:
        The path written (Path).

    Raises:
        KeyExistsError: the file exists and ``overwrite`` is False.
        InputError: as :func:`export_pkcs12`.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise KeyExistsError(f"{path} exists; pass overwrite=True to replace it")
    data = export_pkcs12(private_key, certificate, chain, password=password,
                         friendly_name=friendly_name, profile=profile,
                         unencrypted=unencrypted, iterations=iterations)
    return write_atomically(path, data, mode=0o600, overwrite=overwrite, exists_error=KeyExistsError)
