"""acmelab.deploy.verify against a tiny local TLS server (real handshakes, real chains)."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading

import pytest

from tests.unit._deploy_pki import NOW, Pki, key_pem, pem
from acmelab.deploy.verify import ServedCertificate, verify
from acmelab.errors import DeployError
from acmelab.certificates import serial_hex


class TinyTlsServer:
    """Serves one chain on 127.0.0.1:<ephemeral> until closed; records the SNI it saw."""

    def __init__(self, tmp_path, chain_pem: str, key):
        (tmp_path / "chain.pem").write_text(chain_pem)
        (tmp_path / "key.pem").write_text(key_pem(key))
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(tmp_path / "chain.pem", tmp_path / "key.pem")
        self.server_names: list[str | None] = []
        self.context.sni_callback = lambda sock, name, ctx: self.server_names.append(name)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            raw.settimeout(5)
            try:
                with self.context.wrap_socket(raw, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    def close(self):
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        self.listener.close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def pki():
    return Pki.new("Verify")


@pytest.fixture
def serve(tmp_path):
    servers = []

    def start(chain_pem, key):
        server = TinyTlsServer(tmp_path, chain_pem, key)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_valid_chain_returns_what_was_served(pki, serve):
    key, leaf = pki.leaf("shop.example.com", "www.shop.example.com")
    server = serve(pem(leaf, pki.intermediate), key)
    served = verify("www.shop.example.com", host="127.0.0.1", port=server.port, root_pem=pki.root_pem,
                    expected_serial_hex=format(leaf.serial_number, "X"))
    assert isinstance(served, ServedCertificate)
    assert server.server_names == ["www.shop.example.com"]
    assert served.serial_hex == serial_hex(leaf.serial_number)
    assert served.not_after == leaf.not_valid_after_utc.replace(microsecond=0)
    assert served.names == ("shop.example.com", "www.shop.example.com")
    assert served.chain_subjects == ("CN=shop.example.com", "CN=Verify Intermediate")
    assert served.verified_chain_subjects == ("CN=shop.example.com", "CN=Verify Intermediate", "CN=Verify Root")
    assert served.issuer == "CN=Verify Intermediate"
    assert served.protocol in ("TLSv1.2", "TLSv1.3")


def test_wildcard_covers_one_label(pki, serve):
    key, leaf = pki.leaf("*.cdn.example.com")
    server = serve(pem(leaf, pki.intermediate), key)
    assert verify("img.cdn.example.com", host="127.0.0.1", port=server.port,
                  root_pem=pki.root_pem).names == ("*.cdn.example.com",)
    with pytest.raises(DeployError, match=r"for \*\.cdn\.example\.com .*not for a\.b\.cdn\.example\.com"):
        verify("a.b.cdn.example.com", host="127.0.0.1", port=server.port, root_pem=pki.root_pem)


def test_other_domain_names_what_differs(pki, serve):
    key, leaf = pki.leaf("other.example.org")
    server = serve(pem(leaf, pki.intermediate), key)
    with pytest.raises(DeployError) as caught:
        verify("shop.example.com", host="127.0.0.1", port=server.port, root_pem=pki.root_pem)
    message = str(caught.value)
    assert "other.example.org" in message and "not for shop.example.com" in message
    assert format(leaf.serial_number, "x") in message


def test_expired_leaf_fails_validation(pki, serve):
    key, leaf = pki.leaf("old.example.com", not_before=NOW - dt.timedelta(days=100),
                         not_after=NOW - dt.timedelta(days=10))
    server = serve(pem(leaf, pki.intermediate), key)
    with pytest.raises(DeployError, match=r"depth 0 CN=old\.example\.com .*certificate has expired \(notAfter"):
        verify("old.example.com", host="127.0.0.1", port=server.port, root_pem=pki.root_pem)


def test_untrusted_root_fails_validation(pki, serve):
    key, leaf = pki.leaf("shop.example.com")
    server = serve(pem(leaf, pki.intermediate), key)
    stranger = Pki.new("Stranger")
    with pytest.raises(DeployError, match="does not validate: depth 1 CN=Verify Intermediate.*local issuer"):
        verify("shop.example.com", host="127.0.0.1", port=server.port, root_pem=stranger.root_pem)


def test_missing_intermediate_fails_validation(pki, serve):
    key, leaf = pki.leaf("shop.example.com")
    server = serve(pem(leaf), key)
    with pytest.raises(DeployError, match="does not validate: depth 0 CN=shop.example.com"):
        verify("shop.example.com", host="127.0.0.1", port=server.port, root_pem=pki.root_pem)


def test_unexpected_serial_is_named(pki, serve):
    key, leaf = pki.leaf("shop.example.com")
    server = serve(pem(leaf, pki.intermediate), key)
    with pytest.raises(DeployError, match=f"serves serial {serial_hex(leaf.serial_number)} .*expected serial 0abc"):
        verify("shop.example.com", host="127.0.0.1", port=server.port, root_pem=pki.root_pem,
               expected_serial_hex="0ABC")


def test_nothing_listening_is_deploy_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DeployError, match=f"cannot connect to 127.0.0.1:{port}"):
        verify("shop.example.com", host="127.0.0.1", port=port, root_pem=Pki.new().root_pem, timeout=2)
