"""The ACME resources (RFC 8555 §7.1), as the server sent them.

A resource is a JSON object the ACME server keeps at a URL: the directory
(§7.1.1), an account (§7.1.2), an order (§7.1.3), an authorization
(§7.1.4) and its challenges (§7.1.5), and the certificate chain an order
ends with (§7.4.2).  The client reads one by POST-as-GET to its URL (the
directory by a plain GET) and gets it back here as a frozen dataclass:
:class:`Directory`, :class:`Account`, :class:`Order`,
:class:`Authorization`, :class:`Challenge`, :class:`CertificateChain`.
Their attributes keep the RFC's field names; the whole JSON is in
``.json``.  A malformed object (a field of the wrong JSON type) is a
:class:`~acmelab.errors.ProtocolError`.  :class:`ReasonCode` lists the
revocation reasons a revokeCert request may give (§7.6).

The objects are snapshots: the server moves a resource through its
statuses, and the client fetches it again to see where it is.  The life of
an order (§7.1.6)::

    order:          pending --(all authorizations valid)--> ready
                    ready --(finalize)--> processing --> valid (certificate)
                    any --(an authorization failed / expired)--> invalid
    authorization:  pending --(a challenge valid)--> valid;  else invalid
    challenge:      pending --(answer_challenge)--> processing --> valid | invalid
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Mapping

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtensionOID, NameOID

from acmelab.errors import AcmeProblem, InputError, ProtocolError


class ReasonCode(IntEnum):
    """Certificate revocation reasons (RFC 5280 §5.3.1; RFC 8555 §7.6).

    Value 7 is unused in RFC 5280.  Let's Encrypt accepts only
    unspecified, keyCompromise, superseded, cessationOfOperation and
    affiliationChanged from subscribers (:data:`SUBSCRIBER_REASONS`); Pebble
    also takes certificateHold.
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


#: the reasons Let's Encrypt accepts in a subscriber's revokeCert (its
#: revocation policy; the others are refused with ``badRevocationReason``)
SUBSCRIBER_REASONS = (ReasonCode.unspecified, ReasonCode.keyCompromise, ReasonCode.affiliationChanged,
                      ReasonCode.superseded, ReasonCode.cessationOfOperation)


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
    #: ARI (RFC 9773 §3): base URL of the renewalInfo resource, or None
    renewalInfo: str | None = None

    @property
    def profiles(self) -> dict[str, str]:
        """``meta.profiles`` (draft-ietf-acme-profiles §3): profile name ->
        description; empty when the CA offers none (or sends junk)."""
        profiles = self.meta.get("profiles")
        if not isinstance(profiles, Mapping):
            return {}
        return {str(name): str(text) for name, text in profiles.items() if isinstance(name, str)}

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> "Directory":
        """Raises ProtocolError when a required URL is missing."""
        missing = [name for name in ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange")
                   if not isinstance(document.get(name), str)]
        if missing:
            raise ProtocolError(f"the ACME directory lacks {', '.join(missing)}")
        meta = document.get("meta")
        renewal_info = document.get("renewalInfo")
        return cls(document["newNonce"], document["newAccount"], document["newOrder"],
                   document["revokeCert"], document["keyChange"], document.get("newAuthz"),
                   meta if isinstance(meta, Mapping) else {}, document,
                   renewal_info if isinstance(renewal_info, str) else None)


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

    @property
    def profile(self) -> str | None:
        """The order's ``profile`` (draft-ietf-acme-profiles), if the CA says."""
        value = self.json.get("profile")
        return value if isinstance(value, str) and value else None

    @property
    def replaces(self) -> str | None:
        """The certID this order replaces (RFC 9773 §5), if any."""
        value = self.json.get("replaces")
        return value if isinstance(value, str) and value else None

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


def csr_names(csr: x509.CertificateSigningRequest) -> set[str]:
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


def load_certificate(certificate: x509.Certificate | str | bytes) -> x509.Certificate:
    """An x509 certificate from an x509 object, PEM (the first of a chain)
    or DER.  Raises InputError for anything else."""
    if isinstance(certificate, x509.Certificate):
        return certificate
    data = certificate.encode("ascii", "replace") if isinstance(certificate, str) else certificate
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificates(data)[0]
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise InputError("not a PEM or DER certificate") from None
