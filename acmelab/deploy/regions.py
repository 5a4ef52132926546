"""Alibaba Cloud's two sites: the China site and the international site.

An account belongs to one site.  The region a service names (its API
Gateway groups', load balancers' region, ``region`` in the services file)
says which: ``cn-*`` is the China site, every other region the
international one.  What differs:

==========================  ==========================  ================================
                            China (``cn-*``)            international (everything else)
==========================  ==========================  ================================
CDN endpoint                ``cdn.aliyuncs.com``        ``cdn.ap-southeast-1.aliyuncs.com``
CAS endpoint                ``cas.aliyuncs.com``        ``cas.ap-southeast-1.aliyuncs.com``
Alibaba Cloud DNS endpoint  ``alidns.aliyuncs.com``     ``alidns.ap-southeast-1.aliyuncs.com``
CDN ``CertRegion``          ``cn-hangzhou``             ``ap-southeast-1``
==========================  ==========================  ================================

API Gateway (``apigateway.<region>.aliyuncs.com``) and SLB
(``slb.<region>.aliyuncs.com``) are regional on both sites.

Sources: CDN API 2018-05-10 SetCdnDomainSSLCertificate (``CertRegion``:
``cn-hangzhou`` or ``ap-southeast-1``); the endpoint tables of CDN, CAS
(2020-04-07) and Alidns (2015-01-09) in Alibaba's API reference.
"""

from __future__ import annotations

import re

from acmelab.aliyun import INTERNATIONAL_ENDPOINTS
from acmelab.errors import ConfigError

__all__ = ["CERT_REGIONS", "INTERNATIONAL_ENDPOINTS", "cert_region", "check_region", "is_china",
           "site_endpoints"]

#: CDN ``CertRegion`` values (where a CAS certificate lives)
CERT_REGIONS = ("cn-hangzhou", "ap-southeast-1")

_REGION = re.compile(r"^[a-z]{2,}(-[a-z0-9]+)+$")


def check_region(region: str) -> str:
    """``region`` if it looks like an Alibaba Cloud region id (``cn-hangzhou``,
    ``ap-southeast-1``); ConfigError otherwise."""
    if not isinstance(region, str) or not _REGION.match(region):
        raise ConfigError(f"region must be an Alibaba Cloud region id such as cn-hangzhou or ap-southeast-1, "
                          f"not {region!r}")
    return region


def is_china(region: str) -> bool:
    """True for a China-site region (``cn-*``)."""
    return region.startswith("cn-")


def cert_region(region: str) -> str:
    """The CDN ``CertRegion`` a region's CAS certificates live in:
    ``cn-hangzhou`` on the China site, ``ap-southeast-1`` elsewhere."""
    return "cn-hangzhou" if is_china(region) else "ap-southeast-1"


def site_endpoints(region: str) -> dict[str, str]:
    """Product code -> endpoint host that differs from the China-site
    default for ``region`` (empty on the China site).  An
    :class:`acmelab.aliyun.AliyunClient` with that ``region_id`` uses them
    by itself (:data:`acmelab.aliyun.INTERNATIONAL_ENDPOINTS`)."""
    return {} if is_china(region) else dict(INTERNATIONAL_ENDPOINTS)
