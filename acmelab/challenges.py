"""The DNS challenges: which TXT record proves control of a name, and where it goes.

Three challenge types validate a name through DNS; each asks for one TXT
record (:class:`DnsRecord`):

=================  ==========================================  ==========================================
type               record name                                 record value
=================  ==========================================  ==========================================
``dns-01``         ``_acme-challenge.<name>``                  base64url(SHA-256(key authorization))
(RFC 8555 §8.4)
``dns-account-01`` ``_<label>._acme-challenge.<name>``, label  the same as dns-01
(draft-ietf-acme-  = lower-case base32 of the first 10 bytes
dns-account-label) of SHA-256(account URL)
``dns-persist-01`` ``_validation-persist.<name>``              ``<issuer domain>; accounturi=<account
(draft-ietf-acme-                                              URL>`` [``; policy=wildcard``]
dns-persist)                                                   [``; persistUntil=<unix seconds>``]
=================  ==========================================  ==========================================

A wildcard ``*.example.com`` validates at the base name ``example.com``.

dns-01 and dns-account-01 records answer *one* challenge (the token is in
the value) and are removed afterwards.  A dns-persist-01 record names the
CA and the account instead of a token, so it keeps proving control for
every later order of that account: it is published once and left in place
(``standing``), which is what automation of cloud services wants -- a
renewal writes no DNS record at all.  dns-account-01 gives each account its
own record name, so several accounts (say, two regions' automation) can
validate one name at the same time without overwriting each other.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from acmelab.errors import ProtocolError

# The interface the core needs from whoever publishes the records; the
# providers live in acmelab.dns (the edge) and implement it.
@runtime_checkable
class DnsProvider(Protocol):
    """Publishes and removes DNS-01 TXT records (RFC 8555 §8.4).

    :func:`acmelab.issue.issue_certificate` calls it from several threads at
    once (every record of an order published together, removed in the
    background while the CA finalizes): an implementation must be thread-safe."""

    def present(self, name: str, value: str) -> None:
        """Publish TXT ``value`` at ``name``.  Raises DnsError (or the
        provider's own AcmelabError subclass)."""
        ...

    def cleanup(self, name: str, value: str) -> None:
        """Remove the TXT record (``name``, ``value``) only.  Raises DnsError."""
        ...


@runtime_checkable
class VisibilityCheck(Protocol):
    """The optional propagation check of a DnsProvider."""

    def wait_until_visible(self, name: str, value: str, timeout: float) -> None:
        """Return when TXT ``value`` is visible at ``name``; DnsError after
        ``timeout`` seconds.  ``timeout=0`` looks exactly once (how
        :mod:`acmelab.issue` asks whether a standing record is already there)."""
        ...


#: the challenge types acmelab can answer, all through DNS
CHALLENGE_TYPES = ("dns-01", "dns-account-01", "dns-persist-01")


@dataclass(frozen=True)
class DnsRecord:
    """One TXT record a challenge asks for.

    Attributes:
        name: the full record name, no trailing dot
            (``"_acme-challenge.www.example.com"``).
        value: the TXT value.
        standing: True for dns-persist-01: published once, left in place.
    """

    name: str
    value: str
    standing: bool = False


def base_name(domain: str) -> str:
    """The name a DNS challenge validates: ``domain`` without a trailing dot
    and without a leading ``*.``."""
    domain = domain.rstrip(".")
    return domain[2:] if domain.startswith("*.") else domain


def validation_name(domain: str) -> str:
    """Where the dns-01 TXT record of ``domain`` goes (RFC 8555 §8.4):
    ``"_acme-challenge." + domain``; a wildcard ``"*.example.com"``
    validates at ``"_acme-challenge.example.com"``.  No trailing dot."""
    return f"_acme-challenge.{base_name(domain)}"


def is_standing(record_name: str) -> bool:
    """True for a dns-persist-01 record name (``_validation-persist.…``):
    such a record is left in place by design."""
    return record_name.lower().startswith("_validation-persist.")


def account_label(account_url: str) -> str:
    """The dns-account-01 label of an account (draft-ietf-acme-dns-account-label
    §3.1): lower-case base32 (no padding) of the first 10 bytes of
    SHA-256(account URL) -- 16 characters."""
    digest = hashlib.sha256(account_url.encode("utf-8")).digest()
    return base64.b32encode(digest[:10]).decode("ascii").lower().rstrip("=")


def txt_value(key_authorization: str) -> str:
    """base64url(SHA-256(key authorization)), no padding: 43 characters (RFC 8555 §8.4)."""
    digest = hashlib.sha256(key_authorization.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def dns01_record(domain: str, key_authorization: str) -> DnsRecord:
    """The dns-01 record (RFC 8555 §8.4)."""
    return DnsRecord(validation_name(domain), txt_value(key_authorization))


def dns_account01_record(domain: str, key_authorization: str, account_url: str) -> DnsRecord:
    """The dns-account-01 record (draft-ietf-acme-dns-account-label §3.1)."""
    return DnsRecord(f"_{account_label(account_url)}._acme-challenge.{base_name(domain)}",
                     txt_value(key_authorization))


def dns_persist01_record(domain: str, *, issuer_domain_names: list[str] | tuple[str, ...], account_url: str,
                         wildcard: bool = False, persist_until: datetime | None = None) -> DnsRecord:
    """The dns-persist-01 record (draft-ietf-acme-dns-persist §3; CA/B Forum
    ballot SC-088): ``"<issuer>; accounturi=<URL>"``, with ``policy=wildcard``
    for a wildcard authorization and ``persistUntil`` if given.

    Args:
        domain: the identifier (a wildcard is validated at its base name).
        issuer_domain_names: the challenge's ``issuer-domain-names``; the
            first one is used (it is the CA's CAA identity).
        account_url: the account URL the CA names in the challenge's
            ``accounturi`` (or, failing that, the client's ``kid``).
        wildcard: the authorization is for ``*.<domain>``.
        persist_until: the record stops working after this moment.

    Raises:
        ProtocolError: no issuer domain name, or one that could not stand in
            a TXT record (spaces, semicolons, non-ASCII).
    """
    issuers = [name for name in issuer_domain_names if isinstance(name, str) and name]
    if not issuers:
        raise ProtocolError("the dns-persist-01 challenge names no issuer-domain-names")
    issuer = issuers[0]
    for text, what in ((issuer, "issuer domain"), (account_url, "accounturi")):
        if not text.isascii() or any(c in text for c in " \t;\"") or not text.isprintable():
            raise ProtocolError(f"the dns-persist-01 {what} {text!r} cannot stand in a TXT record")
    parts = [issuer, f"accounturi={account_url}"]
    if wildcard:
        parts.append("policy=wildcard")
    if persist_until is not None:
        parts.append(f"persistUntil={int(persist_until.timestamp())}")
    name = f"_validation-persist.{base_name(domain)}"
    return DnsRecord(name, "; ".join(parts), standing=is_standing(name))
