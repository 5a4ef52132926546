"""Bad input to keys, PEM, passphrases, names and CSRs: every case raises a
typed acmelab error (a subclass of InputError) and writes nothing.

Each case runs with the working directory set to a scratch directory that
also holds the files the case reads (and any file it tries to write); the
directory's listing, contents and modes must be identical afterwards.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from acmelab import csr, keys
from acmelab.errors import AcmelabError, InputError, KeyExistsError


def _pem(key, password: bytes | None = None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _certificate_pem(key) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.com")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def material() -> dict[str, bytes]:
    """PEM and DER inputs the cases read, built once."""
    ec_key = keys.generate_key("ec256")
    good_csr = csr.csr_pem(csr.make_csr(ec_key, ["example.com"]))
    return {
        "ec": _pem(ec_key),
        "ec_encrypted": _pem(ec_key, b"right passphrase"),
        "certificate": _certificate_pem(ec_key),
        "public": ec_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo),
        "ed25519": _pem(ed25519.Ed25519PrivateKey.generate()),
        "dsa": _pem(dsa.generate_private_key(2048)),
        "rsa1024": _pem(rsa.generate_private_key(65537, 1024)),
        "p521": _pem(ec.generate_private_key(ec.SECP521R1())),
        "csr": good_csr,
    }


@pytest.fixture
def scratch(tmp_path, material, monkeypatch) -> Path:
    for name, data in material.items():
        (tmp_path / f"{name}.pem").write_bytes(data)
    (tmp_path / "empty.pem").write_bytes(b"")
    (tmp_path / "existing.key").write_bytes(material["ec"])
    os.chmod(tmp_path / "existing.key", 0o600)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(directory)): (p.read_bytes() if p.is_file() else b"<dir>", p.stat().st_mode)
            for p in sorted(directory.rglob("*"))}


ec_key_for_cases = keys.generate_key("ec256")


def _make_csr(name):
    return lambda d: csr.make_csr(ec_key_for_cases, [name])


CASES: list[tuple[str, Callable[[Path], object], type[AcmelabError], str]] = [
    # --- names (through make_csr, as an order would) ---
    ("empty name", _make_csr(""), InputError, "empty"),
    ("space in name", _make_csr("exa mple.com"), InputError, "whitespace"),
    ("IPv4 address", _make_csr("192.0.2.1"), InputError, "IP address"),
    ("IPv6 address", _make_csr("2001:db8::1"), InputError, "IP address"),
    ("wildcard on TLD", _make_csr("*.com"), InputError, "top-level"),
    ("wildcard not leftmost", _make_csr("www.*.example.com"), InputError, "leftmost"),
    ("partial wildcard", _make_csr("*foo.example.com"), InputError, "leftmost"),
    ("underscore", _make_csr("_dmarc.example.com"), InputError, "underscore"),
    ("leading hyphen", _make_csr("-bad.example.com"), InputError, "hyphen"),
    ("empty label", _make_csr("a..example.com"), InputError, "empty label"),
    ("64-char label", _make_csr("a" * 64 + ".example.com"), InputError, "63"),
    ("254-char name", _make_csr(".".join(["a" * 63] * 3 + ["b" * 62])), InputError, "253"),
    ("numeric TLD", _make_csr("example.123"), InputError, "digits"),
    ("single label localhost", lambda d: csr.normalize_name("localhost"), InputError, "single label"),
    ("single label TLD", lambda d: csr.normalize_name("com."), InputError, "single label"),
    ("disallowed IDN code point", _make_csr("☃.example"), InputError, "internationalised"),
    ("invalid punycode", _make_csr("xn--zz.example"), InputError, "punycode"),
    ("reserved -- label", _make_csr("ab--cd.example"), InputError, "reserved"),
    ("bare string for names", lambda d: csr.make_csr(ec_key_for_cases, "example.com"), InputError, "list"),
    ("no names", lambda d: csr.make_csr(ec_key_for_cases, []), InputError, "at least one"),
    ("name not a str", lambda d: csr.normalize_name(b"example.com"), InputError, "str"),
    # --- keys and saving ---
    ("unknown key type", lambda d: keys.generate_key("ed25519"), InputError, "unsupported key type"),
    ("save over existing key", lambda d: keys.save_private_key(keys.generate_key(), d / "existing.key"),
     KeyExistsError, "already exists"),
    ("save with empty passphrase", lambda d: keys.save_private_key(keys.generate_key(), d / "new.key", passphrase=""),
     InputError, "empty"),
    ("save into missing directory", lambda d: keys.save_private_key(keys.generate_key(), d / "nowhere" / "k.key"),
     InputError, "does not exist"),
    ("save a public key", lambda d: keys.save_private_key(keys.generate_key().public_key(), d / "new.key"),
     InputError, "private key"),
    # --- PEM files and passphrases ---
    ("missing file", lambda d: keys.load_private_key(d / "absent.pem"), InputError, "does not exist"),
    ("empty file", lambda d: keys.load_private_key(d / "empty.pem"), InputError, "empty"),
    ("not PEM", lambda d: keys.load_private_key(b"hello, I am not a key\n"), InputError, "not PEM"),
    ("certificate instead of key", lambda d: keys.load_private_key(d / "certificate.pem"), InputError, "CERTIFICATE"),
    ("public key instead of private", lambda d: keys.load_private_key(d / "public.pem"), InputError, "PUBLIC KEY"),
    ("CSR instead of key", lambda d: keys.load_private_key(d / "csr.pem"), InputError, "CERTIFICATE REQUEST"),
    ("truncated PEM", lambda d: keys.load_private_key((d / "ec.pem").read_bytes()[:100]), InputError, "truncated"),
    ("damaged base64 in PEM", lambda d: keys.load_private_key(
        (d / "ec.pem").read_bytes().replace(b"M", b"*", 3)), InputError, "truncated or damaged"),
    ("encrypted key, no passphrase", lambda d: keys.load_private_key(d / "ec_encrypted.pem"),
     InputError, "passphrase is required"),
    ("wrong passphrase", lambda d: keys.load_private_key(d / "ec_encrypted.pem", "wrong passphrase"),
     InputError, "wrong passphrase"),
    ("passphrase for unencrypted key", lambda d: keys.load_private_key(d / "ec.pem", b"unneeded"),
     InputError, "unencrypted"),
    ("Ed25519 key", lambda d: keys.load_private_key(d / "ed25519.pem"), InputError, "unsupported"),
    ("DSA key", lambda d: keys.load_private_key(d / "dsa.pem"), InputError, "unsupported"),
    ("RSA 1024 key", lambda d: keys.load_private_key(d / "rsa1024.pem"), InputError, "too short"),
    ("P-521 key", lambda d: keys.load_private_key(d / "p521.pem"), InputError, "secp521r1"),
    ("directory instead of file", lambda d: keys.load_private_key(d), InputError, "directory"),
    # --- CSRs ---
    ("garbage as CSR", lambda d: csr.inspect_csr(b"\x30\x03garbage"), InputError, "not a valid CSR"),
    ("empty CSR", lambda d: csr.inspect_csr(""), InputError, "empty"),
    ("certificate as CSR", lambda d: csr.inspect_csr((d / "certificate.pem").read_bytes()),
     InputError, "CERTIFICATE REQUEST"),
    ("truncated CSR PEM", lambda d: csr.inspect_csr((d / "csr.pem").read_bytes()[:-60]), InputError, "not a valid CSR"),
    ("CSR for an Ed25519 key", lambda d: csr.make_csr(ed25519.Ed25519PrivateKey.generate(), ["example.com"]),
     InputError, "unsupported"),
    ("CSR with an RSA 1024 key", lambda d: csr.make_csr(rsa.generate_private_key(65537, 1024), ["example.com"]),
     InputError, "too short"),
]


def test_there_are_at_least_twenty_distinct_cases() -> None:
    assert len(CASES) >= 20
    assert len({label for label, *_ in CASES}) == len(CASES)


@pytest.mark.parametrize("label,action,error,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_typed_error_and_writes_nothing(scratch, label, action, error, message) -> None:
    before = _snapshot(scratch)
    with pytest.raises(error) as info:
        action(scratch)
    assert isinstance(info.value, InputError)
    assert message.lower() in str(info.value).lower(), str(info.value)
    assert _snapshot(scratch) == before


def test_errors_never_show_key_material(scratch, material) -> None:
    secret_lines = [line for line in material["ec"].decode().splitlines() if not line.startswith("-----")]
    attempts = [
        lambda: keys.load_private_key(material["ec"], "unneeded"),
        lambda: keys.load_private_key(material["ec"][:120]),
        lambda: keys.save_private_key(keys.load_private_key(material["ec"]), scratch / "existing.key"),
    ]
    for attempt in attempts:
        with pytest.raises(InputError) as info:
            attempt()
        text = str(info.value) + repr(info.value)
        assert not any(line in text for line in secret_lines)
