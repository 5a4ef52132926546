"""The course's Alibaba Cloud helpers (notebooks 07-15): the DNS provider,
the OpenAPI client, the API Gateway group, the services file of notebooks
14 and 15, and a least-privilege RAM policy.
Re-exported by :mod:`acmelab.course`."""

from __future__ import annotations

import os
from typing import Any


#: The API Gateway group of the lab account that has ``api.<domain>`` bound
#: (``ACMELAB_API_GROUP_ID`` names yours outside the lab).
LAB_API_GROUP_ID = "523e8dc7bbe04613b5b1d726c2a7889d"


def dns_provider():
    """The DNS-01 provider of the course: Alibaba Cloud DNS through the
    official SDK (:class:`acmelab.dns.alidns.AlidnsProvider`), made by the
    course's backend as the command makes it (``dns = "alidns"``,
    :meth:`acmelab.backends.Backend.dns_provider`).

    In the lab it talks to the lab's Alibaba Cloud endpoint with the lab's
    access key and checks propagation on the lab's DNS server; otherwise it
    reads ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET``
    and checks the zone's authoritative name servers.

    Raises:
        InputError: no Alibaba Cloud credentials outside the lab.
    """
    from acmelab import course

    return course.backend().dns_provider("alidns")


def aliyun_client():
    """An :class:`acmelab.aliyun.AliyunClient` for CDN, API Gateway, CAS and
    SLB, made by the course's backend as the command makes it
    (:meth:`acmelab.backends.Backend.aliyun_client`): the lab's endpoint and
    key in the lab, else credentials from the environment
    (``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``..._SECRET``) and Alibaba's public
    endpoints (region ``ALIBABA_CLOUD_REGION_ID``, default ``cn-hangzhou``)."""
    from acmelab import course

    return course.backend().aliyun_client()


def handshake_address(product: str, domain: str, port: int = 443) -> tuple[str, int]:
    """Where a TLS handshake reaches ``domain`` on ``product`` (``"cdn"``,
    ``"apigateway"``): ``(host, port)`` -- the lab's edge listener for that
    product on loopback, or ``(domain, port)`` for a real service; the
    backend's :meth:`~acmelab.backends.Backend.handshake_address`, as the
    command checks its installs."""
    from acmelab import course
    from acmelab.deploy.base import InstallTarget

    return course.backend().handshake_address(InstallTarget(product, domain), domain, port)


def api_group_id() -> str:
    """The API Gateway ``GroupId`` that ``api.<domain>`` is bound to:
    ``ACMELAB_API_GROUP_ID``, else the lab account's group."""
    return os.environ.get("ACMELAB_API_GROUP_ID", "").strip() or LAB_API_GROUP_ID


# --------------------------------------------------------------------------
# Notebooks 14 and 15: the services file, and a RAM policy for it
# --------------------------------------------------------------------------

def services_toml(only: tuple[str, ...] = ("www", "api", "dev")) -> str:
    """The services file (TOML text, ``acmelab apply``'s format) that
    notebook 14 applies and notebook 15 takes live, with the services named
    in ``only``: ``www`` (two names on CDN), ``api`` (API Gateway, plus a
    copy in CAS) and ``dev`` (its own DNS zone; API Gateway and CDN), for
    the course's domain and API Gateway group.  Raises InputError for an
    unknown service name."""
    from acmelab import course
    from acmelab.errors import InputError

    domain, group = course.target().domain, api_group_id()
    blocks = {
        "www": f"""[[service]]
name = "www"
domains = ["cdn.{domain}", "static.{domain}"]
cdn = ["cdn.{domain}", "static.{domain}"]
""",
        "api": f"""[[service]]
name = "api"
domains = ["api.{domain}"]
apigateway = [{{ group_id = "{group}", domain = "api.{domain}" }}]
cas = true                # also keep a copy in Certificate Management Service
""",
        "dev": f"""[[service]]
name = "dev"
domains = ["api.dev.{domain}", "cdn.dev.{domain}"]
cdn = "cdn.dev.{domain}"
apigateway = [{{ group_id = "{group}", domain = "api.dev.{domain}" }}]
""",
    }
    unknown = sorted(set(only) - set(blocks))
    if unknown:
        raise InputError(f"no course service {unknown[0]!r}; choose from {', '.join(blocks)}")
    defaults = """[defaults]
dns = "alidns"            # Alibaba Cloud DNS (notebook 07)
key_type = "ec256"
"""
    return "\n".join([defaults, *(blocks[name] for name in only)])


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
    ``DescribeSubDomainRecords``) on each zone; then, product by product,
    what installing on the services' targets calls -- the command's own
    list, :func:`acmelab.deploy.ram_statements` (CDN domains, API Gateway
    groups in ``region``, CAS, SLB load balancers).  Check each action's
    "RAM authorization" section in Alibaba Cloud's API reference when
    adapting it.
    """
    from acmelab import deploy

    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": ["alidns:DescribeDomains"], "Resource": ["*"]},
        {"Effect": "Allow",
         "Action": ["alidns:AddDomainRecord", "alidns:DeleteDomainRecord", "alidns:DescribeSubDomainRecords"],
         "Resource": [f"acs:alidns:*:*:domain/{zone}" for zone in sorted(zones)]},
    ]
    targets = [target for service in services_list for target in service.install]
    return {"Version": "1", "Statement": statements + deploy.ram_statements(targets, region)}
