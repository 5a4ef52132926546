"""Every error acmelab raises, in one place.

One base class, :class:`AcmelabError`. Below it:

* :class:`InputError` -- the caller gave us something we cannot use (a bad
  domain name, a corrupt PEM, a wrong passphrase, a CSR that does not match
  the order).  Raised *before* anything is sent or written.
* :class:`ProtocolError` -- the server's answer breaks RFC 8555 (a body that
  is not JSON, a response without ``Replay-Nonce``).
* :class:`AcmeProblem` -- the ACME server answered with a problem document
  (RFC 8555 §6.7, RFC 7807).  One subclass per problem type a caller acts
  on, so ``except BadNonce:`` reads like the RFC.  Every instance carries
  ``type``, ``detail``, ``status`` and ``subproblems``.
* :class:`NetworkError`, :class:`PollTimeout`, :class:`ChallengeFailed`,
  :class:`LabError`, :class:`DnsError`, :class:`AliyunError`,
  :class:`DeployError` -- the rest of the course's moving parts.

Messages never contain secrets: no private key, no access key secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

ACME_ERROR_PREFIX = "urn:ietf:params:acme:error:"


class AcmelabError(Exception):
    """Base class of every error acmelab raises."""


class InputError(AcmelabError, ValueError):
    """Bad input from the caller; nothing was sent or written."""


class WouldOverwriteError(InputError, FileExistsError):
    """Refusing to overwrite an existing file (pass ``overwrite=True``)."""


class WriteFailed(InputError, OSError):
    """A file or directory could not be written: read-only file system,
    permission denied, disk full (:func:`acmelab.files.write_atomically`);
    the message names the path and the system's reason, and the old file
    is as it was.  Also an OSError, for callers that catch that."""


class KeyExistsError(WouldOverwriteError):
    """Refusing to overwrite an existing private key (pass ``overwrite=True``)."""


class UnknownProfile(InputError):
    """A profile the directory's ``meta.profiles`` does not list
    (draft-ietf-acme-profiles); raised before anything is sent.

    Attributes:
        profile: the name asked for.
        offered: the names the CA offers (empty: it offers no profiles).
    """

    def __init__(self, profile: str, offered: list[str]) -> None:
        self.profile = profile
        self.offered = list(offered)
        if offered:
            text = f"the CA offers no profile {profile!r}; it offers {', '.join(offered)}"
        else:
            text = f"the CA offers no profiles (its directory has no meta.profiles), so not {profile!r}"
        super().__init__(text)


class ProtocolError(AcmelabError):
    """The server's answer does not follow RFC 8555 (e.g. non-JSON body,
    missing ``Replay-Nonce``, missing ``Location``)."""


class NetworkError(AcmelabError):
    """The server could not be reached, after bounded retries.

    The message is one line: the step, the URL and the plain reason, e.g.
    ``finalizing the order for www.example.com:
    https://localhost:14000/finalize-order/...: connection refused (after 4
    tries)``.

    Attributes:
        url: the URL that could not be reached (None if unknown).
        step: what was being done, set by the client (None if unknown).
    """

    url: str | None = None
    step: str | None = None

    def __init__(self, *args: Any, url: str | None = None, step: str | None = None) -> None:
        super().__init__(*args)
        self.url = url
        self.step = step

    def __str__(self) -> str:
        text = super().__str__()
        return f"{self.step}: {text}" if self.step else text


class AnswerLost(NetworkError):
    """The request reached the server but its answer did not come back
    (the connection closed or timed out after the request was sent): the
    server may have acted on it.  Requests that are safe to repeat are
    repeated by the transport; the client resolves the others by asking
    the CA about the resource (RFC 8555 §7.4, §7.5.1, §7.6, §7.3.5)."""


class PollTimeout(AcmelabError, TimeoutError):
    """An object did not reach a final status before the deadline."""


class LabError(AcmelabError):
    """The local lab (Pebble, pebble-challtestsrv, the Alibaba endpoint)
    could not be started, reached or stopped."""


class DnsError(AcmelabError):
    """A DNS record could not be published, found or removed."""


class ZoneMissing(DnsError):
    """No zone of the DNS account holds the name a record is to be written
    at (Alibaba Cloud DNS: none of ``DescribeDomains`` is the name or a
    suffix of it), so nothing can be published there.  Known before any
    order (``check_names``): a configuration mistake, not an outage."""


class DelegatedZoneMissing(ZoneMissing):
    """The validation name is delegated by CNAME (RFC 8555 §8.4 lets the CA
    follow it) to a name that no zone of the DNS account holds, so the TXT
    record cannot be written where the CA will look.

    Attributes:
        record: the validation name, e.g. ``"_acme-challenge.shop.example.com"``.
        target: the end of its CNAME chain, where the TXT record belongs.
        zone: the zone that would hold ``target`` (the one to add to the account).
        chain: every name of the CNAME chain, ``record`` first, ``target`` last.
    """

    def __init__(self, record: str, target: str, zone: str, chain: tuple[str, ...] = ()) -> None:
        self.record = record
        self.target = target
        self.zone = zone
        self.chain = tuple(chain) or (record, target)
        hops = " -> ".join(self.chain)
        super().__init__(f"{record} is delegated by CNAME to {target} ({hops}), but the zone {zone} "
                         f"is not in this DNS account: add {zone} to the account, or point the CNAME "
                         f"into a zone the account holds")


class DeployError(AcmelabError):
    """A certificate could not be installed or verified on a service."""


# --------------------------------------------------------------------------
# RFC 8555 §6.7 problem documents
# --------------------------------------------------------------------------

#: RFC 8555 §6.7, Table "Error types": short name -> description.
PROBLEM_TYPES: dict[str, str] = {
    "accountDoesNotExist": "The request specified an account that does not exist",
    "alreadyRevoked": "The request specified a certificate to be revoked that has already been revoked",
    "badCSR": "The CSR is unacceptable (e.g., due to a short key)",
    "badNonce": "The client sent an unacceptable anti-replay nonce",
    "badPublicKey": "The JWS was signed by a public key the server does not support",
    "badRevocationReason": "The revocation reason provided is not allowed by the server",
    "badSignatureAlgorithm": "The JWS was signed with an algorithm the server does not support",
    "caa": "Certification Authority Authorization (CAA) records forbid the CA from issuing a certificate",
    "compound": "Specific error conditions are indicated in the 'subproblems' array",
    "connection": "The server could not connect to validation target",
    "dns": "There was a problem with a DNS query during identifier validation",
    "externalAccountRequired": "The request must include a value for the 'externalAccountBinding' field",
    "incorrectResponse": "Response received didn't match the challenge's requirements",
    "invalidContact": "A contact URL for an account was invalid",
    "malformed": "The request message was malformed",
    "orderNotReady": "The request attempted to finalize an order that is not ready to be finalized",
    "rateLimited": "The request exceeds a rate limit",
    "rejectedIdentifier": "The server will not issue certificates for the identifier",
    "serverInternal": "The server experienced an internal error",
    "tls": "The server received a TLS error during validation",
    "unauthorized": "The client lacks sufficient authorization",
    "unsupportedContact": "A contact URL for an account used an unsupported protocol scheme",
    "unsupportedIdentifier": "An identifier is of an unsupported type",
    "userActionRequired": "Visit the 'instance' URL and take actions specified there",
    # draft-ietf-acme-profiles
    "invalidProfile": "The request specified a profile the server does not offer",
    # RFC 9773 §5 (ARI)
    "alreadyReplaced": "The request specified a predecessor certificate that has already been replaced",
}


@dataclass(frozen=True)
class Subproblem:
    """One entry of a problem document's ``subproblems`` (RFC 8555 §6.7.1)."""

    type: str
    detail: str = ""
    identifier: Mapping[str, str] | None = None


