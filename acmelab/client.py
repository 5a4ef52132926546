"""The RFC 8555 (ACME v2) client, on ``cryptography`` + ``requests``.

Theory of operation
-------------------
The client is built in three modules, so a reader can study one without
the others:

1. :mod:`acmelab.transport` -- "HTTP, signing, nonces": :class:`AcmeTransport`
   sends every request, signs the POSTs as JWS (RFC 8555 §6.2), keeps the
   anti-replay nonce (§6.5), turns problem documents (§6.7) into typed
   errors and retries what may be retried.

2. :mod:`acmelab.resources` -- the ACME objects (§7.1) as frozen
   dataclasses (:class:`Directory`, :class:`Account`, :class:`Order`,
   :class:`Authorization`, :class:`Challenge`, :class:`CertificateChain`),
   whose attributes keep the RFC's field names; the whole JSON is in
   ``.json``.  Its docstring draws the order / authorization / challenge
   status machine (§7.1.6).

3. This module, :class:`AcmeClient` -- "what the RFC says".  One method per
   RFC action, in the order a certificate's life runs through them:
   directory (§7.1.1), account (§7.3), order (§7.4), authorization and
   challenge (§7.5, §8), finalize (§7.4), certificate download (§7.4.2),
   renewal information (RFC 9773, :mod:`acmelab.renewal_info`), revocation
   (§7.6).

Lost answers
------------
When the answer to a request is lost (the connection closes after the
request went out) the CA may or may not have acted.  A request that is
safe to repeat -- POST-as-GET, newAccount (§7.3: the same key finds the
same account), account updates -- is repeated by the transport.  The
others are resolved by asking the CA about the resource, so that the end
state is the one the user wanted and nothing is left orphaned:

* newOrder: the account's newest orders (§7.1.2.1) are searched for a
  pending or ready one for the same identifiers before ordering again;
* a challenge answer repeated to a challenge that is already processing
  or valid (§7.5.1) is a success;
* a lost finalize: the *same* order is fetched (§7.4) and, once it is no
  longer ``ready``, polled; a new order is never made;
* a lost revocation is sent again; ``alreadyRevoked`` then means done (§7.6);
* a lost keyChange: the CA is asked whether the new key already has the
  account (§7.3.1 ``onlyReturnExisting``) before rolling over again (§7.3.5).

A :class:`~acmelab.errors.NetworkError` message names the step, the URL
and the reason in one line.

Every name of the two other modules that was importable from here before
they were split off still is (``from acmelab.client import Order`` works).

The client is not thread-safe: use one per thread.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from acmelab import USER_AGENT, challenges, jws, keys
from acmelab.challenges import DnsRecord, validation_name
from acmelab.errors import (
    AccountDoesNotExist,
    AcmeProblem,
    AlreadyRevoked,
    AnswerLost,
    ChallengeFailed,
    InputError,
    NetworkError,
    OrderNotReady,
    PollTimeout,
    ProtocolError,
    UnknownProfile,
)
from acmelab.renewal_info import RenewalInfo, cert_id
from acmelab.resources import (
    Account,
    Authorization,
    CertificateChain,
    Challenge,
    Directory,
    Order,
    ReasonCode,
    _csr_names,
    _load_certificate,
    chain_matches,
)
from acmelab.transport import (
    _TOKEN,
    DEFAULT_TIMEOUT,
    AcmeResponse,
    AcmeTransport,
    _is_loopback,
    checked_verify,
    parse_retry_after,
)
# re-exported: these lived in this module before the split (tests import some)
from acmelab.transport import (  # noqa: F401
    BAD_NONCE_RETRIES,
    JOSE_JSON,
    NETWORK_BACKOFF,
    NETWORK_TRIES,
    PROBLEM_JSON,
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

#: seconds: the first wait of a polling loop when the server sends no
#: ``Retry-After``; it doubles each round up to POLL_MAX_DELAY (5, 10, 20,
#: 40 ms ... 2 s).  Pebble validates in 1-3 ms in the lab, so one poll
#: usually finds the final status; Let's Encrypt takes about a second, which
#: this back-off reaches in 8 polls.
POLL_FIRST_DELAY = 0.005
POLL_MAX_DELAY = 2.0
#: seconds: default overall deadline of a polling loop.
POLL_TIMEOUT = 90.0

PEM_CHAIN = "application/pem-certificate-chain"
#: after a lost newOrder answer, how many of the account's newest orders
#: are fetched to find the one the CA may have made.
LOST_ORDER_SEARCH = 5


@contextmanager
def _doing(step: str) -> Iterator[None]:
    """Name the step in a NetworkError raised inside (the innermost step
    wins): ``finalizing the order for www.example.com: https://...:
    connection refused (after 4 tries)``."""
    try:
        yield
    except NetworkError as error:
        if error.step is None:
            error.step = step
        raise


def _ask_before_repeating(send: Callable[[], Any], acted: Callable[[], Any]) -> Any:
    """Send a request the CA must not act on twice.  After a lost answer
    (:class:`~acmelab.errors.AnswerLost`) ask the CA whether it acted --
    ``acted()`` returns the result it would have given, or None -- and send
    again only if it did not; NETWORK_TRIES sends at the most."""
    for attempt in range(1, NETWORK_TRIES + 1):
        try:
            return send()
        except AnswerLost:
            if attempt == NETWORK_TRIES:
                raise
            result = acted()
            if result is not None:
                return result
    raise AssertionError("unreachable")  # pragma: no cover


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
              accept: str | None = None, deadline: float | None = None) -> AcmeResponse:
        """A request signed by the account key with ``kid`` (§6.2)."""
        self.directory  # the newNonce URL, should no nonce be in hand
        return self.transport.post(url, payload, self.account_key, kid=self._kid(),
                                   idempotent=idempotent, accept=accept, deadline=deadline)

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
            with _doing("fetching the directory"):
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
        # §7.3: signed with jwk (no account yet); 201 new, 200 existing account --
        # so a lost answer is simply asked again: the same key finds the same account
        with _doing("registering the account"):
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

        A lost answer is not simply repeated (the old key may no longer be
        the account's): the CA is asked whether ``new_key`` already has the
        account (§7.3.1 ``onlyReturnExisting``); if not, the rollover is
        sent again.

        Raises InputError (same key / unsupported key) before sending."""
        url = self.directory.keyChange
        inner = jws.key_change(account_url=self._kid(), old_key=self.account_key, new_key=new_key, url=url)
        def rolled_over() -> AcmeResponse | None:   # the CA knows the account by the new key
            if self._account_of(new_key) != self._kid():
                return None
            self.account_key = new_key
            return self._post_as_get(self._kid())

        with _doing("rolling the account key over"):
            response = _ask_before_repeating(lambda: self._post(url, inner), rolled_over)
        self.account_key = new_key
        body = response.json() if response.body.strip() else {}
        return Account.from_json(self._kid(), body) if body else self.fetch_account()

    def _account_of(self, key: keys.PrivateKey) -> str | None:
        """The URL of the account of ``key``, or None if it has none
        (§7.3.1 ``onlyReturnExisting``, signed with the key's jwk)."""
        try:
            response = self.transport.post(self.directory.newAccount, {"onlyReturnExisting": True}, key,
                                           kid=None, idempotent=True)
        except AccountDoesNotExist:
            return None
        return response.location

    def deactivate_account(self) -> Account:
        """Deactivate the account for good (§7.3.6).  Later requests signed
        by its key fail with ``unauthorized``."""
        response = self._post(self._kid(), {"status": "deactivated"})
        return Account.from_json(self._kid(), response.json())

    # ------------------------------------------------------------------
    # §7.4 orders
    # ------------------------------------------------------------------
    def check_profile(self, profile: str) -> str:
        """``profile`` if the directory's ``meta.profiles`` lists it
        (draft-ietf-acme-profiles §3).

        Raises:
            UnknownProfile: it is not offered (nothing is sent).
        """
        offered = self.directory.profiles
        if profile not in offered:
            raise UnknownProfile(profile, sorted(offered))
        return profile

    def new_order(self, names: Iterable[str], *, not_before: str | None = None,
                  not_after: str | None = None, profile: str | None = None,
                  replaces: str | None = None) -> Order:
        """Apply for a certificate (§7.4, newOrder).

        Args:
            names: DNS names, wildcards as ``"*.example.com"``; sent as given
                (normalise them with :func:`acmelab.csr.normalize_name`).
            not_before, not_after: optional RFC 3339 dates.
            profile: a name from the directory's ``meta.profiles``
                (draft-ietf-acme-profiles); None lets the CA choose.
            replaces: the ARI certID of the certificate this order renews
                (RFC 9773 §5, :func:`acmelab.renewal_info.cert_id`).

        Returns:
            the new Order (status ``pending``, or ``ready`` when every
            authorization was reused).

        Raises:
            InputError: no names.  UnknownProfile: ``profile`` is not offered
                (checked before sending).  RejectedIdentifier,
                InvalidProfile, AlreadyReplaced, ...: from the CA.
        """
        names = list(names)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise InputError("an order needs at least one non-empty DNS name")
        payload: dict[str, Any] = {"identifiers": [{"type": "dns", "value": n} for n in names]}
        if not_before:
            payload["notBefore"] = not_before
        if not_after:
            payload["notAfter"] = not_after
        if profile is not None:
            payload["profile"] = self.check_profile(profile)
        if replaces is not None:
            if not isinstance(replaces, str) or replaces.count(".") != 1:
                raise InputError(f"replaces must be an ARI certID 'keyIdentifier.serial' (got {replaces!r})")
            payload["replaces"] = replaces
        return self._place_order(payload)

    def _place_order(self, payload: Mapping[str, Any]) -> Order:
        """POST newOrder (§7.4).  It is not idempotent -- each one makes an
        order -- so after a lost answer the CA is asked first whether it
        made the order (:meth:`_find_order`); only if not is it sent again."""
        def send() -> Order:
            response = self._post(self.directory.newOrder, payload)
            return Order.from_json(response.location, response.json())

        names = ", ".join(i["value"] for i in payload["identifiers"])
        with _doing(f"ordering a certificate for {names}"):
            return _ask_before_repeating(send, lambda: self._find_order(payload))

    def _find_order(self, payload: Mapping[str, Any]) -> Order | None:
        """The account's pending or ready order for exactly the identifiers
        (and profile, replaces, dates) of the newOrder ``payload``, or None.

        Looks at the LOST_ORDER_SEARCH newest orders of the account's orders
        list (§7.1.2.1; a CA that lists the newest last, as Pebble does; one
        without an ``orders`` URL gives None).  Such an order is what the
        lost newOrder made -- or an earlier one just as good, which the CA
        would let expire otherwise."""
        account = self.fetch_account()
        if not account.orders:
            return None

        def key(identifiers: Any) -> list[tuple[str, str]]:
            return sorted((str(i.get("type")), str(i.get("value")).lower()) for i in identifiers or [])

        for url in reversed(self.list_orders(account)[-LOST_ORDER_SEARCH:]):
            order = self.fetch_order(url)
            if order.status in ("pending", "ready") and key(order.identifiers) == key(payload["identifiers"]) \
                    and all(order.json.get(field) == payload[field]
                            for field in ("profile", "replaces", "notBefore", "notAfter") if field in payload):
                return order
        return None

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
        return challenges.txt_value(self.key_authorization(challenge))

    def dns_record(self, authorization: Authorization, challenge_type: str = "dns-01") -> DnsRecord:
        """The TXT record that answers the ``challenge_type`` challenge of
        ``authorization`` (see :mod:`acmelab.challenges`): dns-01 (RFC 8555
        §8.4), dns-account-01 (name from the account URL) or dns-persist-01
        (the challenge's issuer domain and ``accounturi``; ``standing``).

        Raises:
            InputError: an unknown challenge type.
            ProtocolError: the CA offers no such challenge, or a malformed one.
        """
        challenge = authorization.challenge(challenge_type)
        domain = authorization.identifier.get("value", "")
        if challenge_type == "dns-01":
            return challenges.dns01_record(domain, self.key_authorization(challenge))
        if challenge_type == "dns-account-01":
            return challenges.dns_account01_record(domain, self.key_authorization(challenge), self._kid())
        if challenge_type == "dns-persist-01":
            issuers = challenge.json.get("issuer-domain-names")
            account_uri = challenge.json.get("accounturi")
            return challenges.dns_persist01_record(
                domain, issuer_domain_names=issuers if isinstance(issuers, list) else [],
                account_url=account_uri if isinstance(account_uri, str) and account_uri else self._kid(),
                wildcard=authorization.wildcard)
        raise InputError(f"unknown challenge type {challenge_type!r}; "
                         f"choose one of {', '.join(challenges.CHALLENGE_TYPES)}")

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
        ``processing``).

        A lost answer is sent again.  A CA that refuses an answer because
        the challenge is no longer ``pending`` (it is processing, or done:
        the first answer did arrive) is fine: the challenge is returned
        as the CA has it, for the authorization poll to judge."""
        if challenge.type != "dns-persist-01":  # it has no token
            self.key_authorization(challenge)  # refuse a malformed token before answering
        with _doing(f"answering the {challenge.type} challenge"):
            try:
                response = self._post(challenge.url, {}, idempotent=True)
            except AcmeProblem:
                current = self.fetch_challenge(challenge.url)
                if current.status == "pending":
                    raise
                return current
        return Challenge.from_json(response.json(), challenge.url)

    # -- polling (§7.5.1, §7.4): wait, fetch, until a final status --------
    def _poll(self, fetch: Callable[[str], tuple[Any, AcmeResponse]], url: str, current: Any,
              done: Iterable[str], timeout: float, *, retry_after: float | None = None) -> Any:
        """Fetch ``url`` until its status is in ``done``.

        Between fetches wait the back-off (POLL_FIRST_DELAY doubling up to
        POLL_MAX_DELAY), or the server's ``Retry-After`` if that is longer
        (RFC 8555 §7.5.1, §8.2): a ``Retry-After: 0`` or a date in the past
        cannot make the loop spin.  ``retry_after`` is the ``Retry-After``
        of the answer that gave ``current`` (e.g. finalize's, §7.4): the
        first fetch waits for it too.  No wait goes past the deadline: a
        wait longer than the time left is cut short and one last fetch is
        made at the deadline.

        Raises PollTimeout (its message gives the real elapsed seconds)."""
        done = set(done)
        start = time.monotonic()
        deadline = start + timeout
        delay = POLL_FIRST_DELAY
        wait = delay if retry_after is None else max(retry_after, delay)
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
        with _doing(f"waiting for the authorization of {getattr(authorization, 'name', authorization)}"):
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
        with _doing(f"finalizing the order for {', '.join(order.names)}"):
            if order.status in ("processing", "valid"):
                return self._finished(order, deadline)  # finalized already (e.g. a reused order)
            for attempt in range(1, NETWORK_TRIES + 1):
                try:
                    response = self._post(order.finalize, payload, deadline=deadline)
                    # §7.4: the first poll waits the Retry-After of the finalize answer
                    return self._finished(Order.from_json(order.url, response.json()), deadline,
                                          retry_after=response.retry_after)
                except OrderNotReady:
                    # §7.4: the authorizations just turned valid; wait for "ready"
                    order = self.poll_order(order.url, until=("ready", "valid", "invalid"), timeout=timeout)
                except AnswerLost:
                    # Did the CA get the CSR?  The same order tells: it is no
                    # longer "ready" if it did.  Never a new order.
                    if attempt == NETWORK_TRIES:
                        raise
                    order = self.fetch_order(order.url)
                if order.status != "ready":
                    return self._finished(order, deadline)
        raise AssertionError("unreachable")  # pragma: no cover

    def _finished(self, order: Order, deadline: float, *, retry_after: float | None = None) -> Order:
        """Poll a finalized order while ``processing`` (§7.1.6); the first
        fetch waits ``retry_after`` seconds if given (§7.4)."""
        order = self._poll(self._fetch_order, order.url, order, ("valid", "invalid"),
                           max(0.0, deadline - time.monotonic()), retry_after=retry_after)
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
        with _doing("downloading the certificate"):
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
    # RFC 9773 renewal information (ARI)
    # ------------------------------------------------------------------
    def renewal_info(self, certificate: x509.Certificate | str | bytes) -> RenewalInfo:
        """The CA's suggested renewal window for ``certificate`` (RFC 9773
        §4): an unauthenticated GET of ``<renewalInfo>/<certID>``.

        Args:
            certificate: x509 object, PEM or DER (for a chain, the first).

        Returns:
            :class:`~acmelab.renewal_info.RenewalInfo` (window, explanation
            URL, seconds until the next check from ``Retry-After``).

        Raises:
            InputError: not a certificate, or one without an AKI
                keyIdentifier.  ProtocolError: the CA has no ``renewalInfo``,
                or its answer is malformed.  AcmeProblem, NetworkError.
        """
        base = self.directory.renewalInfo
        if not base:
            raise ProtocolError(f"the directory {self.directory_url} has no renewalInfo (the CA has no ARI)")
        identifier = cert_id(_load_certificate(certificate))
        response = self.transport.get(f"{base.rstrip('/')}/{identifier}")
        return RenewalInfo.from_json(identifier, response.json(), retry_after=response.retry_after)

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

        A lost answer is sent again; ``alreadyRevoked`` to that repeat
        means the first one did it: done.

        Raises:
            InputError: not a certificate, or an unknown reason code.
            AlreadyRevoked (it was revoked before this call),
            BadRevocationReason, Unauthorized: from the CA.
        """
        try:
            reason = ReasonCode(int(reason))
        except ValueError:
            raise InputError(f"{reason!r} is not an RFC 5280 revocation reason code") from None
        der = _load_certificate(certificate).public_bytes(serialization.Encoding.DER)
        payload = {"certificate": jws.b64url(der), "reason": int(reason)}
        url = self.directory.revokeCert
        with _doing("revoking the certificate"):
            # a lost answer is sent again: alreadyRevoked to the repeat means the first one did it
            for attempt in range(1, NETWORK_TRIES + 1):
                try:
                    if certificate_key is not None:
                        self.transport.post(url, payload, certificate_key, kid=None)
                    else:
                        self._post(url, payload)
                    return
                except AnswerLost:
                    if attempt == NETWORK_TRIES:
                        raise
                except AlreadyRevoked:
                    if attempt == 1:
                        raise  # revoked before we asked
                    return  # revoked by the request whose answer was lost
