"""The course's Alibaba Cloud helpers (notebooks 07-15): the DNS provider,
the OpenAPI client, the API Gateway group, and a least-privilege RAM policy.
Re-exported by :mod:`acmelab.course`."""

from __future__ import annotations

import os
from typing import Any


def _target():
    from acmelab import course

    return course.target()


#: The API Gateway group of the lab account that has ``api.<domain>`` bound
#: (``ACMELAB_API_GROUP_ID`` names yours outside the lab).
LAB_API_GROUP_ID = "523e8dc7bbe04613b5b1d726c2a7889d"


def dns_provider(**options: Any):
    """The DNS-01 provider of the course: Alibaba Cloud DNS through the
    official SDK (:class:`acmelab.dns.alidns.AlidnsProvider`).

    In the lab it talks to the lab's Alibaba Cloud endpoint with the lab's
    access key and checks propagation on the lab's DNS server; otherwise it
    reads ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET``
    and checks the zone's authoritative name servers.  ``options`` go to
    the provider (e.g. ``propagation_interval`` in seconds).

    Raises:
        InputError: no Alibaba Cloud credentials outside the lab.
    """
    from acmelab.dns.alidns import AlidnsProvider

    chosen = _target()
    if chosen.lab is not None:
        options.setdefault("propagation_interval", 0.05)
        return AlidnsProvider.for_lab(chosen.lab, **options)
    return AlidnsProvider(**options)


def aliyun_client():
    """An :class:`acmelab.aliyun.AliyunClient` for CDN, API Gateway and CAS:
    the lab's endpoint and key in the lab, else credentials from the
    environment (``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``..._SECRET``) and
    Alibaba's public endpoints (region ``ALIBABA_CLOUD_REGION_ID``, default
    ``cn-hangzhou``)."""
    from acmelab.deploy import lab_client, make_client

    chosen = _target()
    region = os.environ.get("ALIBABA_CLOUD_REGION_ID", "cn-hangzhou")
    if chosen.lab is not None:
        return lab_client(chosen.lab, region_id=region)
    return make_client(region_id=region)


def api_group_id() -> str:
    """The API Gateway ``GroupId`` that ``api.<domain>`` is bound to:
    ``ACMELAB_API_GROUP_ID``, else the lab account's group."""
    return os.environ.get("ACMELAB_API_GROUP_ID", "").strip() or LAB_API_GROUP_ID


# --------------------------------------------------------------------------
# Notebook 15: a least-privilege RAM policy for a services file
# --------------------------------------------------------------------------

def ram_policy(services_list, zones, region: str = "cn-hangzhou") -> dict[str, Any]:
    """A RAM policy document (``Version`` "1") that allows exactly the
    Alibaba Cloud actions ``acmelab apply`` calls for ``services_list``
    (:class:`acmelab.services.Service` objects) and the DNS ``zones``
    (their names, punycode) -- nothing more.

    Statements: ``alidns:DescribeDomains`` on ``*`` (a listing); the record
    actions (``AddDomainRecord``, ``DeleteDomainRecord``,
    ``DescribeSubDomainRecords``) on each zone; CDN's
    ``SetCdnDomainSSLCertificate`` / ``DescribeDomainCertificateInfo`` on
    each CDN domain; API Gateway's ``SetDomainCertificate`` /
    ``DescribeDomain`` on each group (in ``region``); CAS's
    ``yundun-cert:UploadUserCertificate`` if a service keeps a copy there.
    Check each action's "RAM authorization" section in Alibaba Cloud's API
    reference when adapting it.
    """
    targets = [t for service in services_list for t in service.install]
    cdn = sorted({t.domain for t in targets if t.product == "cdn"})
    groups = sorted({t.group_id for t in targets if t.product == "apigateway"})
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": ["alidns:DescribeDomains"], "Resource": ["*"]},
        {"Effect": "Allow",
         "Action": ["alidns:AddDomainRecord", "alidns:DeleteDomainRecord", "alidns:DescribeSubDomainRecords"],
         "Resource": [f"acs:alidns:*:*:domain/{zone}" for zone in sorted(zones)]},
    ]
    if cdn:
        statements.append({"Effect": "Allow",
                           "Action": ["cdn:SetCdnDomainSSLCertificate", "cdn:DescribeDomainCertificateInfo"],
                           "Resource": [f"acs:cdn:*:*:domain/{name}" for name in cdn]})
    if groups:
        statements.append({"Effect": "Allow",
                           "Action": ["apigateway:SetDomainCertificate", "apigateway:DescribeDomain"],
                           "Resource": [f"acs:apigateway:{region}:*:apigroup/{group}" for group in groups]})
    if any(t.product == "cas" for t in targets):
        statements.append({"Effect": "Allow", "Action": ["yundun-cert:UploadUserCertificate"], "Resource": ["*"]})
    return {"Version": "1", "Statement": statements}