class AcmeProblem(AcmelabError):
    """A problem document from the ACME server (RFC 8555 §6.7, RFC 7807).

    Attributes:
        type: the full problem type URN, e.g.
            ``"urn:ietf:params:acme:error:badNonce"``.
        detail: the server's human-readable explanation.
        status: the HTTP status code of the response (int), or None for a
            problem found inside an object (a challenge's ``error``).
        subproblems: list of :class:`Subproblem` (§6.7.1), possibly empty.
        document: the whole problem document as parsed JSON (dict).
        retry_after: seconds from the answer's ``Retry-After`` header
            (RFC 9110 §10.2.3), or None; set for ``rateLimited`` (RFC 8555
            §6.6) and HTTP 503 answers.

    Use :meth:`from_document` to get the most specific subclass.
    """

    #: short problem name this class stands for ("" for the base class)
    problem: str = ""
    _by_name: dict[str, type["AcmeProblem"]] = {}

    def __init__(
        self,
        type: str,
        detail: str = "",
        status: int | None = None,
        subproblems: list[Subproblem] | None = None,
        document: Mapping[str, Any] | None = None,
    ) -> None:
        self.type = type
        self.detail = detail
        self.status = status
        self.subproblems = list(subproblems or [])
        self.document = dict(document or {})
        self.retry_after: float | None = None
        super().__init__(str(self))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.problem:
            AcmeProblem._by_name[cls.problem] = cls

    @property
    def name(self) -> str:
        """The short problem name (``"badNonce"``), or the full type if it is
        not in the ACME namespace."""
        if self.type.startswith(ACME_ERROR_PREFIX):
            return self.type[len(ACME_ERROR_PREFIX):]
        return self.type

    @property
    def description(self) -> str:
        """The RFC 8555 §6.7 description of this problem type ('' if unknown)."""
        return PROBLEM_TYPES.get(self.name, "")

    def __str__(self) -> str:
        where = f" (HTTP {self.status})" if self.status else ""
        text = f"{self.name}{where}: {self.detail or self.description}"
        for sub in self.subproblems:
            ident = ""
            if sub.identifier:
                ident = f" [{sub.identifier.get('type', '')}:{sub.identifier.get('value', '')}]"
            short = sub.type[len(ACME_ERROR_PREFIX):] if sub.type.startswith(ACME_ERROR_PREFIX) else sub.type
            text += f"\n  - {short}{ident}: {sub.detail}"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(type={self.type!r}, status={self.status!r}, detail={self.detail!r})"

    @classmethod
    def from_document(cls, document: Mapping[str, Any], status: int | None = None) -> "AcmeProblem":
        """Build the most specific :class:`AcmeProblem` subclass for a parsed
        problem document (dict with ``type``, ``detail``, optional
        ``subproblems``).

        Never crashes on a malformed document -- it is the server's error
        being reported, so its usable parts are kept: a ``type`` that is not
        a string becomes ``"about:blank"``; a ``detail`` that is not a string
        is shown as text; ``subproblems`` that is not a list, and every
        subproblem that is not an object, are ignored; a subproblem
        ``identifier`` that is not an object with string ``type`` and
        ``value`` becomes None.  (The raw document stays in ``.document``.)
        """
        if not isinstance(document, Mapping):
            document = {}
        ptype = document.get("type")
        ptype = ptype if isinstance(ptype, str) and ptype else "about:blank"
        raw_subproblems = document.get("subproblems")
        subs = [
            Subproblem(
                type=str(s.get("type", "")),
                detail=str(s.get("detail", "")),
                identifier=_identifier_or_none(s.get("identifier")),
            )
            for s in (raw_subproblems if isinstance(raw_subproblems, list) else [])
            if isinstance(s, Mapping)
        ]
        name = ptype[len(ACME_ERROR_PREFIX):] if ptype.startswith(ACME_ERROR_PREFIX) else ""
        klass = AcmeProblem._by_name.get(name, AcmeProblem)
        detail = document.get("detail", "")
        return klass(ptype, detail if isinstance(detail, str) else str(detail), status, subs, document)


