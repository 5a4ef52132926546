"""Accounts (RFC 8555 §7.3): create or find, read, update, roll the key
over (§7.3.5), deactivate (§7.3.6)."""

from __future__ import annotations

from typing import Any, Sequence

from acmelab import jws, keys
from acmelab.acme.base import ClientBase, ask_before_repeating, doing
from acmelab.errors import AccountDoesNotExist, InputError
from acmelab.resources import Account
from acmelab.transport import AcmeResponse

__all__ = ["AccountRequests"]


class AccountRequests(ClientBase):
    """The account actions of :class:`acmelab.client.AcmeClient`."""

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
        with doing("registering the account"):
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

        with doing("rolling the account key over"):
            response = ask_before_repeating(lambda: self._post(url, inner), rolled_over)
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

