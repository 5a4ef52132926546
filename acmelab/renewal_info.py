"""ACME Renewal Information (ARI), RFC 9773: when the CA wants a certificate renewed.

The CA publishes, per certificate, a *suggested window*: renew at a random
moment inside it.  A client

1. builds the certificate's **certID** (§4.1): base64url of the Authority Key
   Identifier's ``keyIdentifier``, a dot, base64url of the serial number's
   DER INTEGER content octets (so a leading ``0x00`` of a serial whose top
   bit is set is kept);
2. GETs ``<directory renewalInfo>/<certID>`` -- unauthenticated, no JWS
   (§4.2);
3. reads ``suggestedWindow {start, end}`` (RFC 3339), an optional
   ``explanationURL``, and the ``Retry-After`` header: when to ask again
   (§4.3);
4. orders the renewal with ``"replaces": certID`` in newOrder (§5); a
   certificate can be replaced once (a second try is ``alreadyReplaced``).

Let's Encrypt exempts a renewal inside the suggested window from its rate
limits, and may move the window earlier (to before now) when it has to
revoke: a client that asks twice a day renews in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from cryptography import x509

from acmelab.errors import InputError, ProtocolError
from acmelab.jws import b64url

#: seconds: how long to wait before asking again when the CA sends no
#: usable ``Retry-After`` (RFC 9773 §4.3.2 suggests clients poll about twice a day)
DEFAULT_RETRY_AFTER = 6 * 3600.0
#: seconds: bounds on a ``Retry-After`` we honour (§4.3.2: clients SHOULD clamp
#: to a reasonable range; a minute at the least, a day at the most)
MIN_RETRY_AFTER, MAX_RETRY_AFTER = 60.0, 86400.0


def serial_octets(serial: int) -> bytes:
    """The content octets of the DER INTEGER encoding of a positive serial:
    big-endian, minimal, with a leading ``0x00`` when the top bit is set."""
    if serial <= 0:
        raise InputError(f"a certificate serial must be positive (got {serial})")
    return serial.to_bytes(serial.bit_length() // 8 + 1, "big")


def cert_id(certificate: x509.Certificate) -> str:
    """The ARI certID of ``certificate`` (RFC 9773 §4.1), e.g.
    ``"aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"``.

    Raises:
        InputError: the certificate has no Authority Key Identifier with a
            keyIdentifier (ARI cannot name it).
    """
    try:
        aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        raise InputError("the certificate has no Authority Key Identifier: ARI cannot name it") from None
    if not aki.key_identifier:
        raise InputError("the certificate's Authority Key Identifier has no keyIdentifier: ARI cannot name it")
    return f"{b64url(aki.key_identifier)}.{b64url(serial_octets(certificate.serial_number))}"


def _timestamp(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise ProtocolError(f"{where} is not an RFC 3339 timestamp: {value!r}")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ProtocolError(f"{where} is not an RFC 3339 timestamp: {value!r}") from None
    if when.tzinfo is None:
        raise ProtocolError(f"{where} has no time zone: {value!r}")
    return when.astimezone(timezone.utc)


@dataclass(frozen=True)
class RenewalInfo:
    """The CA's answer for one certificate (RFC 9773 §4.2).

    Attributes:
        cert_id: the certID asked about.
        start, end: the suggested window (aware UTC datetimes, start < end).
        explanation_url: why the window is where it is, or None.
        retry_after: seconds until the client should ask again (the header,
            clamped to 60 s .. 1 day; 6 h when absent).
        fetched_at: when the answer came (aware UTC).
    """

    cert_id: str
    start: datetime
    end: datetime
    explanation_url: str | None
    retry_after: float
    fetched_at: datetime

    @classmethod
    def from_json(cls, cert_id: str, document: Mapping[str, Any], *, retry_after: float | None,
                  fetched_at: datetime | None = None) -> "RenewalInfo":
        """Parse a renewalInfo object.

        Raises:
            ProtocolError: no ``suggestedWindow``, a timestamp that is not
                RFC 3339, or ``end`` not after ``start`` (§4.2: such a window
                is invalid).
        """
        window = document.get("suggestedWindow") if isinstance(document, Mapping) else None
        if not isinstance(window, Mapping):
            raise ProtocolError(f"renewalInfo for {cert_id} has no suggestedWindow object")
        start = _timestamp(window.get("start"), f"renewalInfo for {cert_id}: suggestedWindow.start")
        end = _timestamp(window.get("end"), f"renewalInfo for {cert_id}: suggestedWindow.end")
        if end <= start:
            raise ProtocolError(f"renewalInfo for {cert_id}: the window ends ({end.isoformat()}) "
                                f"before it starts ({start.isoformat()})")
        explanation = document.get("explanationURL")
        wait = DEFAULT_RETRY_AFTER if retry_after is None else min(max(retry_after, MIN_RETRY_AFTER), MAX_RETRY_AFTER)
        return cls(cert_id, start, end, explanation if isinstance(explanation, str) else None, wait,
                   fetched_at or datetime.now(timezone.utc))

    @property
    def next_check(self) -> datetime:
        """When to ask the CA again (``fetched_at`` + ``retry_after``)."""
        return self.fetched_at + timedelta(seconds=self.retry_after)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ISO 8601 strings, seconds as a number."""
        return {"cert_id": self.cert_id, "start": self.start.isoformat(), "end": self.end.isoformat(),
                "explanation_url": self.explanation_url, "retry_after": self.retry_after,
                "fetched_at": self.fetched_at.isoformat(), "next_check": self.next_check.isoformat()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RenewalInfo":
        """The inverse of :meth:`to_dict` (for stored answers).  Raises
        ProtocolError for a record that does not parse."""
        try:
            return cls(str(data["cert_id"]), _timestamp(data["start"], "start"), _timestamp(data["end"], "end"),
                       data.get("explanation_url"), float(data["retry_after"]),
                       _timestamp(data["fetched_at"], "fetched_at"))
        except (KeyError, TypeError, ValueError) as error:
            raise ProtocolError(f"a stored renewalInfo record does not parse ({error})") from None
