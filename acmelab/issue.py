"""One call from names to a certificate: the common path of RFC 8555 through DNS.

:func:`issue_certificate` runs, with an :class:`~acmelab.client.AcmeClient`
that has an account:

1. newOrder for the names (§7.4), with a profile (``classic`` unless told
   otherwise, when the CA offers profiles) and, for a renewal, the ARI
   ``replaces`` of the certificate it renews (RFC 9773 §5);
2. fetch every authorization (§7.5); one already ``valid`` (reused by the
   CA) needs nothing more;
3. for every other one, publish the challenge's TXT record (dns-01, §8.4;
   or dns-account-01 / dns-persist-01, :mod:`acmelab.challenges`) through
   the DNS provider -- all of them before any wait -- then wait *once*
   until all are visible (if the provider can check), answer every
   challenge (§7.5.1) and poll the order until its authorizations are
   ``valid`` (it turns ``ready``, §7.1.6).  A
   dns-persist-01 record that is already visible is not written again;
4. finalize with a CSR for a fresh certificate key (§7.4), download the chain
   (§7.4.2), choosing the preferred one if asked;
5. remove every TXT record it published -- in the background while the CA
   issues, and on every other path (also on KeyboardInterrupt) -- except dns-persist-01 records, which stay by
   design and are reported in ``IssuedCertificate.standing_records``.  A
   record that cannot be removed once the chain is downloaded does not
   throw the certificate away: it is reported in
   ``IssuedCertificate.cleanup_failures`` (and logged as a warning).

Why it is fast
--------------
The time of an order with many names is the time of its slowest step, not
the sum over its names: the requests of one step are independent, so they
go out together (at most ``client.concurrency`` at a time, each signed with
a nonce of its own, over kept-alive connections); the DNS records are all
published before the one propagation wait, which looks at every record not
yet seen in each round (so N names cost one propagation delay, not N); and
the order is polled (one request a round, not one per name) after its
``Retry-After`` or an adaptive back-off, never a fixed wait.  Step 3 runs in exactly this order for any
number of names: every record published, then the wait, then every answer.

For one name with no reused authorization that is 7 ACME requests: newOrder,
authorization, challenge, order poll (until ``ready``), finalize, order
poll (only if ``processing``), certificate.

:func:`authorize_order` runs steps 2 and 3 alone, for a caller that made
the order and finalizes it itself (the course's notebooks, which show
finalize and the download on the wire).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from acmelab import csr as csr_module
from acmelab import keys
from acmelab.certificates import key_matches, serial_hex
from acmelab.challenges import CHALLENGE_TYPES, DnsProvider, DnsRecord
from acmelab.client import POLL_TIMEOUT, AcmeClient, Authorization, Order
from acmelab.errors import (
    AlreadyReplaced,
    ChallengeFailed,
    DnsError,
    InputError,
    Malformed,
    ProtocolError,
    ServerInternal,
)

__all__ = ["DEFAULT_PROFILE", "IssuedCertificate", "authorize_order", "choose_profile", "issue_certificate"]

#: seconds: the first pause of the propagation wait between two looks at
#: the records not yet visible; it doubles up to VISIBILITY_MAX_DELAY.
VISIBILITY_FIRST_DELAY = 0.05
VISIBILITY_MAX_DELAY = 0.5

#: the profile ordered when none is chosen and the CA offers it: Let's
#: Encrypt's default, named so that a certificate's lifetime never depends on
#: a CA's choice (Pebble picks a random profile for an order that names none).
DEFAULT_PROFILE = "classic"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate fresh from the CA.

    Attributes:
        certificate_pem: the leaf certificate, PEM (str).
        chain_pem: the full chain PEM: leaf, then intermediates (str).
        private_key: the certificate's private key (object; not shown by repr).
        order_url: the order's URL.
        names: the certificate's names, normalised, in order.
        serial_hex: the serial number in acmelab's one spelling
            (:func:`acmelab.certificates.serial_hex`: lower-case hex, whole
            bytes, no ``0x``).
        not_after: the expiry (aware datetime, UTC).
        cleanup_failures: one message per TXT record that could not
            be removed after issuance (empty when all went); the caller
            should tell the user, and remove them later.
        profile: the profile the order was placed with (None: the CA
            offers no profiles).
        standing_records: the dns-persist-01 records this issuance relies
            on, left in place by design (whether written now or earlier).
    """

    certificate_pem: str = field(repr=False)
    chain_pem: str = field(repr=False)
    private_key: keys.PrivateKey = field(repr=False)
    order_url: str
    names: tuple[str, ...]
    serial_hex: str
    not_after: datetime
    cleanup_failures: tuple[str, ...] = ()
    profile: str | None = None
    standing_records: tuple[DnsRecord, ...] = ()

    def private_key_pem(self, passphrase: bytes | str | None = None) -> bytes:
        """The private key as PEM (PKCS#8), optionally encrypted."""
        return keys.private_key_pem(self.private_key, passphrase)


