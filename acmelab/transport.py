"""The ACME transport: HTTP, signing, nonces (RFC 8555 §6).

Theory of operation
-------------------
:class:`AcmeTransport` is the layer under :class:`acmelab.client.AcmeClient`;
a reader can study the one without the other.

Every ACME request but the directory GET and the newNonce HEAD is a POST of
a flattened JWS (RFC 8555 §6.2), signed by :mod:`acmelab.jws` with the
account key (``kid`` header) or, before there is an account and to revoke
with a certificate's own key, with the key itself (``jwk`` header).  A read
of a resource is a POST-as-GET: a signed POST with an empty payload (§6.3).

Each JWS needs a fresh anti-replay nonce (§6.5), good for one request; the
server hands one out in the ``Replay-Nonce`` header of *every* response.
The transport keeps them in a pool (:class:`~acmelab.nonces.NoncePool`): each signed
request takes one out -- so requests sent at the same time from several
threads never share one -- and puts the one of its answer back; only when
the pool is empty does a request ask ``newNonce`` (§7.2).  It turns every
``application/problem+json`` answer (§6.7) into a typed
:class:`~acmelab.errors.AcmeProblem`, retries ``badNonce`` with the nonce
that came with the error (never pooled, so no other request takes it),
and retries connection failures with back-off where a retry cannot do harm.

What goes wrong on the way, and what the transport does about it:

* the connection cannot be made (nothing was sent): retried with back-off,
  NETWORK_TRIES in all, then a one-line :class:`~acmelab.errors.NetworkError`
  naming the URL and the plain reason (``connection refused``);
* the request went out but the answer was lost (the connection closed, a
  read timeout): the CA may have acted, so only a request marked
  ``idempotent`` is sent again; otherwise :class:`~acmelab.errors.AnswerLost`
  goes up to the client, which asks the CA about the resource;
* ``badNonce`` (§6.5): signed again with the nonce of the error, for up to
  BAD_NONCE_TIMEOUT seconds (at most BAD_NONCE_RETRIES times) -- enough for
  a CA that rejects 90% of good nonces;
* HTTP 503 or 429 ``rateLimited`` (§6.6) with a short ``Retry-After``: the
  request was refused, not done, so it is waited for and sent again; a long
  (or no) ``Retry-After`` raises :class:`~acmelab.errors.RateLimited`
  carrying ``retry_after``.

Only ``https://`` URLs are sent to (§6.1; ``http://`` only on loopback, for
local test stubs), redirects are never followed, and TLS verification is
never turned off (:func:`checked_verify`).

The transport is thread-safe: one ``requests.Session`` whose connection
pool keeps up to ``pool_size`` connections alive for concurrent requests
(connections are reused, never one per request), the nonce pool and the
request counter behind locks.
"""

from __future__ import annotations

import email.utils
import http.client
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions

from acmelab import USER_AGENT, jws, keys
from acmelab.nonces import NoncePool
from acmelab.errors import (
    AcmeProblem,
    AnswerLost,
    BadNonce,
    InputError,
    NetworkError,
    ProtocolError,
    RateLimited,
    ServiceUnavailable,
)

#: seconds: (connect, read) timeout of every HTTP request.
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 30.0)
#: seconds: how long one request keeps retrying ``badNonce`` answers (each
#: with the nonce that came with the error).  Pebble rejects a configurable
#: share of good nonces (``PEBBLE_WFE_NONCEREJECT``); a request needs
#: 1/(1-p) tries on average, 10 at 90%, a few milliseconds each in the lab.
BAD_NONCE_TIMEOUT = 30.0
#: at most this many ``badNonce`` retries per request, however fast they
#: come: at 90% rejection the chance of 200 in a row is 7e-10.
BAD_NONCE_RETRIES = 200
#: seconds: a ``Retry-After`` of a 503 or 429 answer up to this long is
#: waited for (then the request is sent again); a longer one raises
#: RateLimited at once.
RETRY_AFTER_MAX_WAIT = 10.0
#: how many 503 / 429 answers one request waits out before giving up.
RETRY_LATER_TRIES = 3
#: tries (first + retries) for a request that failed at the network level.
NETWORK_TRIES = 4
#: seconds: first wait of the network back-off (doubles each try).
NETWORK_BACKOFF = 0.2

#: connections kept alive to the ACME server, the most concurrent
#: requests that do not wait for a connection (see AcmeTransport).
POOL_SIZE = 16

JOSE_JSON = "application/jose+json"
PROBLEM_JSON = "application/problem+json"

