"""Authorizations and challenges (RFC 8555 §7.5, §8): fetch them, work out
the key authorization and the DNS record a challenge asks for
(:mod:`acmelab.challenges`), answer challenges, poll authorizations --
one or many at once."""

from __future__ import annotations

from typing import Sequence

from acmelab import challenges, keys
from acmelab.acme.base import POLL_TIMEOUT, ClientBase, doing
from acmelab.challenges import DnsRecord, validation_name
from acmelab.errors import AcmeProblem, ChallengeFailed, InputError, ProtocolError
from acmelab.resources import Authorization, Challenge
from acmelab.transport import TOKEN, AcmeResponse

__all__ = ["FINAL_AUTHORIZATION_STATUSES", "AuthorizationRequests"]

#: the statuses an authorization does not leave (RFC 8555 §7.1.6)
FINAL_AUTHORIZATION_STATUSES = ("valid", "invalid", "deactivated", "expired", "revoked")


class AuthorizationRequests(ClientBase):
    """The authorization and challenge actions of :class:`acmelab.client.AcmeClient`."""

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
        if not isinstance(token, str) or not TOKEN.match(token):
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

    def answer_challenge(self, challenge: Challenge, *, name: str | None = None) -> Challenge:
        """Tell the CA the challenge is ready to be validated: POST ``{}``
        to its URL (§7.5.1).  Returns the challenge (usually
        ``processing``).  ``name``, the authorization's identifier, only
        names the step in an error ("answering the dns-01 challenge for
        www.example.com").

        A lost answer is sent again.  A CA that refuses an answer because
        the challenge is no longer ``pending`` (it is processing, or done:
        the first answer did arrive) is fine: the challenge is returned
        as the CA has it, for the authorization poll to judge."""
        if challenge.type != "dns-persist-01":  # it has no token
            self.key_authorization(challenge)  # refuse a malformed token before answering
        with doing(f"answering the {challenge.type} challenge" + (f" for {name}" if name else "")):
            try:
                response = self._post(challenge.url, {}, idempotent=True)
            except AcmeProblem:
                current = self.fetch_challenge(challenge.url)
                if current.status == "pending":
                    raise
                return current
        return Challenge.from_json(response.json(), challenge.url)


    def _fetch_authorization(self, url: str) -> tuple[Authorization, AcmeResponse]:
        response = self._post_as_get(url)
        return Authorization.from_json(url, response.json()), response


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
        with doing(f"waiting for the authorization of {getattr(authorization, 'name', authorization)}"):
            if isinstance(authorization, str):
                authorization = self.fetch_authorization(authorization)
            final = self._poll(self._fetch_authorization, authorization.url, authorization,
                               FINAL_AUTHORIZATION_STATUSES, timeout)
        return _valid(final)

    # -- many at once: the authorizations of one order -----------------------
    def fetch_authorizations(self, urls: Sequence[str]) -> list[Authorization]:
        """Every authorization of ``urls`` (POST-as-GET, §7.5), fetched
        concurrently (at most ``concurrency`` at a time), in order."""
        return self.each(self.fetch_authorization, urls)

    def answer_challenges(self, authorizations: Sequence[Authorization], challenge_type: str) -> list[Challenge]:
        """:meth:`answer_challenge` for the ``challenge_type`` challenge of
        each authorization (§7.5.1), concurrently, in order; an error names
        the authorization's identifier."""
        return self.each(lambda authorization: self.answer_challenge(
            authorization.challenge(challenge_type), name=authorization.name), authorizations)

    def raise_for_failed(self, authorizations: Sequence[Authorization]) -> None:
        """Fetch each authorization once (concurrently) and raise
        ChallengeFailed, with the failed challenge and the CA's error, for
        the first that ended ``invalid`` (or deactivated, expired, revoked);
        return if none did.  What to do once an order turned ``invalid``
        (§7.1.6): one of its authorizations did, and none will change."""
        failed = set(FINAL_AUTHORIZATION_STATUSES) - {"valid"}
        for authorization in self.fetch_authorizations([a.url for a in authorizations]):
            if authorization.status in failed:
                _valid(authorization)


def _valid(authorization: Authorization) -> Authorization:
    """``authorization`` if it is valid; else ChallengeFailed with the
    failed challenge and the CA's error."""
    if authorization.status != "valid":
        failed = next((c for c in authorization.challenges if c.error is not None or c.status == "invalid"), None)
        raise ChallengeFailed(authorization.name, failed.type if failed else "(none)",
                              failed.url if failed else authorization.url, authorization.problem)
    return authorization

