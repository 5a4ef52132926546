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

Each JWS needs a fresh anti-replay nonce (§6.5); the server hands one out in
the ``Replay-Nonce`` header of *every* response, so the transport keeps the
newest one and only asks ``newNonce`` (§7.2) when it has none in hand.  It
turns every ``application/problem+json`` answer (§6.7) into a typed
:class:`~acmelab.errors.AcmeProblem`, retries ``badNonce`` with the nonce
that came with the error, and retries connection failures with back-off
where a retry cannot do harm.

Only ``https://`` URLs are sent to (§6.1; ``http://`` only on loopback, for
local test stubs), redirects are never followed, and TLS verification is
never turned off (:func:`checked_verify`).

The transport is not thread-safe: use one per thread.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions

from acmelab import USER_AGENT, jws, keys
from acmelab.errors import AcmeProblem, BadNonce, InputError, NetworkError, ProtocolError

#: seconds: (connect, read) timeout of every HTTP request.
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 30.0)
#: how many times a ``badNonce`` answer is retried (each with the nonce that
#: came with the error).  Pebble rejects a configurable share of good nonces
#: (``PEBBLE_WFE_NONCEREJECT``); at 50% the chance of 25 rejections in a row
#: is 3e-8 per request.
BAD_NONCE_RETRIES = 25
#: tries (first + retries) for a request that failed at the network level.
NETWORK_TRIES = 4
#: seconds: first wait of the network back-off (doubles each try).
NETWORK_BACKOFF = 0.2

JOSE_JSON = "application/jose+json"
PROBLEM_JSON = "application/problem+json"

# RFC 8555 §8.1: a token is base64url text; anything else would end up in a
# DNS record or a file name, so it is refused.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


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