# RFC 8555 §8.1: a token is base64url text; anything else would end up in a
# DNS record or a file name, so it is refused.
TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header value.

    Args:
        value: the header value: delay-seconds (``"3"``) or an HTTP-date
            (``"Wed, 21 Oct 2015 07:28:00 GMT"``), RFC 9110 §10.2.3; or None.
        now: the current time (aware datetime), for tests; default: now.

    Returns:
        float seconds >= 0, or None when the header is absent or unreadable.
        A date in the past gives 0.0.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class AcmeResponse:
    """One HTTP answer of the ACME server, read fully.

    Attributes:
        url: the request URL.
        status: HTTP status code.
        headers: the response headers (case-insensitive mapping).
        body: the raw body bytes.
    """

    url: str
    status: int
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-case (``""`` if absent)."""
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def json(self) -> dict[str, Any]:
        """The body as a JSON object.  Raises ProtocolError if it is not one."""
        try:
            document = json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise ProtocolError(
                f"{self.url} answered HTTP {self.status} with a body that is not JSON "
                f"(Content-Type {self.content_type or 'none'!r})"
            ) from None
        if not isinstance(document, dict):
            raise ProtocolError(f"{self.url} answered JSON that is not an object")
        return document

    @property
    def location(self) -> str:
        """The ``Location`` header (an account or order URL, RFC 8555 §7.3,
        §7.4), as an absolute URL (a relative reference is resolved against
        the request URL, RFC 9110 §10.2.2).  Raises ProtocolError if missing."""
        location = self.headers.get("Location")
        if not location:
            raise ProtocolError(f"{self.url} answered HTTP {self.status} without a Location header")
        return urljoin(self.url, location)

    def links(self, rel: str) -> list[str]:
        """Every ``Link`` target with relation ``rel`` (RFC 8288), in order.

        Several ``Link`` headers (and several links in one header) are all
        read, e.g. each ``rel="alternate"`` chain of RFC 8555 §7.4.2.  A
        relative target is resolved against the request URL (RFC 8288 §3.1).
        """
        header = self.headers.get("Link")
        if not header:
            return []
        found = []
        for link in requests.utils.parse_header_links(header):
            if rel in (link.get("rel") or "").split():
                found.append(urljoin(self.url, link["url"]))
        return found

    @property
    def retry_after(self) -> float | None:
        """Seconds from the ``Retry-After`` header, or None (see
        :func:`parse_retry_after`)."""
        return parse_retry_after(self.headers.get("Retry-After"))


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and loopback IP addresses (127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False



def checked_verify(verify: object) -> bool | str:
    """The ``verify=`` to hand to requests: True, or a CA bundle path.

    Args:
        verify: True (the system/certifi CAs) or the path (str or Path) of an
            existing PEM CA bundle file.

    Returns:
        True, or the bundle path as str.

    Raises:
        InputError: anything else -- False, None, ``""``, 0, a missing file.
            requests treats every falsy value as "do not verify", so only
            these two forms are accepted: TLS verification is never off.
    """
    if verify is True:
        return True
    if isinstance(verify, (str, Path)) and str(verify) and Path(verify).is_file():
        return str(verify)
    if isinstance(verify, (str, Path)) and str(verify):
        raise InputError(f"the CA bundle {str(verify)!r} is not an existing file")
    raise InputError(f"TLS verification cannot be turned off: pass verify=True or the path of a CA bundle, "
                     f"not {verify!r}")


def _not_sent(error: requests.RequestException) -> bool:
    """True if the request never reached the server (no connection made),
    so that retrying it cannot do anything twice."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and everything it wraps (causes, contexts, urllib3's
    ``reason`` and exception arguments), outermost first."""
    found: list[BaseException] = []
    todo: list[object] = [error]
    while todo:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or any(item is seen for seen in found):
            continue
        found.append(item)
        todo += [item.__cause__, item.__context__, getattr(item, "reason", None), *item.args]
    return found


def failure_reason(error: requests.RequestException, timeout: object = None) -> str:
    """The plain reason a request failed, without the library's wrapping
    ("HTTPSConnectionPool(...): Max retries exceeded ..."): e.g.
    ``"connection refused"``, ``"no answer within 30 s"``."""
    causes = _causes(error)

    def has(*kinds: type) -> BaseException | None:
        return next((c for c in causes if isinstance(c, kinds)), None)

    if has(ConnectionRefusedError):
        return "connection refused"
    if has(urllib3.exceptions.NameResolutionError, socket.gaierror):
        return "the host name does not resolve"
    verify = has(ssl.SSLCertVerificationError)
    if verify is not None:
        return f"the TLS certificate does not verify ({getattr(verify, 'verify_message', None) or verify})"
    if has(requests.exceptions.SSLError, ssl.SSLError):
        return f"TLS failed ({has(ssl.SSLError) or error})"
    if isinstance(error, requests.ConnectTimeout):
        return "no connection within the timeout"
    if isinstance(error, requests.ReadTimeout) or has(TimeoutError, socket.timeout):
        seconds = timeout[1] if isinstance(timeout, tuple) else timeout
        return f"no answer within {seconds:g} s" if isinstance(seconds, (int, float)) else "no answer in time"
    if has(http.client.RemoteDisconnected, ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
        return "the connection closed before the answer came"
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".rstrip(": ")


class AcmeTransport:
    """HTTPS to one ACME server: nonces, JWS-signed POSTs, problem documents.

    Args:
        verify: requests' ``verify``: True (system CAs) or the path of an
            existing PEM CA bundle (the lab's ``ca_bundle``); anything else
            (False, "", 0, None) is an InputError.  TLS is always verified.
        timeout: seconds (float or (connect, read)) for every request.
        user_agent: the ``User-Agent`` header (RFC 8555 §6.1).
        allow_loopback_http: also allow ``http://`` URLs on a loopback host
            (local test stubs); otherwise every URL must be ``https://``
            (RFC 8555 §6.1), whatever the server's answers point to.

        pool_size: connections kept alive for concurrent requests
            (:data:`POOL_SIZE`; the client passes its concurrency).

    Every request is sent without following redirects: an ACME server
    answers 3xx to none of them, and a redirect could lead the signed
    request elsewhere; a 3xx answer is a ProtocolError.

    Attributes:
        request_count: how many HTTP requests were sent to the ACME server
            (including newNonce, retries and the directory).
        new_nonce_url: the directory's ``newNonce`` (set by the client).
        nonce: the nonce in hand for the next signed request, or None (see
            the property).
        nonces: the :class:`~acmelab.nonces.NoncePool`.
    """

    def __init__(self, *, verify: bool | str | Path = True,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                 user_agent: str = USER_AGENT, allow_loopback_http: bool = False,
                 pool_size: int = POOL_SIZE) -> None:
        # passed with every request: a session-wide verify would lose to
        # the REQUESTS_CA_BUNDLE environment variable
        self.verify: bool | str = checked_verify(verify)
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        # one pool of kept-alive connections per host, as large as the
        # concurrency, so the connections of concurrent requests are kept
        # (beyond urllib3's default of 10 they are opened and thrown away)
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max(1, pool_size))
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.timeout = timeout
        self.allow_loopback_http = allow_loopback_http
        self.request_count = 0
        self._count_lock = threading.Lock()
        self.new_nonce_url: str | None = None
        self.nonces = NoncePool()

    def close(self) -> None:
        """Close the pooled HTTPS connections."""
        self.session.close()

    # -- plain HTTP with bounded retries ----------------------------------
    def _send(self, method: str, url: str, *, retry_always: bool, **kwargs: Any) -> AcmeResponse:
        """One HTTP request; connection failures are retried with back-off
        when ``retry_always`` (safe to repeat) or when nothing was sent.

        Raises:
            NetworkError: no answer after the retries; AnswerLost when the
                request may have reached the server (and was not retried).
        """
        self.check_url(url)
        for attempt in range(1, NETWORK_TRIES + 1):
            with self._count_lock:
                self.request_count += 1
            try:
                response = self.session.request(method, url, timeout=self.timeout, verify=self.verify,
                                                allow_redirects=False, **kwargs)
            except requests.RequestException as error:
                # a certificate that does not verify will not verify next time either
                tls = isinstance(error, requests.exceptions.SSLError)
                maybe_sent = not (tls or _not_sent(error))
                if tls or attempt == NETWORK_TRIES or (maybe_sent and not retry_always):
                    kind = AnswerLost if maybe_sent and not retry_always else NetworkError
                    tries = f"after {attempt} tr{'y' if attempt == 1 else 'ies'}"
                    raise kind(f"{url}: {failure_reason(error, self.timeout)} ({tries})", url=url) from error
                time.sleep(NETWORK_BACKOFF * 2 ** (attempt - 1))
                continue
            answer = AcmeResponse(url, response.status_code, response.headers, response.content)
            if 300 <= response.status_code < 400:
                raise ProtocolError(f"{method} {url} answered a redirect (HTTP {response.status_code} to "
                                    f"{response.headers.get('Location')!r}); ACME requests never follow one")
            # RFC 8555 §6.5: every response may carry a nonce; the caller
            # keeps it (post: in the pool, or for its own badNonce retry)
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def check_url(self, url: str) -> None:
        """Refuse a URL the transport must not send to: anything but
        ``https://`` (RFC 8555 §6.1), except ``http://`` on a loopback host
        when ``allow_loopback_http``.  The URLs come from the server
        (directory entries, Location, Link, order, authorization, challenge
        and certificate URLs), so this is a ProtocolError."""
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is not None and parts.scheme == "https" and parts.hostname:
            return
        if parts is not None and parts.scheme == "http" and self.allow_loopback_http \
                and is_loopback(parts.hostname):
            return
        raise ProtocolError(f"refusing to send to {url!r}: ACME URLs must be https:// (RFC 8555 §6.1)")

    @staticmethod
    def raise_for_problem(response: AcmeResponse) -> None:
        """Raise the typed AcmeProblem for a problem document (RFC 8555
        §6.7), or ProtocolError for any other error answer."""
        if response.content_type == PROBLEM_JSON:
            raise AcmeProblem.from_document(response.json(), response.status)
        if response.status >= 400:
            raise ProtocolError(
                f"{response.url} answered HTTP {response.status} without a problem document "
                f"(Content-Type {response.content_type or 'none'!r})"
            )

    def get(self, url: str, *, deadline: float | None = None) -> AcmeResponse:
        """Unauthenticated GET -- in ACME only the directory (RFC 8555
        §7.1.1) and renewalInfo (RFC 9773 §4.2); everything else is
        POST-as-GET (§6.3).  A short ``Retry-After`` of a 503 / 429 answer
        is waited for (see :meth:`post`).  Raises
        NetworkError, AcmeProblem (RateLimited), ProtocolError."""
        for refused in range(RETRY_LATER_TRIES + 1):
            response = self._send("GET", url, retry_always=True)
            self.nonces.put(response.headers.get("Replay-Nonce"))
            if not self._waited_for_retry_after(response, refused, deadline):
                break
        self.raise_for_problem(response)
        return response

    @staticmethod
    def _waited_for_retry_after(response: AcmeResponse, refused: int, deadline: float | None) -> bool:
        """For a 503 or a 429 answer (RFC 9110 §15.6.4, RFC 8555 §6.6),
        which means the request was *not* done: wait its ``Retry-After`` and
        return True (send it again) if that is short -- at most
        RETRY_AFTER_MAX_WAIT and within ``deadline`` (``time.monotonic()``
        value, None: none) -- and fewer than RETRY_LATER_TRIES were waited
        out already.  Otherwise raise RateLimited (ServiceUnavailable for a
        503) with its ``retry_after``.  Any other answer: False."""
        if response.status not in (429, 503):
            return False
        wait = response.retry_after
        left = RETRY_AFTER_MAX_WAIT if deadline is None else min(RETRY_AFTER_MAX_WAIT, deadline - time.monotonic())
        if wait is not None and wait <= left and refused < RETRY_LATER_TRIES:
            time.sleep(wait)
            return True
        document: Mapping[str, Any] = {}
        if response.content_type == PROBLEM_JSON:
            document = response.json()
        later = f"; retry after {wait:.0f} s" if wait is not None else ""
        if response.status == 503:
            problem: AcmeProblem = ServiceUnavailable(
                str(document.get("type") or "about:blank"),
                f"{response.url} is unavailable (HTTP 503){later}: {document.get('detail', '')}".rstrip(": "),
                503, document=document)
        elif document:
            problem = AcmeProblem.from_document(document, 429)
        else:
            problem = RateLimited("urn:ietf:params:acme:error:rateLimited", f"HTTP 429 from {response.url}{later}",
                                  429)
        problem.retry_after = wait
        raise problem

    # -- nonces (RFC 8555 §6.5, §7.2) -------------------------------------
    def new_nonce(self) -> str:
        """HEAD newNonce (RFC 8555 §7.2); returns the fresh nonce.

        Raises ProtocolError if the answer has no ``Replay-Nonce``."""
        if not self.new_nonce_url:
            raise ProtocolError("no newNonce URL: fetch the directory first")
        response = self._send("HEAD", self.new_nonce_url, retry_always=True)
        if response.status >= 400:
            raise ProtocolError(f"newNonce answered HTTP {response.status}")
        nonce = response.headers.get("Replay-Nonce")  # handed out, never pooled
        if not nonce:
            raise ProtocolError(f"{self.new_nonce_url} answered without a Replay-Nonce header")
        return nonce

    @property
    def nonce(self) -> str | None:
        """The nonce the next signed request takes (once) from the pool:
        the ``Replay-Nonce`` of the last answer; None means that request
        first asks newNonce for one (RFC 8555 §6.5, §7.2).

        Setting it chooses the nonce of the next signed request, e.g. a nonce
        that was already spent, to watch the server answer ``badNonce`` and
        the client retry with the nonce that came with the error
        (``client.transport.nonce = spent``); either way the other nonces in
        hand are dropped, so None makes the next request ask newNonce.

        Raises (setter):
            InputError: not None and not base64url text (RFC 8555 §6.5.1).
        """
        return self.nonces.peek()

    @nonce.setter
    def nonce(self, value: str | None) -> None:
        if value is not None and not (isinstance(value, str) and TOKEN.match(value)):
            raise InputError(f"a nonce is base64url text (RFC 8555 §6.5.1), not {value!r}")
        self.nonces.clear()
        self.nonces.put(value)

    def _take_nonce(self) -> str:
        """A nonce from the pool (each is used once), else one from newNonce."""
        return self.nonces.take() or self.new_nonce()

    # -- the signed POST (RFC 8555 §6.2) -----------------------------------
    def post(self, url: str, payload: Mapping[str, Any] | None, key: keys.PrivateKey, *,
             kid: str | None, idempotent: bool = False, accept: str | None = None,
             deadline: float | None = None) -> AcmeResponse:
        """POST a JWS-signed request and return the successful answer.

        Args:
            url: the request URL (also the JWS ``url`` header, §6.4).
            payload: the request object; None for POST-as-GET (§6.3).
            key: the signing key (account key; a certificate key to revoke).
            kid: the account URL (``kid`` header) or None for a ``jwk`` header.
            idempotent: True when doing the request twice does no harm, so
                one whose answer was lost may be sent again -- signed anew
                with a fresh nonce, since a nonce is good for one request.
            accept: the ``Accept`` header (e.g. PEM for certificates).
            deadline: ``time.monotonic()`` value no ``Retry-After`` wait may
                pass (None: only RETRY_AFTER_MAX_WAIT bounds the waits).

        Raises:
            AcmeProblem: a problem document (typed subclass); ``badNonce``
                only after BAD_NONCE_TIMEOUT seconds (or BAD_NONCE_RETRIES
                retries); RateLimited (ServiceUnavailable for HTTP 503) with
                ``retry_after`` when the CA asks to come back later than
                the transport waits.
            ProtocolError: an error answer that is not a problem document, or
                a success without ``Replay-Nonce``.
            AnswerLost: the answer of a request that is not ``idempotent``
                was lost -- the server may have acted on it.
            NetworkError: the server could not be reached (after retries).
        """
        headers = {"Content-Type": JOSE_JSON}
        if accept:
            headers["Accept"] = accept
        bad_nonces = lost_answers = refused = 0
        bad_nonce_deadline = time.monotonic() + BAD_NONCE_TIMEOUT
        nonce: str | None = None  # the nonce a badNonce answer carried
        while True:
            body = jws.sign(payload, key, url=url, nonce=nonce or self._take_nonce(), kid=kid)
            nonce = None
            try:
                response = self._send("POST", url, retry_always=False, data=json.dumps(body), headers=headers)
            except AnswerLost:
                lost_answers += 1
                if not idempotent or lost_answers >= NETWORK_TRIES:
                    raise
                time.sleep(NETWORK_BACKOFF * 2 ** lost_answers)
                continue
            fresh = response.headers.get("Replay-Nonce")
            try:
                if self._waited_for_retry_after(response, refused, deadline):
                    refused += 1
                    self.nonces.put(fresh)
                    continue
                self.raise_for_problem(response)
            except BadNonce:
                # §6.5: retry, signed with the nonce that came with the error
                bad_nonces += 1
                if bad_nonces > BAD_NONCE_RETRIES or time.monotonic() > bad_nonce_deadline:
                    self.nonces.put(fresh)
                    raise
                nonce = fresh
                continue
            except BaseException:
                self.nonces.put(fresh)
                raise
            self.nonces.put(fresh)
            if "Replay-Nonce" not in response.headers:
                raise ProtocolError(f"{url} answered HTTP {response.status} without a Replay-Nonce header")
            return response