def choose_profile(client: AcmeClient, profile: str | None) -> str | None:
    """The profile to order: ``profile`` if given (it must be offered), else
    :data:`DEFAULT_PROFILE` if the CA offers it, else None (the CA offers
    no profiles, or not that one: let it choose).

    Raises:
        UnknownProfile: ``profile`` is not in the directory's ``meta.profiles``.
    """
    if profile is not None:
        return client.check_profile(profile)
    return DEFAULT_PROFILE if DEFAULT_PROFILE in client.directory.profiles else None


def _already_visible(dns: DnsProvider, record: DnsRecord) -> bool:
    """True if the provider can see ``record`` right now (one look, no wait)."""
    wait = getattr(dns, "wait_until_visible", None)
    if not callable(wait):
        return False
    try:
        wait(record.name, record.value, 0)
    except DnsError:
        return False
    return True


def _new_order(client: AcmeClient, names: list[str], profile: str | None, replaces: str | None) -> Order:
    """newOrder.  ``replaces`` only links the renewal to its predecessor
    (RFC 9773 §5), so a CA that refuses it -- ``alreadyReplaced`` (a
    replacement was issued already, say by a run whose answer was lost), or
    an error about it (``malformed``, ``serverInternal``: Pebble b1e1ca4
    cannot find a certificate whose serial has its top bit set) -- gets the
    order again without it, with a warning."""
    try:
        return client.new_order(names, profile=profile, replaces=replaces)
    except (AlreadyReplaced, Malformed, ServerInternal) as error:
        if replaces is None:
            raise
        logger.warning("the CA refused replaces=%s (%s: %s); ordering without it",
                       replaces, error.name, error.detail)
        return client.new_order(names, profile=profile)


def _certificate_key(certificate_key: keys.PrivateKey | None, key_type: str,
                     account_key: keys.PrivateKey) -> keys.PrivateKey:
    """The certificate key: the one given, or a new one of ``key_type``;
    never the account key.  Raises InputError."""
    if certificate_key is None:
        if key_type not in keys.KEY_TYPES:
            raise InputError(f"unknown key type {key_type!r}; choose one of {', '.join(keys.KEY_TYPES)}")
        certificate_key = keys.generate_key(key_type)
    if keys.public_jwk(certificate_key) == keys.public_jwk(account_key):
        raise InputError("the certificate key must not be the account key")
    return certificate_key


def _pending_authorizations(client: AcmeClient, order: Order, challenge: str) -> list[Authorization]:
    """The order's authorizations that still need ``challenge`` answered
    (RFC 8555 §7.5): each must be for a name of the order; a valid one
    (reused) needs nothing.  Raises ProtocolError (a name not ordered),
    ChallengeFailed (one neither pending nor valid)."""
    pending = []
    for authorization in client.fetch_authorizations(order.authorizations):
        _check_authorization_name(authorization, order)
        if authorization.status == "valid":
            continue
        if authorization.status != "pending":
            raise ChallengeFailed(authorization.name, challenge, authorization.url, authorization.problem)
        pending.append(authorization)
    return pending


