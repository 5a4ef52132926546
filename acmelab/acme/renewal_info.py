"""Renewal information, ARI (RFC 9773): the CA's suggested renewal window
for a certificate, an unauthenticated GET of ``<renewalInfo>/<certID>``."""

from __future__ import annotations

from cryptography import x509

from acmelab.acme.base import ClientBase
from acmelab.errors import ProtocolError
from acmelab.renewal_info import RenewalInfo, cert_id
from acmelab.resources import load_certificate

__all__ = ["RenewalInfoRequests"]


class RenewalInfoRequests(ClientBase):
    """The ARI action of :class:`acmelab.client.AcmeClient`."""

    def renewal_info(self, certificate: x509.Certificate | str | bytes) -> RenewalInfo:
        """The CA's suggested renewal window for ``certificate`` (RFC 9773
        §4): an unauthenticated GET of ``<renewalInfo>/<certID>``.

        Args:
            certificate: x509 object, PEM or DER (for a chain, the first).

        Returns:
            :class:`~acmelab.renewal_info.RenewalInfo` (window, explanation
            URL, seconds until the next check from ``Retry-After``).

        Raises:
            InputError: not a certificate, or one without an AKI
                keyIdentifier.  ProtocolError: the CA has no ``renewalInfo``,
                or its answer is malformed.  AcmeProblem, NetworkError.
        """
        base = self.directory.renewalInfo
        if not base:
            raise ProtocolError(f"the directory {self.directory_url} has no renewalInfo (the CA has no ARI)")
        identifier = cert_id(load_certificate(certificate))
        response = self.transport.get(f"{base.rstrip('/')}/{identifier}")
        return RenewalInfo.from_json(identifier, response.json(), retry_after=response.retry_after)

