"""The certificate (RFC 8555 §7.4.2): download the chain, its alternates
and the preferred one; revocation (§7.6)."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from acmelab import jws, keys
from acmelab.acme.base import ClientBase, doing
from acmelab.errors import AlreadyRevoked, AnswerLost, InputError, ProtocolError
from acmelab.resources import CertificateChain, Order, ReasonCode, chain_matches, load_certificate
from acmelab.transport import NETWORK_TRIES

__all__ = ["PEM_CHAIN", "CertificateRequests"]

PEM_CHAIN = "application/pem-certificate-chain"


class CertificateRequests(ClientBase):
    """The certificate actions of :class:`acmelab.client.AcmeClient`."""

    def download_certificate(self, order_or_url: Order | str) -> CertificateChain:
        """Download the certificate chain as PEM (POST-as-GET, §7.4.2).

        Returns:
            the CA's default chain; ``.alternates`` lists other chains.

        Raises ProtocolError if the body is not a PEM chain."""
        url = order_or_url.certificate if isinstance(order_or_url, Order) else order_or_url
        if not url:
            raise InputError("the order has no certificate URL yet (finalize it first)")
        with doing("downloading the certificate"):
            response = self._post_as_get(url, accept=PEM_CHAIN)
        try:
            pem = response.body.decode("ascii")
        except UnicodeDecodeError:
            raise ProtocolError(f"{url} answered a certificate chain that is not PEM text") from None
        chain = CertificateChain(url, pem, tuple(response.links("alternate")))
        chain.certificates  # ProtocolError if it is not PEM
        return chain

    def download_certificate_chains(self, order_or_url: Order | str) -> list[CertificateChain]:
        """The default chain followed by every alternate chain (§7.4.2)."""
        default = self.download_certificate(order_or_url)
        return [default] + [self.download_certificate(url) for url in default.alternates]

    def download_preferred_chain(self, order_or_url: Order | str, preferred: str | None) -> CertificateChain:
        """The chain whose topmost certificate has the subject (common name
        or RFC 4514 DN) ``preferred``; failing that, the chain whose topmost
        certificate was issued by that name (the root it leads to); failing
        that, the default chain.  Alternates are fetched only as needed."""
        default = self.download_certificate(order_or_url)
        if not preferred or chain_matches(default, preferred):
            return default
        chains = [default]
        for url in default.alternates:
            chains.append(self.download_certificate(url))
            if chain_matches(chains[-1], preferred):
                return chains[-1]
        return next((c for c in chains if chain_matches(c, preferred, issuer=True)), default)


    def revoke_certificate(self, certificate: x509.Certificate | str | bytes, *,
                           reason: ReasonCode | int = ReasonCode.unspecified,
                           certificate_key: keys.PrivateKey | None = None) -> None:
        """Revoke a certificate (§7.6, revokeCert).

        Args:
            certificate: the certificate (x509 object, PEM or DER; for a PEM
                chain the first certificate).
            reason: an RFC 5280 reason code (:class:`ReasonCode`).
            certificate_key: sign with the certificate's own key (``jwk``
                header) instead of the account key (``kid``).

        A lost answer is sent again; ``alreadyRevoked`` to that repeat
        means the first one did it: done.

        Raises:
            InputError: not a certificate, or an unknown reason code.
            AlreadyRevoked (it was revoked before this call),
            BadRevocationReason, Unauthorized: from the CA.
        """
        try:
            reason = ReasonCode(int(reason))
        except ValueError:
            raise InputError(f"{reason!r} is not an RFC 5280 revocation reason code") from None
        der = load_certificate(certificate).public_bytes(serialization.Encoding.DER)
        payload = {"certificate": jws.b64url(der), "reason": int(reason)}
        url = self.directory.revokeCert
        with doing("revoking the certificate"):
            # a lost answer is sent again: alreadyRevoked to the repeat means the first one did it
            for attempt in range(1, NETWORK_TRIES + 1):
                try:
                    if certificate_key is not None:
                        self.transport.post(url, payload, certificate_key, kid=None)
                    else:
                        self._post(url, payload)
                    return
                except AnswerLost:
                    if attempt == NETWORK_TRIES:
                        raise
                except AlreadyRevoked:
                    if attempt == 1:
                        raise  # revoked before we asked
                    return  # revoked by the request whose answer was lost