def issue_certificate(names: Iterable[str], *, client: AcmeClient, dns: DnsProvider,
                      key_type: str = "ec256", certificate_key: keys.PrivateKey | None = None,
                      preferred_chain: str | None = None, timeout: float = POLL_TIMEOUT,
                      propagation_timeout: float = 60.0, challenge: str = "dns-01",
                      profile: str | None = None, replaces: str | None = None) -> IssuedCertificate:
    """Get a certificate for ``names`` through DNS (RFC 8555 §7.4, §8.4).

    Args:
        names: DNS names (wildcards as ``"*.example.com"``); normalised by
            :func:`acmelab.csr.normalize_names` before anything is sent.
        client: an AcmeClient with an account (``new_account`` done).
        dns: a DnsProvider (``present``/``cleanup``, optional
            ``wait_until_visible``), see :mod:`acmelab.dns`.
        key_type: the certificate key to generate (:data:`acmelab.keys.KEY_TYPES`).
        certificate_key: use this key instead of generating one (never the
            account key).
        preferred_chain: subject CN or DN of the topmost certificate of the
            chain to prefer (or the root it leads to); default chain otherwise.
        timeout: seconds to wait for the authorizations, and for the order.
        propagation_timeout: seconds to wait for all TXT records to be visible.
        challenge: ``"dns-01"``, ``"dns-account-01"`` or ``"dns-persist-01"``
            (:data:`acmelab.challenges.CHALLENGE_TYPES`).
        profile: a profile from the directory's ``meta.profiles``; default
            :func:`choose_profile`.
        replaces: the ARI certID of the certificate this one renews (RFC 9773).

    Returns:
        IssuedCertificate.

    Raises:
        InputError: bad names, key type or challenge type, or the account
            key as certificate key (before any request).
        UnknownProfile: ``profile`` is not offered (before any order).
        ChallengeFailed: an authorization ended invalid (with the CA's error).
        DnsError: a TXT record could not be published or seen.  (One that
            cannot be removed after the certificate was downloaded is
            reported in ``cleanup_failures`` instead: the certificate and
            its key are not thrown away.)
        ProtocolError: the order or one of its authorizations is for a name
            that was not asked for (checked before any TXT record is
            published); the downloaded certificate is not for our
            certificate key or not for exactly the ordered names; or a
            malformed answer from the client.
        AcmeProblem, NetworkError, PollTimeout: from the client.
    """
    # Everything the caller gave is checked before the first request.
    names = csr_module.normalize_names(names)
    certificate_key = _certificate_key(certificate_key, key_type, client.account_key)
    if challenge not in CHALLENGE_TYPES:
        raise InputError(f"unknown challenge type {challenge!r}; choose one of {', '.join(CHALLENGE_TYPES)}")
    csr = csr_module.make_csr(certificate_key, names)
    profile = choose_profile(client, profile)

    removal = _Removal(dns)  # every record published, removed on every path
    standing: list[DnsRecord] = []
    try:
        # §7.4 newOrder, then every authorization valid: the order is ready
        order = _new_order(client, names, profile, replaces)
        _check_order_names(order, names)
        order = _authorize(client, order, dns, removal, standing, challenge, propagation_timeout, timeout)

        # §7.4 finalize, §7.4.2 download the (preferred) chain; the records
        # have done their work and are removed meanwhile
        removal.start(client.each)
        order = client.finalize(order, csr, timeout=timeout)
        chain = client.download_preferred_chain(order, preferred_chain)
    except BaseException as error:  # also KeyboardInterrupt: clean up, re-raise
        for note in removal.finish(client.each):
            error.add_note(note)
        raise
    # the certificate is issued: a record that will not go is reported, not raised
    failures = tuple(removal.finish(client.each))
    for failure in failures:
        logger.warning("%s", failure)

    leaf = chain.certificates[0]
    _check_leaf(leaf, certificate_key, names, chain.url)
    return IssuedCertificate(
        certificate_pem=leaf.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        chain_pem=chain.pem,
        private_key=certificate_key,
        order_url=order.url,
        names=tuple(names),
        serial_hex=serial_hex(leaf.serial_number),
        not_after=leaf.not_valid_after_utc,
        cleanup_failures=failures,
        profile=order.profile or profile,
        standing_records=tuple(standing),
    )


