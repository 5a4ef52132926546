"""Readable displays for the notebooks: HTTP exchanges, JWS, JSON, certificates.

Theory of operation
-------------------
The course shows what goes over the wire.  Every display here is a small
object with a plain-text ``__repr__`` (what a terminal and nbval's
``text/plain`` see) and a ``_repr_html_`` (what JupyterLab and nbconvert's
HTML show): the same text in a ``<pre>`` block, so the two never disagree.

* :func:`exchange` -- one ``requests.Response``: the request line, the JWS
  body decoded (protected header, payload, signature), then the status
  line, the ACME headers (``Replay-Nonce``, ``Location``, ``Link``,
  ``Retry-After``) and the JSON body.
* :class:`Wire` -- records every exchange of a ``requests.Session`` (or of
  an object with a ``session`` attribute, such as the ACME client) while a
  ``with`` block runs.
* :func:`jws` -- the anatomy of a flattened JWS.
* :func:`json_view` -- JSON, indented, keys in the server's order.
* :func:`certificate`, :func:`chain`, :func:`csr` -- the fields a reader
  checks (names, issuer, validity, key, policy OIDs), never key material.

Outputs stay free of secrets: private keys are never rendered, and request
headers other than ``Content-Type`` are left out.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

#: Response headers RFC 8555 gives meaning to (§6.5, §7.1, §7.3, §6.6).
ACME_RESPONSE_HEADERS = ("Content-Type", "Replay-Nonce", "Location", "Link", "Retry-After")

#: CA/Browser Forum certificate policy OIDs (Baseline Requirements §7.1.6.1, EV Guidelines).
CABF_POLICIES = {
    "2.23.140.1.2.1": "Domain Validated (DV)",
    "2.23.140.1.2.2": "Organization Validated (OV)",
    "2.23.140.1.2.3": "Individual Validated (IV)",
    "2.23.140.1.1": "Extended Validation (EV)",
}


class Text:
    """Preformatted text with a ``<pre>`` HTML twin (the base of every display)."""

    def __init__(self, text: str, title: str | None = None) -> None:
        self.text = text.rstrip("\n")
        self.title = title

    def __repr__(self) -> str:
        return f"{self.title}\n{self.text}" if self.title else self.text

    def __str__(self) -> str:
        return self.__repr__()

    def _repr_html_(self) -> str:
        title = f"<strong>{html.escape(self.title, quote=False)}</strong>" if self.title else ""
        return (f'<div class="acmelab">{title}<pre style="margin:0.2em 0;white-space:pre-wrap">'
                f"{html.escape(self.text, quote=False)}</pre></div>")


def json_text(value: Any) -> str:
    """JSON indented by two spaces, non-ASCII kept readable."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def json_view(value: Any, title: str | None = None) -> Text:
    """Display a JSON value (dict/list) indented."""
    return Text(json_text(value), title)


# --------------------------------------------------------------------------
# JWS
# --------------------------------------------------------------------------