def _is_loopback(host: str | None) -> bool:
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

    Every request is sent without following redirects: an ACME server
    answers 3xx to none of them, and a redirect could lead the signed
    request elsewhere; a 3xx answer is a ProtocolError.

    Attributes:
        request_count: how many HTTP requests were sent to the ACME server
            (including newNonce, retries and the directory).
        new_nonce_url: the directory's ``newNonce`` (set by the client).
        nonce: the nonce in hand for the next signed request, or None (see
            the property).
    """

    def __init__(self, *, verify: bool | str | Path = True,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                 user_agent: str = USER_AGENT, allow_loopback_http: bool = False) -> None:
        # passed with every request: a session-wide verify would lose to
        # the REQUESTS_CA_BUNDLE environment variable
        self.verify: bool | str = checked_verify(verify)
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self.timeout = timeout
        self.allow_loopback_http = allow_loopback_http
        self.request_count = 0
        self.new_nonce_url: str | None = None
        self._nonce: str | None = None

    def close(self) -> None:
        """Close the pooled HTTPS connections."""
        self.session.close()

    # -- plain HTTP with bounded retries ----------------------------------
    def _send(self, method: str, url: str, *, retry_always: bool, **kwargs: Any) -> AcmeResponse:
        """One HTTP request; connection failures are retried with back-off
        when ``retry_always`` (safe to repeat) or when nothing was sent."""
        self.check_url(url)
        for attempt in range(1, NETWORK_TRIES + 1):
            self.request_count += 1
            try:
                response = self.session.request(method, url, timeout=self.timeout, verify=self.verify,
                                                allow_redirects=False, **kwargs)
            except requests.RequestException as error:
                # a certificate that does not verify will not verify next time either
                if isinstance(error, requests.exceptions.SSLError) or attempt == NETWORK_TRIES \
                        or not (retry_always or _not_sent(error)):
                    raise NetworkError(
                        f"{method} {url} failed after {attempt} tr{'y' if attempt == 1 else 'ies'}: "
                        f"{type(error).__name__}: {error}"
                    ) from error
                time.sleep(NETWORK_BACKOFF * 2 ** (attempt - 1))
                continue
            answer = AcmeResponse(url, response.status_code, response.headers, response.content)
            if 300 <= response.status_code < 400:
                raise ProtocolError(f"{method} {url} answered a redirect (HTTP {response.status_code} to "
                                    f"{response.headers.get('Location')!r}); ACME requests never follow one")
            # RFC 8555 §6.5: every response may carry the next nonce; keep it.
            nonce = response.headers.get("Replay-Nonce")
            if nonce:
                self._nonce = nonce
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
                and _is_loopback(parts.hostname):
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

    def get(self, url: str) -> AcmeResponse:
        """Unauthenticated GET -- in ACME only the directory (RFC 8555
        §7.1.1) and renewalInfo (RFC 9773 §4.2); everything else is
        POST-as-GET (§6.3).  Raises
        NetworkError, AcmeProblem, ProtocolError."""
        response = self._send("GET", url, retry_always=True)
        self.raise_for_problem(response)
        return response

    # -- nonces (RFC 8555 §6.5, §7.2) -------------------------------------
    def new_nonce(self) -> str:
        """HEAD newNonce (RFC 8555 §7.2); returns the fresh nonce.

        Raises ProtocolError if the answer has no ``Replay-Nonce``."""
        if not self.new_nonce_url:
            raise ProtocolError("no newNonce URL: fetch the directory first")
        self._nonce = None
        response = self._send("HEAD", self.new_nonce_url, retry_always=True)
        if response.status >= 400:
            raise ProtocolError(f"newNonce answered HTTP {response.status}")
        nonce, self._nonce = self._nonce, None  # handed out: no longer in hand
        if not nonce:
            raise ProtocolError(f"{self.new_nonce_url} answered without a Replay-Nonce header")
        return nonce

    @property
    def nonce(self) -> str | None:
        """The nonce in hand: the ``Replay-Nonce`` of the last answer, used
        (once) by the next signed request; None means that request first
        asks newNonce for one (RFC 8555 §6.5, §7.2).

        Setting it chooses the nonce of the next signed request, e.g. a nonce
        that was already spent, to watch the server answer ``badNonce`` and
        the client retry with the nonce that came with the error
        (``client.transport.nonce = spent``); None drops the nonce in hand.

        Raises (setter):
            InputError: not None and not base64url text (RFC 8555 §6.5.1).
        """
        return self._nonce

    @nonce.setter
    def nonce(self, value: str | None) -> None:
        if value is not None and not (isinstance(value, str) and _TOKEN.match(value)):
            raise InputError(f"a nonce is base64url text (RFC 8555 §6.5.1), not {value!r}")
        self._nonce = value

    def _take_nonce(self) -> str:
        """The nonce in hand (each is used once), else one from newNonce."""
        nonce, self._nonce = self._nonce, None
        return nonce or self.new_nonce()

    # -- the signed POST (RFC 8555 §6.2) -----------------------------------
    def post(self, url: str, payload: Mapping[str, Any] | None, key: keys.PrivateKey, *,
             kid: str | None, idempotent: bool = False, accept: str | None = None) -> AcmeResponse:
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

        Raises:
            AcmeProblem: a problem document (typed subclass); ``badNonce``
                only after BAD_NONCE_RETRIES retries.
            ProtocolError: an error answer that is not a problem document, or
                a success without ``Replay-Nonce``.
            NetworkError: the server could not be reached (after retries).
        """
        headers = {"Content-Type": JOSE_JSON}
        if accept:
            headers["Accept"] = accept
        bad_nonces = lost_answers = 0
        while True:
            body = jws.sign(payload, key, url=url, nonce=self._take_nonce(), kid=kid)
            try:
                response = self._send("POST", url, retry_always=False, data=json.dumps(body), headers=headers)
            except NetworkError:
                lost_answers += 1
                if not idempotent or lost_answers >= NETWORK_TRIES:
                    raise
                time.sleep(NETWORK_BACKOFF * 2 ** lost_answers)
                continue
            try:
                self.raise_for_problem(response)
            except BadNonce:
                # §6.5: retry, signed with the nonce that came with the error
                bad_nonces += 1
                if bad_nonces > BAD_NONCE_RETRIES:
                    raise
                continue
            if "Replay-Nonce" not in response.headers:
                raise ProtocolError(f"{url} answered HTTP {response.status} without a Replay-Nonce header")
            return response
