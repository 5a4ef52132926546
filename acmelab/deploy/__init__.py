"""Deliver the certificate: Alibaba Cloud CDN, API Gateway, CAS and SLB, then prove it.

Every product is one module with one :class:`~acmelab.deploy.base.Deployer`,
registered in :data:`DEPLOYERS` (one line each); the services file, the
engine and the command ask :func:`deployer` and never name a product.

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

from __future__ import annotations

from typing import Any, Iterable

from acmelab.deploy import apigateway, cas, cdn, slb
from acmelab.deploy._rpc import Installation, lab_client, make_client
from acmelab.deploy.apigateway import set_domain_certificate
from acmelab.deploy.base import Deployer, InstallTarget
from acmelab.deploy.cas import upload_user_certificate
from acmelab.deploy.cdn import set_cdn_domain_cas_certificate, set_cdn_domain_ssl_certificate
from acmelab.deploy.checks import CheckedCertificate, check_certificate
from acmelab.deploy.verify import ServedCertificate, verify
from acmelab.errors import ConfigError

__all__ = [
    "DEPLOYERS", "CheckedCertificate", "Deployer", "InstallTarget", "Installation", "ServedCertificate",
    "check_certificate", "deployer", "lab_client", "make_client", "ram_actions", "ram_statements",
    "set_cdn_domain_cas_certificate", "set_cdn_domain_ssl_certificate", "set_domain_certificate",
    "upload_user_certificate", "verify",
]

#: product -> its Deployer, in the order the services file and ``acmelab install`` list them
DEPLOYERS: dict[str, Deployer] = {
    cdn.DEPLOYER.product: cdn.DEPLOYER,
    apigateway.DEPLOYER.product: apigateway.DEPLOYER,
    cas.DEPLOYER.product: cas.DEPLOYER,
    slb.DEPLOYER.product: slb.DEPLOYER,
}


def deployer(product: str) -> Deployer:
    """The :class:`Deployer` of ``product``.  Raises ConfigError for an unknown product."""
    try:
        return DEPLOYERS[product]
    except KeyError:
        raise ConfigError(f"unknown product {product!r}; choose one of {', '.join(DEPLOYERS)}") from None


def ram_actions(targets: Iterable[InstallTarget] | None = None) -> list[str]:
    """The RAM actions installing on ``targets`` needs (default: every
    product's), e.g. ``["cdn:SetCdnDomainSSLCertificate", ...]``, sorted."""
    products = DEPLOYERS if targets is None else {t.product for t in targets}
    return sorted({action for product in products for action in deployer(product).ram_actions})


def ram_statements(targets: Iterable[InstallTarget], region: str = "cn-hangzhou") -> list[dict[str, Any]]:
    """RAM policy statements (``{"Effect", "Action", "Resource"}``) that allow
    exactly what installing on ``targets`` calls, product by product in
    :data:`DEPLOYERS` order (API Gateway resources are in ``region``)."""
    targets = list(targets)
    return [statement for product, item in DEPLOYERS.items()
            for statement in item.ram_statements([t for t in targets if t.product == product], region)]