def _decode_jws(body: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    from acmelab.jws import b64url_decode

    protected = json.loads(b64url_decode(body["protected"]))
    raw = b64url_decode(body["payload"])
    if raw == b"":
        payload: Any = ""
    else:
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = raw.decode("ascii", "replace")
    return protected, payload


def _short(text: str, keep: int = 24) -> str:
    return text if len(text) <= keep * 2 else f"{text[:keep]}...({len(text)} characters)"


def _shorten_fields(payload: Any, shorten: Iterable[str]) -> Any:
    """``payload`` with the string values of the fields named in ``shorten``
    replaced by ``<the field: DER, base64url>`` (for long DER blobs such
    as ``csr`` or ``certificate`` that differ at every run, even in length:
    an ECDSA signature's DER length varies)."""
    names = set(shorten)
    if not names or not isinstance(payload, dict):
        return payload
    return {key: (f"<the {key}: DER, base64url>"
                  if key in names and isinstance(value, str) else value)
            for key, value in payload.items()}


def jws_lines(body: Mapping[str, Any], *, shorten: Iterable[str] = (),
              payload_note: str | None = None) -> list[str]:
    """The three parts of a flattened JWS, decoded, as text lines.

    ``shorten`` names payload fields whose values are shown only as a
    placeholder (see :func:`_shorten_fields`); ``payload_note``, if given, is
    shown instead of the payload (e.g. for keyChange, RFC 8555 §7.3.5,
    whose payload is itself a JWS, shown separately)."""
    protected, payload = _decode_jws(body)
    lines = ["protected (decoded): " + json_text(protected).replace("\n", "\n  ")]
    if payload_note is not None:
        lines.append(f"payload:             <{payload_note}>")
    elif payload == "":
        lines.append('payload (decoded):   ""   <- empty: a POST-as-GET (RFC 8555 §6.3)')
    else:
        lines.append("payload (decoded):   " + json_text(_shorten_fields(payload, shorten)).replace("\n", "\n  "))
    lines.append(f"signature:           {_short(body['signature'])}")
    return lines


def jws(body: Mapping[str, Any], title: str | None = "flattened JWS", *,
        shorten: Iterable[str] = (), payload_note: str | None = None) -> Text:
    """Display a flattened JWS ``{"protected", "payload", "signature"}``:
    the protected header and payload decoded from base64url.  ``shorten``
    and ``payload_note`` as in :func:`jws_lines`."""
    return Text("\n".join(jws_lines(body, shorten=shorten, payload_note=payload_note)), title)


# --------------------------------------------------------------------------
# HTTP exchanges
# --------------------------------------------------------------------------

def _reason(response: Any) -> str:
    return f"HTTP {response.status_code} {response.reason or ''}".rstrip()


def sort_lists(document: Any) -> Any:
    """``tidy`` helper: an order's ``identifiers`` sorted by value and an
    authorization's ``challenges`` sorted by type.  A CA may list both in
    any order (Pebble shuffles them on purpose); sorted, two runs read the
    same."""
    if not isinstance(document, dict):
        return document
    document = dict(document)
    if isinstance(document.get("challenges"), list):
        document["challenges"] = sorted(document["challenges"], key=lambda c: str(c.get("type")))
    if isinstance(document.get("identifiers"), list):
        document["identifiers"] = sorted(document["identifiers"],
                                         key=lambda i: (str(i.get("type")), str(i.get("value"))))
    return document



def exchange_text(response: Any, *, body_limit: int = 4000, tidy: Any = None,
                  shorten: Iterable[str] = ()) -> str:
    """The text of one request/response pair (a ``requests.Response``).

    ``tidy``, if given, is applied to the parsed JSON response body before
    it is shown (e.g. :func:`sort_lists`); ``shorten`` names fields of the
    request's JWS payload shown only as a placeholder (e.g. ``("csr",)``
    for finalize, ``("certificate",)`` for revokeCert)."""
    request = response.request
    lines = [f">>> {request.method} {request.url}"]
    content_type = request.headers.get("Content-Type")
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    raw = request.body
    if raw:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict) and {"protected", "payload", "signature"} <= body.keys():
            lines.extend(jws_lines(body, shorten=shorten))
        else:
            lines.append(text[:body_limit])
    lines.append("")
    lines.append(f"<<< {_reason(response)}")
    for name in ACME_RESPONSE_HEADERS:
        value = response.headers.get(name)
        if value is None:
            continue
        if name == "Link":  # several Link headers arrive joined by ", "
            for part in value.split(", <"):
                lines.append(f"Link: {part if part.startswith('<') else '<' + part}")
        else:
            lines.append(f"{name}: {value}")
    content = response.headers.get("Content-Type", "")
    if response.content:
        if "json" in content:
            try:
                document = response.json()
                lines.append(json_text(tidy(document) if tidy else document))
            except ValueError:
                lines.append(response.text[:body_limit])
        elif "pem" in content or content.startswith("text/"):
            text = response.text
            lines.append(text if len(text) <= body_limit else text[:body_limit] + "...")
        else:
            lines.append(f"({len(response.content)} bytes of {content or 'data'})")
    return "\n".join(lines)


