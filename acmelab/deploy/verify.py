"""Is the certificate installed?  Ask the service with a TLS handshake.

An API answering "OK" to an upload proves little; the proof is a client
completing a handshake with the service and seeing the new certificate.
:func:`verify` does exactly that with pyOpenSSL (which, unlike :mod:`ssl`,
hands us the full chain the server sent):

1. connect to ``host:port`` and send SNI ``server_name`` (RFC 6066 §3);
2. let OpenSSL validate the served chain -- against the given root(s) only
   (the lab: Pebble's root, from ``LabInfo.roots()``), or against the
   system store for real services.  Verification is always on; when it
   fails we report which certificate, at which depth, and why;
3. check the leaf covers ``server_name`` (RFC 6125 §6.4.3; a wildcard
   covers one label), and, if given, that its serial is the expected one;
4. return what was served as a :class:`ServedCertificate`.

In the lab, CDN and API Gateway domains are served on loopback edge ports:
``verify("cdn.example.com", host="127.0.0.1", port=info.cdn_edge_port,
root_pem=info.roots())``.
"""

from __future__ import annotations

import datetime as dt
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Iterable

from cryptography import x509
from OpenSSL import SSL, crypto

from acmelab.certificates import certificate_names, load_certificates, name_matches, serial_hex
from acmelab.csr import ascii_name
from acmelab.errors import DeployError, InputError

#: OpenSSL X509_V_ERR_* codes (x509_vfy.h) a course reader meets, in words.
VERIFY_ERRORS: dict[int, str] = {
    2: "unable to get issuer certificate",
    7: "certificate signature failure",
    9: "certificate is not yet valid",
    10: "certificate has expired",
    18: "self-signed certificate (not trusted)",
    19: "self-signed certificate in chain (root not trusted)",
    20: "unable to get local issuer certificate (chain does not lead to a trusted root)",
    21: "unable to verify the first certificate (intermediate missing?)",
    24: "invalid CA certificate",
    26: "unsupported certificate purpose",
    62: "hostname mismatch",
}


@dataclass(frozen=True)
class ServedCertificate:
    """What a TLS server presented for one SNI name, after validation.

    Attributes:
        server_name: the SNI name sent and checked (str).
        host, port: where we connected.
        serial_hex: the leaf's serial number, lower-case hex.
        not_before, not_after: the leaf's validity (aware UTC datetimes).
        names: the DNS names the leaf covers (tuple of str).
        subject, issuer: the leaf's subject and issuer (RFC 4514 strings).
        chain_subjects: subjects of the chain as *served*, leaf first.
        verified_chain_subjects: subjects of the chain OpenSSL built, leaf
            to trusted root.
        protocol: negotiated TLS version (e.g. ``"TLSv1.3"``).
        chain: the served certificates (x509 objects, leaf first).
    """

    server_name: str
    host: str
    port: int
    serial_hex: str
    not_before: dt.datetime
    not_after: dt.datetime
    names: tuple[str, ...]
    subject: str
    issuer: str
    chain_subjects: tuple[str, ...]
    verified_chain_subjects: tuple[str, ...]
    protocol: str
    chain: tuple[x509.Certificate, ...] = field(repr=False, compare=False)

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]


def _context(root_pem, failures: list[str]) -> SSL.Context:
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    if root_pem is None:
        context.set_default_verify_paths()
    else:
        roots = load_certificates(root_pem, what="root_pem")
        if not roots:
            raise InputError("root_pem holds no certificate")
        store = context.get_cert_store()
        for root in roots:
            store.add_cert(crypto.X509.from_cryptography(root))

    def record(connection, certificate, error_number, depth, ok):
        if not ok:
            leaf = certificate.to_cryptography()
            why = VERIFY_ERRORS.get(error_number, f"X509 verify error {error_number}")
            if error_number == 10:
                why += f" (notAfter {leaf.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC)"
            elif error_number == 9:
                why += f" (notBefore {leaf.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC)"
            failures.append(f"depth {depth} {leaf.subject.rfc4514_string()} "
                            f"(serial {serial_hex(leaf.serial_number)}, issuer {leaf.issuer.rfc4514_string()}): {why}")
        return ok

    context.set_verify(SSL.VERIFY_PEER, record)
    return context


