"""CDN, API Gateway and CAS certificate actions of the lab endpoint, and their TLS edges.

Theory of operation
-------------------
The lab account owns some CDN accelerated domains and API Gateway groups
with bound custom domains (:data:`DEFAULT_CDN_DOMAINS`,
:data:`DEFAULT_API_GROUPS`, or ``<state-dir>/deploy.json`` with the keys
``"CdnDomains": [...]`` and ``"ApiGroups": [{"GroupId", "GroupName",
"Domains": [...]}]``).  Tests add their own with the real actions
``AddCdnDomain``, ``CreateApiGroup`` and ``SetDomain``.

A certificate upload is checked as Alibaba Cloud checks it (PEM parses, the
key matches, the chain is in order, it is not expired, it covers the domain)
and refused with an Alibaba-shaped error otherwise.  An accepted upload is
installed on the product's *edge*: one TLS listener per product on loopback
(``--cdn-edge-port``, ``--apigateway-edge-port``), whose SNI callback picks
the installed domain's context, so the edge presents exactly the uploaded
chain.  A new upload for the same domain swaps the context; the next
handshake sees the new certificate.  Unknown SNI names get the TLS alert
``unrecognized_name``.

The uploaded key lives only in memory: it is written to a 0600 temporary
file for ``SSLContext.load_cert_chain`` and removed at once.  No answer,
error or log line contains it.

Actions (API version):

* CDN (2018-05-10): ``AddCdnDomain``, ``SetCdnDomainSSLCertificate``,
  ``DescribeDomainCertificateInfo``;
* API Gateway / CloudAPI (2016-07-14): ``CreateApiGroup``, ``SetDomain``,
  ``SetDomainCertificate``, ``DescribeDomain``;
* CAS (2020-04-07): ``UploadUserCertificate`` (its ``CertId`` can be used by
  CDN with ``CertType=cas``).

Error codes follow Alibaba's documentation where it lists them
(``InvalidDomain.NotFound``, ``SSLPub.MissingParameter``, ``InvalidSSLPub``,
``InvalidSSLPri``, ``InvalidSSLProtocol.ValueNotSupported``); where it does
not, realistic names are used (``NotFoundGroup``, ``NotFoundDomain``,
``CertificateMismatch``, ``InvalidCertificate``, ``NameRepeat``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import os
import shutil
import socketserver
import ssl
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from acmelab.deploy import checks
from acmelab.errors import InputError
from acmelab.lab.aliyun.server import ApiFault, LabState, action, require

logger = logging.getLogger(__name__)

CDN_VERSION = "2018-05-10"
APIGATEWAY_VERSION = "2016-07-14"
CAS_VERSION = "2020-04-07"
CONFIG_FILE = "deploy.json"

#: CDN accelerated domains of the lab account.
DEFAULT_CDN_DOMAINS = ["cdn.example.com", "static.example.com", "cdn.dev.example.com", "cdn.example.org"]

#: API Gateway groups of the lab account, with their bound custom domains.
DEFAULT_API_GROUPS = [
    {"GroupId": "523e8dc7bbe04613b5b1d726c2a7889d", "GroupName": "acmelab_shop",
     "Domains": ["api.example.com", "api.dev.example.com"]},
]


# --------------------------------------------------------------------------
# TLS edges
# --------------------------------------------------------------------------

class _EdgeHandler(socketserver.BaseRequestHandler):
    server: "_EdgeServer"

    def handle(self) -> None:
        self.request.settimeout(5)
        try:
            with self.server.edge.listener_context.wrap_socket(self.request, server_side=True) as tls:
                name = getattr(tls, "acmelab_server_name", None) or "?"
                try:
                    tls.recv(65536)
                except (OSError, ssl.SSLError):
                    return
                body = f"acmelab {self.server.edge.product} edge: {name}\n".encode()
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        except (OSError, ssl.SSLError):
            pass


class _EdgeServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    edge: "Edge"

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("edge connection from %s failed", client_address, exc_info=True)


class Edge:
    """One product's HTTPS edge: SNI name -> the context of the uploaded chain.

    ``install`` / ``remove`` may be called before the listener is started
    (``port`` None: nothing listens, installs are still recorded).
    """

    def __init__(self, product: str, host: str, port: int | None) -> None:
        self.product = product
        self.host = host
        self.port = port
        self.contexts: dict[str, ssl.SSLContext] = {}
        self.lock = threading.Lock()
        self.listener_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.listener_context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.listener_context.sni_callback = self._select
        self.server: _EdgeServer | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.port is None:
            return
        self.server = _EdgeServer((self.host, self.port), _EdgeHandler)
        self.server.edge = self
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                       name=f"{self.product}-edge", daemon=True)
        self.thread.start()
        logger.info("%s edge on https://%s:%d", self.product, self.host, self.port)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def _select(self, tls: ssl.SSLObject, server_name: str | None, _default: ssl.SSLContext) -> int | None:
        name = (server_name or "").lower().rstrip(".")
        with self.lock:
            context = self.contexts.get(name)
            if context is None and "." in name:
                context = self.contexts.get("*." + name.split(".", 1)[1])
        if context is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        tls.context = context
        tls.acmelab_server_name = name
        return None

    def install(self, domain: str, chain_pem: str, key_pem: str) -> None:
        """Serve ``chain_pem`` with ``key_pem`` for SNI ``domain`` from the next handshake on."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        directory = tempfile.mkdtemp(prefix="acmelab-edge-")
        try:
            path = os.path.join(directory, "chain-and-key.pem")
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(key_pem)
                handle.write(chain_pem)
            context.load_cert_chain(path)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        with self.lock:
            self.contexts[domain] = context

    def remove(self, domain: str) -> None:
        with self.lock:
            self.contexts.pop(domain, None)


