"""Shared by the deployers: one signed RPC call with secrets in the POST body,
the :class:`Installation` they return, and how they get a client.

Certificates and private keys must never travel in the URL: URLs end up in
proxy logs, access logs and the SDK's debug log.  Alibaba's RPC signature
(SignatureVersion 1.0) covers body parameters as well, so the deployers put
``SSLPub``/``SSLPri``, ``CertificateBody``/``CertificatePrivateKey`` and
``Cert``/``Key`` into an ``application/x-www-form-urlencoded`` POST body and
everything else into the query string.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from aliyunsdkcore.request import CommonRequest

from acmelab.aliyun import AliyunClient, Credentials


def post(client: AliyunClient, action: str, version: str, product: str,
         query: Mapping[str, Any], body: Mapping[str, str], *, endpoint: str | None = None) -> dict[str, Any]:
    """Call ``action`` with ``query`` in the URL and ``body`` in the form body.

    Returns the JSON answer (dict); raises what :meth:`AliyunClient.send` raises.
    """
    request = CommonRequest(domain=None, version=version, action_name=action, product=product)
    request.set_method("POST")
    for name, value in query.items():
        if value is not None:
            request.add_query_param(name, str(value))
    for name, value in body.items():
        request.add_body_params(name, value)
    return client.send(request, endpoint=endpoint)


# --------------------------------------------------------------------------
# What every deployer returns, and how it builds its client
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Installation:
    """A certificate the service accepted (not yet proven served: use :func:`acmelab.deploy.verify`).

    Attributes:
        product: a key of :data:`acmelab.deploy.DEPLOYERS` (``"cdn"``, ``"apigateway"``, ``"cas"``, ``"slb"``).
        domain: the domain it was installed for (None for a CAS upload).
        name: the certificate name given to the service.
        serial_hex: the leaf's serial number, lower-case hex.
        not_after: the leaf's expiry (aware UTC datetime).
        request_id: Alibaba's ``RequestId`` of the call.
        group_id: the API Gateway group (API Gateway only).
        cert_id: the CAS certificate id (int; CAS uploads, CDN ``CertType=cas``) or
            the SLB ``ServerCertificateId`` (str).
    """

    product: str
    domain: str | None
    name: str
    serial_hex: str
    not_after: dt.datetime
    request_id: str | None
    group_id: str | None = None
    cert_id: int | str | None = None


def make_client(client: AliyunClient | None = None, *, access_key_id: str | None = None,
                access_key_secret: str | None = None, endpoint: str | None = None,
                region_id: str = "cn-hangzhou", verify: bool | str | Path = True) -> AliyunClient:
    """``client`` as given, else a new :class:`AliyunClient` (credentials from the
    arguments or the environment, see :meth:`Credentials.resolve`)."""
    if client is not None:
        return client
    return AliyunClient(Credentials.resolve(access_key_id, access_key_secret),
                        region_id=region_id, endpoint=endpoint, verify=verify)


def lab_client(info: Any, *, region_id: str = "cn-hangzhou") -> AliyunClient:
    """An :class:`AliyunClient` for the lab's endpoint (``LabInfo``: its access
    key, ``aliyun_endpoint`` and CA bundle): :meth:`AliyunClient.for_lab`.
    Raises ConfigError for a lab without that endpoint."""
    return AliyunClient.for_lab(info, region_id=region_id)
