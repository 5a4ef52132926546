"""The lab's Alibaba Cloud OpenAPI endpoint: HTTPS, RPC style, signed requests.

Theory of operation
-------------------
Alibaba Cloud's RPC APIs (Alidns, CDN, API Gateway, CAS) all work the same
way, so one small server can stand in for all of them on loopback:

1. The client sends ``GET`` or ``POST https://host/?Action=...&Version=...``
   with every parameter in the query string and/or an
   ``application/x-www-form-urlencoded`` body.
2. The request carries the common parameters ``AccessKeyId``, ``Timestamp``
   (ISO 8601 UTC), ``SignatureMethod=HMAC-SHA1``, ``SignatureVersion=1.0``,
   ``SignatureNonce`` and ``Signature``.
3. :func:`string_to_sign` rebuilds what the client signed::

       StringToSign = Method + "&" + percent("/") + "&" + percent(canonical query)

   where the canonical query is every parameter except ``Signature``, sorted
   by name, each ``percent(name) + "=" + percent(value)``, joined by ``&``;
   ``percent`` is RFC 3986 percent-encoding (unreserved ``A-Za-z0-9-_.~``
   kept).  The signature is ``base64(HMAC-SHA1(secret + "&", StringToSign))``.
4. :meth:`LabApiHandler.handle_call` checks the key, the signature, the
   timestamp and the nonce, then calls the handler registered for ``Action``
   with :func:`action`.  A handler returns a dict (the JSON answer, without
   ``RequestId``, which is added here) or raises :class:`ApiFault`; both are
   turned into HTTP answers in one place, shaped like Alibaba's:
   ``{"RequestId", "HostId", "Code", "Message", "Recommend"}`` for errors.

Handlers live in sibling modules: :mod:`acmelab.lab.aliyun.alidns` (this
package's own) and, if present, :mod:`acmelab.lab.aliyun.deploy` (CDN, API
Gateway, CAS).  Each keeps its own state in :meth:`LabState.extension`.
A module may define ``start(state)`` (called once when the server starts,
e.g. to open TLS edge listeners) and ``stop(state)``.

Lab-only action ``AcmelabSetThrottling`` (``Count``, optional ``Code``) makes
the next ``Count`` calls of any other action answer ``Throttling.User``, so
the clients' back-off can be tested.  It is signed like any other call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import logging
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, Callable
from urllib.parse import parse_qsl, quote, urlsplit

logger = logging.getLogger(__name__)

#: allowed clock difference between client and server (Alibaba: 15 minutes)
TIMESTAMP_WINDOW = 15 * 60

Handler = Callable[["LabState", dict[str, str]], dict[str, Any]]

#: the registry: (Action, Version or None) -> handler
ACTIONS: dict[tuple[str, str | None], Handler] = {}


def action(name: str, *, version: str | None = None) -> Callable[[Handler], Handler]:
    """Register ``function(state, params) -> dict`` as the handler of RPC
    action ``name`` (optionally only for API ``version``, for actions whose
    name exists in two products)."""
    def register(function: Handler) -> Handler:
        ACTIONS[(name, version)] = function
        return function
    return register


class ApiFault(Exception):
    """An Alibaba-style error answer.

    Args:
        code: Alibaba's error ``Code``, e.g. ``"InvalidDomainName.NoExist"``.
        message: Alibaba's ``Message``.
        http_status: the HTTP status (400 by default; 403 for ``Forbidden*``,
            404 for ``*.NotFound`` as Alibaba does).
    """

    def __init__(self, code: str, message: str, http_status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


def require(params: dict[str, str], name: str) -> str:
    """``params[name]``, or ApiFault ``Missing<name>`` (HTTP 400) like Alibaba."""
    value = params.get(name, "")
    if value == "":
        raise ApiFault(f"Missing{name}", f"{name} is mandatory for this action.", 400)
    return value


def int_param(params: dict[str, str], name: str, default: int, *, minimum: int = 1,
              maximum: int | None = None) -> int:
    """An integer parameter with Alibaba's ``InvalidParameter`` on bad values."""
    raw = params.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiFault(f"Invalid{name}", f"The specified parameter \"{name}\" is not valid.") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ApiFault(f"Invalid{name}", f"The specified parameter \"{name}\" is out of range.")
    return value


