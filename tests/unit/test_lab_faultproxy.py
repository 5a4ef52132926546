"""FaultProxy.forward sends a request to the CA at most once, except when a
kept-alive upstream connection turns out to be closed with nothing answered.

The upstream here is a small scripted HTTPS server (it stands in for
Pebble's TCP behaviour only: closing idle connections, stalling); the proxy's
use against the real Pebble is tested in tests/integration/test_faults.py.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from acmelab.lab.faultproxy import FaultProxy
from acmelab.lab.tls import LabCertificateAuthority


class _Upstream:
    """Answers ``200 ok`` and then does what ``script`` says for each request
    in turn: ``"answer"`` (keep the connection), ``"answer-close"`` (answer,
    then close the connection without saying so), ``"hang-up"`` (read it,
    close without answering) or ``"stall"`` (read it, never answer)."""

    def __init__(self, directory, script):
        self.script = list(script)
        self.received: list[str] = []
        upstream = self
        release = self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream.received.append(self.path)
                what = upstream.script.pop(0)
                if what == "hang-up":
                    self.close_connection = True
                    return
                if what == "stall":
                    release.wait(10)
                    self.close_connection = True
                    return
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                self.close_connection = what == "answer-close"

            def log_message(self, *args):
                pass

        authority = LabCertificateAuthority.generate()
        self.ca_bundle = authority.write_bundle(directory / "upstream-ca.pem")
        listener = authority.issue_listener(directory / "upstream-tls")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(listener.certificate, listener.private_key)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy_to(tmp_path):
    made = []

    def make(script):
        upstream = _Upstream(tmp_path, script)
        info = SimpleNamespace(directory_url=f"https://localhost:{upstream.port}/dir", ca_bundle=upstream.ca_bundle)
        proxy = FaultProxy(info, tmp_path)
        made.append((proxy, upstream))
        return proxy, upstream

    yield make
    for proxy, upstream in made:
        proxy.stop()
        upstream.close()


def _post(proxy, path):
    return proxy.forward("POST", path, [("Host", "localhost")], b"{}")


def test_a_kept_alive_connection_closed_while_idle_is_retried_once_on_a_fresh_one(proxy_to):
    proxy, upstream = proxy_to(["answer-close", "answer"])
    assert _post(proxy, "/first")[0] == 200
    time.sleep(0.2)  # the upstream has closed the kept-alive connection
    assert _post(proxy, "/second")[0] == 200
    assert upstream.received == ["/first", "/second"]  # the stale send never reached it


def test_a_fresh_connection_that_hangs_up_is_not_retried(proxy_to):
    proxy, upstream = proxy_to(["hang-up", "answer"])
    with pytest.raises(http.client.RemoteDisconnected):
        _post(proxy, "/new-order")
    assert upstream.received == ["/new-order"]


def test_a_timeout_after_the_request_was_sent_is_not_retried(proxy_to):
    proxy, upstream = proxy_to(["answer", "stall", "answer"])
    assert _post(proxy, "/first")[0] == 200
    proxy._upstream().sock.settimeout(0.5)  # the kept-alive connection of this thread
    with pytest.raises(TimeoutError):
        _post(proxy, "/finalize")
    assert upstream.received == ["/first", "/finalize"]  # sent once, never again
