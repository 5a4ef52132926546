"""DNS-01 providers: who publishes the ``_acme-challenge`` TXT records.

A *DNS provider* is any object with two methods (RFC 8555 §8.4):

* ``present(name, value)`` -- publish TXT ``value`` at ``name``;
* ``cleanup(name, value)`` -- remove exactly that (name, value) record and
  nothing else (a wildcard and its base name put two values on one name,
  and both must stay published until each is cleaned up);

and optionally

* ``wait_until_visible(name, value, timeout)`` -- return once the record is
  visible to the CA's resolvers; raise :class:`~acmelab.errors.DnsError` at
  the deadline (``timeout`` in seconds; 0 looks exactly once).

``name`` is the full validation domain name without trailing dot, e.g.
``"_acme-challenge.www.example.com"`` (see :func:`validation_name`), and
``value`` the TXT value, base64url(SHA-256(key authorization)).

Providers: :mod:`acmelab.dns.challtestsrv` (the lab's mock DNS) and
:mod:`acmelab.dns.alidns` (Alibaba Cloud DNS).
"""

from __future__ import annotations

from acmelab.challenges import DnsProvider, VisibilityCheck, validation_name

__all__ = ["DnsProvider", "VisibilityCheck", "validation_name"]




