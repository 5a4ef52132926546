"""The lab's throw-away CA (acmelab.lab.tls)."""

from __future__ import annotations

import ipaddress
import ssl
import stat

import pytest
from cryptography import x509

from acmelab.files import write_atomically
from acmelab.lab.tls import LabCertificateAuthority


@pytest.fixture(scope="module")
def authority():
    return LabCertificateAuthority.generate()


def test_ca_is_a_ca(authority):
    constraints = authority.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is True and constraints.path_length == 0
    assert authority.certificate.issuer == authority.certificate.subject
    assert "PRIVATE" not in repr(authority)


def test_listener_certificate_chains_to_the_ca_and_names_localhost(authority, tmp_path):
    files = authority.issue_listener(tmp_path / "pebble")
    chain = x509.load_pem_x509_certificates(files.certificate.read_bytes())
    leaf = chain[0]
    assert chain[1] == authority.certificate
    leaf.verify_directly_issued_by(authority.certificate)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert stat.S_IMODE(files.private_key.stat().st_mode) == 0o600
    # The standard library accepts the pair as a server certificate.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.certificate, files.private_key)


def test_bundle_is_the_ca_certificate(authority, tmp_path):
    bundle = authority.write_bundle(tmp_path / "ca.pem")
    assert x509.load_pem_x509_certificate(bundle.read_bytes()) == authority.certificate
    context = ssl.create_default_context(cafile=str(bundle))
    assert len(context.get_ca_certs()) == 1


def test_write_file_atomically_replaces_and_leaves_no_temp_files(tmp_path):
    # the lab writes its run directory's files with acmelab.files (its folders made as needed)
    target = tmp_path / "dir" / "file.txt"
    write_atomically(target, b"one", mode=0o600, parents=True)
    write_atomically(target, b"two", mode=0o644, parents=True)
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["file.txt"]
