"""API Gateway (CloudAPI 2016-07-14) actions of the lab endpoint, and its edge.

The lab account's API groups are :data:`acmelab.lab.aliyun.seed.API_GROUPS`
(or ``deploy.json``), each with bound custom domains; ``CreateApiGroup`` and
``SetDomain`` add more.  A certificate set with ``SetDomainCertificate`` is
checked (:mod:`.certificates`) and served on the API Gateway edge
(``--apigateway-edge-port``) for SNI = the domain.

Actions:

* ``CreateApiGroup`` (GroupName, Description -> GroupId, SubDomain);
* ``DescribeApiGroup`` (GroupId -> GroupId, GroupName, SubDomain, RegionId,
  Status, ``CustomDomains.DomainItem`` with DomainName, CertificateId,
  CertificateName, DomainBindingStatus, ...);
* ``SetDomain`` (GroupId, DomainName) binds a custom domain;
* ``SetDomainCertificate`` (GroupId, DomainName, CertificateName,
  CertificateBody, CertificatePrivateKey);
* ``DescribeDomain`` (GroupId, DomainName -> the domain and its certificate).

Codes: ``NotFoundApiGroup`` (404) from DescribeApiGroup for an unknown
group, as the Alibaba Terraform provider expects; lab-chosen for the others:
``NotFoundGroup`` (404), ``NotFoundDomain`` (404), ``RepeatedGroupName``,
``DomainAlreadyBound``, ``InvalidCertificate``,
``InvalidCertificatePrivateKey``, ``CertificateMismatch``.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from acmelab.lab.aliyun import seed
from acmelab.lab.aliyun.certificates import Codes, Installed, check_upload, domain_name, domain_param, format_time
from acmelab.lab.aliyun.edge import Edge
from acmelab.lab.aliyun.server import ApiFault, LabState, action, require

logger = logging.getLogger(__name__)

VERSION = "2016-07-14"
REGION = "cn-hangzhou"

CODES = Codes("InvalidCertificate", "The specified CertificateBody is invalid",
              "InvalidCertificatePrivateKey", "The specified CertificatePrivateKey is invalid",
              "CertificateMismatch", "The certificate and the private key do not match")


@dataclass
class ApiGroup:
    group_id: str
    group_name: str
    description: str = ""
    domains: dict[str, Installed | None] = field(default_factory=dict)
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    @property
    def sub_domain(self) -> str:
        return f"{self.group_id}-{REGION}.alicloudapi.com"


@dataclass
class ApiGatewayState:
    groups: dict[str, ApiGroup]
    edge: Edge


def _load(state: LabState) -> ApiGatewayState:
    groups = {}
    for entry in seed.seeded(state, "ApiGroups"):
        group = ApiGroup(entry["GroupId"], entry["GroupName"])
        group.domains = {domain_name(name): None for name in entry.get("Domains", [])}
        groups[group.group_id] = group
    return ApiGatewayState(groups, Edge("apigateway", state.listen_host, state.apigateway_edge_port))


def _state(state: LabState) -> ApiGatewayState:
    return state.extension("apigateway", lambda: _load(state))


def start(state: LabState) -> None:
    """Open the API Gateway edge (called once by the endpoint's main)."""
    _state(state).edge.start()


def stop(state: LabState) -> None:
    """Close the API Gateway edge."""
    _state(state).edge.stop()


def inventory(state: LabState) -> dict[str, Any]:
    """``{"ApiGroups": [{"GroupId", "GroupName", "CustomDomains": [{"DomainName", "Serial"}]}, ...]}``."""
    with state.lock:
        return {"ApiGroups": [
            {"GroupId": group.group_id, "GroupName": group.group_name,
             "CustomDomains": [{"DomainName": name,
                                "Serial": f"{installed.leaf.serial_number:x}" if installed else None}
                               for name, installed in sorted(group.domains.items())]}
            for group in _state(state).groups.values()]}


def _group(apigateway: ApiGatewayState, params: dict[str, str], code: str = "NotFoundGroup") -> ApiGroup:
    group = apigateway.groups.get(require(params, "GroupId"))
    if group is None:
        raise ApiFault(code, "Cannot find the group according to the specified GroupId.", 404)
    return group


def _bound(group: ApiGroup, domain: str) -> None:
    if domain not in group.domains:
        raise ApiFault("NotFoundDomain", f"The domain {domain} is not bound to the group {group.group_id}.", 404)


@action("CreateApiGroup", version=VERSION)
def create_api_group(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """Create an API group; answers its GroupId."""
    name = require(params, "GroupName")
    apigateway = _state(state)
    with state.lock:
        if any(group.group_name == name for group in apigateway.groups.values()):
            raise ApiFault("RepeatedGroupName", "The group name already exists.")
        group = ApiGroup(uuid.uuid4().hex, name, params.get("Description", ""))
        apigateway.groups[group.group_id] = group
    return {"GroupId": group.group_id, "GroupName": group.group_name, "SubDomain": group.sub_domain,
            "Description": group.description}


def _domain_item(group: ApiGroup, name: str, installed: Installed | None) -> dict[str, Any]:
    item: dict[str, Any] = {"DomainName": name, "DomainBindingStatus": "BINDING", "DomainCNAMEStatus": "RESOLVED",
                            "DomainLegalStatus": "NORMAL", "DomainWebSocketStatus": "CLOSE",
                            "IsHttpRedirectToHttps": False, "CertificateId": "", "CertificateName": ""}
    if installed is not None:
        item.update(CertificateId=f"{installed.leaf.serial_number:x}", CertificateName=installed.cert_name,
                    CertificateValidStart=int(installed.leaf.not_valid_before_utc.timestamp() * 1000),
                    CertificateValidEnd=int(installed.leaf.not_valid_after_utc.timestamp() * 1000))
    return item


@action("DescribeApiGroup", version=VERSION)
def describe_api_group(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """An API group with its custom domains and their certificates (never a key)."""
    with state.lock:
        group = _group(_state(state), params, code="NotFoundApiGroup")
        return {"GroupId": group.group_id, "GroupName": group.group_name, "SubDomain": group.sub_domain,
                "Description": group.description, "RegionId": REGION, "Status": "NORMAL",
                "InstanceType": "VPC_SHARED", "InstanceId": "api-shared-vpc-001", "HttpsPolicy": "HTTPS2_TLS1_2",
                "CreatedTime": format_time(group.created),
                "CustomDomains": {"DomainItem": [_domain_item(group, name, installed)
                                                 for name, installed in sorted(group.domains.items())]}}


@action("SetDomain", version=VERSION)
def set_domain(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """Bind a custom domain to an API group."""
    domain = domain_param(params)
    apigateway = _state(state)
    with state.lock:
        group = _group(apigateway, params)
        for other in apigateway.groups.values():
            if other is not group and domain in other.domains:
                raise ApiFault("DomainAlreadyBound", f"The domain {domain} is bound to another group.")
        group.domains.setdefault(domain, None)
    return {"GroupId": group.group_id, "DomainName": domain, "SubDomain": group.sub_domain,
            "DomainBindingStatus": "BINDING", "DomainLegalStatus": "NORMAL", "DomainWebSocketStatus": "CLOSE"}


@action("SetDomainCertificate", version=VERSION)
def set_domain_certificate(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """Upload the SSL certificate of a group's custom domain."""
    domain = domain_param(params)
    apigateway = _state(state)
    with state.lock:
        group = _group(apigateway, params)
        _bound(group, domain)
    name = require(params, "CertificateName")
    chain_pem = require(params, "CertificateBody")
    key_pem = require(params, "CertificatePrivateKey")
    leaf = check_upload(chain_pem, key_pem, domain, CODES)
    with state.lock:  # edge and DescribeDomain change together (state.lock -> edge.lock, never back)
        apigateway.edge.install(domain, chain_pem, key_pem)
        group.domains[domain] = Installed(name, chain_pem, key_pem, leaf)
    logger.info("API Gateway %s/%s: certificate %s (serial %x) installed", group.group_id, domain, name,
                leaf.serial_number)
    return {}


@action("DescribeDomain", version=VERSION)
def describe_domain(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """A group's custom domain and its certificate (never its key)."""
    domain = domain_param(params)
    with state.lock:
        group = _group(_state(state), params)
        _bound(group, domain)
        installed = group.domains[domain]
    answer = {"GroupId": group.group_id, "DomainName": domain, "SubDomain": group.sub_domain,
              "DomainBindingStatus": "BINDING", "DomainLegalStatus": "NORMAL"}
    if installed is not None:
        answer.update({"CertificateName": installed.cert_name, "CertificateBody": installed.chain_pem,
                       "CertificateId": f"{installed.leaf.serial_number:x}"})
    return answer