def _identifier_or_none(identifier: Any) -> Mapping[str, str] | None:
    """An identifier object (RFC 8555 §9.7.7) with string ``type`` and
    ``value``, or None for anything else."""
    if isinstance(identifier, Mapping) and isinstance(identifier.get("type"), str) \
            and isinstance(identifier.get("value"), str):
        return {"type": identifier["type"], "value": identifier["value"]}
    return None


# The problem types a caller acts on, as classes (spelled out for readers and
# type checkers; each registers itself for AcmeProblem.from_document).
class AccountDoesNotExist(AcmeProblem):
    """The account does not exist (``accountDoesNotExist``, RFC 8555 §7.3.1)."""
    problem = "accountDoesNotExist"


class AlreadyReplaced(AcmeProblem):
    """The certificate named in ``replaces`` already has a replacement
    order (``alreadyReplaced``, RFC 9773 §5)."""
    problem = "alreadyReplaced"


class AlreadyRevoked(AcmeProblem):
    """The certificate is already revoked (``alreadyRevoked``, RFC 8555 §7.6)."""
    problem = "alreadyRevoked"


class BadCSR(AcmeProblem):
    """The CSR is unacceptable (``badCSR``, RFC 8555 §7.4)."""
    problem = "badCSR"


class BadNonce(AcmeProblem):
    """The anti-replay nonce was rejected; retry with the nonce from this
    response (``badNonce``, RFC 8555 §6.5)."""
    problem = "badNonce"


