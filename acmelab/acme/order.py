"""Orders (RFC 8555 §7.4): newOrder (with profiles, draft-ietf-acme-profiles,
and ARI ``replaces``, RFC 9773 §5), the account's orders list (§7.1.2.1),
polling, and finalize."""

from __future__ import annotations

import time
from typing import Any, Iterable, Mapping

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from acmelab import jws
from acmelab.acme.base import POLL_TIMEOUT, ClientBase, ask_before_repeating, doing
from acmelab.errors import AnswerLost, InputError, OrderNotReady, ProtocolError, UnknownProfile
from acmelab.resources import Account, Order, csr_names
from acmelab.transport import NETWORK_TRIES, AcmeResponse

__all__ = ["LOST_ORDER_SEARCH", "OrderRequests"]

#: after a lost newOrder answer, how many of the account's newest orders
#: are fetched to find the one the CA may have made.
LOST_ORDER_SEARCH = 5


class OrderRequests(ClientBase):
    """The order actions of :class:`acmelab.client.AcmeClient`."""

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
        with doing(f"ordering a certificate for {names}"):
            return ask_before_repeating(send, lambda: self._find_order(payload))

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

    def deactivate_valid_authorizations(self, names: Iterable[str]) -> list[str]:
        """Give up (§7.5.2) every ``valid`` authorization the account holds
        for one of ``names`` (a ``*.`` wildcard counts as its base name),
        found through the account's orders list (§7.1.2.1).  The next order
        for those names then gets ``pending`` authorizations, whatever the
        CA's reuse policy: what you do when a domain changes hands, and what
        the course and the tests do for a run that must show the whole flow
        (Pebble reuses a valid authorization about 1 time in 100 even at
        ``PEBBLE_AUTHZREUSE=0``: wfe.go compares ``rand.Intn(100) > percent``).

        Returns the URLs deactivated (an empty list when none was valid).
        Raises ProtocolError if the CA offers no orders list (Let's Encrypt
        does not: there, deactivate the URLs you kept with
        :meth:`deactivate_authorization`)."""
        wanted = {name.lower().removeprefix("*.") for name in names}
        orders = self.each(self.fetch_order, self.list_orders())
        urls = list(dict.fromkeys(url for order in orders for url in order.authorizations))
        valid = [a.url for a in self.fetch_authorizations(urls)       # the identifier of a wildcard is its base name
                 if a.status == "valid" and str(a.identifier.get("value", "")).lower() in wanted]
        self.each(self.deactivate_authorization, valid)
        return valid


    def _fetch_order(self, url: str) -> tuple[Order, AcmeResponse]:
        response = self._post_as_get(url)
        return Order.from_json(url, response.json()), response


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
        have = csr_names(csr)
        if have != wanted:
            raise InputError(
                f"the CSR names {sorted(have)} differ from the order's identifiers {sorted(wanted)}")
        payload = {"csr": jws.b64url(csr.public_bytes(serialization.Encoding.DER))}
        deadline = time.monotonic() + timeout
        with doing(f"finalizing the order for {', '.join(order.names)}"):
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
                    order = self.poll_order(order.url, until=("ready", "valid", "invalid"),
                                            timeout=max(0.0, deadline - time.monotonic()))
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

