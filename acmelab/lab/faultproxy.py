"""A fault-injecting HTTPS proxy in front of the lab's real Pebble (a lab feature:
the tests' fault injection and notebook 16's fault drills).

The client talks to the proxy; the proxy talks to Pebble.  Between the two
it can, for chosen requests, do what a real network and a real CA do on a
bad day -- so that the client's recovery is tested against the real CA
state, never against a mock of the ACME server:

* ``lose_answer``: forward the request (the CA acts), then close the
  connection without answering -- the answer is lost;
* ``refuse``: answer 503, or 429 with a ``rateLimited`` problem document,
  with a ``Retry-After`` as seconds or as an HTTP-date, without forwarding;
* ``delay``: forward, then wait before answering;
* ``strip_headers`` / ``duplicate_headers`` / ``set_headers``: change the
  headers of Pebble's answer;
* ``stop``: the CA disappears (connections refused from then on).

A fault matches on the method and a URL path prefix (Pebble's paths, from
its directory: ``/order-plz``, ``/finalize-order/``, ``/chalZ/``,
``/certZ/``, ``/revoke-cert``, ``/rollover-account-key``, ``/sign-me-up``,
``/my-order/``, ``/authZ/``) and applies to the next ``times`` matching
requests.  Every exchange is logged in :attr:`FaultProxy.log` with its
arrival time, so that a test can assert what reached the CA and when.

TLS is verified on both legs: the proxy has its own throw-away CA and
certificate for localhost (:class:`acmelab.lab.tls.LabCertificateAuthority`;
the client trusts :attr:`FaultProxy.ca_bundle`), and it trusts Pebble's
listener through the lab's ``ca_bundle``.

Pebble builds every URL it hands out from the request's ``Host`` header and
checks the JWS ``url`` against it (RFC 8555 §6.4), so the proxy forwards the
client's ``Host`` unchanged (the client signs proxy URLs).  Any URL that
still names Pebble's own origin -- in a body or in the ``Location``,
``Link`` and other headers -- is rewritten to the proxy's origin.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from acmelab.lab.tls import LabCertificateAuthority

#: headers that belong to one connection, not to the message (RFC 9110 §7.6.1)
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade"}


@dataclass
class Fault:
    """What to do to the next ``times`` requests matching ``method`` and
    the path prefix ``path``.

    Attributes:
        forward: send the request to Pebble (False: Pebble never sees it).
        drop: close the connection instead of answering.
        status, headers, body: the answer to give instead of Pebble's
            (only when not forwarded).
        delay: seconds to wait before answering.
        strip: header names removed from Pebble's answer.
        duplicate: header names sent twice.
        set_headers: headers set (replaced) on Pebble's answer.
    """

    method: str
    path: str
    times: int = 1
    forward: bool = True
    drop: bool = False
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0
    strip: tuple[str, ...] = ()
    duplicate: tuple[str, ...] = ()
    set_headers: dict[str, str] = field(default_factory=dict)

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and method == self.method and path.startswith(self.path)


@dataclass(frozen=True)
class Exchange:
    """One request through the proxy.

    Attributes:
        at: arrival time (``time.time()``).
        answered_at: when the answer was sent (None: dropped).
        method, path: the request.
        status: the status sent to the client (None: dropped).
        upstream_status: Pebble's status (None: not forwarded).
        fault: the fault applied, or None.
        headers: the answer's headers as sent, list of (name, value).
    """

    at: float
    answered_at: float | None
    method: str
    path: str
    status: int | None
    upstream_status: int | None
    fault: Fault | None
    headers: tuple[tuple[str, str], ...] = ()


def http_date(seconds_from_now: float) -> str:
    """An IMF-fixdate ``seconds_from_now`` ahead (RFC 9110 §5.6.7), rounded
    up to the next whole second, as ``Retry-After`` carries it."""
    when = datetime.now(timezone.utc) + timedelta(seconds=seconds_from_now)
    when = when.replace(microsecond=0) + timedelta(seconds=1)
    return format_datetime(when, usegmt=True)


class FaultProxy:
    """An HTTPS reverse proxy on loopback in front of the lab's Pebble.

    Args:
        info: the lab's :class:`acmelab.lab.LabInfo` (Pebble's
            ``directory_url`` and ``ca_bundle``).
        directory: where to write the proxy's CA bundle.

    Attributes:
        directory_url: Pebble's directory, through the proxy.
        ca_bundle: PEM file of the proxy's CA: the client's ``verify=``.
        log: every :class:`Exchange`, in arrival order.
    """

    def __init__(self, info, directory: Path) -> None:
        upstream = urlsplit(info.directory_url)
        self.upstream_host, self.upstream_port = upstream.hostname, upstream.port
        self.upstream_context = ssl.create_default_context(cafile=str(info.ca_bundle))
        authority = LabCertificateAuthority.generate("acmelab fault proxy CA")
        self.ca_bundle = authority.write_bundle(Path(directory) / "proxy-ca.pem")
        listener = authority.issue_listener(Path(directory) / "proxy-tls")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(listener.certificate, listener.private_key)
        self.faults: list[Fault] = []
        self.log: list[Exchange] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        self._connections: set[socket.socket] = set()
        self.server = _Server(("127.0.0.1", 0), _handler(self), context, self._connections)
        self.port = self.server.server_address[1]
        self.origin = f"https://localhost:{self.port}"
        self.directory_url = f"{self.origin}{upstream.path}"
        # Pebble's own origin, however it is spelled, becomes the proxy's
        self._upstream_origins = [f"https://{host}:{self.upstream_port}".encode()
                                  for host in ("localhost", "127.0.0.1", self.upstream_host)]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    # -- programming the faults ----------------------------------------
    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def lose_answer(self, method: str, path: str, *, times: int = 1) -> Fault:
        """Forward to Pebble (it acts), then drop the connection unanswered."""
        return self.add(Fault(method, path, times=times, drop=True))

    def drop_request(self, method: str, path: str, *, times: int = 1) -> Fault:
        """Drop the connection without forwarding (Pebble never sees it)."""
        return self.add(Fault(method, path, times=times, forward=False, drop=True))

    def refuse(self, method: str, path: str, *, status: int = 503, retry_after: str | None = None,
               times: int = 1) -> Fault:
        """Answer ``status`` without forwarding: 429 with a ``rateLimited``
        problem document (RFC 8555 §6.6), 503 with an empty body; with
        ``Retry-After: retry_after`` when given (seconds or an HTTP-date,
        see :func:`http_date`)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        body = b""
        if status == 429:
            headers["Content-Type"] = "application/problem+json"
            body = json.dumps({"type": "urn:ietf:params:acme:error:rateLimited",
                               "detail": "fault proxy: too many requests"}).encode()
        return self.add(Fault(method, path, times=times, forward=False, status=status, headers=headers, body=body))

    def delay(self, method: str, path: str, seconds: float, *, times: int = 1) -> Fault:
        """Forward, then wait ``seconds`` before answering."""
        return self.add(Fault(method, path, times=times, delay=seconds))

    def strip_headers(self, method: str, path: str, *names: str, times: int = 1) -> Fault:
        return self.add(Fault(method, path, times=times, strip=tuple(names)))

    def duplicate_headers(self, method: str, path: str, *names: str, times: int = 1) -> Fault:
        return self.add(Fault(method, path, times=times, duplicate=tuple(names)))

    def set_headers(self, method: str, path: str, headers: dict[str, str], *, times: int = 1) -> Fault:
        return self.add(Fault(method, path, times=times, set_headers=dict(headers)))

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

    # -- what reached the CA -------------------------------------------
    def requests(self, method: str | None = None, path: str = "") -> list[Exchange]:
        """The logged exchanges with this method (any if None) and path prefix."""
        return [e for e in self.log if (method is None or e.method == method) and e.path.startswith(path)]

    # -- forwarding ------------------------------------------------------
    def _rewrite(self, data: bytes) -> bytes:
        for origin in self._upstream_origins:
            data = data.replace(origin, self.origin.encode())
        return data

    def _upstream(self) -> http.client.HTTPSConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPSConnection(self.upstream_host, self.upstream_port,
                                                     context=self.upstream_context, timeout=30)
            self._local.connection = connection
        return connection

    def forward(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes):
        """Send the request to Pebble once; (status, headers, body) of its answer.

        The one retry: a kept-alive connection that Pebble closed while it
        was idle fails with nothing answered (``RemoteDisconnected``,
        ``BrokenPipeError``, ``ConnectionResetError``, or ``SSLEOFError``
        when TLS refuses to write after Pebble's close_notify), and the
        request goes again on a fresh connection.  Any other failure -- a timeout after
        the request was sent, a failure on a fresh connection -- is raised,
        so a POST never reaches Pebble twice behind the log's back.
        """
        connection = self._upstream()
        if connection.sock is not None:  # reused
            try:
                return self._exchange(connection, method, path, headers, body)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ssl.SSLEOFError):
                connection = self._upstream()  # _exchange dropped the stale one
        return self._exchange(connection, method, path, headers, body)

    def _exchange(self, connection: http.client.HTTPSConnection, method: str, path: str,
                  headers: list[tuple[str, str]], body: bytes):
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                if name.lower() not in HOP_BY_HOP:
                    connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        except (http.client.HTTPException, OSError):
            connection.close()
            self._local.connection = None
            raise

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self) -> None:
        """The CA disappears: stop listening and close every open connection."""
        self.server.shutdown()
        self.server.server_close()
        with self._lock:
            for connection in list(self._connections):
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                connection.close()