class BadPublicKey(AcmeProblem):
    """The server does not support the JWS key (``badPublicKey``)."""
    problem = "badPublicKey"


class BadRevocationReason(AcmeProblem):
    """The revocation reason is not allowed (``badRevocationReason``, RFC 8555 §7.6)."""
    problem = "badRevocationReason"


class BadSignatureAlgorithm(AcmeProblem):
    """The JWS algorithm is not supported (``badSignatureAlgorithm``, RFC 8555 §6.2)."""
    problem = "badSignatureAlgorithm"


class Caa(AcmeProblem):
    """CAA records forbid issuance (``caa``)."""
    problem = "caa"


class Compound(AcmeProblem):
    """Several problems; see ``subproblems`` (``compound``, RFC 8555 §6.7.1)."""
    problem = "compound"


class Connection(AcmeProblem):
    """The CA could not connect to the validation target (``connection``)."""
    problem = "connection"


class Dns(AcmeProblem):
    """The CA's DNS query failed during validation (``dns``)."""
    problem = "dns"


class ExternalAccountRequired(AcmeProblem):
    """The CA requires External Account Binding (``externalAccountRequired``, RFC 8555 §7.3.4)."""
    problem = "externalAccountRequired"


class IncorrectResponse(AcmeProblem):
    """The challenge response did not match (``incorrectResponse``)."""
    problem = "incorrectResponse"


class InvalidContact(AcmeProblem):
    """A contact URL was invalid (``invalidContact``, RFC 8555 §7.3)."""
    problem = "invalidContact"


class InvalidProfile(AcmeProblem):
    """newOrder named a profile the CA does not offer (``invalidProfile``,
    draft-ietf-acme-profiles §4)."""
    problem = "invalidProfile"


class Malformed(AcmeProblem):
    """The request was malformed (``malformed``)."""
    problem = "malformed"


class OrderNotReady(AcmeProblem):
    """Finalize came before the order was ``ready`` (``orderNotReady``, RFC 8555 §7.4)."""
    problem = "orderNotReady"


class RateLimited(AcmeProblem):
    """A rate limit was hit (``rateLimited``, RFC 8555 §6.6), with a
    ``Retry-After`` too long to wait for (or none).

    Attributes:
        retry_after: seconds until the CA accepts the request again (from
            ``Retry-After``), or None when the CA did not say.
    """
    problem = "rateLimited"


class ServiceUnavailable(RateLimited):
    """The CA answered HTTP 503 Service Unavailable (RFC 9110 §15.6.4):
    come back later -- ``retry_after`` seconds, when it said.  A subclass
    of RateLimited, so ``except RateLimited`` handles every "not now"."""
    problem = ""  # not a problem type of its own: keep "rateLimited" -> RateLimited