def authorize_order(client: AcmeClient, order: Order, dns: DnsProvider, *, challenge: str = "dns-01",
                    propagation_timeout: float = 60.0, timeout: float = POLL_TIMEOUT) -> Order:
    """Steps 2 and 3 of :func:`issue_certificate` alone: answer the
    authorizations of ``order`` through ``dns`` until the order is
    ``ready`` (RFC 8555 §7.5, §8.4, §7.5.1, §7.1.6).  Every TXT record it
    published is removed before it returns, on every path (dns-persist-01
    records stay, by design).

    Args:
        client: an AcmeClient with an account, the order's.
        order: a ``pending`` (or already ``ready``) order.
        dns, challenge, propagation_timeout, timeout: as for :func:`issue_certificate`.

    Returns:
        the order, ``ready`` (:class:`acmelab.client.Order`).

    Raises:
        InputError: an unknown challenge type (before any request).
        ChallengeFailed: an authorization ended invalid (with the CA's error).
        DnsError: a TXT record could not be published, seen or removed.
        ProtocolError: an authorization for a name not in the order
            (nothing published).
        AcmeProblem, NetworkError, PollTimeout: from the client.
    """
    if challenge not in CHALLENGE_TYPES:
        raise InputError(f"unknown challenge type {challenge!r}; choose one of {', '.join(CHALLENGE_TYPES)}")
    removal = _Removal(dns)
    try:
        order = _authorize(client, order, dns, removal, [], challenge, propagation_timeout, timeout)
    except BaseException as error:  # also KeyboardInterrupt: clean up, re-raise
        for note in removal.finish(client.each):
            error.add_note(note)
        raise
    failures = removal.finish(client.each)
    if failures:
        raise DnsError(f"the order {order.url} is ready, but {'; '.join(failures)}")
    return order


def _authorize(client: AcmeClient, order: Order, dns: DnsProvider, removal: "_Removal",
               standing: list[DnsRecord], challenge: str, propagation_timeout: float, timeout: float) -> Order:
    """Steps 2 and 3: every authorization of ``order`` valid, the order
    ``ready`` (or further).  Each record published is noted in ``removal``
    (a standing dns-persist-01 one in ``standing``); the caller removes them."""
    # §7.5 fetch every authorization (reused ones are valid)
    pending = _pending_authorizations(client, order, challenge)

    # §8.4 publish every TXT record first (a wildcard and its base name
    # share one name with two values), then wait once until all are
    # visible; a standing dns-persist-01 record already in place is left alone
    records = list(dict.fromkeys(client.dns_record(a, challenge) for a in pending))
    standing.extend(record for record in records if record.standing)
    client.each(lambda record: _publish(dns, record, removal), records)
    _wait_until_visible(dns, records, propagation_timeout, client.each)

    # §7.5.1 answer every challenge, then poll the order until its
    # authorizations are valid (§7.1.6: it turns "ready")
    client.answer_challenges(pending, challenge)
    return _wait_until_authorized(client, order, pending, timeout)


def _check_leaf(leaf: x509.Certificate, certificate_key: keys.PrivateKey, names: list[str], url: str) -> None:
    """The downloaded leaf is ours: it certifies our certificate key for
    exactly the names ordered (RFC 8555 §7.4.2).  Raises ProtocolError."""
    if not key_matches(certificate_key, leaf):
        raise ProtocolError(f"the certificate at {url} is not for our certificate key")
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        certified = {name.lower() for name in san.get_values_for_type(x509.DNSName)}
    except x509.ExtensionNotFound:
        certified = set()
    if certified != set(names):
        raise ProtocolError(f"the certificate at {url} names {sorted(certified)}, not the ordered {sorted(names)}")


def _check_order_names(order: Order, names: list[str]) -> None:
    """The order's identifiers are the names asked for (RFC 8555 §7.4).

    Raises ProtocolError otherwise (nothing published)."""
    if sorted(n.lower() for n in order.names) != sorted(names) \
            or any(i.get("type") != "dns" for i in order.identifiers):
        raise ProtocolError(f"the CA answered an order for {order.names}, not for {names}; nothing published")


def _check_authorization_name(authorization: Authorization, order: Order) -> None:
    """An authorization is for one of the order's identifiers (RFC 8555
    §7.1.4: a wildcard order name ``*.x`` has an authorization for ``x``
    with ``wildcard: true``), so that no TXT record is ever written for a
    name the caller did not ask for.

    Raises ProtocolError otherwise (nothing published)."""
    wanted = {n.lower() for n in order.names}
    value = authorization.identifier.get("value", "")
    if authorization.identifier.get("type") != "dns" or "*" in value \
            or authorization.name.lower() not in wanted:  # §7.1.4: the value never holds the "*." prefix
        raise ProtocolError(
            f"the authorization {authorization.url} is for {authorization.identifier.get('type')}:"
            f"{authorization.name}, which is not one of the order's identifiers {sorted(wanted)}; "
            f"nothing published")


def _publish(dns: DnsProvider, record: DnsRecord, removal: "_Removal") -> None:
    """present() one record, noting it first for removal (on every path)
    -- a standing dns-persist-01 record is never removed, and published
    only if it is not visible already."""
    if record.standing:
        if _already_visible(dns, record):
            return
    else:
        removal.add(record.name, record.value)
    dns.present(record.name, record.value)


