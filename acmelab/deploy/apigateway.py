"""Install a certificate on an Alibaba Cloud API Gateway custom domain.

Article step: "HTTPS on the API Gateway domain".  One call,
``SetDomainCertificate`` (CloudAPI 2016-07-14) on the regional endpoint
``apigateway.<region>.aliyuncs.com``: ``GroupId`` and ``DomainName`` say
where, ``CertificateName`` names it, ``CertificateBody`` (full chain PEM)
and ``CertificatePrivateKey`` travel in the POST body.  Pre-send checks as
for CDN; proof with :func:`acmelab.deploy.verify`.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any, Mapping, Sequence

from acmelab.aliyun import AliyunClient
from acmelab.deploy import checks
from acmelab.deploy._rpc import Installation, post
from acmelab.deploy.base import Deployer, InstallTarget, normalized_domain, table_list
from acmelab.deploy.cdn import default_cert_name
from acmelab.errors import AliyunError, ConfigError, DeployError

VERSION = "2016-07-14"
PRODUCT = "CloudAPI"


def _not_found(error: AliyunError, group_id: str, domain: str) -> None:
    if error.code in ("NotFoundGroup", "NotFoundApiGroup"):   # SetDomainCertificate, DescribeApiGroup
        raise DeployError(f"API Gateway: no API group {group_id} in this account and region "
                          f"({error.code}, RequestId {error.request_id}); check GroupId and region_id") from None
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


def describe_api_group(client: AliyunClient, group_id: str) -> dict[str, Any]:
    """An API group (``GroupId``, ``GroupName``, ``SubDomain``, ``CustomDomains``
    ``{"DomainItem": [{"DomainName", ...}]}``, ...).  Raises DeployError for an
    unknown group (``NotFoundGroup``).  Source: CloudAPI 2016-07-14, DescribeApiGroup."""
    try:
        return client.call("DescribeApiGroup", VERSION, {"GroupId": group_id}, product=PRODUCT)
    except AliyunError as error:
        _not_found(error, group_id, "")
        raise


# --------------------------------------------------------------------------
# The deployer (acmelab.deploy.DEPLOYERS["apigateway"])
# --------------------------------------------------------------------------

_GROUP_FIELDS = {"group_id": str, "domain": str}


class ApiGatewayDeployer(Deployer):
    """API Gateway custom domains: ``apigateway = [{ group_id = "...", domain = "..." }]``
    in the services file, ``acmelab install apigateway CERT --group-id G --domain D``;
    target id ``"apigateway:<group>/<domain>"``; preflight ``DescribeApiGroup``;
    install ``SetDomainCertificate`` (CloudAPI 2016-07-14)."""

    product = "apigateway"
    fields = ("domain", "group_id")
    api = "SetDomainCertificate (API Gateway 2016-07-14)"
    ram_actions = ("apigateway:SetDomainCertificate", "apigateway:DescribeDomain", "apigateway:DescribeApiGroup")

    def parse(self, value: Any, where: str) -> list[InstallTarget]:
        return [InstallTarget("apigateway", normalized_domain(item["domain"], where), item["group_id"])
                for item in table_list(value, where, "apigateway", _GROUP_FIELDS)]

    def target_id(self, target: InstallTarget) -> str:
        return f"apigateway:{target.group_id}/{target.domain}"

    def check_exists(self, client: AliyunClient, target: InstallTarget) -> None:
        try:
            group = describe_api_group(client, target.group_id)
        except DeployError as error:
            raise ConfigError(f"{self.target_id(target)}: {error}") from None
        domains = group.get("CustomDomains")
        if isinstance(domains, dict):
            bound = {str(item.get("DomainName", "")).lower() for item in domains.get("DomainItem") or ()}
            if target.domain not in bound:
                raise ConfigError(f"{self.target_id(target)}: API Gateway: {target.domain} is not bound to "
                                  f"group {target.group_id}; bind it first (SetDomain)")

    def install(self, client: AliyunClient, target: InstallTarget, chain_pem: str, private_key: Any, *,
                label: str, names: Sequence[str] = (), carrier: Mapping[str, Any] | None = None) -> Installation:
        return set_domain_certificate(client, target.group_id, target.domain, chain_pem, private_key)

    def ram_statements(self, targets: Sequence[InstallTarget], region: str) -> list[dict[str, Any]]:
        groups = sorted({t.group_id for t in targets})
        return [{"Effect": "Allow", "Action": list(self.ram_actions),
                 "Resource": [f"acs:apigateway:{region}:*:apigroup/{group}" for group in groups]}] if groups else []

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--group-id", required=True, help="the API group's GroupId")
        parser.add_argument("--domain", required=True, help="the group's custom domain")

    def from_arguments(self, args: argparse.Namespace) -> InstallTarget:
        return InstallTarget("apigateway", normalized_domain(args.domain, "--domain"), args.group_id)


DEPLOYER = ApiGatewayDeployer()
