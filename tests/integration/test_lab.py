"""The lab against real Pebble and pebble-challtestsrv processes."""

from __future__ import annotations

import socket

import dns.message
import pytest
import requests
from cryptography import x509

from acmelab.errors import LabError
from acmelab.lab import Lab, LabPorts
from acmelab.lab.processes import process_start_time, read_records


def _txt_answer_count(dns_server: tuple[str, int], name: str) -> int:
    """ANCOUNT of a raw TXT answer (dnspython would merge duplicate records)."""
    query = dns.message.make_query(name, "TXT")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(query.to_wire(), dns_server)
        data = sock.recv(65535)
    return int.from_bytes(data[6:8], "big")


def _txt_values(dns_server: tuple[str, int], name: str) -> list[str]:
    import dns.query

    response = dns.query.udp(dns.message.make_query(name, "TXT"), dns_server[0], port=dns_server[1], timeout=5)
    return sorted(b"".join(rdata.strings).decode() for rrset in response.answer for rdata in rrset)


def test_shared_lab_serves_directory_over_verified_https(lab):
    directory = requests.get(lab.directory_url, verify=str(lab.ca_bundle), timeout=10).json()
    assert directory["newNonce"].startswith(lab.directory_url.rsplit("/", 1)[0])
    assert set(directory) >= {"newNonce", "newAccount", "newOrder", "revokeCert", "keyChange"}
    assert directory["meta"]["externalAccountRequired"] is False
    # Verification is really on: without the lab CA the handshake fails.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(lab.directory_url, timeout=10)


def test_shared_lab_roots_and_intermediates(lab):
    roots = lab.roots()
    intermediates = lab.intermediates()
    assert len(roots) == 1 and len(intermediates) == 1
    root = x509.load_pem_x509_certificate(roots[0].encode())
    intermediate = x509.load_pem_x509_certificate(intermediates[0].encode())
    assert intermediate.issuer == root.subject
    intermediate.verify_directly_issued_by(root)


def test_challtestsrv_set_txt_appends_and_clear_txt_removes_all(lab, challtestsrv):
    host = "_acme-challenge.append.example.com"
    challtestsrv.set_txt(host, "first")
    challtestsrv.set_txt(host, "second")
    assert _txt_values(lab.dns_server, host) == ["first", "second"]
    challtestsrv.set_txt(host, "first")  # the same value again is stored twice
    assert _txt_answer_count(lab.dns_server, host) == 3
    challtestsrv.set_txt("_acme-challenge.other.example.com", "kept")
    challtestsrv.clear_txt(host)
    assert _txt_values(lab.dns_server, host) == []
    assert _txt_values(lab.dns_server, "_acme-challenge.other.example.com") == ["kept"]
    challtestsrv.replace_txt(host, ["only"])
    assert _txt_values(lab.dns_server, host) == ["only"]
    challtestsrv.clear_txt(host)
    challtestsrv.clear_txt("_acme-challenge.other.example.com")


def test_lab_stops_every_process_it_started(tmp_path):
    lab = Lab(tmp_path / "run", ports=LabPorts.free(), aliyun=False)
    with lab as info:
        records = read_records(info.run_dir)
        assert {record.name for record in records} == {"challtestsrv", "pebble"}
        assert all(record.is_ours() for record in records)
        assert requests.get(info.directory_url, verify=str(info.ca_bundle), timeout=10).status_code == 200
    assert all(process_start_time(record.pid) is None for record in records)
    assert read_records(tmp_path / "run") == []
    assert not (tmp_path / "run" / "lab.json").exists()


def test_port_in_use_is_named(tmp_path):
    ports = LabPorts.free()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", ports.acme))
        blocker.listen()
        with pytest.raises(LabError, match=rf"port already in use: acme port {ports.acme}"):
            Lab(tmp_path, ports=ports, aliyun=False).start()
    assert read_records(tmp_path) == []
