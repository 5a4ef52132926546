"""Deliver the certificate: Alibaba Cloud CDN, API Gateway and CAS, then prove it.

Article steps "HTTPS on CDN / API Gateway":

* :mod:`acmelab.deploy.checks` -- before sending: the key matches, the chain
  is in order, the certificate is valid and covers the domain
  (:class:`~acmelab.errors.InputError` otherwise; nothing sent);
* :mod:`acmelab.deploy.cdn` -- ``SetCdnDomainSSLCertificate`` (2018-05-10);
* :mod:`acmelab.deploy.apigateway` -- ``SetDomainCertificate`` (2016-07-14);
* :mod:`acmelab.deploy.cas` -- ``UploadUserCertificate`` (2020-04-07);
* :func:`verify` -- a TLS handshake with SNI that validates the served chain
  to a given root and returns the served serial, expiry and chain subjects.

Calls go through :class:`acmelab.aliyun.AliyunClient` (HTTPS, signed,
errors mapped); keys and certificates travel in the POST body only.
For the lab: ``client = lab_client(info)``, then e.g.
``verify("cdn.example.com", host="127.0.0.1", port=info.cdn_edge_port,
root_pem=info.roots())``.
"""

from acmelab.deploy._rpc import Installation, lab_client, make_client
from acmelab.deploy.apigateway import set_domain_certificate
from acmelab.deploy.cas import upload_user_certificate
from acmelab.deploy.cdn import set_cdn_domain_cas_certificate, set_cdn_domain_ssl_certificate
from acmelab.deploy.checks import CheckedCertificate, check_certificate
from acmelab.deploy.verify import ServedCertificate, verify

__all__ = [
    "CheckedCertificate", "Installation", "ServedCertificate", "check_certificate", "lab_client",
    "make_client", "set_cdn_domain_cas_certificate", "set_cdn_domain_ssl_certificate",
    "set_domain_certificate", "upload_user_certificate", "verify",
]