def _wait_until_authorized(client: AcmeClient, order: Order, pending: list[Authorization],
                           timeout: float) -> Order:
    """Poll the order -- one request a round, whatever the number of names,
    each round after its ``Retry-After`` or the adaptive back-off -- until
    it is no longer ``pending`` (RFC 8555 §7.1.6: ``ready`` once every
    authorization is valid, ``invalid`` once one failed).

    Raises:
        ChallengeFailed: an authorization failed (found by fetching them).
        AcmeProblem / ProtocolError: the order is invalid for another reason.
        PollTimeout.
    """
    order = client.poll_order(order, until=("ready", "processing", "valid", "invalid"), timeout=timeout)
    if order.status == "invalid":
        client.raise_for_failed(pending)  # the ChallengeFailed of the authorization that failed
        raise order.error or ProtocolError(f"the order {order.url} is invalid and the CA gave no error")
    return order


Each = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]


def _wait_until_visible(dns: DnsProvider, records: list[DnsRecord], timeout: float, each: Each) -> None:
    """The one propagation wait of an order (RFC 8555 §8.4: the CA must see
    the records): look at every record not seen yet -- concurrently, one
    look each (the provider's ``wait_until_visible(name, value, 0)``) --
    pause, and look again at those still missing, the pause growing from
    VISIBILITY_FIRST_DELAY to VISIBILITY_MAX_DELAY, until all are visible.
    A provider that cannot check (no ``wait_until_visible``) is not waited for.

    Raises:
        DnsError: some are still not visible after ``timeout`` seconds
            (the message counts them and gives the first one's answer).
    """
    wait = getattr(dns, "wait_until_visible", None)
    if not callable(wait) or not records:
        return
    deadline = time.monotonic() + timeout
    delay = VISIBILITY_FIRST_DELAY

    def look(record: DnsRecord) -> DnsError | None:
        try:
            wait(record.name, record.value, 0)
        except DnsError as error:
            return error
        return None

    missing = list(records)
    while True:
        last = time.monotonic() >= deadline
        errors = each(look, missing)
        missing, errors = [r for r, e in zip(missing, errors) if e], [e for e in errors if e]
        if not missing:
            return
        if last:
            raise DnsError(f"{len(missing)} of {len(records)} TXT records not visible after {timeout:g} s, "
                           f"e.g. {missing[0].name}: {errors[0]}") from errors[0]
        time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
        delay = min(delay * 2, VISIBILITY_MAX_DELAY)


class _Removal:
    """The TXT records an issuance published, and their removal: started in
    the background once the authorizations are valid (:meth:`start`), and
    always waited for by :meth:`finish`, which also removes whatever was not
    removed yet -- so every record goes on every path."""

    def __init__(self, dns: DnsProvider) -> None:
        self.dns = dns
        self._records: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._running: futures.Future | None = None
        self._pool: futures.ThreadPoolExecutor | None = None

    def add(self, name: str, value: str) -> None:
        with self._lock:
            self._records.append((name, value))

    def _take(self) -> list[tuple[str, str]]:
        with self._lock:
            records, self._records = self._records[::-1], []
        return records

    def start(self, each: Each) -> None:
        """Remove the records in the background (concurrently)."""
        self._pool = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="acmelab-cleanup")
        self._running = self._pool.submit(_remove_records, self.dns, self._take(), each)

    def finish(self, each: Each) -> list[str]:
        """Wait for the removal (or remove now); one message per record that
        could not be removed."""
        failures: list[str] = []
        if self._running is not None:
            failures += self._running.result()
            self._pool.shutdown()
            self._running = self._pool = None
        return failures + _remove_records(self.dns, self._take(), each)


def _remove_records(dns: DnsProvider, records: list[tuple[str, str]], each: Each) -> list[str]:
    """cleanup() every record (concurrently), carrying on past failures.

    Returns one message per record that could not be removed (empty list
    when all went)."""
    def remove(record: tuple[str, str]) -> str | None:
        name, value = record
        try:
            dns.cleanup(name, value)
        except Exception as error:  # noqa: BLE001 - keep removing the others
            return f"could not remove the TXT record at {name}: {error}"
        return None

    return [failure for failure in each(remove, records) if failure]
