"""Certificate Management Service (cas 2020-04-07) actions of the lab endpoint.

Actions: ``UploadUserCertificate`` (Name unique per account, Cert, Key ->
CertId), ``DeleteUserCertificate`` (CertId), ``GetUserCertificateDetail``
(CertId -> the certificate, never the key).  An upload cannot be changed:
each renewal is a new CertId.  CDN binds a stored certificate with
``CertType=cas`` + ``CertId`` (:func:`stored`), and a certificate that a
product still serves cannot be deleted (the products register who uses
what in :data:`USERS`).

Codes: ``NameRepeat`` (a Name in use), ``InvalidCert`` / ``InvalidKey`` /
``CertificateMismatch`` (a bad upload); lab-chosen where Alibaba documents
none: ``InvalidCertId.NotFound`` (404) for an unknown CertId and
``CertificateInUse`` for a delete while a product serves it.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from acmelab.lab.aliyun.certificates import Codes, Installed, check_upload, format_time, names_of
from acmelab.lab.aliyun.server import ApiFault, LabState, action, require

logger = logging.getLogger(__name__)

VERSION = "2020-04-07"

CODES = Codes("InvalidCert", "The specified Cert is invalid",
              "InvalidKey", "The specified Key is invalid",
              "CertificateMismatch", "The certificate and the private key do not match")

#: who serves a CAS certificate: ``user(state, cert_id) -> ["cdn:cdn.example.com", ...]``
USERS: list[Callable[[LabState, int], list[str]]] = []


@dataclass
class CasState:
    certificates: dict[int, Installed] = field(default_factory=dict)
    ids: itertools.count = field(default_factory=lambda: itertools.count(8089870))


def _state(state: LabState) -> CasState:
    return state.extension("cas", CasState)


def stored(state: LabState, cert_id: int) -> Installed | None:
    """The CAS certificate ``cert_id``, or None."""
    with state.lock:
        return _state(state).certificates.get(cert_id)


def cert_id_param(params: dict[str, str]) -> int:
    """The required ``CertId`` parameter as an int.

    Raises:
        ApiFault: ``MissingCertId`` or ``InvalidCertId`` (not a number).
    """
    try:
        return int(require(params, "CertId"))
    except ValueError:
        raise ApiFault("InvalidCertId", "The specified CertId is invalid.") from None


def known(state: LabState, cert_id: int, code: str = "InvalidCertId.NotFound") -> Installed:
    """The CAS certificate ``cert_id``.

    Raises:
        ApiFault: ``code`` (HTTP 404) if there is none; CAS's own
            ``InvalidCertId.NotFound`` unless a product answers with its own.
    """
    installed = stored(state, cert_id)
    if installed is None:
        raise ApiFault(code, f"The certificate {cert_id} does not exist.", 404)
    return installed


def inventory(state: LabState) -> dict[str, Any]:
    """``{"CasCertificates": [{"CertId", "Name", "Serial"}, ...]}``."""
    with state.lock:
        return {"CasCertificates": [{"CertId": cert_id, "Name": c.cert_name, "Serial": f"{c.leaf.serial_number:x}"}
                                    for cert_id, c in sorted(_state(state).certificates.items())]}


@action("UploadUserCertificate", version=VERSION)
def upload_user_certificate(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """Store an uploaded certificate; answers its CertId."""
    name = require(params, "Name")
    chain_pem = require(params, "Cert")
    key_pem = require(params, "Key")
    leaf = check_upload(chain_pem, key_pem, None, CODES)
    cas = _state(state)
    with state.lock:
        if any(c.cert_name == name for c in cas.certificates.values()):
            raise ApiFault("NameRepeat", f"A certificate named {name} already exists.")
        cert_id = next(cas.ids)
        cas.certificates[cert_id] = Installed(name, chain_pem, key_pem, leaf, "cas", cert_id)
    logger.info("CAS: certificate %s (serial %x) uploaded as %d", name, leaf.serial_number, cert_id)
    return {"CertId": cert_id}


@action("GetUserCertificateDetail", version=VERSION)
def get_user_certificate_detail(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """One CAS certificate: Id, Name, Cert (PEM), Sans, StartDate, EndDate, SerialNo (never the key)."""
    cert_id = cert_id_param(params)
    installed = known(state, cert_id)
    leaf = installed.leaf
    return {"Id": cert_id, "Name": installed.cert_name, "Cert": installed.chain_pem,
            "Sans": ",".join(names_of(leaf)), "Common": names_of(leaf)[0] if names_of(leaf) else "",
            "StartDate": format_time(leaf.not_valid_before_utc)[:10],
            "EndDate": format_time(leaf.not_valid_after_utc)[:10],
            "SerialNo": f"{leaf.serial_number:x}", "Expired": False}


@action("DeleteUserCertificate", version=VERSION)
def delete_user_certificate(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """Delete CAS certificate ``CertId`` (refused while a product serves it)."""
    cert_id = cert_id_param(params)
    with state.lock:
        known(state, cert_id)
        users = [user for check in USERS for user in check(state, cert_id)]
        if users:
            raise ApiFault("CertificateInUse", f"The certificate {cert_id} is in use by {', '.join(users)}; "
                           "bind another certificate there first.")
        del _state(state).certificates[cert_id]
    logger.info("CAS: certificate %d deleted", cert_id)
    return {}
