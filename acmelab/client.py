"""The RFC 8555 (ACME v2) client, on ``cryptography`` + ``requests``.

Theory of operation
-------------------
The module has two layers, so a reader can study one without the other.

1. :class:`AcmeTransport` -- "HTTP, signing, nonces".  Every ACME request
   but the directory GET and the newNonce HEAD is a POST of a flattened JWS
   (RFC 8555 §6.2).  Each JWS needs a fresh anti-replay nonce (§6.5); the
   server hands one out in the ``Replay-Nonce`` header of *every* response,
   so the transport keeps the newest one and only asks ``newNonce`` when it
   has none in hand.  It turns every ``application/problem+json`` answer
   (§6.7) into a typed :class:`~acmelab.errors.AcmeProblem`, retries
   ``badNonce`` with the nonce that came with the error, and retries
   connection failures with back-off where a retry cannot do harm.

2. :class:`AcmeClient` -- "what the RFC says".  One method per RFC action,
   in the order a certificate's life runs through them: directory (§7.1.1),
   account (§7.3), order (§7.4), authorization and challenge (§7.5, §8),
   finalize (§7.4), certificate download (§7.4.2), revocation (§7.6).  The
   server's JSON objects come back as frozen dataclasses (:class:`Account`,
   :class:`Order`, :class:`Authorization`, :class:`Challenge`) whose
   attributes keep the RFC's field names; the whole JSON is in ``.json``.

The life of an order (§7.1.6)::

    order:          pending --(all authorizations valid)--> ready
                    ready --(finalize)--> processing --> valid (certificate)
                    any --(an authorization failed / expired)--> invalid
    authorization:  pending --(a challenge valid)--> valid;  else invalid
    challenge:      pending --(answer_challenge)--> processing --> valid | invalid

The client is not thread-safe: use one per thread.
"""

from __future__ import annotations

import email.utils
import hashlib
import ipaddress
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import IntEnum
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtensionOID, NameOID

from acmelab import USER_AGENT, jws, keys
from acmelab.dns import validation_name
from acmelab.errors import (
    AcmeProblem,
    BadNonce,
    ChallengeFailed,
    InputError,
    NetworkError,
    OrderNotReady,
    PollTimeout,
    ProtocolError,
)

__all__ = [
    "AcmeClient",
    "AcmeTransport",
    "AcmeResponse",
    "Directory",
    "Account",
    "Order",
    "Authorization",
    "Challenge",
    "CertificateChain",
    "ReasonCode",
    "parse_retry_after",
    "checked_verify",
    "chain_matches",
]

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
#: seconds: the first wait of a polling loop when the server sends no
#: ``Retry-After``; it doubles each round up to POLL_MAX_DELAY (5, 10, 20,
#: 40 ms ... 2 s).  Pebble validates in 1-3 ms in the lab, so one poll
#: usually finds the final status; Let's Encrypt takes about a second, which
#: this back-off reaches in 8 polls.
POLL_FIRST_DELAY = 0.005
POLL_MAX_DELAY = 2.0
#: seconds: default overall deadline of a polling loop.
POLL_TIMEOUT = 90.0

JOSE_JSON = "application/jose+json"
PEM_CHAIN = "application/pem-certificate-chain"
PROBLEM_JSON = "application/problem+json"

# RFC 8555 §8.1: a token is base64url text; anything else would end up in a
# DNS record or a file name, so it is refused.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


class ReasonCode(IntEnum):
    """Certificate revocation reasons (RFC 5280 §5.3.1; RFC 8555 §7.6).

    Value 7 is unused in RFC 5280.  Let's Encrypt (and Pebble) accept only
    unspecified, keyCompromise, superseded, cessationOfOperation and
    affiliationChanged from subscribers.
    """

    unspecified = 0
    keyCompromise = 1
    cACompromise = 2
    affiliationChanged = 3
    superseded = 4
    cessationOfOperation = 5
    certificateHold = 6
    removeFromCRL = 8
    privilegeWithdrawn = 9
    aACompromise = 10


