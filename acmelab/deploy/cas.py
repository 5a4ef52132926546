"""Upload a certificate once to Certificate Management Service (CAS).

``UploadUserCertificate`` (cas 2020-04-07; ``Name``, ``Cert``, ``Key``, the
last two in the POST body) stores the certificate in the account and answers
a ``CertId``; CDN can then use it with ``CertType=cas``
(:func:`acmelab.deploy.cdn.set_cdn_domain_cas_certificate`), so one upload
serves several products.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from acmelab.aliyun import AliyunClient
from acmelab.deploy import checks
from acmelab.deploy._rpc import Installation, post

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
