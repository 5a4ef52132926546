"""ARI (RFC 9773): certID and the renewalInfo object, offline."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acmelab.errors import InputError, ProtocolError
from acmelab.renewal_info import RenewalInfo, cert_id, serial_octets

RFC_AKI = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")


def _certificate(serial: int, aki: bytes | None) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.com")])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(serial).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1)))
    if aki is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier(key_identifier=aki, authority_cert_issuer=None,
                                        authority_cert_serial_number=None), critical=False)
    return builder.sign(key, hashes.SHA256())


def test_rfc_9773_certid_example_byte_for_byte():
    # RFC 9773 §4.1: AKI keyIdentifier 69:88:5B:...:C8:D4, serial 0x87654321
    # (DER INTEGER content 00 87 65 43 21, the leading zero kept)
    assert cert_id(_certificate(0x87654321, RFC_AKI)) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"


@pytest.mark.parametrize("serial, octets", [
    (1, b"\x01"), (0x7F, b"\x7f"), (0x80, b"\x00\x80"), (0x0102, b"\x01\x02"), (0x87654321, b"\x00\x87\x65\x43\x21"),
])
def test_serial_octets_are_der_integer_contents(serial, octets):
    assert serial_octets(serial) == octets


def test_no_aki_no_certid():
    with pytest.raises(InputError, match="Authority Key Identifier"):
        cert_id(_certificate(5, None))


NOW = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)


def test_renewal_info_parses_window_explanation_and_retry_after():
    info = RenewalInfo.from_json("a.b", {"suggestedWindow": {"start": "2027-01-10T00:00:00Z",
                                                             "end": "2027-01-12T00:00:00.123456789Z"},
                                         "explanationURL": "https://ca.example/why"},
                                 retry_after=21600.0, fetched_at=NOW)
    assert info.start == datetime.datetime(2027, 1, 10, tzinfo=datetime.timezone.utc)
    assert info.end.date() == datetime.date(2027, 1, 12)
    assert info.explanation_url == "https://ca.example/why"
    assert info.next_check == NOW + datetime.timedelta(hours=6)
    assert RenewalInfo.from_dict(info.to_dict()) == info


@pytest.mark.parametrize("retry_after, expected", [(None, 21600.0), (0.0, 60.0), (10 ** 9, 86400.0), (3600.0, 3600.0)])
def test_retry_after_is_clamped(retry_after, expected):
    window = {"suggestedWindow": {"start": "2027-01-10T00:00:00Z", "end": "2027-01-11T00:00:00Z"}}
    assert RenewalInfo.from_json("a.b", window, retry_after=retry_after).retry_after == expected


@pytest.mark.parametrize("document", [
    {}, {"suggestedWindow": "soon"}, {"suggestedWindow": {"start": "2027-01-10T00:00:00Z"}},
    {"suggestedWindow": {"start": "yesterday", "end": "2027-01-11T00:00:00Z"}},
    {"suggestedWindow": {"start": "2027-01-10T00:00:00", "end": "2027-01-11T00:00:00"}},  # no zone
    {"suggestedWindow": {"start": "2027-01-11T00:00:00Z", "end": "2027-01-10T00:00:00Z"}},  # end first
    {"suggestedWindow": {"start": "2027-01-10T00:00:00Z", "end": "2027-01-10T00:00:00Z"}},  # empty
])
def test_malformed_answers_are_protocol_errors(document):
    with pytest.raises(ProtocolError):
        RenewalInfo.from_json("a.b", document, retry_after=None)
