"""Install a certificate on an Alibaba Cloud Classic Load Balancer (SLB) HTTPS listener.

Article step: "HTTPS on the load balancer".  Two calls (Slb API 2014-05-15):

1. ``UploadServerCertificate`` -- ``ServerCertificate`` (the full chain PEM)
   and ``PrivateKey`` in the POST body, ``ServerCertificateName`` in the
   query; answers a ``ServerCertificateId``;
2. ``SetLoadBalancerHTTPSListenerAttribute`` -- binds that
   ``ServerCertificateId`` to the HTTPS listener ``LoadBalancerId`` /
   ``ListenerPort``.

After a successful rebind the server certificate acmelab uploaded before
for that listener is deleted (``DeleteServerCertificate``); one another
listener still uses is kept (``CertificateAndPrivateKeyIsRefered``).
Preflight: ``DescribeLoadBalancerAttribute`` (the load balancer exists)
and ``DescribeLoadBalancerHTTPSListenerAttribute`` (it has an HTTPS
listener on that port).  Pre-send checks as for CDN; proof with
:func:`acmelab.deploy.verify` at the listener's port, SNI = the
certificate's first name.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from typing import Any, Mapping, Sequence

from acmelab.aliyun import AliyunClient
from acmelab.deploy import checks
from acmelab.deploy._rpc import Installation, post
from acmelab.deploy.base import Deployer, InstallTarget, table_list
from acmelab.errors import AliyunError, ConfigError, DeployError

VERSION = "2014-05-15"
PRODUCT = "Slb"

logger = logging.getLogger(__name__)

def _not_found(error: AliyunError, load_balancer_id: str, listener_port: int | None = None) -> None:
    if error.code == "InvalidLoadBalancerId.NotFound":
        raise DeployError(f"SLB: no load balancer {load_balancer_id} in this account and region "
                          f"(InvalidLoadBalancerId.NotFound, RequestId {error.request_id}); "
                          "check LoadBalancerId and region_id") from None
    if error.code == "ListenerNotFound" or (error.code or "").startswith("InvalidParameter.ListenerPort"):
        raise DeployError(f"SLB: {load_balancer_id} has no HTTPS listener on port {listener_port} "
                          f"({error.code}, RequestId {error.request_id}); create it first "
                          "(CreateLoadBalancerHTTPSListener)") from None


def describe_load_balancer_attribute(client: AliyunClient, load_balancer_id: str) -> dict[str, Any]:
    """A load balancer (``LoadBalancerName``, ``LoadBalancerStatus``, ``Address``,
    ``ListenerPortsAndProtocol``, ...).  Raises DeployError for an unknown id.
    Source: Slb 2014-05-15, DescribeLoadBalancerAttribute."""
    try:
        return client.call("DescribeLoadBalancerAttribute", VERSION, {"LoadBalancerId": load_balancer_id},
                           product=PRODUCT)
    except AliyunError as error:
        _not_found(error, load_balancer_id)
        raise


def describe_https_listener(client: AliyunClient, load_balancer_id: str, listener_port: int) -> dict[str, Any]:
    """An HTTPS listener (``ListenerPort``, ``Status``, ``ServerCertificateId``, ...).
    Raises DeployError if there is none on that port.
    Source: Slb 2014-05-15, DescribeLoadBalancerHTTPSListenerAttribute."""
    try:
        return client.call("DescribeLoadBalancerHTTPSListenerAttribute", VERSION,
                           {"LoadBalancerId": load_balancer_id, "ListenerPort": str(int(listener_port))},
                           product=PRODUCT)
    except AliyunError as error:
        _not_found(error, load_balancer_id, listener_port)
        raise


def upload_server_certificate(client: AliyunClient, name: str, chain_pem: str | bytes, private_key: Any, *,
                              domain: str | None = None, now: dt.datetime | None = None) -> Installation:
    """Upload a certificate and its key as an SLB server certificate.

    Args:
        client: an :class:`acmelab.aliyun.AliyunClient` in the load balancer's region.
        name: ``ServerCertificateName``.
        chain_pem: full chain PEM, leaf first.
        private_key: the key (object or unencrypted PEM).
        domain: if given, the certificate must cover it (pre-send check).
        now: time for the validity check (default now).

    Returns:
        :class:`Installation` (product ``"slb"``, ``cert_id`` = ``ServerCertificateId``, a string).

    Raises:
        InputError: pre-send checks failed; nothing was sent.
        AliyunAuthError, AliyunError: as the service answered.

    Source: Slb 2014-05-15, UploadServerCertificate.
    """
    checked = checks.check_certificate(chain_pem, private_key, domain, now=now)
    answer = post(client, "UploadServerCertificate", VERSION, PRODUCT, {"ServerCertificateName": name},
                  {"ServerCertificate": checked.chain_pem, "PrivateKey": checked.private_key_pem})
    return Installation("slb", None, name, checked.serial_hex, checked.not_after, answer.get("RequestId"),
                        cert_id=str(answer["ServerCertificateId"]))


def set_https_listener_certificate(client: AliyunClient, load_balancer_id: str, listener_port: int,
                                   server_certificate_id: str) -> dict[str, Any]:
    """Bind ``server_certificate_id`` to the HTTPS listener.  Raises DeployError
    for an unknown load balancer or listener.  Source: Slb 2014-05-15,
    SetLoadBalancerHTTPSListenerAttribute."""
    try:
        return client.call("SetLoadBalancerHTTPSListenerAttribute", VERSION,
                           {"LoadBalancerId": load_balancer_id, "ListenerPort": str(int(listener_port)),
                            "ServerCertificateId": server_certificate_id}, product=PRODUCT)
    except AliyunError as error:
        _not_found(error, load_balancer_id, listener_port)
        raise


def delete_server_certificate(client: AliyunClient, server_certificate_id: str) -> bool:
    """Delete a server certificate.  Returns False (and keeps it) when a
    listener still uses it (``CertificateAndPrivateKeyIsRefered``) or it is
    gone already.  Source: Slb 2014-05-15, DeleteServerCertificate."""
    try:
        client.call("DeleteServerCertificate", VERSION, {"ServerCertificateId": server_certificate_id},
                    product=PRODUCT)
    except AliyunError as error:
        if error.code in ("CertificateAndPrivateKeyIsRefered", "ServerCertificateId.NotFound"):
            return False
        raise
    return True


# --------------------------------------------------------------------------
# The deployer (acmelab.deploy.DEPLOYERS["slb"])
# --------------------------------------------------------------------------

_LISTENER_FIELDS = {"load_balancer_id": str, "listener_port": int}


class SlbDeployer(Deployer):
    """SLB HTTPS listeners: ``slb = [{ load_balancer_id = "lb-...", listener_port = 443 }]``
    in the services file, ``acmelab install slb CERT --load-balancer-id ID --listener-port 443``;
    target id ``"slb:<load balancer>:<port>"``."""

    product = "slb"
    fields = ("listener_port", "load_balancer_id")
    api = "UploadServerCertificate + SetLoadBalancerHTTPSListenerAttribute (SLB 2014-05-15)"
    ram_actions = ("slb:DescribeLoadBalancerAttribute", "slb:DescribeLoadBalancerHTTPSListenerAttribute",
                   "slb:SetLoadBalancerHTTPSListenerAttribute", "slb:UploadServerCertificate",
                   "slb:DeleteServerCertificate")

    def parse(self, value: Any, where: str) -> list[InstallTarget]:
        targets = []
        for item in table_list(value, where, "slb", _LISTENER_FIELDS):
            if not 1 <= item["listener_port"] <= 65535:
                raise ConfigError(f"{where}: slb listener_port must be 1..65535, not {item['listener_port']}")
            targets.append(InstallTarget("slb", load_balancer_id=item["load_balancer_id"],
                                         listener_port=item["listener_port"]))
        return targets

    def target_id(self, target: InstallTarget) -> str:
        return f"slb:{target.get('load_balancer_id')}:{target.get('listener_port')}"

    def check_exists(self, client: AliyunClient, target: InstallTarget) -> None:
        try:
            describe_load_balancer_attribute(client, target.get("load_balancer_id"))
            describe_https_listener(client, target.get("load_balancer_id"), target.get("listener_port"))
        except DeployError as error:
            raise ConfigError(f"{self.target_id(target)}: {error}") from None

    def install(self, client: AliyunClient, target: InstallTarget, chain_pem: str, private_key: Any, *,
                label: str, names: Sequence[str] = (), carrier: Mapping[str, Any] | None = None) -> Installation:
        uploaded = upload_server_certificate(client, label, chain_pem, private_key,
                                             domain=names[0] if names else None)
        set_https_listener_certificate(client, target.get("load_balancer_id"), target.get("listener_port"),
                                       uploaded.cert_id)
        return uploaded

    def retire(self, client: AliyunClient, target: InstallTarget, previous: Mapping[str, Any] | None,
               installation: Installation) -> None:
        """Delete the server certificate acmelab uploaded for this listener
        before (only ours, never one uploaded by someone else)."""
        old = (previous or {}).get("cert_id")
        if old and old != installation.cert_id:
            if delete_server_certificate(client, str(old)):
                logger.info("%s: deleted the superseded server certificate %s", self.target_id(target), old)
            else:
                logger.info("%s: kept the server certificate %s (still bound elsewhere, or gone)",
                            self.target_id(target), old)

    def handshake(self, target: InstallTarget, names: Sequence[str]) -> tuple[str, int] | None:
        """SNI = the certificate's first non-wildcard name, at the listener's port."""
        server_name = next((name for name in names if not name.startswith("*.")), None)
        return None if server_name is None else (server_name, int(target.get("listener_port")))

    def ram_statements(self, targets: Sequence[InstallTarget], region: str) -> list[dict[str, Any]]:
        balancers = sorted({t.get("load_balancer_id") for t in targets})
        if not balancers:
            return []
        return [{"Effect": "Allow", "Action": list(self.ram_actions[:3]),
                 "Resource": [f"acs:slb:{region}:*:loadbalancer/{lb}" for lb in balancers]},
                {"Effect": "Allow", "Action": list(self.ram_actions[3:]),
                 "Resource": [f"acs:slb:{region}:*:certificate/*"]}]

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--load-balancer-id", required=True, help="the load balancer's LoadBalancerId")
        parser.add_argument("--listener-port", type=int, default=443, help="the HTTPS listener's port (default 443)")

    def from_arguments(self, args: argparse.Namespace) -> InstallTarget:
        if not 1 <= args.listener_port <= 65535:
            raise ConfigError(f"--listener-port must be 1..65535, not {args.listener_port}")
        return InstallTarget("slb", load_balancer_id=args.load_balancer_id, listener_port=args.listener_port)


DEPLOYER = SlbDeployer()