class _Server(ThreadingHTTPServer):
    """The TLS handshake happens in each connection's own thread."""

    daemon_threads = True

    def __init__(self, address, handler, context: ssl.SSLContext, connections: set) -> None:
        self.context = context
        self.connections = connections
        super().__init__(address, handler)

    def finish_request(self, request, client_address) -> None:
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        self.connections.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            self.connections.discard(request)

    def handle_error(self, request, client_address) -> None:
        pass  # a dropped connection is the point


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as requests expects

        def _proxy(self) -> None:
            arrived = time.time()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = urlsplit(self.path).path
            fault = proxy._take_fault(self.command, path)
            upstream_status = None
            if fault is None or fault.forward:
                status, headers, content = proxy.forward(self.command, self.path, list(self.headers.items()), body)
                upstream_status = status
                headers = [(n, proxy._rewrite(v.encode("latin-1")).decode("latin-1")) for n, v in headers
                           if n.lower() not in HOP_BY_HOP]
                content = proxy._rewrite(content)
            else:
                status, headers, content = fault.status or 502, list(fault.headers.items()), fault.body
            if fault is not None:
                headers = _changed(headers, fault)
                if fault.delay:
                    time.sleep(fault.delay)
            if fault is not None and fault.drop:
                proxy.log.append(Exchange(arrived, None, self.command, path, None, upstream_status, fault))
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            # logged before answering: the client may look at the log as soon as it has the answer
            proxy.log.append(Exchange(arrived, time.time(), self.command, path, status, upstream_status, fault,
                                      tuple(headers)))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(content)
            self.wfile.flush()

        do_GET = do_POST = do_HEAD = _proxy

        def log_message(self, *args) -> None:
            pass

    return Handler


def _changed(headers: list[tuple[str, str]], fault: Fault) -> list[tuple[str, str]]:
    """The answer's headers after the fault's strip / set / duplicate."""
    drop = {n.lower() for n in fault.strip} | {n.lower() for n in fault.set_headers}
    headers = [(n, v) for n, v in headers if n.lower() not in drop]
    headers += list(fault.set_headers.items())
    twice = {n.lower() for n in fault.duplicate}
    return headers + [(n, v) for n, v in headers if n.lower() in twice]
