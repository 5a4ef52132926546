"""The RFC 8555 (ACME v2) client, on ``cryptography`` + ``requests``.

Theory of operation
-------------------
The client is built in layers, so a reader can study one without the
others:

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

3. :class:`AcmeClient` -- "what the RFC says".  One method per RFC
   action, in the order a certificate's life runs through them, one small
   module per ACME resource or extension in :mod:`acmelab.acme`:
   directory (§7.1.1, :mod:`~acmelab.acme.base`), account (§7.3,
   :mod:`~acmelab.acme.account`), order and finalize (§7.4,
   :mod:`~acmelab.acme.order`), authorization and challenge (§7.5, §8,
   :mod:`~acmelab.acme.authorization`), certificate download (§7.4.2) and
   revocation (§7.6, :mod:`~acmelab.acme.certificate`), renewal
   information (RFC 9773, :mod:`~acmelab.acme.renewal_info`).  This
   module puts them together.

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

Concurrency
-----------
Independent requests -- the authorizations of one order, their challenge
answers, their polls -- go out concurrently, at most ``concurrency`` at a
time (:meth:`AcmeClient.each`), over kept-alive connections, each signed
with a nonce of its own (:mod:`acmelab.nonces`).  The client may be shared
by threads for such requests; an account key rollover (``change_key``)
must not run while others are in flight.

Every name that was importable from here before the split still is
(``from acmelab.client import Order`` works).
"""

from __future__ import annotations


from acmelab.acme.account import AccountRequests
from acmelab.acme.authorization import FINAL_AUTHORIZATION_STATUSES, AuthorizationRequests
from acmelab.acme.base import DEFAULT_CONCURRENCY, POLL_FIRST_DELAY, POLL_MAX_DELAY, POLL_TIMEOUT
from acmelab.acme.certificate import PEM_CHAIN, CertificateRequests
from acmelab.acme.order import LOST_ORDER_SEARCH, OrderRequests
from acmelab.acme.renewal_info import RenewalInfoRequests
from acmelab.resources import (
    Account,
    Authorization,
    CertificateChain,
    Challenge,
    Directory,
    Order,
    ReasonCode,
    chain_matches,
)
from acmelab.transport import (
    BAD_NONCE_RETRIES,
    DEFAULT_TIMEOUT,
    JOSE_JSON,
    NETWORK_BACKOFF,
    NETWORK_TRIES,
    PROBLEM_JSON,
    AcmeResponse,
    AcmeTransport,
    checked_verify,
    parse_retry_after,
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
    # constants that lived here before the split
    "BAD_NONCE_RETRIES", "DEFAULT_CONCURRENCY", "DEFAULT_TIMEOUT", "FINAL_AUTHORIZATION_STATUSES",
    "JOSE_JSON", "LOST_ORDER_SEARCH", "NETWORK_BACKOFF", "NETWORK_TRIES", "PEM_CHAIN", "POLL_FIRST_DELAY",
    "POLL_MAX_DELAY", "POLL_TIMEOUT", "PROBLEM_JSON",
]


class AcmeClient(AccountRequests, OrderRequests, AuthorizationRequests, CertificateRequests,
                 RenewalInfoRequests):
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
        concurrency: independent requests in flight at once (int >= 1;
            :data:`DEFAULT_CONCURRENCY`); 1 sends everything in turn.

    Attributes:
        account_url: the account URL, used as JWS ``kid`` (§6.2).
        account_key: the current account key (changed by change_key).

    Every method may raise :class:`~acmelab.errors.AcmeProblem` (a typed
    subclass per problem type), ProtocolError and NetworkError.
    """
