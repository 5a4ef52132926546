"""acmelab.deploy.checks: what is refused before anything is sent."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.unit._deploy_pki import NOW, Pki, key_pem, pem
from acmelab.deploy.checks import check_certificate, name_matches
from acmelab.errors import InputError
from acmelab.certificates import serial_hex


@pytest.fixture(scope="module")
def pki():
    return Pki.new("Checks")


@pytest.fixture(scope="module")
def leaf(pki):
    return pki.leaf("shop.example.com", "*.shop.example.com", rsa_key=True)


def test_good_certificate_passes_and_key_is_hidden(pki, leaf):
    key, cert = leaf
    checked = check_certificate(pem(cert, pki.intermediate), key_pem(key), "IMG.Shop.Example.com.")
    assert checked.domain == "img.shop.example.com"
    assert checked.serial_hex == serial_hex(cert.serial_number)
    assert checked.names == ("shop.example.com", "*.shop.example.com")
    assert checked.chain_pem == pem(cert, pki.intermediate)
    assert checked.private_key_pem.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert "PRIVATE" not in repr(checked)


@pytest.mark.parametrize("pattern,domain,expected", [
    ("shop.example.com", "shop.example.com", True),
    ("*.example.com", "www.example.com", True),
    ("*.example.com", "example.com", False),
    ("*.example.com", "a.b.example.com", False),
    ("www.example.com", "example.com", False),
    ("*.example.com", "*.example.com", True),
    ("www.example.com", "*.example.com", False),
])
def test_name_matches(pattern, domain, expected):
    assert name_matches(pattern, domain) is expected


def test_mismatched_key_refused(pki, leaf):
    _, cert = leaf
    other_key, _ = pki.leaf("shop.example.com")
    with pytest.raises(InputError, match=f"does not match the certificate CN=shop.example.com "
                                         f"\\(serial {serial_hex(cert.serial_number)}") as caught:
        check_certificate(pem(cert, pki.intermediate), other_key, "shop.example.com")
    assert "BEGIN" not in str(caught.value)


def test_other_domain_refused(pki, leaf):
    key, cert = leaf
    with pytest.raises(InputError, match=r"covers shop.example.com, \*.shop.example.com, not a.b.shop.example.com"):
        check_certificate(pem(cert, pki.intermediate), key, "a.b.shop.example.com")
    with pytest.raises(InputError, match="not shop.example.org"):
        check_certificate(pem(cert, pki.intermediate), key, "shop.example.org")


def test_chain_out_of_order_refused(pki, leaf):
    key, cert = leaf
    with pytest.raises(InputError, match="chain out of order at position 0"):
        check_certificate(pem(cert, pki.root, pki.intermediate), key, "shop.example.com")
    stranger = Pki.new("Stranger")
    with pytest.raises(InputError, match="is not issued by the next certificate, CN=Stranger Intermediate"):
        check_certificate(pem(cert, stranger.intermediate), key, "shop.example.com")


def test_leaf_without_chain_refused_unless_allowed(pki, leaf):
    key, cert = leaf
    with pytest.raises(InputError, match="only the leaf"):
        check_certificate(pem(cert), key, "shop.example.com")
    assert check_certificate(pem(cert), key, "shop.example.com", require_intermediate=False).chain == (cert,)


def test_expired_and_not_yet_valid_refused(pki):
    key, cert = pki.leaf("old.example.com", not_before=NOW - dt.timedelta(days=90),
                         not_after=NOW - dt.timedelta(days=1))
    with pytest.raises(InputError, match="expired on"):
        check_certificate(pem(cert, pki.intermediate), key, "old.example.com")
    key, cert = pki.leaf("new.example.com", not_before=NOW + dt.timedelta(days=1))
    with pytest.raises(InputError, match="not valid before"):
        check_certificate(pem(cert, pki.intermediate), key, "new.example.com")


@pytest.mark.parametrize("chain,key,message", [
    ("", "", "no PEM certificate"),
    ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "", "corrupt PEM"),
])
def test_garbage_refused(chain, key, message):
    with pytest.raises(InputError, match=message):
        check_certificate(chain, key, "shop.example.com")


def test_garbage_key_refused(pki, leaf):
    _, cert = leaf
    with pytest.raises(InputError, match="not an unencrypted PEM private key"):
        check_certificate(pem(cert, pki.intermediate), "-----BEGIN PRIVATE KEY-----\nnope\n", "shop.example.com")


@pytest.mark.parametrize("domain", ["faß.de", "Bücher.Example.", "ＷＷＷ.example.com", "*.bücher.example"])
def test_normalize_domain_encodes_like_the_csr(domain):
    """A service domain is IDNA-encoded as its certificate names are
    (IDNA 2008, acmelab.csr.normalize_name): faß.de is xn--fa-hia.de, not
    fass.de (IDNA 2003)."""
    from acmelab.csr import normalize_name
    from acmelab.deploy.checks import normalize_domain
    assert normalize_domain(domain) == normalize_name(domain)
    assert normalize_domain("faß.de") == "xn--fa-hia.de"
    assert normalize_domain("WWW.Example.com.") == "www.example.com"


def test_idn_service_domain_is_covered_by_its_certificate():
    """A certificate ordered for faß.de (names as the CSR makes them) passes
    the pre-send check for the service domain faß.de."""
    from acmelab.csr import normalize_name
    pki = Pki.new()
    key, cert = pki.leaf(normalize_name("faß.de"))
    checked = check_certificate(pem(cert, pki.intermediate), key_pem(key), "faß.de")
    assert checked is not None