# ==========================================================================
# Transport: HTTP, nonces, signed POST, problem documents, retries
# ==========================================================================

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
        §7.4).  Raises ProtocolError if missing."""
        location = self.headers.get("Location")
        if not location:
            raise ProtocolError(f"{self.url} answered HTTP {self.status} without a Location header")
        return location

    def links(self, rel: str) -> list[str]:
        """Every ``Link`` target with relation ``rel`` (RFC 8288), in order.

        Several ``Link`` headers (and several links in one header) are all
        read, e.g. each ``rel="alternate"`` chain of RFC 8555 §7.4.2.
        """
        header = self.headers.get("Link")
        if not header:
            return []
        found = []
        for link in requests.utils.parse_header_links(header):
            if rel in (link.get("rel") or "").split():
                found.append(link["url"])
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
        §7.1.1); everything else is POST-as-GET (§6.3).  Raises
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


# ==========================================================================
# The ACME objects (RFC 8555 §7.1), as the server sent them
# ==========================================================================

def _identifier(value: Any, where: str) -> dict[str, str]:
    """An identifier object (RFC 8555 §7.1.3, §7.1.4): ``{"type", "value"}``
    with string values.  Raises ProtocolError for anything else."""
    if not (isinstance(value, Mapping) and isinstance(value.get("type"), str)
            and isinstance(value.get("value"), str)):
        raise ProtocolError(f"{where}: an identifier must be an object with string type and value, not {value!r}")
    return dict(value)


def _list_of(document: Mapping[str, Any], field_name: str, where: str) -> list[Any]:
    """``document[field_name]`` as a list ([] if absent or null).  Raises
    ProtocolError if it is something else."""
    value = document.get(field_name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProtocolError(f"{where}: {field_name!r} must be an array, not {value!r}")
    return value


def _optional_str(document: Mapping[str, Any], field_name: str, where: str) -> str | None:
    value = document.get(field_name)
    if value is not None and not isinstance(value, str):
        raise ProtocolError(f"{where}: {field_name!r} must be a string, not {value!r}")
    return value


@dataclass(frozen=True)
class Directory:
    """The directory object (RFC 8555 §7.1.1): the URLs of every action."""

    newNonce: str
    newAccount: str
    newOrder: str
    revokeCert: str
    keyChange: str
    newAuthz: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    json: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> "Directory":
        """Raises ProtocolError when a required URL is missing."""
        missing = [name for name in ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange")
                   if not isinstance(document.get(name), str)]
        if missing:
            raise ProtocolError(f"the ACME directory lacks {', '.join(missing)}")
        return cls(document["newNonce"], document["newAccount"], document["newOrder"],
                   document["revokeCert"], document["keyChange"], document.get("newAuthz"),
                   document.get("meta") or {}, document)


@dataclass(frozen=True)
class Account:
    """An account object (RFC 8555 §7.1.2) and its URL (the JWS ``kid``)."""

    url: str
    status: str
    contact: tuple[str, ...] = ()
    orders: str | None = None
    termsOfServiceAgreed: bool | None = None
    json: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, url: str, document: Mapping[str, Any]) -> "Account":
        """Raises ProtocolError when ``contact`` is not an array of strings
        or ``orders`` not a URL (RFC 8555 §7.1.2)."""
        where = f"the account {url}"
        contact = _list_of(document, "contact", where)
        if not all(isinstance(c, str) for c in contact):
            raise ProtocolError(f"{where}: 'contact' must be an array of URLs")
        return cls(url, str(document.get("status", "")), tuple(contact),
                   _optional_str(document, "orders", where), document.get("termsOfServiceAgreed"), document)


@dataclass(frozen=True)
class Challenge:
    """A challenge object (RFC 8555 §7.1.5, §8).

    ``error`` is the CA's problem as an AcmeProblem (or None).
    """

    url: str
    type: str
    status: str
    token: str = ""
    validated: str | None = None
    error: AcmeProblem | None = None
    json: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, document: Mapping[str, Any], url: str | None = None) -> "Challenge":
        error = document.get("error")
        problem = AcmeProblem.from_document(error) if isinstance(error, Mapping) else None
        return cls(url or str(document.get("url", "")), str(document.get("type", "")),
                   str(document.get("status", "")), str(document.get("token", "")),
                   document.get("validated"), problem, document)


@dataclass(frozen=True)
class Authorization:
    """An authorization object (RFC 8555 §7.1.4): one identifier and the
    challenges that can prove control of it."""

    url: str
    status: str
    identifier: Mapping[str, str]
    challenges: tuple[Challenge, ...] = ()
    wildcard: bool = False
    expires: str | None = None
    json: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, url: str, document: Mapping[str, Any]) -> "Authorization":
        """Raises ProtocolError when ``identifier`` is not an identifier
        object or ``challenges`` is not an array (RFC 8555 §7.1.4)."""
        where = f"the authorization {url}"
        identifier = _identifier(document.get("identifier"), where)
        challenges = _list_of(document, "challenges", where)
        return cls(url, str(document.get("status", "")), identifier,
                   tuple(Challenge.from_json(c) for c in challenges if isinstance(c, Mapping)),
                   document.get("wildcard") is True, _optional_str(document, "expires", where), document)

    @property
    def name(self) -> str:
        """The identifier value; ``"*."`` + value for a wildcard (§7.1.3)."""
        value = self.identifier.get("value", "")
        return f"*.{value}" if self.wildcard else value

    def challenge(self, type: str) -> Challenge:
        """The offered challenge of ``type`` (e.g. ``"dns-01"``).

        Raises ProtocolError if the CA offers none of that type."""
        for challenge in self.challenges:
            if challenge.type == type:
                return challenge
        offered = ", ".join(c.type for c in self.challenges) or "none"
        raise ProtocolError(f"the CA offers no {type} challenge for {self.name} (offered: {offered})")

    @property
    def problem(self) -> AcmeProblem | None:
        """The first challenge error, if any (why an authorization is invalid)."""
        return next((c.error for c in self.challenges if c.error is not None), None)


@dataclass(frozen=True)
class Order:
    """An order object (RFC 8555 §7.1.3) and its URL."""

    url: str
    status: str
    identifiers: tuple[Mapping[str, str], ...]
    authorizations: tuple[str, ...]
    finalize: str
    certificate: str | None = None
    expires: str | None = None
    notBefore: str | None = None
    notAfter: str | None = None
    error: AcmeProblem | None = None
    json: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, url: str, document: Mapping[str, Any]) -> "Order":
        """Raises ProtocolError when ``identifiers`` is not an array of
        identifier objects, ``authorizations`` not an array of URLs, or a
        URL field not a string (RFC 8555 §7.1.3)."""
        where = f"the order {url}"
        error = document.get("error")
        identifiers = tuple(_identifier(i, where) for i in _list_of(document, "identifiers", where))
        authorizations = _list_of(document, "authorizations", where)
        if not all(isinstance(a, str) for a in authorizations):
            raise ProtocolError(f"{where}: 'authorizations' must be an array of URLs")
        return cls(url, str(document.get("status", "")), identifiers, tuple(authorizations),
                   _optional_str(document, "finalize", where) or "",
                   _optional_str(document, "certificate", where), _optional_str(document, "expires", where),
                   _optional_str(document, "notBefore", where), _optional_str(document, "notAfter", where),
                   AcmeProblem.from_document(error) if isinstance(error, Mapping) else None, document)

    @property
    def names(self) -> list[str]:
        """The DNS identifier values, in the order's order."""
        return [i.get("value", "") for i in self.identifiers]