def _handshake(connection: SSL.Connection, sock: socket.socket, deadline: float, where: str) -> None:
    while True:
        try:
            connection.do_handshake()
            return
        except SSL.WantReadError:
            wait = ([sock], [], [])
        except SSL.WantWriteError:
            wait = ([], [sock], [])
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not any(select.select(*wait, remaining)):
            raise DeployError(f"TLS handshake with {where} timed out")


def _fetch_chain(server_name: str, host: str, port: int, root_pem, timeout: float, where: str):
    """Connect, hand-shake with SNI ``server_name`` validating against
    ``root_pem``; returns (served chain, verified chain, protocol name).
    Raises DeployError naming ``where`` (and each validation failure)."""
    failures: list[str] = []
    context = _context(root_pem, failures)
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise DeployError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setblocking(False)
        connection = SSL.Connection(context, sock)
        connection.set_tlsext_host_name(server_name.encode("ascii"))
        connection.set_connect_state()
        try:
            _handshake(connection, sock, deadline, where)
        except SSL.Error as exc:
            if failures:
                raise DeployError(f"the certificate served at {where} does not validate: "
                                  + "; ".join(failures)) from None
            raise DeployError(f"TLS handshake with {where} failed: {exc}") from None
        except OSError as exc:
            raise DeployError(f"TLS handshake with {where} failed: {exc}") from None
        served = connection.get_peer_cert_chain(as_cryptography=True) or []
        verified = connection.get_verified_chain(as_cryptography=True) or []
        protocol = connection.get_protocol_version_name()
        try:
            connection.shutdown()
        except SSL.Error:
            pass
    finally:
        sock.close()
    return served, verified, protocol


def verify(server_name: str, host: str | None = None, port: int = 443, *,
           root_pem: str | bytes | Iterable | None = None, expected_serial_hex: str | None = None,
           timeout: float = 10.0) -> ServedCertificate:
    """Handshake with ``host:port`` using SNI ``server_name`` and validate what is served.

    Args:
        server_name: the domain the service serves (SNI and host name check).
        host: where to connect (default ``server_name``); in the lab
            ``"127.0.0.1"`` or ``"localhost"``.
        port: TCP port (int, default 443; lab: ``LabInfo.cdn_edge_port`` /
            ``apigateway_edge_port``).
        root_pem: the trusted root(s): PEM text, x509 objects, or a list of
            either (``LabInfo.roots()``).  None trusts the system store.
        expected_serial_hex: if given, the leaf's serial must be this (hex,
            case, leading zeros and colons ignored).
        timeout: seconds for connect and handshake together (float).

    Returns:
        :class:`ServedCertificate`.

    Raises:
        DeployError: cannot connect, handshake fails, the chain does not
            validate (message names depth, subject, serial and reason),
            the leaf does not cover ``server_name``, or the serial differs.
        InputError: unusable ``root_pem``.

    Source: RFC 5246/8446 handshake, RFC 6066 §3 SNI, RFC 5280 §6 path
    validation (OpenSSL), RFC 6125 §6.4.3 host names.
    """
    server_name = ascii_name(server_name)
    host = host or server_name
    where = f"{host}:{port} (SNI {server_name})"
    served, verified, protocol = _fetch_chain(server_name, host, port, root_pem, timeout, where)
    if not served:
        raise DeployError(f"{where} presented no certificate")
    leaf = served[0]
    names = certificate_names(leaf)
    served_serial = serial_hex(leaf.serial_number)
    if not any(name_matches(name, server_name) for name in names):
        raise DeployError(f"{where} served a certificate for {', '.join(names) or 'no names'} "
                          f"(serial {served_serial}), not for {server_name}")
    if expected_serial_hex is not None:
        wanted = serial_hex(expected_serial_hex)
        if served_serial != wanted:
            raise DeployError(f"{where} serves serial {served_serial} (not after "
                              f"{leaf.not_valid_after_utc:%Y-%m-%d}), expected serial {wanted}")
    return ServedCertificate(
        server_name=server_name, host=host, port=port, serial_hex=served_serial,
        not_before=leaf.not_valid_before_utc, not_after=leaf.not_valid_after_utc,
        names=tuple(names), subject=leaf.subject.rfc4514_string(), issuer=leaf.issuer.rfc4514_string(),
        chain_subjects=tuple(c.subject.rfc4514_string() for c in served),
        verified_chain_subjects=tuple(c.subject.rfc4514_string() for c in verified),
        protocol=protocol, chain=tuple(served))
