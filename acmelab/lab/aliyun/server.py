"""The lab's Alibaba Cloud OpenAPI endpoint: HTTPS, RPC style, signed requests.

Theory of operation
-------------------
Alibaba Cloud's RPC APIs (Alidns, CDN, API Gateway, CAS, SLB, STS) all work
the same way, so one small server can stand in for all of them on loopback:

1. The client sends ``GET`` or ``POST https://host/?...`` with the action's
   parameters in the query string and/or an
   ``application/x-www-form-urlencoded`` body.
2. The request is signed in one of two ways, told apart by the
   ``Authorization`` header:

   * **V3** ("Request syntax and signature method V3", ``ACS3-HMAC-SHA256``,
     what Alibaba's current ``alibabacloud_*`` SDKs send): the action and API
     version travel in the ``x-acs-action`` / ``x-acs-version`` headers,
     ``x-acs-date`` (ISO 8601 UTC), ``x-acs-signature-nonce`` and
     ``x-acs-content-sha256`` (hex SHA-256 of the body) beside them, and::

         Authorization: ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=<h1;h2;...>,Signature=<hex>

     :func:`canonical_request_v3` rebuilds what the client signed (method,
     canonical URI, canonical query, canonical headers, signed header list,
     hashed payload, one per line), :func:`string_to_sign_v3` is
     ``"ACS3-HMAC-SHA256\n" + hex(SHA-256(canonical request))`` and the
     signature ``hex(HMAC-SHA256(secret, StringToSign))`` (:func:`signature_v3`).
   * **V1** (RPC ``SignatureVersion=1.0``, HMAC-SHA1, which Alibaba marks
     discontinued but the classic ``aliyun-python-sdk-core`` still sends;
     no ``Authorization`` header): the common parameters ``Action``,
     ``Version``, ``AccessKeyId``, ``Timestamp`` (ISO 8601 UTC),
     ``SignatureMethod=HMAC-SHA1``, ``SignatureVersion=1.0``,
     ``SignatureNonce`` and ``Signature`` are parameters, and
     :func:`string_to_sign` rebuilds::

         StringToSign = Method + "&" + percent("/") + "&" + percent(canonical query)

     where the canonical query is every parameter (query and body) except
     ``Signature``.  The signature is ``base64(HMAC-SHA1(secret + "&", StringToSign))``.

   Both use :func:`canonical_query`: parameters sorted by name, each
   ``percent(name) + "=" + percent(value)``, joined by ``&``; ``percent`` is
   RFC 3986 percent-encoding (unreserved ``A-Za-z0-9-_.~`` kept).
3. :meth:`LabApiHandler.handle_request` checks the key, the signature, the
   timestamp (:data:`TIMESTAMP_WINDOW`) and the nonce (one store for both
   versions, :meth:`LabState.use_nonce`), answering Alibaba's error codes
   (``MissingAccessKeyId``, ``InvalidAccessKeyId.NotFound``,
   ``IncompleteSignature``, ``InvalidSignatureMethod``,
   ``SignatureDoesNotMatch``, ``InvalidTimeStamp.Format`` /
   ``InvalidTimeStamp.Expired``, ``SignatureNonceUsed``), then calls the
   handler registered for the action with :func:`action`.  A handler returns
   a dict (the JSON answer, without ``RequestId``, which is added here) or
   raises :class:`ApiFault`; both are turned into HTTP answers in one place,
   shaped like Alibaba's: ``{"RequestId", "HostId", "Code", "Message",
   "Recommend"}`` for errors.

Handlers live in one sibling module per product, listed in :data:`PRODUCTS`
(``alidns``, ``sts``, ``cdn``, ``apigateway``, ``cas``, ``slb``); :mod:`.sts`
also answers the instance metadata paths ``/latest/...``, and temporary
credentials are checked by :func:`signing_secret`.  Each keeps its own
state in :meth:`LabState.extension`.  A module may define ``start(state)``
(called once when the server starts, e.g. to open its TLS edge) and
``stop(state)``, and ``inventory(state)`` for ``AcmelabDescribeInventory``.

With ``LabState.api_latency`` every answer is sent that many seconds late
(:mod:`acmelab.lab.aliyun.latency`).

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
import re
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import parse_qsl, quote, urlsplit

logger = logging.getLogger(__name__)

#: a SecurityToken in a logged request line (cut out before logging)
_SECURITY_TOKEN = re.compile(r"(SecurityToken=)[^&\s\"]*")

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
# Signatures: V1 (SignatureVersion 1.0, HMAC-SHA1) and V3 (ACS3-HMAC-SHA256)
# --------------------------------------------------------------------------

def percent(text: str) -> str:
    """RFC 3986 percent-encoding as Alibaba's signatures (V1 and V3) use it:
    ``A-Za-z0-9-_.~`` kept, everything else (UTF-8) as ``%XY``, space as ``%20``."""
    return quote(text, safe="-_.~")


def canonical_query(params: Mapping[str, str], *, exclude: Iterable[str] = ()) -> str:
    """``params`` sorted by name, each ``percent(name) + "=" + percent(value)``
    (an empty value gives ``name=``), joined by ``&``; names in ``exclude`` left out.

    The CanonicalizedQueryString of V1 and the CanonicalQueryString of V3
    (Alibaba Cloud SDK docs: "Request syntax and signature method V3").
    """
    skip = set(exclude)
    return "&".join(f"{percent(k)}={percent(v)}" for k, v in sorted(params.items()) if k not in skip)


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """The V1 StringToSign of an RPC request (every parameter but ``Signature``)."""
    return f"{method.upper()}&{percent('/')}&{percent(canonical_query(params, exclude=('Signature',)))}"


def signature(secret: str, text: str) -> str:
    """V1: ``base64(HMAC-SHA1(secret + "&", text))``."""
    digest = hmac.new((secret + "&").encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


#: the V3 signature algorithm the lab accepts (``ACS3-HMAC-SM3`` / ``ACS3-RSA-SHA256`` are not)
V3_ALGORITHM = "ACS3-HMAC-SHA256"

#: headers every V3 request must carry and sign; besides these, ``content-type``
#: (when present) and every other ``x-acs-*`` header must be signed too
#: (V3 doc: "all common request headers except Authorization must be signed")
V3_REQUIRED_HEADERS = ("host", "x-acs-action", "x-acs-content-sha256", "x-acs-date",
                       "x-acs-signature-nonce", "x-acs-version")

#: the error code for a missing V3 header: the code V1 gives for the
#: parameter that header replaces, else IncompleteSignature (lab's mapping)
V3_MISSING_CODES = {"x-acs-action": "MissingAction", "x-acs-version": "MissingVersion",
                    "x-acs-date": "MissingTimestamp", "x-acs-signature-nonce": "MissingSignatureNonce"}


@dataclass(frozen=True)
class V3Authorization:
    """The parts of a V3 ``Authorization`` header.

    Attributes:
        algorithm: ``"ACS3-HMAC-SHA256"``.
        access_key_id: the ``Credential``.
        signed_headers: the ``SignedHeaders`` list as sent (``"host;x-acs-action;..."``).
        signature: the ``Signature``, lower-case hex.
    """

    algorithm: str
    access_key_id: str
    signed_headers: str
    signature: str

    @property
    def signed_header_names(self) -> list[str]:
        """``signed_headers`` split at ``;``."""
        return self.signed_headers.split(";")


def _incomplete(why: str) -> ApiFault:
    return ApiFault("IncompleteSignature", f"The request signature does not conform to Aliyun standards: {why}.")


def parse_authorization_v3(value: str) -> V3Authorization:
    """Parse ``"ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=<a;b>,Signature=<hex>"``.

    Raises:
        ApiFault: ``InvalidSignatureMethod`` for another ``ACS3-*`` algorithm;
            ``MissingAccessKeyId`` for an empty ``Credential``;
            ``IncompleteSignature`` for anything else not of that form
            (another scheme, a part missing or repeated, upper-case header names).
    """
    algorithm, _, rest = value.strip().partition(" ")
    if not algorithm.startswith("ACS3-"):
        raise _incomplete("the Authorization header is not ACS3-HMAC-SHA256")
    if algorithm != V3_ALGORITHM:
        raise ApiFault("InvalidSignatureMethod", "Specified signature method is not supported.")
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, equals, text = item.strip().partition("=")
        if not equals or name in parts:
            raise _incomplete("the Authorization header is not Credential=...,SignedHeaders=...,Signature=...")
        parts[name] = text.strip()
    if set(parts) != {"Credential", "SignedHeaders", "Signature"}:
        raise _incomplete("the Authorization header is not Credential=...,SignedHeaders=...,Signature=...")
    if not parts["Credential"]:
        raise ApiFault("MissingAccessKeyId", "AccessKeyId is mandatory for this action.")
    names = parts["SignedHeaders"].split(";")
    if not parts["Signature"] or any(not name or name != name.lower() for name in names):
        raise _incomplete("SignedHeaders must be lower-case header names and Signature must not be empty")
    return V3Authorization(algorithm, parts["Credential"], parts["SignedHeaders"], parts["Signature"])


def canonical_headers_v3(headers: Mapping[str, Sequence[str]], names: Iterable[str]) -> str:
    """The V3 CanonicalHeaders: for each of ``names`` (lower case, sorted),
    ``name + ":" + values`` and a newline, where values are the header's
    values (``headers`` maps lower-case names to them), each trimmed, sorted,
    joined by ``,``."""
    return "".join(f"{name}:{','.join(sorted(v.strip() for v in headers.get(name, ())))}\n"
                   for name in sorted(set(names)))


def canonical_request_v3(method: str, path: str, query: Mapping[str, str],
                         headers: Mapping[str, Sequence[str]], signed_headers: str, payload_hash: str) -> str:
    """The V3 CanonicalRequest::

        Method \n CanonicalURI \n CanonicalQueryString \n CanonicalHeaders \n SignedHeaders \n HashedRequestPayload

    ``path`` is the URL path as sent (``"/"`` for RPC APIs), ``query`` the
    query-string parameters, ``headers`` lower-case name -> values,
    ``signed_headers`` the ``SignedHeaders`` of the Authorization header,
    ``payload_hash`` the lower-case hex SHA-256 of the body.
    """
    return "\n".join([method.upper(), path or "/", canonical_query(query),
                      canonical_headers_v3(headers, signed_headers.split(";")), signed_headers, payload_hash])


def string_to_sign_v3(canonical_request: str) -> str:
    """``"ACS3-HMAC-SHA256\n" + hex(SHA-256(canonical_request))`` (no parameter in it)."""
    return f"{V3_ALGORITHM}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"


def signature_v3(secret: str, text: str) -> str:
    """V3: ``hex(HMAC-SHA256(secret, text))`` (the secret as is, no ``&``)."""
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


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
    slb_edge_port: int | None = None
    api_latency: float = 0.0                   # seconds added to every answer (latency.py)
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


@dataclass(frozen=True)
class LabRequest:
    """One HTTP request as the endpoint received it.

    Attributes:
        method: ``"GET"`` or ``"POST"``.
        path: the URL path as sent (percent-encoded), ``"/"`` for RPC calls.
        query: the query-string parameters (decoded).
        form: the ``application/x-www-form-urlencoded`` body parameters (decoded).
        body: the raw body.
        headers: lower-case header name -> its values.
    """

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    body: bytes = field(repr=False)
    headers: dict[str, list[str]] = field(repr=False)

    @property
    def params(self) -> dict[str, str]:
        """Query and body parameters together (the body wins on a clash)."""
        return {**self.query, **self.form}

    def header(self, name: str) -> str:
        """The (first) value of header ``name`` (any case), ``""`` if absent."""
        values = self.headers.get(name.lower())
        return values[0] if values else ""


def check_access_key(state: LabState, access_key_id: str) -> None:
    """ApiFault ``InvalidAccessKeyId.NotFound`` (HTTP 404) unless ``access_key_id`` is the lab's."""
    if not hmac.compare_digest(access_key_id.encode(), state.access_key_id.encode()):
        raise ApiFault("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)


def signing_secret(state: LabState, access_key_id: str, security_token: str) -> str:
    """The secret a request by ``access_key_id`` is signed with: the lab's
    AccessKeySecret, or -- with a ``security_token`` or an ``STS.`` key --
    that of temporary credentials (:func:`acmelab.lab.aliyun.sts.temporary_secret`,
    which raises Alibaba's ``InvalidSecurityToken.*`` answers)."""
    if not security_token and hmac.compare_digest(access_key_id.encode(), state.access_key_id.encode()):
        return state.access_key_secret
    if not security_token and not access_key_id.startswith("STS."):
        check_access_key(state, access_key_id)
    from acmelab.lab.aliyun import sts
    return sts.temporary_secret(state, access_key_id, security_token)


def check_fresh(state: LabState, stamp: str, nonce: str) -> None:
    """The replay checks both signature versions share: ``stamp`` (V1
    ``Timestamp``, V3 ``x-acs-date``, ``yyyy-MM-ddTHH:mm:ssZ`` UTC) within
    :data:`TIMESTAMP_WINDOW` of now, and ``nonce`` (V1 ``SignatureNonce``, V3
    ``x-acs-signature-nonce``) not seen before (:meth:`LabState.use_nonce`).

    Raises:
        ApiFault: ``InvalidTimeStamp.Format``, ``InvalidTimeStamp.Expired``
            or ``SignatureNonceUsed`` (HTTP 400).
    """
    now = time.time()
    try:
        when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise ApiFault("InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.") from None
    if abs(when.timestamp() - now) > TIMESTAMP_WINDOW:
        raise ApiFault("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
    if not state.use_nonce(nonce, now):
        raise ApiFault("SignatureNonceUsed", "Specified signature nonce was used already.")


def _signature_mismatch(server_string_to_sign: str) -> ApiFault:
    # Alibaba sends its StringToSign back (it holds no secret); the classic SDK
    # compares it with its own to tell a wrong secret from a wrong encoding.
    return ApiFault("SignatureDoesNotMatch", "Specified signature is not matched with our calculation. "
                    f"server string to sign is:{server_string_to_sign}")


def authenticate_v1(state: LabState, method: str, params: Mapping[str, str]) -> tuple[str, str]:
    """Check a V1 (HMAC-SHA1, ``SignatureVersion=1.0``) request; returns (Action, Version).

    Raises:
        ApiFault: ``Missing<Parameter>`` for a missing common parameter,
            ``InvalidAccessKeyId.NotFound``, ``InvalidSignatureMethod``,
            ``SignatureDoesNotMatch``, or those of :func:`check_fresh`.
    """
    for name in COMMON_PARAMETERS:
        if not params.get(name):
            raise ApiFault(f"Missing{name}", f"{name} is mandatory for this action.", 400)
    secret = signing_secret(state, params["AccessKeyId"], params.get("SecurityToken", ""))
    if params.get("SignatureMethod") != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0":
        raise ApiFault("InvalidSignatureMethod", "Specified signature method is not supported.", 400)
    expected_text = string_to_sign(method, params)
    if not hmac.compare_digest(signature(secret, expected_text).encode(), params["Signature"].encode()):
        raise _signature_mismatch(expected_text)
    check_fresh(state, params["Timestamp"], params["SignatureNonce"])
    return params["Action"], params["Version"]


def authenticate_v3(state: LabState, request: LabRequest) -> tuple[str, str]:
    """Check a V3 (``ACS3-HMAC-SHA256``) request; returns (x-acs-action, x-acs-version).

    Source: Alibaba Cloud SDK docs, "Request syntax and signature method V3".

    Raises:
        ApiFault: those of :func:`parse_authorization_v3`;
            ``InvalidAccessKeyId.NotFound``; ``MissingAction`` /
            ``MissingVersion`` / ``MissingTimestamp`` /
            ``MissingSignatureNonce`` for a missing ``x-acs-*`` header;
            ``IncompleteSignature`` when ``host`` or ``x-acs-content-sha256``
            is missing or a header that must be signed is not in SignedHeaders
            (or one in it is absent); ``SignatureDoesNotMatch`` when
            ``x-acs-content-sha256`` is not the SHA-256 hex of the body or the
            signature differs; or those of :func:`check_fresh`.
    """
    auth = parse_authorization_v3(request.header("authorization"))
    secret = signing_secret(state, auth.access_key_id, request.header("x-acs-security-token"))
    for name in V3_REQUIRED_HEADERS:
        if not request.header(name):
            code = V3_MISSING_CODES.get(name)
            if code is None:
                raise _incomplete(f"the {name} header is missing")
            raise ApiFault(code, f"{name} is mandatory for this action.")
    must_sign = {*V3_REQUIRED_HEADERS, *(n for n in request.headers if n.startswith("x-acs-") or n == "content-type")}
    signed = set(auth.signed_header_names)
    unsigned = sorted(must_sign - signed)
    if unsigned:
        raise _incomplete(f"header(s) {', '.join(unsigned)} must be signed (SignedHeaders)")
    absent = sorted(name for name in signed if name not in request.headers)
    if absent:
        raise _incomplete(f"signed header(s) {', '.join(absent)} not in the request")
    payload_hash = hashlib.sha256(request.body).hexdigest()
    if request.header("x-acs-content-sha256") != payload_hash:
        raise ApiFault("SignatureDoesNotMatch", "Specified x-acs-content-sha256 is not the SHA-256 of the request body.")
    canonical = canonical_request_v3(request.method, request.path, request.query, request.headers,
                                     auth.signed_headers, payload_hash)
    expected_text = string_to_sign_v3(canonical)
    if not hmac.compare_digest(signature_v3(secret, expected_text).encode(), auth.signature.encode()):
        raise _signature_mismatch(expected_text)
    check_fresh(state, request.header("x-acs-date"), request.header("x-acs-signature-nonce"))
    return request.header("x-acs-action"), request.header("x-acs-version")


def dispatch(state: LabState, name: str, version: str, params: dict[str, str]) -> dict[str, Any]:
    """Call the handler of action ``name`` (API ``version``) with ``params``
    (the throttle of ``AcmelabSetThrottling`` applied first).

    Raises:
        ApiFault: ``InvalidAction.NotFound`` (HTTP 404), the throttle's code,
            or what the handler raises.
    """
    handler = ACTIONS.get((name, version)) or ACTIONS.get((name, None))
    if handler is None:
        raise ApiFault("InvalidAction.NotFound", "Specified api is not found, please check your url and method.", 404)
    if name != "AcmelabSetThrottling":
        with state.lock:
            if state.throttle_remaining > 0:
                state.throttle_remaining -= 1
                raise ApiFault(state.throttle_code, "Request was denied due to user flow control.", 400)
    return handler(state, params)


class LabApiHandler(BaseHTTPRequestHandler):
    """One HTTPS request -> one RPC call (V1 or V3 signed)."""

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

    def do_PUT(self) -> None:  # noqa: N802 (the metadata service's token)
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        # Request lines carry Signature and AccessKeyId, not the secret (a
        # SecurityToken is cut out); log at debug only.
        logger.debug("%s %s", self.address_string(), _SECURITY_TOKEN.sub(r"\1***", format % args))

    def _serve(self) -> None:
        from acmelab.lab.aliyun import sts  # it imports this module

        if urlsplit(self.path).path.startswith(sts.METADATA_PREFIX):
            self._serve_metadata()
            return
        request_id = str(uuid.uuid4()).upper()
        host_id = self.headers.get("Host", "localhost").split(":")[0]
        try:
            answer = self.handle_request(self._read_request())
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
        if self.server.state.api_latency:
            time.sleep(self.server.state.api_latency)  # --api-latency: the network's share
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-acs-request-id", request_id)
        self.end_headers()
        self.wfile.write(data)

    def _serve_metadata(self) -> None:
        """The ECS instance metadata paths (:func:`acmelab.lab.aliyun.sts.serve_metadata`)."""
        from acmelab.lab.aliyun import sts
        status, content_type, data = sts.serve_metadata(self.server.state, self._read_request())
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_request(self) -> LabRequest:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        form: dict[str, str] = {}
        if body and "application/x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
            form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        headers: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        return LabRequest(self.command, url.path or "/", dict(parse_qsl(url.query, keep_blank_values=True)),
                          form, body, headers)

    def handle_request(self, request: LabRequest) -> dict[str, Any]:
        """Authenticate the call (V3 if it has an ``Authorization`` header,
        else V1), then dispatch it by action."""
        state = self.server.state
        if request.header("authorization"):
            name, version = authenticate_v3(state, request)
        else:
            name, version = authenticate_v1(state, request.method, request.params)
        return dispatch(state, name, version, request.params)


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


#: The registry: one handler module per product in this package.  A new
#: product is a new module (its ``@action`` handlers, optionally ``start`` /
#: ``stop`` / ``inventory``) and one line here.
PRODUCTS = (
    "alidns",       # Alibaba Cloud DNS, Alidns 2015-01-09
    "sts",          # STS AssumeRole, Sts 2015-04-01 (+ ECS instance metadata)
    "cdn",          # CDN, Cdn 2018-05-10 (+ its TLS edge)
    "apigateway",   # API Gateway, CloudAPI 2016-07-14 (+ its TLS edge)
    "cas",          # Certificate Management Service, cas 2020-04-07
    "slb",          # Classic Load Balancer, Slb 2014-05-15 (+ its TLS edge)
)


def load_handler_modules() -> list[ModuleType]:
    """Import the product modules of :data:`PRODUCTS` (registering their actions)."""
    return [importlib.import_module(f"{__package__}.{name}") for name in PRODUCTS]


@action("AcmelabDescribeInventory")
def describe_inventory(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """Lab only: what the account owns, merged from each product module's
    ``inventory(state)`` (e.g. ``{"Zones": [...], "CdnDomains": [...],
    "ApiGroups": [...], "LoadBalancers": [...]}``).  Never a key.  Signed
    like any other call."""
    answer: dict[str, Any] = {}
    for module in load_handler_modules():
        inventory = getattr(module, "inventory", None)
        if callable(inventory):
            answer.update(inventory(state))
    return answer


def make_server(listen: tuple[str, int], cert: Path, key: Path, state: LabState) -> LabApiServer:
    """A ready (not yet serving) HTTPS endpoint on ``listen`` with ``cert``/``key``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    load_handler_modules()
    return LabApiServer(listen, state, context)