class RejectedIdentifier(AcmeProblem):
    """The CA will not issue for this identifier (``rejectedIdentifier``)."""
    problem = "rejectedIdentifier"


class ServerInternal(AcmeProblem):
    """The CA had an internal error (``serverInternal``)."""
    problem = "serverInternal"


class Tls(AcmeProblem):
    """A TLS error during validation (``tls``)."""
    problem = "tls"


class Unauthorized(AcmeProblem):
    """The client lacks authorization (``unauthorized``)."""
    problem = "unauthorized"


class UnsupportedContact(AcmeProblem):
    """A contact URL used an unsupported scheme (``unsupportedContact``)."""
    problem = "unsupportedContact"


class UnsupportedIdentifier(AcmeProblem):
    """An identifier type is not supported (``unsupportedIdentifier``)."""
    problem = "unsupportedIdentifier"


class UserActionRequired(AcmeProblem):
    """A human must visit the ``instance`` URL (``userActionRequired``)."""
    problem = "userActionRequired"


class ChallengeFailed(AcmelabError):
    """A challenge or authorization ended ``invalid``.

    Attributes:
        identifier: the identifier value (e.g. ``"www.example.com"``).
        challenge_type: e.g. ``"dns-01"``.
        url: the challenge (or authorization) URL.
        problem: the CA's error as an :class:`AcmeProblem` (or None if the
            CA gave none).
    """

    def __init__(self, identifier: str, challenge_type: str, url: str, problem: AcmeProblem | None) -> None:
        self.identifier = identifier
        self.challenge_type = challenge_type
        self.url = url
        self.problem = problem
        why = f": {problem}" if problem else ""
        super().__init__(f"{challenge_type} challenge for {identifier} is invalid{why}")


# --------------------------------------------------------------------------
# Alibaba Cloud API errors
# --------------------------------------------------------------------------

class AliyunError(AcmelabError):
    """An Alibaba Cloud OpenAPI call failed.

    Attributes:
        code: Alibaba's error ``Code`` (e.g. ``"SignatureDoesNotMatch"``).
        message: a clear explanation (never containing the access key secret).
        request_id: Alibaba's ``RequestId`` when the service returned one.
        action: the API action called (e.g. ``"AddDomainRecord"``).
        http_status: HTTP status code, when known.
    """

    def __init__(self, code: str, message: str, *, request_id: str | None = None,
                 action: str | None = None, http_status: int | None = None) -> None:
        self.code = code
        self.message = message
        self.request_id = request_id
        self.action = action
        self.http_status = http_status
        where = f"{action}: " if action else ""
        rid = f" (RequestId {request_id})" if request_id else ""
        super().__init__(f"{where}{code}: {message}{rid}")


class AliyunAuthError(AliyunError):
    """The access key was refused: unknown ``AccessKeyId``
    (``InvalidAccessKeyId.NotFound``), wrong secret (``SignatureDoesNotMatch``)
    or a RAM user without the needed policy (``Forbidden.RAM``).  Retrying
    will not help; fix the credentials or the RAM policy."""


class AliyunThrottled(AliyunError):
    """Alibaba Cloud kept answering ``Throttling.User`` (or another
    ``Throttling`` code) after the bounded retries with back-off."""


class AliyunNetworkError(AliyunError, NetworkError):
    """The Alibaba Cloud endpoint could not be reached (DNS, TCP, TLS or
    timeout), reported by the SDK as a ``ClientException``."""


# --------------------------------------------------------------------------
# The acmelab command (state directory, services file)
# --------------------------------------------------------------------------

class ConfigError(InputError):
    """A services file or a command line that cannot be used (unknown key,
    wrong type, unknown DNS provider, production without confirmation).
    The ``acmelab`` command exits with status 2."""


class StateError(AcmelabError):
    """The state directory (``~/.acmelab``) holds something unusable, or
    cannot be written."""


class StateLocked(StateError):
    """Another ``acmelab`` run holds the lock of this certificate (or of the
    account); nothing was changed."""


class Interrupted(AcmelabError):
    """The run was interrupted (SIGINT) before this step; everything already
    published (DNS records) has been removed."""
