"""One spelling of a serial number everywhere (README: lower-case hex, whole bytes,
no 0x, no colons): acmelab.certificates.serial_hex is its one home, and the state
directory, the deploy checks, the PKCS#12 export, the issuer, the CLI and the notebooks' display use it."""

from __future__ import annotations

import importlib

from acmelab import certificates, issue, pkcs12, state
from acmelab.deploy import checks
from tests.unit._deploy_pki import Pki, pem


def test_serial_hex_pads_to_whole_bytes():
    assert certificates.serial_hex(0xABC) == "0abc"
    assert certificates.serial_hex("A:BC") == certificates.serial_hex("0x0abc".removeprefix("0x")) == "0abc"
    assert certificates.serial_hex(0xABCD) == "abcd"
    assert certificates.same_serial("abc", "0abc") and not certificates.same_serial("abd", "0abc")


def test_every_module_uses_the_one_home():
    assert state.serial_hex is certificates.serial_hex
    for module in (checks, importlib.import_module("acmelab.deploy.verify"), pkcs12, issue):
        assert module.serial_hex is certificates.serial_hex, module.__name__


def test_checked_certificate_and_bundle_spell_an_odd_length_serial_padded(tmp_path):
    pki = Pki.new()
    key, leaf = pki.leaf("shop.example.com", serial=0xABCDEF0123456789ABCDE)   # 21 hex digits: odd
    expected = certificates.serial_hex(leaf.serial_number)
    assert len(expected) % 2 == 0 and expected.startswith("0")
    checked = checks.check_certificate(pem(leaf, pki.intermediate), key, "shop.example.com")
    assert checked.serial_hex == expected
    stored = state.StateDir(tmp_path).store_certificate("shop", private_key=key, chain_pem=pem(leaf, pki.intermediate),
                                                        order_url="o", directory_url="https://ca/dir", service={})
    assert stored.serial_hex == expected
    assert pkcs12.Pkcs12Bundle(None, leaf, (), None).serial_hex == expected
    from acmelab import display
    assert f"serial:       {expected}" in display.certificate_lines(leaf)