def exchange(response: Any, title: str | None = None, *, tidy: Any = None,
             shorten: Iterable[str] = ()) -> Text:
    """Display one HTTP exchange: request line, decoded JWS body, status,
    the ACME response headers and the JSON body (see :func:`exchange_text`)."""
    return Text(exchange_text(response, tidy=tidy, shorten=shorten), title)


@dataclass
class Wire:
    """Record every HTTP exchange made through a ``requests.Session``.

    Use as ``with Wire(session_or_client) as wire: ...`` then display
    ``wire`` (all exchanges) or ``wire.exchanges[-1]``.  ``target`` is a
    ``requests.Session``, an :class:`acmelab.client.AcmeClient` or any
    object with a ``session`` attribute.

    ``only`` keeps exchanges whose URL contains one of the given strings;
    ``tidy`` and ``shorten`` are passed to :func:`exchange_text`
    (``Wire(client, shorten=("csr",))`` hides the finalize CSR's base64url).
    """

    target: Any
    only: Iterable[str] | None = None
    tidy: Any = None
    shorten: Iterable[str] = ()
    exchanges: list[Any] = field(default_factory=list)

    def _session(self) -> Any:
        holder = getattr(self.target, "transport", self.target)  # AcmeClient -> AcmeTransport
        session = getattr(holder, "session", holder)
        if not hasattr(session, "hooks"):
            raise TypeError("Wire needs a requests.Session or an object with a .session")
        return session

    def _hook(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        if self.only is None or any(part in response.url for part in self.only):
            self.exchanges.append(response)
        return response

    def __enter__(self) -> "Wire":
        self._session().hooks.setdefault("response", []).append(self._hook)
        return self

    def __exit__(self, *exc: Any) -> None:
        hooks = self._session().hooks.get("response", [])
        if self._hook in hooks:
            hooks.remove(self._hook)

    def text(self) -> str:
        separator = "\n" + "-" * 60 + "\n"
        return separator.join(exchange_text(r, tidy=self.tidy, shorten=self.shorten)
                              for r in self.exchanges) or "(no HTTP exchanges)"

    def summary(self) -> Text:
        """One line per exchange: method, path, status."""
        lines = []
        for response in self.exchanges:
            lines.append(f"{response.request.method:5} {response.request.path_url} -> {_reason(response)}")
        return Text("\n".join(lines) or "(no HTTP exchanges)")

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        return Text(self.text())._repr_html_()


# --------------------------------------------------------------------------
# Certificates, chains, CSRs
# --------------------------------------------------------------------------

def _key_description(public_key: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA {public_key.key_size} bits"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"ECDSA {public_key.curve.name}"
    return type(public_key).__name__


def _names(extensions: Any) -> list[str]:
    from cryptography import x509

    try:
        san = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in san.get_values_for_type(x509.DNSName)] + \
        [str(v) for v in san.get_values_for_type(x509.IPAddress)]


def certificate_lines(cert: Any) -> list[str]:
    """Fields of one ``x509.Certificate`` as text lines (the serial in
    acmelab's one spelling, :func:`acmelab.certificates.serial_hex`)."""
    from cryptography import x509

    from acmelab.certificates import serial_hex

    lines = [
        f"subject:      {cert.subject.rfc4514_string() or '(empty)'}",
        f"issuer:       {cert.issuer.rfc4514_string()}",
        f"serial:       {serial_hex(cert.serial_number)}",
        f"not before:   {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC",
        f"not after:    {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC",
        f"key:          {_key_description(cert.public_key())}",
    ]
    names = _names(cert.extensions)
    if names:
        lines.append(f"names (SAN):  {', '.join(names)}")
    try:
        policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
        for policy in policies:
            oid = policy.policy_identifier.dotted_string
            lines.append(f"policy:       {oid} {CABF_POLICIES.get(oid, '')}".rstrip())
    except x509.ExtensionNotFound:
        pass
    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        lines.append(f"CA:           {'yes' if basic.ca else 'no'}")
    except x509.ExtensionNotFound:
        pass
    return lines


def certificate(value: Any, title: str | None = "certificate") -> Text:
    """Display one certificate (``x509.Certificate`` or PEM text/bytes; the
    first certificate of a PEM bundle)."""
    from acmelab.certificates import load_certificates

    return Text("\n".join(certificate_lines(load_certificates(value)[0])), title)


def chain(value: Any, title: str | None = "certificate chain") -> Text:
    """Display a chain (PEM bundle or list of certificates), leaf first,
    each certificate's subject and issuer, and whether each one is signed
    by the next."""
    from acmelab.certificates import load_certificates

    certificates = load_certificates(value)
    lines = []
    for position, cert in enumerate(certificates):
        role = "leaf" if position == 0 else ("intermediate" if cert.issuer != cert.subject else "root")
        lines.append(f"[{position}] {role}")
        lines.extend("    " + line for line in certificate_lines(cert))
        if position + 1 < len(certificates):
            try:
                cert.verify_directly_issued_by(certificates[position + 1])
                lines.append(f"    signed by [{position + 1}]: yes")
            except Exception as exc:  # the display states it, it does not raise
                lines.append(f"    signed by [{position + 1}]: NO ({type(exc).__name__})")
    return Text("\n".join(lines), title)


def csr(value: Any, title: str | None = "certificate signing request") -> Text:
    """Display a CSR (``x509.CertificateSigningRequest`` or PEM): subject,
    names, key, whether its self-signature verifies."""
    from cryptography import x509

    request = value if isinstance(value, x509.CertificateSigningRequest) else \
        x509.load_pem_x509_csr(value.encode() if isinstance(value, str) else bytes(value))
    lines = [
        f"subject:      {request.subject.rfc4514_string() or '(empty)'}",
        f"names (SAN):  {', '.join(_names(request.extensions)) or '(none)'}",
        f"key:          {_key_description(request.public_key())}",
        f"signature:    {request.signature_hash_algorithm.name if request.signature_hash_algorithm else '?'}, "
        f"{'valid' if request.is_signature_valid else 'INVALID'}",
    ]
    return Text("\n".join(lines), title)


def table(rows: Iterable[Iterable[Any]], header: Iterable[str] | None = None) -> Text:
    """A small aligned text table."""
    data = [[str(cell) for cell in row] for row in rows]
    if header is not None:
        data.insert(0, [str(cell) for cell in header])
    if not data:
        return Text("(empty)")
    widths = [max(len(row[i]) for row in data if i < len(row)) for i in range(max(len(r) for r in data))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in data]
    if header is not None:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return Text("\n".join(lines))


def error(exc: BaseException, *, tmp: Any = None, title: str | None = None) -> Text:
    """Display a caught exception as ``Type: message``; occurrences of the
    folder ``tmp`` (a temporary directory) are shown as ``<tmp>``."""
    text = f"{type(exc).__name__}: {exc}"
    if tmp is not None:
        text = text.replace(str(tmp), "<tmp>")
    return Text(text, title)


# --------------------------------------------------------------------------
# ACME objects (acmelab.client's Order and Authorization)
# --------------------------------------------------------------------------

def authorization_line(authorization: Any) -> str:
    """``name  status  challenges: type status, ...`` (challenges sorted by type)."""
    challenges = ", ".join(f"{c.type} {c.status}" for c in sorted(authorization.challenges, key=lambda c: c.type))
    return f"{authorization.name:24} {authorization.status:11} challenges: {challenges or '(none)'}"


def order(value: Any, authorizations: Iterable[Any] | None = None, title: str | None = "order") -> Text:
    """Display an :class:`acmelab.client.Order` (RFC 8555 §7.1.3): URL,
    status, expiry, identifiers (sorted), and -- if given -- its
    :class:`~acmelab.client.Authorization` objects, one line each."""
    lines = [
        f"url:            {value.url}",
        f"status:         {value.status}",
        f"expires:        {value.expires or '-'}",
        f"identifiers:    {', '.join(sorted(value.names))}",
        f"authorizations: {len(value.authorizations)}",
    ]
    for authorization in sorted(authorizations or [], key=lambda a: a.name):
        lines.append("  " + authorization_line(authorization))
    lines.append(f"finalize:       {value.finalize}")
    lines.append(f"certificate:    {value.certificate or '-'}")
    if value.error is not None:
        lines.append(f"error:          {value.error}")
    return Text("\n".join(lines), title)


# --------------------------------------------------------------------------
# Identifiers and service results (notebooks 06-14)
# --------------------------------------------------------------------------

def mask(text: str, keep: int = 4) -> str:
    """An identifier with only its first and last ``keep`` characters shown
    (``LTAI…pBIx``), for values such as an Alibaba Cloud AccessKeyId that
    identify an account and should not be stored in full in outputs."""
    text = str(text)
    return text if len(text) <= 2 * keep else f"{text[:keep]}…{text[-keep:]}"


def target_ids(ids: Iterable[str], *, drop: str | None = None) -> str:
    """Install-target ids (``cdn:<domain>``, ``apigateway:<GroupId>/<domain>``,
    ``cas``) joined by ``", "``, each without the text ``drop`` (e.g.
    ``"<GroupId>/"``, to keep a table narrow); ``-`` for none."""
    shown = [t.replace(drop, "") if drop else t for t in ids]
    return ", ".join(shown) or "-"


def service_results(results: Iterable[Any], *, drop: str | None = None) -> Text:
    """One row per :class:`acmelab.services.ServiceResult`: service, status,
    why (the reason it was issued or failed), the targets installed and the
    targets whose TLS handshake showed the new serial (``drop`` as in
    :func:`target_ids`)."""
    return table([[r.name, r.status, r.reason or "-", target_ids(r.installed, drop=drop),
                   target_ids(r.verified, drop=drop)] for r in results],
                 header=["service", "status", "why", "installed", "TLS verified"])


# --------------------------------------------------------------------------
# Alibaba Cloud RPC requests (notebook 10)
# --------------------------------------------------------------------------

def _rpc_value(name: str, value: Any, redact: Iterable[str]) -> str:
    text = str(value)
    if name in set(redact) or "PRIVATE KEY" in text:
        return "<redacted: a private key is never shown>"
    if "-----BEGIN CERTIFICATE-----" in text:
        return f"<PEM chain: {text.count('-----BEGIN CERTIFICATE-----')} certificates>"
    return text


def aliyun_request(request: Any, *, redact: Iterable[str] = ()) -> Text:
    """One Alibaba Cloud RPC request (an ``aliyunsdkcore`` request object,
    as :class:`AliyunCalls` records it): the method and action, the
    parameters of the query string, then those of the form body.  Values
    named in ``redact``, and any value holding ``PRIVATE KEY``, are shown
    as ``<redacted ...>``; certificate PEM as its number of certificates.
    The common parameters the SDK adds when it signs (``AccessKeyId``,
    ``SignatureNonce``, ``Timestamp``, ``Signature`` ...) are named, not
    shown (Alibaba Cloud RPC signature, version 1.0)."""
    redact = tuple(redact)
    query = request.get_query_params() or {}
    body = request.get_body_params() or {}
    lines = [f"{request.get_method()} {request.get_product()} {request.get_action_name()} "
             f"(API {request.get_version()})",
             "query string:"]
    lines += [f"  {name}={_rpc_value(name, value, redact)}" for name, value in query.items()]
    lines.append("  + AccessKeyId, SignatureMethod, SignatureVersion, SignatureNonce, Timestamp, "
                 "Signature (added by the SDK when it signs)")
    lines.append("form body (application/x-www-form-urlencoded):" if body else "form body: (none)")
    lines += [f"  {name}={_rpc_value(name, value, redact)}" for name, value in body.items()]
    return Text("\n".join(lines))


class AliyunCalls:
    """Record the requests an :class:`acmelab.aliyun.AliyunClient` sends
    while a ``with`` block runs (``with AliyunCalls(client) as calls: ...``,
    then ``calls.requests``); show one with :func:`aliyun_request`.  It
    wraps the client's ``send`` for the block only; the requests are sent
    unchanged."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.requests: list[Any] = []

    def __enter__(self) -> "AliyunCalls":
        original = self.client.send

        def send(request: Any, **kwargs: Any) -> Any:
            self.requests.append(request)
            return original(request, **kwargs)

        self.client.send = send
        return self

    def __exit__(self, *exc: Any) -> None:
        self.client.__dict__.pop("send", None)
