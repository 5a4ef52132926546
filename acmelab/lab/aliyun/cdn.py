"""CDN (Cdn 2018-05-10) actions of the lab endpoint, and the CDN edge.

The lab account's accelerated domains are :data:`acmelab.lab.aliyun.seed.CDN_DOMAINS`
(or ``deploy.json``); ``AddCdnDomain`` adds more.  A certificate set with
``SetCdnDomainSSLCertificate`` is checked (:mod:`.certificates`) and served
on the CDN edge (``--cdn-edge-port``) for SNI = the domain.

Actions:

* ``AddCdnDomain`` (DomainName; lab: no origin is contacted);
* ``DescribeCdnDomainDetail`` (DomainName -> ``GetDomainDetailModel``:
  DomainName, Cname, DomainStatus, ServerCertificateStatus, GmtCreated, ...);
* ``SetCdnDomainSSLCertificate`` (DomainName, SSLProtocol ``on|off``,
  CertType ``upload`` with SSLPub + SSLPri (+ CertName), or ``cas`` with
  CertId (+ CertName) binding a CAS certificate; CertRegion
  ``cn-hangzhou`` (default) or ``ap-southeast-1``);
* ``DescribeDomainCertificateInfo`` (DomainName -> ``CertInfos.CertInfo``,
  with CertType, CertId and CertRegion; never the key).

Codes as Alibaba documents them: ``InvalidDomain.NotFound`` (404),
``DomainAlreadyExist``, ``InvalidSSLProtocol.ValueNotSupported``,
``SSLPub.MissingParameter``, ``SSLPri.MissingParameter`` (also a CertId sent
without ``CertType=cas``), ``InvalidSSLPub``, ``InvalidSSLPri``; lab-chosen:
``InvalidCertType``, ``InvalidCertRegion``, ``InvalidCertId``,
``InvalidCertificate.NotFound`` (404, an unknown CAS CertId).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from acmelab.lab.aliyun import cas, seed
from acmelab.lab.aliyun.certificates import (Codes, Installed, certificate_info, check_upload, domain_name,
                                             domain_param, format_time)
from acmelab.lab.aliyun.edge import Edge
from acmelab.lab.aliyun.server import ApiFault, LabState, action, require

logger = logging.getLogger(__name__)

VERSION = "2018-05-10"
CERT_REGIONS = ("cn-hangzhou", "ap-southeast-1")

CODES = Codes("InvalidSSLPub", "The specified SSLPub is invalid",
              "InvalidSSLPri", "The specified SSLPri is invalid",
              "InvalidSSLPri", "The specified SSLPri does not match the certificate in SSLPub")


@dataclass
class Binding:
    """The HTTPS certificate of one accelerated domain."""

    installed: Installed
    cert_region: str = "cn-hangzhou"


@dataclass
class CdnDomain:
    name: str
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    modified: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    binding: Binding | None = None


@dataclass
class CdnState:
    domains: dict[str, CdnDomain]
    edge: Edge


def _load(state: LabState) -> CdnState:
    domains = {name: CdnDomain(name) for name in map(domain_name, seed.seeded(state, "CdnDomains"))}
    return CdnState(domains, Edge("cdn", state.listen_host, state.cdn_edge_port))


def _state(state: LabState) -> CdnState:
    return state.extension("cdn", lambda: _load(state))


def start(state: LabState) -> None:
    """Open the CDN edge (called once by the endpoint's main)."""
    _state(state).edge.start()


def stop(state: LabState) -> None:
    """Close the CDN edge."""
    _state(state).edge.stop()


def _cas_users(state: LabState, cert_id: int) -> list[str]:
    with state.lock:
        return [f"CDN domain {d.name}" for d in _state(state).domains.values()
                if d.binding is not None and d.binding.installed.cert_type == "cas"
                and d.binding.installed.cert_id == cert_id]


cas.USERS.append(_cas_users)


def inventory(state: LabState) -> dict[str, Any]:
    """``{"CdnDomains": [{"DomainName", "ServerCertificateStatus", "CertType", "CertId", "Serial"}, ...]}``."""
    with state.lock:
        domains = []
        for domain in sorted(_state(state).domains.values(), key=lambda d: d.name):
            entry: dict[str, Any] = {"DomainName": domain.name,
                                     "ServerCertificateStatus": "on" if domain.binding else "off"}
            if domain.binding is not None:
                installed = domain.binding.installed
                entry.update(CertType=installed.cert_type, CertId=installed.cert_id,
                             Serial=f"{installed.leaf.serial_number:x}")
            domains.append(entry)
        return {"CdnDomains": domains}


def _domain(cdn: CdnState, name: str) -> CdnDomain:
    domain = cdn.domains.get(name)
    if domain is None:
        raise ApiFault("InvalidDomain.NotFound", "The domain provided does not belong to you.", 404)
    return domain


@action("AddCdnDomain", version=VERSION)
def add_cdn_domain(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """Add an accelerated domain (lab: no origin is contacted)."""
    name = domain_param(params)
    cdn = _state(state)
    with state.lock:
        if name in cdn.domains:
            raise ApiFault("DomainAlreadyExist", "The specified domain already exists.", 409)
        cdn.domains[name] = CdnDomain(name)
    return {}


@action("DescribeCdnDomainDetail", version=VERSION)
def describe_cdn_domain_detail(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """The basic configuration of one accelerated domain (``GetDomainDetailModel``)."""
    name = domain_param(params)
    with state.lock:
        domain = _domain(_state(state), name)
        cname = f"{name.replace('*', 'all')}.w.kunlunle.com"
        return {"GetDomainDetailModel": {
            "DomainName": name, "Cname": cname, "HttpsCname": cname if domain.binding else "",
            "DomainStatus": "online", "ServerCertificateStatus": "on" if domain.binding else "off",
            "CdnType": "web", "Scope": "domestic", "ResourceGroupId": "rg-acmelab", "Description": "",
            "GmtCreated": format_time(domain.created), "GmtModified": format_time(domain.modified),
            "SourceModels": {"SourceModel": [{"Content": "origin.example.com", "Type": "domain", "Port": 443,
                                              "Enabled": "online", "Priority": "20", "Weight": "10"}]},
        }}


def _certificate_to_bind(state: LabState, params: dict[str, str], domain: str) -> tuple[Installed, str]:
    cert_type = params.get("CertType") or "upload"
    if cert_type == "cas":
        cert_id = cas.cert_id_param(params)
        stored = cas.known(state, cert_id, "InvalidCertificate.NotFound")
        leaf = check_upload(stored.chain_pem, stored.key_pem, domain, CODES)
        return Installed(params.get("CertName") or stored.cert_name, stored.chain_pem, stored.key_pem, leaf,
                         "cas", cert_id), cert_type
    if cert_type != "upload":
        raise ApiFault("InvalidCertType", "The specified CertType is invalid.")
    chain_pem, key_pem = params.get("SSLPub", ""), params.get("SSLPri", "")
    if params.get("CertId") and not key_pem:   # a CAS CertId without CertType=cas (certd #632)
        raise ApiFault("SSLPri.MissingParameter", "The SSLPri parameter is required.")
    if not chain_pem:
        raise ApiFault("SSLPub.MissingParameter", "The SSLPub parameter is required.")
    if not key_pem:
        raise ApiFault("SSLPri.MissingParameter", "The SSLPri parameter is required.")
    leaf = check_upload(chain_pem, key_pem, domain, CODES)
    name = params.get("CertName") or f"{domain}-{uuid.uuid4().hex[:8]}"
    return Installed(name, chain_pem, key_pem, leaf), cert_type


@action("SetCdnDomainSSLCertificate", version=VERSION)
def set_cdn_domain_ssl_certificate(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """Turn HTTPS on (with an uploaded or a CAS certificate) or off for an accelerated domain."""
    name = domain_param(params)
    protocol = require(params, "SSLProtocol")
    if protocol not in ("on", "off"):
        raise ApiFault("InvalidSSLProtocol.ValueNotSupported", "The specified SSLProtocol is invalid.")
    region = params.get("CertRegion") or "cn-hangzhou"
    if region not in CERT_REGIONS:
        raise ApiFault("InvalidCertRegion", f"The specified CertRegion is invalid ({' or '.join(CERT_REGIONS)}).")
    cdn = _state(state)
    # The edge and the binding change under one hold of state.lock, so two
    # concurrent calls for a domain leave both on the same certificate, and
    # a CAS certificate cannot be deleted between its check and its binding
    # (lock order state.lock -> edge.lock; the edge never takes state.lock).
    with state.lock:
        domain = _domain(cdn, name)
        if protocol == "off":
            domain.binding, domain.modified = None, dt.datetime.now(dt.timezone.utc)
            cdn.edge.remove(name)
            return {}
        installed, _ = _certificate_to_bind(state, params, name)
        cdn.edge.install(name, installed.chain_pem, installed.key_pem)
        domain.binding, domain.modified = Binding(installed, region), dt.datetime.now(dt.timezone.utc)
    logger.info("CDN %s: certificate %s (%s, serial %x) installed", name, installed.cert_name,
                installed.cert_type, installed.leaf.serial_number)
    return {}


@action("DescribeDomainCertificateInfo", version=VERSION)
def describe_domain_certificate_info(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """The certificate configured on an accelerated domain (never its key)."""
    name = domain_param(params)
    with state.lock:
        binding = _domain(_state(state), name).binding
    if binding is None:
        info = {"DomainName": name, "ServerCertificateStatus": "off", "CertName": "", "CertType": ""}
    else:
        info = {"DomainName": name, "ServerCertificateStatus": "on", "Status": "success",
                "CertRegion": binding.cert_region, **certificate_info(binding.installed)}
    return {"CertInfos": {"CertInfo": [info]}}