@dataclass(frozen=True)
class CertificateChain:
    """A certificate chain as downloaded (RFC 8555 §7.4.2).

    Attributes:
        url: the certificate URL it came from.
        pem: the whole ``application/pem-certificate-chain`` text: the leaf
            first, then the intermediates (no root, normally).
        alternates: URLs of the other chains the CA offers
            (``Link: <...>;rel="alternate"``).
    """

    url: str
    pem: str
    alternates: tuple[str, ...] = ()

    @property
    def certificates(self) -> list[x509.Certificate]:
        """The chain's certificates, leaf first.  Raises ProtocolError for
        a body without a PEM certificate."""
        try:
            certificates = x509.load_pem_x509_certificates(self.pem.encode("ascii"))
        except ValueError:
            raise ProtocolError(f"{self.url} did not answer a PEM certificate chain") from None
        return certificates

    @property
    def leaf_pem(self) -> str:
        """The end-entity certificate alone, PEM."""
        return self.certificates[0].public_bytes(serialization.Encoding.PEM).decode("ascii")

    @property
    def top(self) -> x509.Certificate:
        """The topmost certificate (closest to the root)."""
        return self.certificates[-1]


def _common_name(name: x509.Name) -> str | None:
    attributes = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attributes[0].value) if attributes else None


def chain_matches(chain: CertificateChain, preferred: str, *, issuer: bool = False) -> bool:
    """Does ``preferred`` name the chain's topmost certificate exactly?

    Args:
        chain: a downloaded chain.
        preferred: a subject common name (``"Pebble Intermediate CA 1a2b3c"``)
            or a full RFC 4514 distinguished name (``"CN=...,O=..."``).
        issuer: compare with the topmost certificate's issuer (the root the
            chain leads to) instead of its subject.
    """
    name = chain.top.issuer if issuer else chain.top.subject
    return preferred in (_common_name(name), name.rfc4514_string())


