"""Install a certificate on an Alibaba Cloud CDN accelerated domain.

Article step: "HTTPS on the CDN domain".  One call,
``SetCdnDomainSSLCertificate`` (CDN API 2018-05-10), with ``SSLProtocol=on``:

* ``CertType=upload`` -- ``SSLPub`` (the full chain PEM, leaf first) and
  ``SSLPri`` (the key PEM) travel in the POST body, never in the URL;
* ``CertType=cas`` -- ``CertId`` of a certificate uploaded once to
  Certificate Management Service (:mod:`acmelab.deploy.cas`).

Before anything is sent, :func:`acmelab.deploy.checks.check_certificate`
checks the key, the chain order, the validity and that the certificate
covers the domain.  The API's "OK" is not proof; prove it with
:func:`acmelab.deploy.verify` (a TLS handshake with SNI).
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any, Mapping, Sequence

from acmelab.aliyun import AliyunClient
from acmelab.deploy import checks
from acmelab.deploy._rpc import Installation, post
from acmelab.deploy.base import Deployer, InstallTarget, normalized_domain, string_list
from acmelab.errors import AliyunError, ConfigError, DeployError

VERSION = "2018-05-10"
PRODUCT = "Cdn"


def _not_found(error: AliyunError, domain: str) -> None:
    if error.code == "InvalidDomain.NotFound":
        raise DeployError(f"CDN: {domain} is not an accelerated domain of this account "
                          f"(InvalidDomain.NotFound, RequestId {error.request_id}); add it in the CDN console "
                          "or with AddCdnDomain, and check the AccessKeyId's account") from None


def default_cert_name(domain: str, not_after: dt.datetime) -> str:
    """``"<domain>-<not-after YYYYMMDD>"``, with ``*`` spelled ``wildcard``."""
    return f"{domain.replace('*', 'wildcard')}-{not_after:%Y%m%d}"


def set_cdn_domain_ssl_certificate(client: AliyunClient, domain: str, chain_pem: str | bytes,
                                   private_key: Any, *, cert_name: str | None = None,
                                   now: dt.datetime | None = None) -> Installation:
    """Upload a certificate to a CDN domain and turn HTTPS on.

    Args:
        client: an :class:`acmelab.aliyun.AliyunClient` (lab:
            :func:`acmelab.deploy.lab_client`).
        domain: the accelerated domain (``DomainName``).
        chain_pem: full chain PEM, leaf first (``IssuedCertificate.chain_pem``).
        private_key: the certificate's key (object or unencrypted PEM).
        cert_name: ``CertName`` (default ``<domain>-<not-after date>``).
        now: time for the validity check (default now).

    Returns:
        :class:`Installation` (product ``"cdn"``).

    Raises:
        InputError: pre-send checks failed; nothing was sent.
        DeployError: the domain is not an accelerated domain of the account.
        AliyunAuthError: wrong AccessKeyId or secret, or missing RAM permission.
        AliyunError: CDN refused the certificate (e.g. ``InvalidSSLPri``).

    Source: CDN API 2018-05-10, SetCdnDomainSSLCertificate.
    """
    checked = checks.check_certificate(chain_pem, private_key, domain, now=now)
    name = cert_name or default_cert_name(checked.domain, checked.not_after)
    try:
        answer = post(client, "SetCdnDomainSSLCertificate", VERSION, PRODUCT,
                      {"DomainName": checked.domain, "SSLProtocol": "on", "CertType": "upload",
                       "CertName": name},
                      {"SSLPub": checked.chain_pem, "SSLPri": checked.private_key_pem})
    except AliyunError as error:
        _not_found(error, checked.domain)
        raise
    return Installation("cdn", checked.domain, name, checked.serial_hex, checked.not_after,
                        answer.get("RequestId"))


def set_cdn_domain_cas_certificate(client: AliyunClient, domain: str, cert_id: int, *,
                                   cert_name: str | None = None, cert_region: str = "cn-hangzhou") -> dict[str, Any]:
    """Turn HTTPS on with a certificate already in CAS (``CertType=cas``).

    Returns the JSON answer (dict with ``RequestId``).  Raises as
    :func:`set_cdn_domain_ssl_certificate` (the checks are the service's:
    the key is not here).  Source: CDN API 2018-05-10, SetCdnDomainSSLCertificate.
    """
    domain = checks.normalize_domain(domain)
    query = {"DomainName": domain, "SSLProtocol": "on", "CertType": "cas", "CertId": str(int(cert_id)),
             "CertRegion": cert_region, "CertName": cert_name}
    try:
        return post(client, "SetCdnDomainSSLCertificate", VERSION, PRODUCT, query, {})
    except AliyunError as error:
        _not_found(error, domain)
        raise


def disable_cdn_domain_ssl(client: AliyunClient, domain: str) -> dict[str, Any]:
    """Turn HTTPS off (``SSLProtocol=off``).  Source: CDN API 2018-05-10, SetCdnDomainSSLCertificate."""
    domain = checks.normalize_domain(domain)
    try:
        return post(client, "SetCdnDomainSSLCertificate", VERSION, PRODUCT,
                    {"DomainName": domain, "SSLProtocol": "off"}, {})
    except AliyunError as error:
        _not_found(error, domain)
        raise


def describe_domain_certificate_info(client: AliyunClient, domain: str) -> list[dict[str, Any]]:
    """The certificate(s) configured on a domain: list of ``CertInfo`` dicts
    (``CertName``, ``ServerCertificateStatus``, ``CertExpireTime``, ...).
    Source: CDN API 2018-05-10, DescribeDomainCertificateInfo."""
    domain = checks.normalize_domain(domain)
    try:
        answer = client.call("DescribeDomainCertificateInfo", VERSION, {"DomainName": domain}, product=PRODUCT)
    except AliyunError as error:
        _not_found(error, domain)
        raise
    return list(answer.get("CertInfos", {}).get("CertInfo", []))


def add_cdn_domain(client: AliyunClient, domain: str, *, sources: str = '[{"content":"127.0.0.1","type":"ipaddr","port":80}]',
                   cdn_type: str = "web") -> dict[str, Any]:
    """Add an accelerated domain (``Sources`` JSON as Alibaba documents it).
    Source: CDN API 2018-05-10, AddCdnDomain."""
    return client.call("AddCdnDomain", VERSION, {"DomainName": checks.normalize_domain(domain),
                                                 "CdnType": cdn_type, "Sources": sources}, product=PRODUCT)


# --------------------------------------------------------------------------
# The deployer (acmelab.deploy.DEPLOYERS["cdn"])
# --------------------------------------------------------------------------

class CdnDeployer(Deployer):
    """CDN accelerated domains: ``cdn = ["shop.example.com", ...]`` in the
    services file, ``acmelab install cdn CERT --domain D``; target id
    ``"cdn:<domain>"``; preflight ``DescribeCdnDomainDetail``; install
    ``SetCdnDomainSSLCertificate`` (CDN API 2018-05-10)."""

    product = "cdn"
    fields = ("domain",)
    api = "SetCdnDomainSSLCertificate (CDN 2018-05-10)"
    binds = ("cas",)
    ram_actions = ("cdn:SetCdnDomainSSLCertificate", "cdn:DescribeDomainCertificateInfo",
                   "cdn:DescribeCdnDomainDetail")

    def parse(self, value: Any, where: str) -> list[InstallTarget]:
        return [InstallTarget("cdn", normalized_domain(domain, where))
                for domain in string_list(value, where, "cdn")]

    def target_id(self, target: InstallTarget) -> str:
        return f"cdn:{target.domain}"

    def check_exists(self, client: AliyunClient, target: InstallTarget) -> None:
        try:
            describe_cdn_domain_detail(client, target.domain)
        except DeployError as error:
            raise ConfigError(f"{self.target_id(target)}: {error}") from None

    def install(self, client: AliyunClient, target: InstallTarget, chain_pem: str, private_key: Any, *,
                label: str, names: Sequence[str] = (), carrier: Mapping[str, Any] | None = None) -> Installation:
        """``CertType=upload`` (the key in the POST body), or with ``carrier``
        (a CAS upload of this version) ``CertType=cas`` + ``CertId`` +
        ``CertRegion``: the key does not travel again."""
        if carrier is None:
            return set_cdn_domain_ssl_certificate(client, target.domain, chain_pem, private_key)
        checked = checks.check_certificate(chain_pem, private_key, target.domain)   # the same pre-send checks
        answer = set_cdn_domain_cas_certificate(client, checked.domain, int(carrier["cert_id"]),
                                                cert_name=carrier.get("name"),
                                                cert_region=carrier.get("cert_region") or "cn-hangzhou")
        return Installation("cdn", checked.domain, str(carrier.get("name") or ""), checked.serial_hex,
                            checked.not_after, answer.get("RequestId"), cert_id=int(carrier["cert_id"]))

    def ram_statements(self, targets: Sequence[InstallTarget], region: str) -> list[dict[str, Any]]:
        domains = sorted({t.domain for t in targets})
        return [{"Effect": "Allow", "Action": list(self.ram_actions),
                 "Resource": [f"acs:cdn:*:*:domain/{name}" for name in domains]}] if domains else []

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--domain", required=True, help="the CDN accelerated domain")

    def from_arguments(self, args: argparse.Namespace) -> InstallTarget:
        return InstallTarget("cdn", normalized_domain(args.domain, "--domain"))


def describe_cdn_domain_detail(client: AliyunClient, domain: str) -> dict[str, Any]:
    """The accelerated domain's configuration (``GetDomainDetailModel``: ``DomainName``,
    ``DomainStatus``, ``Cname``, ...).  Raises DeployError if the account has no such
    domain (``InvalidDomain.NotFound``).  Source: CDN API 2018-05-10, DescribeCdnDomainDetail."""
    domain = checks.normalize_domain(domain)
    try:
        answer = client.call("DescribeCdnDomainDetail", VERSION, {"DomainName": domain}, product=PRODUCT)
    except AliyunError as error:
        _not_found(error, domain)
        raise
    return dict(answer.get("GetDomainDetailModel") or {})


DEPLOYER = CdnDeployer()