# --------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------

@dataclass
class Installed:
    """What a product holds for one domain (the key stays out of repr)."""

    cert_name: str
    chain_pem: str = field(repr=False)
    key_pem: str = field(repr=False)
    leaf: x509.Certificate = field(repr=False)
    cert_type: str = "upload"
    cert_id: int | None = None
    installed_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))


@dataclass
class ApiGroup:
    group_id: str
    group_name: str
    description: str = ""
    domains: dict[str, Installed | None] = field(default_factory=dict)

    @property
    def sub_domain(self) -> str:
        return f"{self.group_id}-cn-hangzhou.alicloudapi.com"


@dataclass
class DeployState:
    cdn_domains: dict[str, Installed | None] = field(default_factory=dict)
    api_groups: dict[str, ApiGroup] = field(default_factory=dict)
    cas_certificates: dict[int, Installed] = field(default_factory=dict)
    cas_ids: itertools.count = field(default_factory=lambda: itertools.count(8089870))
    edges: dict[str, Edge] = field(default_factory=dict)


def _load(state: LabState) -> DeployState:
    config: dict[str, Any] = {}
    if state.state_dir is not None and (state.state_dir / CONFIG_FILE).is_file():
        config = json.loads((state.state_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    deploy = DeployState()
    for domain in config.get("CdnDomains", DEFAULT_CDN_DOMAINS):
        deploy.cdn_domains[checks.normalize_domain(domain)] = None
    for group in config.get("ApiGroups", DEFAULT_API_GROUPS):
        api_group = ApiGroup(group["GroupId"], group["GroupName"])
        for domain in group.get("Domains", []):
            api_group.domains[checks.normalize_domain(domain)] = None
        deploy.api_groups[api_group.group_id] = api_group
    deploy.edges["cdn"] = Edge("cdn", state.listen_host, state.cdn_edge_port)
    deploy.edges["apigateway"] = Edge("apigateway", state.listen_host, state.apigateway_edge_port)
    return deploy


def _state(state: LabState) -> DeployState:
    return state.extension("deploy", lambda: _load(state))


def start(state: LabState) -> None:
    """Open the TLS edge listeners (called once by the endpoint's main)."""
    for edge in _state(state).edges.values():
        edge.start()


def stop(state: LabState) -> None:
    """Close the TLS edge listeners."""
    for edge in _state(state).edges.values():
        edge.stop()


# --------------------------------------------------------------------------
# Checking an upload, with each product's error codes
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Codes:
    """Error codes of one product for the ways an upload can be wrong."""

    certificate: str       # malformed / out of order / expired / wrong domain
    certificate_message: str
    key: str               # malformed key
    key_message: str
    mismatch: str          # key does not match the certificate
    mismatch_message: str


CDN_CODES = Codes("InvalidSSLPub", "The specified SSLPub is invalid",
                  "InvalidSSLPri", "The specified SSLPri is invalid",
                  "InvalidSSLPri", "The specified SSLPri does not match the certificate in SSLPub")
APIGATEWAY_CODES = Codes("InvalidCertificate", "The specified CertificateBody is invalid",
                         "InvalidCertificatePrivateKey", "The specified CertificatePrivateKey is invalid",
                         "CertificateMismatch", "The certificate and the private key do not match")
CAS_CODES = Codes("InvalidCert", "The specified Cert is invalid",
                  "InvalidKey", "The specified Key is invalid",
                  "CertificateMismatch", "The certificate and the private key do not match")


def _check_upload(chain_pem: str, key_pem: str, domain: str | None, codes: Codes) -> x509.Certificate:
    """The leaf of an acceptable upload, or ApiFault (HTTP 400) naming the problem."""
    try:
        chain = checks.parse_chain(chain_pem)
    except InputError as error:
        raise ApiFault(codes.certificate, f"{codes.certificate_message}: {error}") from None
    leaf = chain[0]
    try:
        key = checks.load_key(key_pem)
    except InputError:
        raise ApiFault(codes.key, f"{codes.key_message}: not a PEM RSA or EC private key.") from None
    if not checks.key_matches_certificate(key, leaf):
        raise ApiFault(codes.mismatch, f"{codes.mismatch_message} (certificate serial {leaf.serial_number:x}).")
    try:
        checks.check_chain_order(chain)
        checks.check_validity(leaf)
    except InputError as error:
        raise ApiFault(codes.certificate, f"{codes.certificate_message}: {error}") from None
    if domain is not None:
        names = checks.certificate_names(leaf)
        if not any(checks.name_matches(name, domain) for name in names):
            raise ApiFault(codes.certificate, f"{codes.certificate_message}: the certificate covers "
                           f"{', '.join(names)}, not the domain {domain}.")
    return leaf


def _domain_param(params: dict[str, str], name: str = "DomainName") -> str:
    try:
        return checks.normalize_domain(require(params, name))
    except InputError:
        raise ApiFault(f"Invalid{name}", f"The specified {name} is invalid.") from None


def _format_time(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _cert_info(domain: str, installed: Installed | None) -> dict[str, Any]:
    if installed is None:
        return {"DomainName": domain, "ServerCertificateStatus": "off", "CertName": "", "CertType": ""}
    leaf = installed.leaf
    return {
        "DomainName": domain, "ServerCertificateStatus": "on", "CertName": installed.cert_name,
        "CertType": installed.cert_type, "CertId": str(installed.cert_id or ""),
        "CertDomainName": ",".join(checks.certificate_names(leaf)),
        "CertStartTime": _format_time(leaf.not_valid_before_utc),
        "CertExpireTime": _format_time(leaf.not_valid_after_utc),
        "CertLife": f"{(leaf.not_valid_after_utc - leaf.not_valid_before_utc).days} days",
        "CertOrg": leaf.issuer.rfc4514_string(), "CertUpdateTime": _format_time(installed.installed_at),
        "Status": "success", "ServerCertificate": installed.chain_pem,
    }


# --------------------------------------------------------------------------
# CDN (2018-05-10)
# --------------------------------------------------------------------------

def _cdn_domain(deploy: DeployState, domain: str) -> None:
    if domain not in deploy.cdn_domains:
        raise ApiFault("InvalidDomain.NotFound", "The domain provided does not belong to you.", 404)


@action("AddCdnDomain", version=CDN_VERSION)
def add_cdn_domain(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """Add an accelerated domain (lab: no origin is contacted)."""
    domain = _domain_param(params)
    deploy = _state(state)
    with state.lock:
        if domain in deploy.cdn_domains:
            raise ApiFault("DomainAlreadyExist", "The specified domain already exists.", 409)
        deploy.cdn_domains[domain] = None
    return {}


@action("SetCdnDomainSSLCertificate", version=CDN_VERSION)
def set_cdn_domain_ssl_certificate(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """Turn HTTPS on (with an uploaded or CAS certificate) or off for an accelerated domain."""
    domain = _domain_param(params)
    protocol = require(params, "SSLProtocol")
    if protocol not in ("on", "off"):
        raise ApiFault("InvalidSSLProtocol.ValueNotSupported", "The specified SSLProtocol is invalid.")
    deploy = _state(state)
    with state.lock:
        _cdn_domain(deploy, domain)
    if protocol == "off":
        with state.lock:
            deploy.cdn_domains[domain] = None
        deploy.edges["cdn"].remove(domain)
        return {}
    cert_type = params.get("CertType") or "upload"
    if cert_type == "cas":
        try:
            cert_id = int(require(params, "CertId"))
        except ValueError:
            raise ApiFault("InvalidCertId", "The specified CertId is invalid.") from None
        with state.lock:
            stored = deploy.cas_certificates.get(cert_id)
        if stored is None:
            raise ApiFault("InvalidCertificate.NotFound", f"The certificate {cert_id} does not exist.", 404)
        _check_upload(stored.chain_pem, stored.key_pem, domain, CDN_CODES)
        chain_pem, key_pem, name = stored.chain_pem, stored.key_pem, params.get("CertName") or stored.cert_name
    elif cert_type == "upload":
        chain_pem = params.get("SSLPub", "")
        key_pem = params.get("SSLPri", "")
        if not chain_pem:
            raise ApiFault("SSLPub.MissingParameter", "The SSLPub parameter is required.")
        if not key_pem:
            raise ApiFault("SSLPri.MissingParameter", "The SSLPri parameter is required.")
        _check_upload(chain_pem, key_pem, domain, CDN_CODES)
        name = params.get("CertName") or f"{domain}-{uuid.uuid4().hex[:8]}"
        cert_id = None
    else:
        raise ApiFault("InvalidCertType", "The specified CertType is invalid.")
    leaf = checks.parse_chain(chain_pem)[0]
    deploy.edges["cdn"].install(domain, chain_pem, key_pem)
    with state.lock:
        deploy.cdn_domains[domain] = Installed(name, chain_pem, key_pem, leaf, cert_type, cert_id)
    logger.info("CDN %s: certificate %s (serial %x) installed", domain, name, leaf.serial_number)
    return {}


@action("DescribeDomainCertificateInfo", version=CDN_VERSION)
def describe_domain_certificate_info(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """The certificate configured on an accelerated domain (never its key)."""
    domain = _domain_param(params)
    deploy = _state(state)
    with state.lock:
        _cdn_domain(deploy, domain)
        installed = deploy.cdn_domains[domain]
    return {"CertInfos": {"CertInfo": [_cert_info(domain, installed)]}}


# --------------------------------------------------------------------------
# API Gateway (CloudAPI 2016-07-14)
# --------------------------------------------------------------------------

def _group(deploy: DeployState, params: dict[str, str]) -> ApiGroup:
    group = deploy.api_groups.get(require(params, "GroupId"))
    if group is None:
        raise ApiFault("NotFoundGroup", "Cannot find the group according to the specified GroupId.", 404)
    return group


@action("CreateApiGroup", version=APIGATEWAY_VERSION)
def create_api_group(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """Create an API group; answers its GroupId."""
    name = require(params, "GroupName")
    deploy = _state(state)
    with state.lock:
        if any(group.group_name == name for group in deploy.api_groups.values()):
            raise ApiFault("RepeatedGroupName", "The group name already exists.")
        group = ApiGroup(uuid.uuid4().hex, name, params.get("Description", ""))
        deploy.api_groups[group.group_id] = group
    return {"GroupId": group.group_id, "GroupName": group.group_name, "SubDomain": group.sub_domain,
            "Description": group.description}


@action("SetDomain", version=APIGATEWAY_VERSION)
def set_domain(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """Bind a custom domain to an API group."""
    domain = _domain_param(params)
    deploy = _state(state)
    with state.lock:
        group = _group(deploy, params)
        for other in deploy.api_groups.values():
            if other is not group and domain in other.domains:
                raise ApiFault("DomainAlreadyBound", f"The domain {domain} is bound to another group.")
        group.domains.setdefault(domain, None)
    return {"GroupId": group.group_id, "DomainName": domain, "SubDomain": group.sub_domain,
            "DomainBindingStatus": "BINDING", "DomainLegalStatus": "NORMAL", "DomainWebSocketStatus": "CLOSE"}


@action("SetDomainCertificate", version=APIGATEWAY_VERSION)
def set_domain_certificate(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """Upload the SSL certificate of a group's custom domain."""
    domain = _domain_param(params)
    deploy = _state(state)
    with state.lock:
        group = _group(deploy, params)
        if domain not in group.domains:
            raise ApiFault("NotFoundDomain", f"The domain {domain} is not bound to the group {group.group_id}.", 404)
    name = require(params, "CertificateName")
    chain_pem = require(params, "CertificateBody")
    key_pem = require(params, "CertificatePrivateKey")
    leaf = _check_upload(chain_pem, key_pem, domain, APIGATEWAY_CODES)
    deploy.edges["apigateway"].install(domain, chain_pem, key_pem)
    with state.lock:
        group.domains[domain] = Installed(name, chain_pem, key_pem, leaf)
    logger.info("API Gateway %s/%s: certificate %s (serial %x) installed", group.group_id, domain, name,
                leaf.serial_number)
    return {}


@action("DescribeDomain", version=APIGATEWAY_VERSION)
def describe_domain(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """A group's custom domain and its certificate (never its key)."""
    domain = _domain_param(params)
    deploy = _state(state)
    with state.lock:
        group = _group(deploy, params)
        if domain not in group.domains:
            raise ApiFault("NotFoundDomain", f"The domain {domain} is not bound to the group {group.group_id}.", 404)
        installed = group.domains[domain]
    answer = {"GroupId": group.group_id, "DomainName": domain, "SubDomain": group.sub_domain,
              "DomainBindingStatus": "BINDING", "DomainLegalStatus": "NORMAL"}
    if installed is not None:
        answer.update({"CertificateName": installed.cert_name, "CertificateBody": installed.chain_pem,
                       "CertificateId": f"{installed.leaf.serial_number:x}"})
    return answer


# --------------------------------------------------------------------------
# Certificate Management Service (cas 2020-04-07)
# --------------------------------------------------------------------------

@action("UploadUserCertificate", version=CAS_VERSION)
def upload_user_certificate(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """Store an uploaded certificate; answers its CertId."""
    name = require(params, "Name")
    chain_pem = require(params, "Cert")
    key_pem = require(params, "Key")
    leaf = _check_upload(chain_pem, key_pem, None, CAS_CODES)
    deploy = _state(state)
    with state.lock:
        if any(stored.cert_name == name for stored in deploy.cas_certificates.values()):
            raise ApiFault("NameRepeat", f"A certificate named {name} already exists.")
        cert_id = next(deploy.cas_ids)
        deploy.cas_certificates[cert_id] = Installed(name, chain_pem, key_pem, leaf, "cas", cert_id)
    return {"CertId": cert_id}
