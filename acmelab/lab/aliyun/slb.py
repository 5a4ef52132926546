"""Classic Load Balancer (Slb 2014-05-15) actions of the lab endpoint, and the SLB edge.

The lab account's load balancers are :data:`acmelab.lab.aliyun.seed.LOAD_BALANCERS`
(or ``deploy.json``): ids in Alibaba's style (``lb-bp1...``), each with
HTTPS listeners (443).  A server certificate is uploaded once
(``UploadServerCertificate``: checked by :mod:`.certificates`) and bound to
a listener by its ServerCertificateId (``SetLoadBalancerHTTPSListenerAttribute``).
The SLB edge (``--slb-edge-port``) serves every bound chain for the names it
covers (SNI; the newest binding wins a name), so the handshake check with
SNI = the domain sees what the listener serves.

Actions:

* ``UploadServerCertificate`` (ServerCertificate, PrivateKey,
  ServerCertificateName -> ServerCertificateId, Fingerprint,
  ServerCertificateName, CommonName, SubjectAlternativeNames, ExpireTime...);
* ``DescribeServerCertificates`` (optional ServerCertificateId ->
  ``ServerCertificates.ServerCertificate``; never a key);
* ``DeleteServerCertificate`` (ServerCertificateId; refused while bound);
* ``DescribeLoadBalancerAttribute`` (LoadBalancerId -> LoadBalancerName,
  LoadBalancerStatus, Address, ListenerPorts, ListenerPortsAndProtocol);
* ``DescribeLoadBalancerHTTPSListenerAttribute`` (LoadBalancerId,
  ListenerPort -> ListenerPort, Status, ServerCertificateId, ...);
* ``SetLoadBalancerHTTPSListenerAttribute`` (LoadBalancerId, ListenerPort,
  ServerCertificateId).

Codes: ``InvalidLoadBalancerId.NotFound`` (404), ``ServerCertificateId.NotFound``
(404), ``CertificateAndPrivateKeyIsRefered`` (DeleteServerCertificate of a
bound certificate) as Alibaba documents them; lab-chosen:
``ListenerNotFound`` (404, no HTTPS listener on that port),
``InvalidServerCertificate``, ``InvalidPrivateKey``,
``CertificateAndPrivateKeyIsNotMatch``, ``InvalidParameter.ListenerPort``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization

from acmelab.lab.aliyun import seed
from acmelab.lab.aliyun.certificates import Codes, Installed, check_upload, format_time, names_of
from acmelab.lab.aliyun.edge import Edge
from acmelab.lab.aliyun.server import ApiFault, LabState, action, int_param, require

logger = logging.getLogger(__name__)

VERSION = "2014-05-15"
REGION = "cn-hangzhou"
ACCOUNT_ID = "1231579085529123"   # the lab account's id, the first part of a ServerCertificateId

CODES = Codes("InvalidServerCertificate", "The specified ServerCertificate is invalid",
              "InvalidPrivateKey", "The specified PrivateKey is invalid",
              "CertificateAndPrivateKeyIsNotMatch", "The ServerCertificate and the PrivateKey do not match")


@dataclass
class Listener:
    port: int
    server_certificate_id: str | None = None
    bound_at: dt.datetime | None = None


@dataclass
class LoadBalancer:
    load_balancer_id: str
    name: str
    listeners: dict[int, Listener] = field(default_factory=dict)
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))


@dataclass
class SlbState:
    load_balancers: dict[str, LoadBalancer]
    certificates: dict[str, Installed]
    edge: Edge
    serial: itertools.count = field(default_factory=lambda: itertools.count(1))


def _load(state: LabState) -> SlbState:
    balancers = {}
    for entry in seed.seeded(state, "LoadBalancers"):
        balancer = LoadBalancer(entry["LoadBalancerId"], entry.get("LoadBalancerName", entry["LoadBalancerId"]))
        balancer.listeners = {int(port): Listener(int(port)) for port in entry.get("ListenerPorts", [443])}
        balancers[balancer.load_balancer_id] = balancer
    return SlbState(balancers, {}, Edge("slb", state.listen_host, state.slb_edge_port))


def _state(state: LabState) -> SlbState:
    return state.extension("slb", lambda: _load(state))


def start(state: LabState) -> None:
    """Open the SLB edge (called once by the endpoint's main)."""
    _state(state).edge.start()


def stop(state: LabState) -> None:
    """Close the SLB edge."""
    _state(state).edge.stop()


def inventory(state: LabState) -> dict[str, Any]:
    """``{"LoadBalancers": [{"LoadBalancerId", "LoadBalancerName", "Listeners":
    [{"ListenerPort", "ServerCertificateId", "Serial"}]}, ...]}``."""
    with state.lock:
        slb = _state(state)
        answer = []
        for balancer in slb.load_balancers.values():
            listeners = []
            for listener in sorted(balancer.listeners.values(), key=lambda item: item.port):
                bound = slb.certificates.get(listener.server_certificate_id or "")
                listeners.append({"ListenerPort": listener.port, "ServerCertificateId": listener.server_certificate_id,
                                  "Serial": f"{bound.leaf.serial_number:x}" if bound else None})
            answer.append({"LoadBalancerId": balancer.load_balancer_id, "LoadBalancerName": balancer.name,
                           "Listeners": listeners})
        return {"LoadBalancers": answer}


def _balancer(slb: SlbState, params: dict[str, str]) -> LoadBalancer:
    balancer = slb.load_balancers.get(require(params, "LoadBalancerId"))
    if balancer is None:
        raise ApiFault("InvalidLoadBalancerId.NotFound", "The specified LoadBalancerId does not exist.", 404)
    return balancer


def _listener(slb: SlbState, params: dict[str, str]) -> tuple[LoadBalancer, Listener]:
    balancer = _balancer(slb, params)
    require(params, "ListenerPort")
    port = int_param(params, "ListenerPort", 0, minimum=1, maximum=65535)
    listener = balancer.listeners.get(port)
    if listener is None:
        raise ApiFault("ListenerNotFound", f"The specified resource does not exist: no HTTPS listener on port {port} "
                       f"of {balancer.load_balancer_id}.", 404)
    return balancer, listener


def _certificate(slb: SlbState, certificate_id: str) -> Installed:
    installed = slb.certificates.get(certificate_id)
    if installed is None:
        raise ApiFault("ServerCertificateId.NotFound", f"The specified ServerCertificateId {certificate_id} "
                       "does not exist.", 404)
    return installed


def _fingerprint(installed: Installed) -> str:
    der = installed.leaf.public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha1(der).hexdigest()  # noqa: S324 -- Alibaba's Fingerprint is the SHA-1 of the DER
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def _certificate_json(certificate_id: str, installed: Installed) -> dict[str, Any]:
    leaf = installed.leaf
    names = names_of(leaf)
    return {
        "ServerCertificateId": certificate_id, "ServerCertificateName": installed.cert_name,
        "Fingerprint": _fingerprint(installed), "RegionId": REGION, "RegionIdAlias": REGION,
        "CommonName": names[0] if names else "", "SubjectAlternativeNames": {"SubjectAlternativeName": names},
        "CreateTime": format_time(installed.installed_at),
        "CreateTimeStamp": int(installed.installed_at.timestamp() * 1000),
        "ExpireTime": format_time(leaf.not_valid_after_utc),
        "ExpireTimeStamp": int(leaf.not_valid_after_utc.timestamp() * 1000),
        "IsAliCloudCertificate": 0, "ResourceGroupId": "rg-acmelab",
    }


def _refresh_edge(slb: SlbState) -> None:
    """Serve every bound chain, for the names it covers, newest binding last (it wins)."""
    bound = sorted(((listener.bound_at, listener.server_certificate_id)
                    for balancer in slb.load_balancers.values() for listener in balancer.listeners.values()
                    if listener.server_certificate_id), key=lambda item: item[0])
    slb.edge.clear()
    for _, certificate_id in bound:
        installed = slb.certificates[certificate_id]
        slb.edge.install_names(names_of(installed.leaf), installed.chain_pem, installed.key_pem)


@action("UploadServerCertificate", version=VERSION)
def upload_server_certificate(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """Upload a server certificate and its key; answers its ServerCertificateId and Fingerprint."""
    chain_pem = require(params, "ServerCertificate")
    key_pem = require(params, "PrivateKey")
    leaf = check_upload(chain_pem, key_pem, None, CODES)
    slb = _state(state)
    with state.lock:
        number = next(slb.serial)
        certificate_id = f"{ACCOUNT_ID}_{secrets.token_hex(6)[:11]}_{int(dt.datetime.now().timestamp())}_{number:09d}"
        # <account id>_<hex>_<unix time>_<number>, the shape Alibaba's ids have
        name = params.get("ServerCertificateName") or certificate_id
        installed = Installed(name, chain_pem, key_pem, leaf, "upload", certificate_id)
        slb.certificates[certificate_id] = installed
    logger.info("SLB: server certificate %s (serial %x) uploaded as %s", name, leaf.serial_number, certificate_id)
    return _certificate_json(certificate_id, installed)


@action("DescribeServerCertificates", version=VERSION)
def describe_server_certificates(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """The account's server certificates (or the one ``ServerCertificateId``), never a key."""
    wanted = params.get("ServerCertificateId")
    with state.lock:
        certificates = _state(state).certificates
        listed = [_certificate_json(cid, c) for cid, c in certificates.items() if not wanted or cid == wanted]
    return {"ServerCertificates": {"ServerCertificate": listed}}


@action("DeleteServerCertificate", version=VERSION)
def delete_server_certificate(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """Delete a server certificate no listener uses."""
    certificate_id = require(params, "ServerCertificateId")
    slb = _state(state)
    with state.lock:
        _certificate(slb, certificate_id)
        users = [f"{b.load_balancer_id}:{listener.port}" for b in slb.load_balancers.values()
                 for listener in b.listeners.values() if listener.server_certificate_id == certificate_id]
        if users:
            raise ApiFault("CertificateAndPrivateKeyIsRefered", "The specified certificate is bound to listeners. "
                           f"You cannot delete it. (bound to {', '.join(users)})")
        del slb.certificates[certificate_id]
    logger.info("SLB: server certificate %s deleted", certificate_id)
    return {}


@action("DescribeLoadBalancerAttribute", version=VERSION)
def describe_load_balancer_attribute(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """One load balancer: name, status, address and its listeners."""
    with state.lock:
        balancer = _balancer(_state(state), params)
        ports = sorted(balancer.listeners)
        return {
            "LoadBalancerId": balancer.load_balancer_id, "LoadBalancerName": balancer.name,
            "LoadBalancerStatus": "active", "Address": "127.0.0.1", "AddressType": "internet",
            "AddressIPVersion": "ipv4", "NetworkType": "classic", "RegionId": REGION, "RegionIdAlias": REGION,
            "LoadBalancerSpec": "slb.s1.small", "PayType": "PayOnDemand",
            "CreateTime": format_time(balancer.created), "ResourceGroupId": "rg-acmelab",
            "ListenerPorts": {"ListenerPort": ports},
            "ListenerPortsAndProtocol": {"ListenerPortAndProtocol": [
                {"ListenerPort": port, "ListenerProtocol": "https"} for port in ports]},
        }


@action("DescribeLoadBalancerHTTPSListenerAttribute", version=VERSION)
def describe_load_balancer_https_listener_attribute(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """One HTTPS listener and the ServerCertificateId it serves."""
    with state.lock:
        _, listener = _listener(_state(state), params)
        return {"ListenerPort": listener.port, "BackendServerPort": 80, "Bandwidth": -1, "Status": "running",
                "Scheduler": "wrr", "StickySession": "off", "HealthCheck": "off",
                "TLSCipherPolicy": "tls_cipher_policy_1_2",
                "ServerCertificateId": listener.server_certificate_id or ""}


@action("SetLoadBalancerHTTPSListenerAttribute", version=VERSION)
def set_load_balancer_https_listener_attribute(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """Bind ``ServerCertificateId`` to the HTTPS listener ``LoadBalancerId``:``ListenerPort``."""
    slb = _state(state)
    with state.lock:
        balancer, listener = _listener(slb, params)
        certificate_id = params.get("ServerCertificateId")
        if certificate_id:
            installed = _certificate(slb, certificate_id)
            listener.server_certificate_id = certificate_id
            listener.bound_at = dt.datetime.now(dt.timezone.utc)
            _refresh_edge(slb)
            logger.info("SLB %s:%d: server certificate %s (serial %x) bound", balancer.load_balancer_id,
                        listener.port, certificate_id, installed.leaf.serial_number)
    return {}
