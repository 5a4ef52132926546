"""acmelab.csr: name normalisation, CSR building (checked by OpenSSL too), inspection."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from acmelab import csr, keys
from acmelab.errors import InputError

OPENSSL = shutil.which("openssl")


@pytest.fixture(scope="module")
def ec_key() -> keys.PrivateKey:
    return keys.generate_key("ec256")


@pytest.fixture(scope="module")
def rsa_key() -> keys.PrivateKey:
    return keys.generate_key("rsa2048")


@pytest.mark.parametrize("given,expected", [
    ("example.com", "example.com"),
    ("WWW.Example.COM", "www.example.com"),
    ("example.com.", "example.com"),
    ("*.example.com", "*.example.com"),
    ("*.Example.com.", "*.example.com"),
    ("bücher.example", "xn--bcher-kva.example"),
    ("Bücher.Example.", "xn--bcher-kva.example"),
    ("*.bücher.example", "*.xn--bcher-kva.example"),
    ("bücher。example", "xn--bcher-kva.example"),  # ideographic full stop (UTS #46)
    ("faß.de", "xn--fa-hia.de"),  # IDNA 2008, not the transitional "fass.de"
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
    ("a-b.c-d.example", "a-b.c-d.example"),
    ("1password.com", "1password.com"),
    ("a" * 63 + ".example", "a" * 63 + ".example"),
])
def test_normalize_name(given, expected) -> None:
    assert csr.normalize_name(given) == expected
    assert csr.normalize_name(expected) == expected  # idempotent


def test_longest_allowed_name() -> None:
    name = ".".join(["a" * 63] * 3 + ["b" * 61])  # 253 characters
    assert len(name) == 253
    assert csr.normalize_name(name) == name
    with pytest.raises(InputError, match="253"):
        csr.normalize_name(name + "b")


def test_normalize_names_dedupes_keeping_order() -> None:
    assert csr.normalize_names(["www.example.com", "Example.com", "WWW.example.com.", "example.com"]) == [
        "www.example.com", "example.com"]


def test_make_csr_names_cn_and_signature(ec_key) -> None:
    request = csr.make_csr(ec_key, ["Example.com", "*.example.com", "bücher.example", "example.com."])
    assert request.is_signature_valid
    assert isinstance(request.signature_hash_algorithm, hashes.SHA256)
    assert request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "example.com"
    san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["example.com", "*.example.com", "xn--bcher-kva.example"]
    assert keys.public_jwk(request.public_key()) == keys.public_jwk(ec_key)


def test_long_first_name_gives_no_common_name(rsa_key) -> None:
    long_name = "a" * 60 + ".example.com"  # 72 characters: too long for a CN
    request = csr.make_csr(rsa_key, [long_name, "example.com"])
    assert request.subject.get_attributes_for_oid(NameOID.COMMON_NAME) == []
    info = csr.inspect_csr(request)
    assert info.common_name is None
    assert info.names == [long_name, "example.com"]
    assert info.key_type == "rsa2048"
    # exactly 64 characters still fits
    name64 = "b" * 52 + ".example.com"
    assert len(name64) == 64
    assert csr.inspect_csr(csr.make_csr(rsa_key, [name64])).common_name == name64


def test_csr_der_and_pem_forms(tmp_path, ec_key) -> None:
    request = csr.make_csr(ec_key, ["www.example.org", "example.org"])
    der, pem = csr.csr_der(request), csr.csr_pem(request)
    assert der[0] == 0x30  # DER SEQUENCE
    assert pem.startswith(b"-----BEGIN CERTIFICATE REQUEST-----")
    (tmp_path / "req.pem").write_bytes(pem)
    expected = csr.CsrInfo(names=["www.example.org", "example.org"], common_name="www.example.org",
                           key_type="ec256", signature_valid=True)
    for form in (request, der, pem, pem.decode(), tmp_path / "req.pem"):
        assert csr.inspect_csr(form) == expected


def test_tampered_csr_signature_is_invalid(ec_key) -> None:
    der = bytearray(csr.csr_der(csr.make_csr(ec_key, ["example.net"])))
    der[-1] ^= 0x01  # last byte of the signature's s value
    info = csr.inspect_csr(bytes(der))
    assert info.names == ["example.net"]
    assert info.signature_valid is False


@pytest.mark.skipif(OPENSSL is None, reason="openssl command not installed")
def test_openssl_reads_and_verifies_our_csr(tmp_path, rsa_key) -> None:
    path = tmp_path / "req.pem"
    path.write_bytes(csr.csr_pem(csr.make_csr(rsa_key, ["example.com", "*.example.com"])))
    out = subprocess.run([OPENSSL, "req", "-in", str(path), "-noout", "-verify", "-text"],
                         capture_output=True, text=True, check=True)
    assert "verify OK" in out.stdout + out.stderr
    assert "DNS:example.com, DNS:*.example.com" in out.stdout
    assert "CN=example.com" in out.stdout.replace(" = ", "=")
    assert "sha256WithRSAEncryption" in out.stdout


@pytest.mark.skipif(OPENSSL is None, reason="openssl command not installed")
def test_inspect_csr_made_by_openssl(tmp_path) -> None:
    key_path = tmp_path / "k.pem"
    keys.save_private_key(keys.generate_key("ec384"), key_path)
    subprocess.run([OPENSSL, "req", "-new", "-key", str(key_path), "-subj", "/CN=example.org",
                    "-addext", "subjectAltName=DNS:example.org,DNS:www.example.org",
                    "-out", str(tmp_path / "req.pem")], check=True, capture_output=True)
    info = csr.inspect_csr(tmp_path / "req.pem")
    assert info == csr.CsrInfo(names=["example.org", "www.example.org"], common_name="example.org",
                               key_type="ec384", signature_valid=True)


def test_ascii_name_is_the_whole_name_form_of_a_label():
    from acmelab.csr import ascii_name
    assert ascii_name(" _ACME-challenge.Bücher。Example. ") == "_acme-challenge.xn--bcher-kva.example"
    assert ascii_name("faß.de") == "xn--fa-hia.de" == csr.normalize_name("faß.de")
    assert ascii_name("*.Example.com") == "*.example.com"
    for bad in ("", " . ", None):
        with pytest.raises(InputError, match="not a domain name"):
            ascii_name(bad)