# --------------------------------------------------------------------------
# Signature (SignatureVersion 1.0, HMAC-SHA1)
# --------------------------------------------------------------------------

def percent(text: str) -> str:
    """RFC 3986 percent-encoding as Alibaba's RPC signature uses it."""
    return quote(text, safe="-_.~")


def string_to_sign(method: str, params: dict[str, str]) -> str:
    """The StringToSign of an RPC request (every parameter but ``Signature``)."""
    canonical = "&".join(f"{percent(k)}={percent(v)}" for k, v in sorted(params.items()) if k != "Signature")
    return f"{method.upper()}&{percent('/')}&{percent(canonical)}"


def signature(secret: str, text: str) -> str:
    """``base64(HMAC-SHA1(secret + "&", text))``."""
    digest = hmac.new((secret + "&").encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


# --------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------

@dataclass
class LabState:
    """Everything the endpoint knows; shared by all handler threads.

    Handlers must hold ``lock`` while reading or changing shared data.
    ``extension(name, factory)`` gives each handler module its own state.
    """

    access_key_id: str
    access_key_secret: str = field(repr=False)
    challtestsrv: Any = None                   # acmelab.lab.challtestsrv.ChallTestSrv or None
    state_dir: Path | None = None
    cert_path: Path | None = None
    key_path: Path | None = None
    listen_host: str = "127.0.0.1"
    cdn_edge_port: int | None = None
    apigateway_edge_port: int | None = None
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    throttle_remaining: int = 0
    throttle_code: str = "Throttling.User"
    extensions: dict[str, Any] = field(default_factory=dict, repr=False)
    _nonces: dict[str, float] = field(default_factory=dict, repr=False)

    def extension(self, name: str, factory: Callable[[], Any]) -> Any:
        """The state object of handler module ``name``, created by ``factory()`` on first use."""
        with self.lock:
            if name not in self.extensions:
                self.extensions[name] = factory()
            return self.extensions[name]

    def use_nonce(self, nonce: str, now: float) -> bool:
        """Record ``nonce``; False if it was already used within the window."""
        with self.lock:
            for old, seen in list(self._nonces.items()):
                if now - seen > 2 * TIMESTAMP_WINDOW:
                    del self._nonces[old]
            if nonce in self._nonces:
                return False
            self._nonces[nonce] = now
            return True


@action("AcmelabSetThrottling")
def set_throttling(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """Lab only: the next ``Count`` calls answer ``Code`` (default Throttling.User)."""
    count = int_param(params, "Count", 1, minimum=0)
    with state.lock:
        state.throttle_remaining = count
        state.throttle_code = params.get("Code") or "Throttling.User"
    return {"Count": count}


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

COMMON_PARAMETERS = ("AccessKeyId", "Signature", "SignatureMethod", "SignatureVersion",
                     "SignatureNonce", "Timestamp", "Version", "Action")


class LabApiHandler(BaseHTTPRequestHandler):
    """One HTTPS request -> one RPC call."""

    server: "LabApiServer"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm on, the
    # client's delayed ACK holds the body back ~40 ms per call (keep-alive).
    disable_nagle_algorithm = True
    server_version = "acmelab-aliyun-lab"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._serve()

    def do_POST(self) -> None:  # noqa: N802
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        # Request lines carry Signature and AccessKeyId, not the secret; log at debug only.
        logger.debug("%s %s", self.address_string(), format % args)

    def _serve(self) -> None:
        request_id = str(uuid.uuid4()).upper()
        host_id = self.headers.get("Host", "localhost").split(":")[0]
        try:
            params = self._read_params()
            answer = self.handle_call(params)
            status, body = 200, {"RequestId": request_id, **answer}
        except ApiFault as fault:
            status = fault.http_status
            body = {"RequestId": request_id, "HostId": host_id, "Code": fault.code, "Message": fault.message,
                    "Recommend": f"https://api.aliyun.com/troubleshoot?q={fault.code}"}
        except Exception:  # one place turns a bug into Alibaba's InternalError
            logger.exception("handler failed")
            status = 500
            body = {"RequestId": request_id, "HostId": host_id, "Code": "InternalError",
                    "Message": "The request processing has failed due to some unknown error.",
                    "Recommend": "https://api.aliyun.com/troubleshoot?q=InternalError"}
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-acs-request-id", request_id)
        self.end_headers()
        self.wfile.write(data)

    def _read_params(self) -> dict[str, str]:
        params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            raw = self.rfile.read(length).decode("utf-8", "replace")
            if "application/x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
                params.update(parse_qsl(raw, keep_blank_values=True))
        return params

    def handle_call(self, params: dict[str, str]) -> dict[str, Any]:
        """Authenticate the call, then dispatch it by ``Action``."""
        state = self.server.state
        for name in COMMON_PARAMETERS:
            if not params.get(name):
                raise ApiFault(f"Missing{name}", f"{name} is mandatory for this action.", 400)
        if params["AccessKeyId"] != state.access_key_id:
            raise ApiFault("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        if params.get("SignatureMethod") != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0":
            raise ApiFault("InvalidSignatureMethod", "Specified signature method is not supported.", 400)
        expected_text = string_to_sign(self.command, params)
        if not hmac.compare_digest(signature(state.access_key_secret, expected_text), params["Signature"]):
            # Alibaba sends its StringToSign back (it holds no secret); the SDK
            # compares it with its own to tell a wrong secret from a wrong encoding.
            raise ApiFault("SignatureDoesNotMatch",
                           "Specified signature is not matched with our calculation. "
                           f"server string to sign is:{expected_text}", 400)
        now = time.time()
        try:
            stamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            raise ApiFault("InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.") from None
        if abs(stamp.timestamp() - now) > TIMESTAMP_WINDOW:
            raise ApiFault("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        if not state.use_nonce(params["SignatureNonce"], now):
            raise ApiFault("SignatureNonceUsed", "Specified signature nonce was used already.")

        name = params["Action"]
        handler = ACTIONS.get((name, params["Version"])) or ACTIONS.get((name, None))
        if handler is None:
            raise ApiFault("InvalidAction.NotFound", "Specified api is not found, please check your url and method.", 404)
        if name != "AcmelabSetThrottling":
            with state.lock:
                if state.throttle_remaining > 0:
                    state.throttle_remaining -= 1
                    raise ApiFault(state.throttle_code, "Request was denied due to user flow control.", 400)
        return handler(state, params)


class LabApiServer(ThreadingHTTPServer):
    """ThreadingHTTPServer over TLS; the handshake runs in the request thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: LabState, context: ssl.SSLContext) -> None:
        super().__init__(address, LabApiHandler)
        self.state = state
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s failed", client_address, exc_info=True)


def load_handler_modules() -> list[ModuleType]:
    """Import the handler modules: alidns always, deploy if it exists."""
    modules = [importlib.import_module("acmelab.lab.aliyun.alidns")]
    try:
        modules.append(importlib.import_module("acmelab.lab.aliyun.deploy"))
    except ModuleNotFoundError as error:
        if error.name != "acmelab.lab.aliyun.deploy":
            raise
    return modules


def make_server(listen: tuple[str, int], cert: Path, key: Path, state: LabState) -> LabApiServer:
    """A ready (not yet serving) HTTPS endpoint on ``listen`` with ``cert``/``key``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    load_handler_modules()
    return LabApiServer(listen, state, context)
