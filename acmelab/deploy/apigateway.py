"""Install a certificate on an Alibaba Cloud API Gateway custom domain.

Article step: "HTTPS on the API Gateway domain".  One call,
``SetDomainCertificate`` (CloudAPI 2016-07-14) on the regional endpoint
``apigateway.<region>.aliyuncs.com``: ``GroupId`` and ``DomainName`` say
where, ``CertificateName`` names it, ``CertificateBody`` (full chain PEM)
and ``CertificatePrivateKey`` travel in the POST body.  Pre-send checks as
for CDN; proof with :func:`acmelab.deploy.verify`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from acmelab.aliyun import AliyunClient
from acmelab.deploy import checks
from acmelab.deploy._rpc import Installation, post
from acmelab.deploy.cdn import default_cert_name
from acmelab.errors import AliyunError, DeployError

VERSION = "2016-07-14"
PRODUCT = "CloudAPI"


def _not_found(error: AliyunError, group_id: str, domain: str) -> None:
    if error.code == "NotFoundGroup":
        raise DeployError(f"API Gateway: no API group {group_id} in this account and region "
                          f"(NotFoundGroup, RequestId {error.request_id}); check GroupId and region_id") from None
    if error.code == "NotFoundDomain":
        raise DeployError(f"API Gateway: {domain} is not bound to group {group_id} "
                          f"(NotFoundDomain, RequestId {error.request_id}); bind it first (SetDomain)") from None


def set_domain_certificate(client: AliyunClient, group_id: str, domain: str, chain_pem: str | bytes,
                           private_key: Any, *, certificate_name: str | None = None,
                           now: dt.datetime | None = None) -> Installation:
    """Upload the certificate of an API group's custom domain.

    Args:
        client: an :class:`acmelab.aliyun.AliyunClient` whose ``region_id`` is
            the group's region (the endpoint is regional).
        group_id: the API group's ``GroupId`` (32 hex characters).
        domain: the bound custom domain (``DomainName``).
        chain_pem: full chain PEM, leaf first.
        private_key: the certificate's key (object or unencrypted PEM).
        certificate_name: ``CertificateName`` (default ``<domain>-<not-after date>``).
        now: time for the validity check (default now).

    Returns:
        :class:`Installation` (product ``"apigateway"``, with ``group_id``).

    Raises:
        InputError: pre-send checks failed; nothing was sent.
        DeployError: unknown group, or the domain is not bound to it.
        AliyunAuthError: wrong AccessKeyId or secret, or missing RAM permission.
        AliyunError: API Gateway refused the certificate (e.g. ``CertificateMismatch``).

    Source: API Gateway (CloudAPI) 2016-07-14, SetDomainCertificate.
    """
    checked = checks.check_certificate(chain_pem, private_key, domain, now=now)
    name = certificate_name or default_cert_name(checked.domain, checked.not_after)
    try:
        answer = post(client, "SetDomainCertificate", VERSION, PRODUCT,
                      {"GroupId": group_id, "DomainName": checked.domain, "CertificateName": name},
                      {"CertificateBody": checked.chain_pem, "CertificatePrivateKey": checked.private_key_pem})
    except AliyunError as error:
        _not_found(error, group_id, checked.domain)
        raise
    return Installation("apigateway", checked.domain, name, checked.serial_hex, checked.not_after,
                        answer.get("RequestId"), group_id=group_id)


def create_api_group(client: AliyunClient, group_name: str, *, description: str = "") -> str:
    """Create an API group; returns its ``GroupId``.  Source: CloudAPI 2016-07-14, CreateApiGroup."""
    answer = client.call("CreateApiGroup", VERSION, {"GroupName": group_name, "Description": description},
                         product=PRODUCT)
    return str(answer["GroupId"])


def set_domain(client: AliyunClient, group_id: str, domain: str) -> dict[str, Any]:
    """Bind a custom domain to an API group.  Source: CloudAPI 2016-07-14, SetDomain."""
    domain = checks.normalize_domain(domain)
    try:
        return client.call("SetDomain", VERSION, {"GroupId": group_id, "DomainName": domain}, product=PRODUCT)
    except AliyunError as error:
        _not_found(error, group_id, domain)
        raise


def describe_domain(client: AliyunClient, group_id: str, domain: str) -> dict[str, Any]:
    """A bound domain and its certificate (``CertificateName``, ``CertificateBody``, ...).
    Source: CloudAPI 2016-07-14, DescribeDomain."""
    domain = checks.normalize_domain(domain)
    try:
        return client.call("DescribeDomain", VERSION, {"GroupId": group_id, "DomainName": domain},
                           product=PRODUCT)
    except AliyunError as error:
        _not_found(error, group_id, domain)
        raise
