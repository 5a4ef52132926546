"""A product's TLS edge on loopback: serves exactly the chain bound to a name.

CDN, API Gateway and SLB each get one :class:`Edge` (``--cdn-edge-port``,
``--apigateway-edge-port``, ``--slb-edge-port``).  Its SNI callback picks the
context of the binding for the name the client asked for (an exact name,
else ``*.`` + the parent); a name with no binding gets the TLS alert
``unrecognized_name``.  A new binding swaps the context; the next handshake
sees the new certificate.  After the handshake the edge answers one HTTP
request with ``acmelab <product> edge: <name>``.

The SLB edge stands for every load balancer at once: it binds each name a
listener's certificate covers (the newest binding wins a name), so the
handshake check with SNI = the domain sees what that listener serves.

The uploaded key lives only in memory: it is written to a 0600 temporary
file for ``SSLContext.load_cert_chain`` and removed at once.
"""

from __future__ import annotations

import logging
import os
import shutil
import socketserver
import ssl
import tempfile
import threading
from typing import Any

logger = logging.getLogger(__name__)


class _EdgeHandler(socketserver.BaseRequestHandler):
    server: "_EdgeServer"

    def handle(self) -> None:
        self.request.settimeout(5)
        try:
            with self.server.edge.listener_context.wrap_socket(self.request, server_side=True) as tls:
                name = getattr(tls, "acmelab_server_name", None) or "?"
                try:
                    tls.recv(65536)
                except (OSError, ssl.SSLError):
                    return
                body = f"acmelab {self.server.edge.product} edge: {name}\n".encode()
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        except (OSError, ssl.SSLError):
            pass


class _EdgeServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    edge: "Edge"

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("edge connection from %s failed", client_address, exc_info=True)


class Edge:
    """One product's HTTPS edge: SNI name -> the context of the uploaded chain.

    ``install`` / ``remove`` may be called before the listener is started
    (``port`` None: nothing listens, installs are still recorded).
    """

    def __init__(self, product: str, host: str, port: int | None) -> None:
        self.product = product
        self.host = host
        self.port = port
        self.contexts: dict[str, ssl.SSLContext] = {}
        self.lock = threading.Lock()
        self.listener_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.listener_context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.listener_context.sni_callback = self._select
        self.server: _EdgeServer | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.port is None:
            return
        self.server = _EdgeServer((self.host, self.port), _EdgeHandler)
        self.server.edge = self
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                       name=f"{self.product}-edge", daemon=True)
        self.thread.start()
        logger.info("%s edge on https://%s:%d", self.product, self.host, self.port)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def _select(self, tls: ssl.SSLObject, server_name: str | None, _default: ssl.SSLContext) -> int | None:
        name = (server_name or "").lower().rstrip(".")
        with self.lock:
            context = self.contexts.get(name)
            if context is None and "." in name:
                context = self.contexts.get("*." + name.split(".", 1)[1])
        if context is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        tls.context = context
        tls.acmelab_server_name = name
        return None

    def install(self, domain: str, chain_pem: str, key_pem: str) -> None:
        """Serve ``chain_pem`` with ``key_pem`` for SNI ``domain`` from the next handshake on."""
        self.install_names([domain], chain_pem, key_pem)

    def install_names(self, names: list[str], chain_pem: str, key_pem: str) -> None:
        """Serve one chain for every SNI name of ``names`` (``*.x`` covers one label)."""
        context = _server_context(chain_pem, key_pem)
        with self.lock:
            for name in names:
                self.contexts[name] = context

    def clear(self) -> None:
        """Serve nothing (every name gets ``unrecognized_name``)."""
        with self.lock:
            self.contexts.clear()

    def remove(self, domain: str) -> None:
        with self.lock:
            self.contexts.pop(domain, None)


def _server_context(chain_pem: str, key_pem: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    directory = tempfile.mkdtemp(prefix="acmelab-edge-")
    try:
        path = os.path.join(directory, "chain-and-key.pem")
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(key_pem)
            handle.write(chain_pem)
        context.load_cert_chain(path)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return context
