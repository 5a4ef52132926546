"""Upload a certificate once to Certificate Management Service (CAS).

``UploadUserCertificate`` (cas 2020-04-07; ``Name``, ``Cert``, ``Key``, the
last two in the POST body) stores the certificate in the account and answers
a ``CertId``; CDN can then use it with ``CertType=cas``
(:func:`acmelab.deploy.cdn.set_cdn_domain_cas_certificate`), so one upload
serves several products.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any, Mapping, Sequence

from acmelab.aliyun import AliyunClient
from acmelab.deploy import checks
from acmelab.deploy._rpc import Installation, post
from acmelab.deploy.base import Deployer, InstallTarget, config_error
from acmelab.errors import AliyunError

VERSION = "2020-04-07"
PRODUCT = "cas"


def upload_user_certificate(client: AliyunClient, name: str, chain_pem: str | bytes, private_key: Any, *,
                            domain: str | None = None, now: dt.datetime | None = None) -> Installation:
    """Upload a certificate and key to CAS.

    Args:
        client: an :class:`acmelab.aliyun.AliyunClient`.
        name: ``Name`` (unique in the account).
        chain_pem: full chain PEM, leaf first.
        private_key: the key (object or unencrypted PEM).
        domain: if given, the certificate must cover it (pre-send check).
        now: time for the validity check (default now).

    Returns:
        :class:`Installation` (product ``"cas"``, ``cert_id`` set, ``domain`` None).

    Raises:
        InputError: pre-send checks failed; nothing was sent.
        AliyunAuthError, AliyunError: as the service answered (``NameRepeat``, ...).

    Source: Certificate Management Service (cas) 2020-04-07, UploadUserCertificate.
    """
    checked = checks.check_certificate(chain_pem, private_key, domain, now=now)
    answer = post(client, "UploadUserCertificate", VERSION, PRODUCT, {"Name": name},
                  {"Cert": checked.chain_pem, "Key": checked.private_key_pem})
    return Installation("cas", None, name, checked.serial_hex, checked.not_after,
                        answer.get("RequestId"), cert_id=int(answer["CertId"]))


def delete_user_certificate(client: AliyunClient, cert_id: int) -> bool:
    """Delete the CAS certificate ``cert_id``.  Returns False when it is gone
    already (``InvalidCertId.NotFound``); raises AliyunError when CAS refuses
    (e.g. a product still uses it).  Source: cas 2020-04-07, DeleteUserCertificate."""
    try:
        client.call("DeleteUserCertificate", VERSION, {"CertId": str(int(cert_id))}, product=PRODUCT)
    except AliyunError as error:
        if error.code in ("InvalidCertId.NotFound", "NotFound"):
            return False
        raise
    return True


class CasDeployer(Deployer):
    """A copy in Certificate Management Service: ``cas = true`` in the services
    file, ``acmelab install cas CERT``; target id ``"cas"`` (every service
    may have one); install ``UploadUserCertificate`` (cas 2020-04-07) under
    the name ``<service>-<serial>``; nothing to handshake with.  A carrier:
    with ``delivery = "cas"`` CDN binds the upload by ``CertId``, and the
    superseded uploads are deleted (``DeleteUserCertificate``) once every
    target has the new version."""

    product = "cas"
    fields = ()
    api = "UploadUserCertificate (CAS 2020-04-07)"
    exclusive = False
    carrier = True
    ram_actions = ("yundun-cert:UploadUserCertificate", "yundun-cert:DeleteUserCertificate")

    def parse(self, value: Any, where: str) -> list[InstallTarget]:
        if not isinstance(value, bool):
            raise config_error(where, "cas must be true or false")
        return [InstallTarget("cas")] if value else []

    def target_id(self, target: InstallTarget) -> str:
        return "cas"

    def install(self, client: AliyunClient, target: InstallTarget, chain_pem: str, private_key: Any, *,
                label: str, names: Sequence[str] = (), carrier: Mapping[str, Any] | None = None) -> Installation:
        return upload_user_certificate(client, label, chain_pem, private_key, domain=names[0] if names else None)

    def delete(self, client: AliyunClient, record: Mapping[str, Any]) -> None:
        delete_user_certificate(client, int(record["cert_id"]))

    def handshake(self, target: InstallTarget, names: Any) -> None:
        return None

    def from_arguments(self, args: argparse.Namespace) -> InstallTarget:
        return InstallTarget("cas")


DEPLOYER = CasDeployer()