def _csr_names(csr: x509.CertificateSigningRequest) -> set[str]:
    """Lower-cased DNS names of a CSR: its SANs and its subject CN."""
    names = set()
    try:
        san = csr.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        names.update(n.lower() for n in san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        pass
    common_name = _common_name(csr.subject)
    if common_name:
        names.add(common_name.lower())
    return names


def _load_certificate(certificate: x509.Certificate | str | bytes) -> x509.Certificate:
    if isinstance(certificate, x509.Certificate):
        return certificate
    data = certificate.encode("ascii", "replace") if isinstance(certificate, str) else certificate
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificates(data)[0]
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise InputError("not a PEM or DER certificate") from None


# ==========================================================================
# The client: RFC 8555 actions, in the order a certificate lives them
# ==========================================================================

class AcmeClient:
    """An ACME v2 client for one account key (RFC 8555).

    Args:
        directory_url: the directory, e.g.
            ``"https://acme-staging-v02.api.letsencrypt.org/directory"`` or the
            lab's ``directory_url``.  ``http://`` only on a loopback host
            (local test stubs); only then are the server's ``http://``
            (loopback) URLs followed -- otherwise every URL the server
            hands out must be ``https://`` (ProtocolError).
        account_key: the account private key (:mod:`acmelab.keys`).
        verify: True (system CAs) or the path of a PEM CA bundle to trust
            (the lab's ``ca_bundle``).  Anything else -- False, "", 0, None, a
            missing file -- is refused (InputError, see :func:`checked_verify`).
        account_url: the account URL if already known (skips new_account).
        timeout: seconds per HTTP request (float or (connect, read)).
        user_agent: the ``User-Agent`` header (RFC 8555 §6.1).

    Attributes:
        account_url: the account URL, used as JWS ``kid`` (§6.2).
        account_key: the current account key (changed by change_key).

    Every method may raise :class:`~acmelab.errors.AcmeProblem` (a typed
    subclass per problem type), ProtocolError and NetworkError.
    """

    def __init__(self, directory_url: str, account_key: keys.PrivateKey, *,
                 verify: bool | str | Path = True, account_url: str | None = None,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                 user_agent: str = USER_AGENT) -> None:
        parts = urlsplit(directory_url) if isinstance(directory_url, str) else None
        local_http = parts is not None and parts.scheme == "http" and _is_loopback(parts.hostname)
        if parts is None or not (parts.scheme == "https" and parts.hostname or local_http):
            raise InputError(f"the directory URL must be an https:// URL (http:// only on loopback, for "
                             f"local stubs), not {directory_url!r}")
        keys.jws_algorithm(account_key)  # InputError for an unsupported key
        self.directory_url = directory_url
        self.account_key = account_key
        self.account_url = account_url
        # http:// URLs (on loopback) are followed only when the directory itself is one
        self.transport = AcmeTransport(verify=verify, timeout=timeout, user_agent=user_agent,
                                       allow_loopback_http=local_http)
        self._directory: Directory | None = None

    def __repr__(self) -> str:
        return (f"AcmeClient({self.directory_url!r}, key={keys.key_type_of(self.account_key)}, "
                f"account_url={self.account_url!r})")

    def close(self) -> None:
        """Close the HTTPS connections."""
        self.transport.close()

    def __enter__(self) -> "AcmeClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def request_count(self) -> int:
        """HTTP requests sent to the ACME server so far (all kinds)."""
        return self.transport.request_count

    # -- helpers: requests signed by the account key (kid) -------------------
    def _kid(self) -> str:
        if not self.account_url:
            raise InputError("no account yet: call new_account() or find_account() first")
        return self.account_url

    def _post(self, url: str, payload: Mapping[str, Any] | None, *, idempotent: bool = False,
              accept: str | None = None) -> AcmeResponse:
        """A request signed by the account key with ``kid`` (§6.2)."""
        self.directory  # the newNonce URL, should no nonce be in hand
        return self.transport.post(url, payload, self.account_key, kid=self._kid(),
                                   idempotent=idempotent, accept=accept)

    def _post_as_get(self, url: str, *, accept: str | None = None) -> AcmeResponse:
        """POST-as-GET (§6.3): a signed POST with an empty payload."""
        return self._post(url, None, idempotent=True, accept=accept)

    # ------------------------------------------------------------------
    # §7.1.1 directory
    # ------------------------------------------------------------------
    @property
    def directory(self) -> Directory:
        """The directory (RFC 8555 §7.1.1), fetched once with a plain GET."""
        if self._directory is None:
            self._directory = Directory.from_json(self.transport.get(self.directory_url).json())
            self.transport.new_nonce_url = self._directory.newNonce
        return self._directory

    @property
    def terms_of_service(self) -> str | None:
        """The CA's terms of service URL (directory ``meta.termsOfService``)."""
        return self.directory.meta.get("termsOfService")

    # ------------------------------------------------------------------
    # §7.3 accounts
    # ------------------------------------------------------------------
    def new_account(self, contact: Sequence[str] = (), *, terms_of_service_agreed: bool = True,
                    eab_kid: str | None = None, eab_hmac_key: bytes | str | None = None) -> Account:
        """Create the account of this key, or get it if it exists (§7.3).

        Args:
            contact: contact URLs, e.g. ``["mailto:admin@example.com"]``.
            terms_of_service_agreed: the ``termsOfServiceAgreed`` field.
            eab_kid, eab_hmac_key: External Account Binding (§7.3.4): the key
                identifier and MAC key (bytes or base64url) the CA gave out.

        Returns:
            the Account; ``self.account_url`` is set to its URL.

        Raises:
            InputError: only one of eab_kid / eab_hmac_key given.
            ExternalAccountRequired, InvalidContact, ...: the CA's problem.
        """
        if (eab_kid is None) != (eab_hmac_key is None):
            raise InputError("External Account Binding needs both eab_kid and eab_hmac_key")
        url = self.directory.newAccount
        payload: dict[str, Any] = {"termsOfServiceAgreed": bool(terms_of_service_agreed)}
        if contact:
            payload["contact"] = list(contact)
        if eab_kid is not None:
            # §7.3.4: the account key's JWK, MACed with the CA-issued key
            payload["externalAccountBinding"] = jws.external_account_binding(
                self.account_key, eab_kid=eab_kid, hmac_key=eab_hmac_key, url=url)
        # §7.3: signed with jwk (no account yet); 201 new, 200 existing account
        response = self.transport.post(url, payload, self.account_key, kid=None, idempotent=True)
        self.account_url = response.location
        return Account.from_json(self.account_url, response.json())

    def find_account(self) -> Account:
        """Look up the existing account of this key (§7.3.1,
        ``onlyReturnExisting``); sets ``self.account_url``.

        Raises AccountDoesNotExist if the key has no account."""
        response = self.transport.post(
            self.directory.newAccount, {"onlyReturnExisting": True}, self.account_key,
            kid=None, idempotent=True)
        self.account_url = response.location
        return Account.from_json(self.account_url, response.json())

    def fetch_account(self) -> Account:
        """The account object, by POST-as-GET to the account URL (§7.3.3)."""
        response = self._post_as_get(self._kid())
        return Account.from_json(self._kid(), response.json())

    def update_account(self, contact: Sequence[str]) -> Account:
        """Replace the account's contacts (§7.3.2); ``[]`` removes them all.

        Raises InvalidContact / UnsupportedContact from the CA."""
        response = self._post(self._kid(), {"contact": list(contact)}, idempotent=True)
        return Account.from_json(self._kid(), response.json())

    def change_key(self, new_key: keys.PrivateKey) -> Account:
        """Roll the account over to ``new_key`` (§7.3.5, keyChange).

        The inner JWS (signed by the new key) goes inside an outer JWS signed
        by the old key; on success ``self.account_key`` becomes ``new_key``.

        Raises InputError (same key / unsupported key) before sending."""
        url = self.directory.keyChange
        inner = jws.key_change(account_url=self._kid(), old_key=self.account_key, new_key=new_key, url=url)
        response = self._post(url, inner)
        self.account_key = new_key
        body = response.json() if response.body.strip() else {}
        return Account.from_json(self._kid(), body) if body else self.fetch_account()

    def deactivate_account(self) -> Account:
        """Deactivate the account for good (§7.3.6).  Later requests signed
        by its key fail with ``unauthorized``."""
        response = self._post(self._kid(), {"status": "deactivated"})
        return Account.from_json(self._kid(), response.json())

    # ------------------------------------------------------------------
    # §7.4 orders
    # ------------------------------------------------------------------
    def new_order(self, names: Iterable[str], *, not_before: str | None = None,
                  not_after: str | None = None) -> Order:
        """Apply for a certificate (§7.4, newOrder).

        Args:
            names: DNS names, wildcards as ``"*.example.com"``; sent as given
                (normalise them with :func:`acmelab.csr.normalize_name`).
            not_before, not_after: optional RFC 3339 dates.

        Returns:
            the new Order (status ``pending``, or ``ready`` when every
            authorization was reused).

        Raises:
            InputError: no names.  RejectedIdentifier, ...: from the CA.
        """
        names = list(names)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise InputError("an order needs at least one non-empty DNS name")
        payload: dict[str, Any] = {"identifiers": [{"type": "dns", "value": n} for n in names]}
        if not_before:
            payload["notBefore"] = not_before
        if not_after:
            payload["notAfter"] = not_after
        response = self._post(self.directory.newOrder, payload)
        return Order.from_json(response.location, response.json())

    def fetch_order(self, url: str) -> Order:
        """The order at ``url`` (POST-as-GET, §7.1.3)."""
        return Order.from_json(url, self._post_as_get(url).json())

    def list_orders(self, account: Account | None = None) -> list[str]:
        """Every order URL of the account, following ``Link: rel="next"``
        pages (§7.1.2.1).  Raises ProtocolError if the account has no
        ``orders`` URL."""
        account = account or self.fetch_account()
        if not account.orders:
            raise ProtocolError("the account object has no orders URL")
        urls: list[str] = []
        page: str | None = account.orders
        seen = set()
        while page and page not in seen:
            seen.add(page)
            response = self._post_as_get(page)
            urls.extend(response.json().get("orders") or [])
            following = response.links("next")
            page = following[0] if following else None
        return urls

    # ------------------------------------------------------------------
    # §7.5 authorizations and §8 challenges
    # ------------------------------------------------------------------
    def fetch_authorization(self, url: str) -> Authorization:
        """The authorization at ``url`` (POST-as-GET, §7.5)."""
        return Authorization.from_json(url, self._post_as_get(url).json())

    def deactivate_authorization(self, url: str) -> Authorization:
        """Give up an authorization (§7.5.2); it becomes ``deactivated``."""
        return Authorization.from_json(url, self._post(url, {"status": "deactivated"}).json())

    def fetch_challenge(self, url: str) -> Challenge:
        """The challenge at ``url`` (POST-as-GET, §7.5.1)."""
        return Challenge.from_json(self._post_as_get(url).json(), url)

    def key_authorization(self, challenge: Challenge | str) -> str:
        """token + "." + the account key's JWK thumbprint (§8.1).

        Raises ProtocolError for a token that is not base64url text."""
        token = challenge.token if isinstance(challenge, Challenge) else challenge
        if not isinstance(token, str) or not _TOKEN.match(token):
            raise ProtocolError(f"the challenge token {token!r} is not base64url text (RFC 8555 §8.1)")
        return f"{token}.{keys.thumbprint(self.account_key)}"

    def dns01_txt_value(self, challenge: Challenge | str) -> str:
        """The TXT record value for dns-01: base64url(SHA-256(key
        authorization)) (§8.4), 43 characters."""
        digest = hashlib.sha256(self.key_authorization(challenge).encode("ascii")).digest()
        return jws.b64url(digest)

    @staticmethod
    def dns01_name(authorization: Authorization | str) -> str:
        """Where the dns-01 TXT record goes: ``_acme-challenge.<domain>``
        (§8.4); a wildcard ``*.example.com`` validates at
        ``_acme-challenge.example.com``."""
        if isinstance(authorization, Authorization):
            return validation_name(authorization.identifier.get("value", ""))
        return validation_name(authorization)

    def http01_body(self, challenge: Challenge | str) -> str:
        """The body to serve at ``/.well-known/acme-challenge/<token>`` for
        http-01 (§8.3): the key authorization."""
        return self.key_authorization(challenge)

    def answer_challenge(self, challenge: Challenge) -> Challenge:
        """Tell the CA the challenge is ready to be validated: POST ``{}``
        to its URL (§7.5.1).  Returns the challenge (usually
        ``processing``)."""
        self.key_authorization(challenge)  # refuse a malformed token before answering
        return Challenge.from_json(self._post(challenge.url, {}, idempotent=True).json(), challenge.url)

    # -- polling (§7.5.1, §7.4): wait, fetch, until a final status --------
    def _poll(self, fetch: Callable[[str], tuple[Any, AcmeResponse]], url: str, current: Any,
              done: Iterable[str], timeout: float) -> Any:
        """Fetch ``url`` until its status is in ``done``.

        Between fetches wait the back-off (POLL_FIRST_DELAY doubling up to
        POLL_MAX_DELAY), or the server's ``Retry-After`` if that is longer
        (RFC 8555 §7.5.1, §8.2): a ``Retry-After: 0`` or a date in the past
        cannot make the loop spin.  No wait goes past the deadline: a wait
        longer than the time left is cut short and one last fetch is made at
        the deadline.

        Raises PollTimeout (its message gives the real elapsed seconds)."""
        done = set(done)
        start = time.monotonic()
        deadline = start + timeout
        delay = wait = POLL_FIRST_DELAY
        last = False
        while current is None or current.status not in done:
            remaining = deadline - time.monotonic()
            if last or remaining <= 0:
                status = current.status if current is not None else "unknown"
                raise PollTimeout(f"{url} is still {status!r} after {time.monotonic() - start:.1f} s "
                                  f"(timeout {timeout:g} s)")
            last = wait >= remaining  # this fetch is the one at the deadline
            time.sleep(min(wait, remaining))
            current, response = fetch(url)
            delay = min(delay * 2, POLL_MAX_DELAY)
            retry_after = response.retry_after
            wait = delay if retry_after is None else max(retry_after, delay)
        return current

    def _fetch_authorization(self, url: str) -> tuple[Authorization, AcmeResponse]:
        response = self._post_as_get(url)
        return Authorization.from_json(url, response.json()), response

    def _fetch_order(self, url: str) -> tuple[Order, AcmeResponse]:
        response = self._post_as_get(url)
        return Order.from_json(url, response.json()), response

    def poll_authorization(self, authorization: Authorization | str, *,
                           timeout: float = POLL_TIMEOUT) -> Authorization:
        """Wait until the authorization is no longer ``pending`` (§7.5.1).

        Args:
            authorization: an Authorization (polled only if pending: wait
                first, then fetch) or its URL (fetched at once).
            timeout: seconds overall.

        Returns:
            the ``valid`` Authorization.

        Raises:
            ChallengeFailed: it ended ``invalid`` (or deactivated, expired,
                revoked), carrying the CA's error.
            PollTimeout: still pending at the deadline.
        """
        if isinstance(authorization, str):
            authorization = self.fetch_authorization(authorization)
        final = self._poll(self._fetch_authorization, authorization.url, authorization,
                           ("valid", "invalid", "deactivated", "expired", "revoked"), timeout)
        if final.status != "valid":
            failed = next((c for c in final.challenges if c.error is not None or c.status == "invalid"), None)
            raise ChallengeFailed(final.name, failed.type if failed else "(none)",
                                  failed.url if failed else final.url, final.problem)
        return final

    def poll_order(self, order: Order | str, *, until: Iterable[str] = ("valid", "invalid"),
                   timeout: float = POLL_TIMEOUT) -> Order:
        """Wait until the order's status is in ``until`` (§7.4).

        Args:
            order: an Order (fetched only if not yet in ``until``: wait
                first, then fetch) or its URL (fetched at once).
            until: final statuses to wait for, e.g. ``("ready", "invalid")``.
            timeout: seconds overall.

        Raises PollTimeout."""
        if isinstance(order, str):
            order = self.fetch_order(order)
        return self._poll(self._fetch_order, order.url, order, until, timeout)

    # ------------------------------------------------------------------
    # §7.4 finalize, §7.4.2 download
    # ------------------------------------------------------------------
    def finalize(self, order: Order, csr: x509.CertificateSigningRequest, *,
                 timeout: float = POLL_TIMEOUT) -> Order:
        """Send the CSR and wait for the certificate (§7.4).

        Args:
            order: the order; its authorizations should all be valid.
            csr: a CSR whose names are exactly the order's identifiers.
            timeout: seconds overall to wait for ``ready`` and then ``valid``.

        Returns:
            the ``valid`` Order, with its ``certificate`` URL.

        Raises:
            InputError: the CSR's names differ from the order's (nothing sent).
            AcmeProblem: the order ended ``invalid`` (its ``error``), or the
                CA refused the CSR (BadCSR, ...).
            PollTimeout.
        """
        wanted = {n.lower() for n in order.names}
        have = _csr_names(csr)
        if have != wanted:
            raise InputError(
                f"the CSR names {sorted(have)} differ from the order's identifiers {sorted(wanted)}")
        payload = {"csr": jws.b64url(csr.public_bytes(serialization.Encoding.DER))}
        deadline = time.monotonic() + timeout
        if order.status in ("processing", "valid"):
            return self._finished(order, deadline)  # finalized already (e.g. a reused order)
        try:
            response = self._post(order.finalize, payload)
        except OrderNotReady:
            # §7.4: the authorizations just turned valid; wait for "ready"
            ready = self.poll_order(order.url, until=("ready", "valid", "invalid"), timeout=timeout)
            if ready.status != "ready":
                return self._finished(ready, deadline)
            response = self._post(order.finalize, payload)
        return self._finished(Order.from_json(order.url, response.json()), deadline)

    def _finished(self, order: Order, deadline: float) -> Order:
        """Poll a finalized order while ``processing`` (§7.1.6)."""
        order = self.poll_order(order, until=("valid", "invalid"), timeout=max(0.0, deadline - time.monotonic()))
        if order.status == "invalid":
            raise order.error or ProtocolError(f"the order {order.url} is invalid and the CA gave no error")
        if not order.certificate:
            raise ProtocolError(f"the valid order {order.url} has no certificate URL")
        return order

    def download_certificate(self, order_or_url: Order | str) -> CertificateChain:
        """Download the certificate chain as PEM (POST-as-GET, §7.4.2).

        Returns:
            the CA's default chain; ``.alternates`` lists other chains.

        Raises ProtocolError if the body is not a PEM chain."""
        url = order_or_url.certificate if isinstance(order_or_url, Order) else order_or_url
        if not url:
            raise InputError("the order has no certificate URL yet (finalize it first)")
        response = self._post_as_get(url, accept=PEM_CHAIN)
        try:
            pem = response.body.decode("ascii")
        except UnicodeDecodeError:
            raise ProtocolError(f"{url} answered a certificate chain that is not PEM text") from None
        chain = CertificateChain(url, pem, tuple(response.links("alternate")))
        chain.certificates  # ProtocolError if it is not PEM
        return chain

    def download_certificate_chains(self, order_or_url: Order | str) -> list[CertificateChain]:
        """The default chain followed by every alternate chain (§7.4.2)."""
        default = self.download_certificate(order_or_url)
        return [default] + [self.download_certificate(url) for url in default.alternates]

    def download_preferred_chain(self, order_or_url: Order | str, preferred: str | None) -> CertificateChain:
        """The chain whose topmost certificate has the subject (common name
        or RFC 4514 DN) ``preferred``; failing that, the chain whose topmost
        certificate was issued by that name (the root it leads to); failing
        that, the default chain.  Alternates are fetched only as needed."""
        default = self.download_certificate(order_or_url)
        if not preferred or chain_matches(default, preferred):
            return default
        chains = [default]
        for url in default.alternates:
            chains.append(self.download_certificate(url))
            if chain_matches(chains[-1], preferred):
                return chains[-1]
        return next((c for c in chains if chain_matches(c, preferred, issuer=True)), default)

    # ------------------------------------------------------------------
    # §7.6 revocation
    # ------------------------------------------------------------------
    def revoke_certificate(self, certificate: x509.Certificate | str | bytes, *,
                           reason: ReasonCode | int = ReasonCode.unspecified,
                           certificate_key: keys.PrivateKey | None = None) -> None:
        """Revoke a certificate (§7.6, revokeCert).

        Args:
            certificate: the certificate (x509 object, PEM or DER; for a PEM
                chain the first certificate).
            reason: an RFC 5280 reason code (:class:`ReasonCode`).
            certificate_key: sign with the certificate's own key (``jwk``
                header) instead of the account key (``kid``).

        Raises:
            InputError: not a certificate, or an unknown reason code.
            AlreadyRevoked, BadRevocationReason, Unauthorized: from the CA.
        """
        try:
            reason = ReasonCode(int(reason))
        except ValueError:
            raise InputError(f"{reason!r} is not an RFC 5280 revocation reason code") from None
        der = _load_certificate(certificate).public_bytes(serialization.Encoding.DER)
        payload = {"certificate": jws.b64url(der), "reason": int(reason)}
        url = self.directory.revokeCert
        if certificate_key is not None:
            self.transport.post(url, payload, certificate_key, kid=None, idempotent=False)
        else:
            self._post(url, payload)
