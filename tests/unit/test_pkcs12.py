"""acmelab.pkcs12: each profile read back by `openssl pkcs12` and by cryptography."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.unit._deploy_pki import Pki, key_pem, pem
from acmelab.errors import InputError, KeyExistsError
from acmelab.pkcs12 import export_pkcs12, load_pkcs12, write_pkcs12
from acmelab.certificates import serial_hex

PASSWORD = "correct horse battery"

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not installed")


@pytest.fixture(scope="module")
def pki():
    return Pki.new("P12")


@pytest.fixture(scope="module")
def leaf(pki):
    return pki.leaf("iis.example.com", "www.iis.example.com", rsa_key=True)


def openssl_pkcs12(path, *args):
    """Run `openssl pkcs12 -in path -passin ... args`; retry with -legacy if OpenSSL 3 needs it."""
    base = ["openssl", "pkcs12", "-in", str(path), "-passin", f"pass:{PASSWORD}", *args]
    done = subprocess.run(base, capture_output=True, text=True)
    if done.returncode != 0 and "unsupported" in done.stderr.lower():
        done = subprocess.run(base + ["-legacy"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def info_lines(text):
    """The algorithm lines of `openssl pkcs12 -info`."""
    found = {}
    for label in ("MAC", "PKCS7 Encrypted data", "Shrouded Keybag"):
        match = re.search(rf"^{re.escape(label)}: (.+)$", text, re.M)
        found[label] = match.group(1) if match else None
    return found


EXPECTED = {
    "modern": {
        "MAC": r"^sha256, Iteration \d+$",
        "PKCS7 Encrypted data": r"^PBES2, PBKDF2, AES-256-CBC, Iteration \d+, PRF hmacWithSHA256$",
        "Shrouded Keybag": r"^PBES2, PBKDF2, AES-256-CBC, Iteration \d+, PRF hmacWithSHA256$",
    },
    "legacy": {
        "MAC": r"^sha1, Iteration \d+$",
        "PKCS7 Encrypted data": r"^pbeWithSHA1And3-KeyTripleDES-CBC, Iteration \d+$",
        "Shrouded Keybag": r"^pbeWithSHA1And3-KeyTripleDES-CBC, Iteration \d+$",
    },
}


@needs_openssl
@pytest.mark.parametrize("profile", ["modern", "legacy"])
def test_profile_read_back_by_openssl(tmp_path, pki, leaf, profile):
    key, cert = leaf
    path = write_pkcs12(tmp_path / f"{profile}.pfx", key, cert, pki.intermediate,
                        password=PASSWORD, friendly_name=f"IIS {profile}", profile=profile)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    info = openssl_pkcs12(path, "-info", "-nokeys")
    algorithms = info_lines(info)
    for label, pattern in EXPECTED[profile].items():
        assert algorithms[label] is not None, f"{label} missing in openssl output:\n{info}"
        assert re.match(pattern, algorithms[label]), (label, algorithms[label])
    assert f"friendlyName: IIS {profile}" in info

    # Certificates as openssl sees them: leaf first, then the intermediate.
    certs = x509.load_pem_x509_certificates(openssl_pkcs12(path, "-nokeys").encode())
    assert {c.serial_number for c in certs} == {cert.serial_number, pki.intermediate.serial_number}

    # The key openssl decrypts is ours.
    out = openssl_pkcs12(path, "-nocerts", "-nodes")
    key_block = out[out.index("-----BEGIN PRIVATE KEY-----"):out.index("-----END PRIVATE KEY-----") + 25]
    opened = serialization.load_pem_private_key(key_block.encode(), password=None)
    assert opened.private_numbers() == key.private_numbers()


@pytest.mark.parametrize("profile", ["modern", "legacy"])
def test_profile_read_back_by_cryptography(pki, leaf, profile):
    key, cert = leaf
    data = export_pkcs12(key_pem(key), pem(cert, pki.intermediate), password=PASSWORD.encode(),
                         friendly_name="Shop – 2026", profile=profile)
    bundle = load_pkcs12(data, password=PASSWORD)
    assert bundle.certificate == cert
    assert bundle.chain == (pki.intermediate,)
    assert bundle.friendly_name == "Shop – 2026"
    assert bundle.private_key.private_numbers() == key.private_numbers()
    assert bundle.serial_hex == serial_hex(cert.serial_number)
    assert "PRIVATE" not in repr(bundle) and "private_numbers" not in repr(bundle)


def test_default_friendly_name_is_first_name_and_date(pki, leaf):
    key, cert = leaf
    bundle = load_pkcs12(export_pkcs12(key, cert, password=PASSWORD), password=PASSWORD)
    assert bundle.friendly_name == f"iis.example.com {cert.not_valid_after_utc:%Y-%m-%d}"
    assert bundle.chain == ()


@pytest.mark.parametrize("password", [None, "", b""])
def test_missing_or_empty_password_refused(pki, leaf, password):
    key, cert = leaf
    with pytest.raises(InputError, match="non-empty password"):
        export_pkcs12(key, cert, password=password)


def test_unencrypted_only_when_asked(tmp_path, pki, leaf):
    key, cert = leaf
    data = export_pkcs12(key, cert, pki.intermediate, password=None, unencrypted=True)
    bundle = load_pkcs12(data, password=None, unencrypted=True)
    assert bundle.certificate == cert
    with pytest.raises(InputError, match="unencrypted=True"):
        export_pkcs12(key, cert, password="x", unencrypted=True)


def test_wrong_password_is_input_error(pki, leaf):
    key, cert = leaf
    data = export_pkcs12(key, cert, password=PASSWORD, profile="legacy")
    with pytest.raises(InputError, match="wrong password") as caught:
        load_pkcs12(data, password="not it")
    assert "not it" not in str(caught.value)


def test_mismatched_key_refused(pki, leaf):
    _, cert = leaf
    other_key, _ = pki.leaf("other.example.com")
    with pytest.raises(InputError, match="does not match") as caught:
        export_pkcs12(other_key, cert, password=PASSWORD)
    assert "PRIVATE KEY" not in str(caught.value)


def test_unknown_profile_refused(pki, leaf):
    key, cert = leaf
    with pytest.raises(InputError, match="modern, legacy"):
        export_pkcs12(key, cert, password=PASSWORD, profile="windows95")


def test_never_overwrites_without_asking(tmp_path, pki, leaf):
    key, cert = leaf
    path = tmp_path / "site.pfx"
    path.write_bytes(b"precious")
    with pytest.raises(KeyExistsError):
        write_pkcs12(path, key, cert, password=PASSWORD)
    assert path.read_bytes() == b"precious"
    write_pkcs12(path, key, cert, password=PASSWORD, overwrite=True)
    assert load_pkcs12(path, password=PASSWORD).certificate == cert
    assert [p.name for p in tmp_path.iterdir()] == ["site.pfx"]  # no temp file left behind
