"""What the state directory (:mod:`acmelab.state`) records: the ACME
account of a server (:class:`AccountRecord`), a live certificate as its
``meta.json`` describes it (:class:`ManagedCertificate`), and the names and
numbers every part of acmelab spells the same way (:func:`acmelab.certificates.serial_hex`,
:func:`check_certificate_name`, :func:`certificate_name_for`).

Plain frozen data: reading and writing them, with the crash-safety and
locking rules, is :class:`acmelab.state.StateDir`'s job.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from acmelab import keys
from acmelab.certificates import serial_hex  # the one spelling (re-exported)
from acmelab.errors import InputError

__all__ = [
    "AccountRecord", "ManagedCertificate", "serial_hex", "check_certificate_name", "certificate_name_for",
    "utc", "META_FILE", "KEY_FILE", "FULLCHAIN_FILE", "CERT_FILE", "CHAIN_FILE",
]

META_FILE = "meta.json"
KEY_FILE = "privkey.pem"
FULLCHAIN_FILE = "fullchain.pem"
CERT_FILE = "cert.pem"
CHAIN_FILE = "chain.pem"

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")


def check_certificate_name(name: str) -> str:
    """A certificate's name in the state directory: lower-case letters,
    digits, ``.``, ``_``, ``-`` (at most 128, not starting with a
    punctuation mark).  Raises InputError otherwise."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(f"{name!r} is not a usable certificate name (use a-z, 0-9, '.', '_', '-')")
    return name


def certificate_name_for(domain: str) -> str:
    """The default certificate name for a first domain: the domain with
    ``*`` written as ``wildcard`` (``*.example.com`` -> ``wildcard.example.com``)."""
    return check_certificate_name(domain.strip().rstrip(".").lower().replace("*", "wildcard"))


def utc(text: str) -> dt.datetime:
    """An ISO 8601 time (``2030-01-01T00:00:00Z``, ``...+08:00``) as an aware
    datetime; one without a zone is UTC.  Raises ValueError if it is not one."""
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class AccountRecord:
    """The ACME account of one server.

    Attributes:
        directory_url: the ACME directory URL (RFC 8555 §7.1.1).
        key_path: the account key file (PEM, 0600).
        account_url: the account URL (the ``kid``, RFC 8555 §7.3), or None
            before the account was created.
        status: ``"valid"`` or ``"deactivated"`` as last seen.
        contact: the contact URLs last sent.
    """

    directory_url: str
    key_path: Path
    account_url: str | None = None
    status: str = "valid"
    contact: tuple[str, ...] = ()

    def load_key(self) -> keys.PrivateKey:
        """The account key (raises InputError if the file is unreadable)."""
        return keys.load_private_key(self.key_path)


@dataclass(frozen=True)
class ManagedCertificate:
    """A live certificate of the state directory, as ``meta.json`` says.

    Attributes:
        name: the certificate's name (directory name).
        names: DNS names it covers (tuple of str).
        serial_hex: the leaf's serial number (:func:`serial_hex`: lower-case
            hex, even length).
        not_before, not_after: validity (aware UTC datetimes).
        order_url: the order it came from (RFC 8555 §7.4).
        directory_url: the ACME directory that issued it.
        key_type: the certificate key's type (:data:`acmelab.keys.KEY_TYPES`).
        version_dir: the directory holding privkey.pem, fullchain.pem, ...
        service: the service spec it was made for (a dict, see
            :class:`acmelab.services.Service`).
        installed: where it is installed: target id -> record (dict with
            ``product``, ``domain``, ``group_id``, ``serial_hex``,
            ``installed_at``, ``cert_id``).
        revoked: True once ``acmelab revoke`` revoked it.
        issued_at: when it was stored.
        previous_version: the version directory it replaced (kept until
            the next renewal), or None.
        profile: the ACME profile it was ordered with, or None.
        ari: the last renewalInfo answer (:class:`acmelab.renewal.AriState`
            as a dict), or None.
    """

    name: str
    names: tuple[str, ...]
    serial_hex: str
    not_before: dt.datetime
    not_after: dt.datetime
    order_url: str
    directory_url: str
    key_type: str
    version_dir: Path
    service: dict[str, Any] = field(default_factory=dict)
    installed: dict[str, dict[str, Any]] = field(default_factory=dict)
    revoked: bool = False
    issued_at: dt.datetime | None = None
    previous_version: str | None = None
    profile: str | None = None
    ari: dict[str, Any] | None = None

    @property
    def key_path(self) -> Path:
        return self.version_dir / KEY_FILE

    @property
    def fullchain_path(self) -> Path:
        return self.version_dir / FULLCHAIN_FILE

    @property
    def cert_path(self) -> Path:
        return self.version_dir / CERT_FILE

    @property
    def lifetime(self) -> dt.timedelta:
        return self.not_after - self.not_before

    def remaining(self, now: dt.datetime | None = None) -> dt.timedelta:
        """Time left until ``not_after`` (negative once expired)."""
        return self.not_after - (now or dt.datetime.now(dt.timezone.utc))

    def load_key(self) -> keys.PrivateKey:
        return keys.load_private_key(self.key_path)

    def fullchain_pem(self) -> str:
        return self.fullchain_path.read_text("ascii")

    def leaf(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_path.read_bytes())

    @classmethod
    def from_meta(cls, name: str, directory: Path, meta: dict[str, Any]) -> "ManagedCertificate":
        """The certificate ``meta.json`` (parsed) of ``directory`` describes.
        Raises KeyError, ValueError, TypeError, AttributeError for a
        meta.json that lacks or garbles a field."""
        return cls(
            name=name, names=tuple(meta["names"]), serial_hex=serial_hex(meta["serial_hex"]),
            not_before=utc(meta["not_before"]), not_after=utc(meta["not_after"]),
            order_url=meta.get("order_url", ""), directory_url=meta.get("directory_url", ""),
            key_type=meta.get("key_type", ""), version_dir=directory / meta["version"],
            service=dict(meta.get("service") or {}), installed=dict(meta.get("installed") or {}),
            revoked=bool(meta.get("revoked", False)),
            issued_at=utc(meta["issued_at"]) if meta.get("issued_at") else None,
            previous_version=meta.get("previous_version"), profile=meta.get("profile"),
            ari=meta.get("ari") if isinstance(meta.get("ari"), dict) else None)

    def to_meta(self) -> dict[str, Any]:
        """What ``meta.json`` holds for it (the inverse of :meth:`from_meta`)."""
        return {
            "names": list(self.names), "serial_hex": self.serial_hex,
            "not_before": _iso(self.not_before), "not_after": _iso(self.not_after),
            "order_url": self.order_url, "directory_url": self.directory_url,
            "key_type": self.key_type, "version": self.version_dir.name,
            "service": self.service, "installed": self.installed, "revoked": self.revoked,
            "issued_at": _iso(self.issued_at) if self.issued_at else None,
            "previous_version": self.previous_version,
            "profile": self.profile, "ari": self.ari,
        }

    def to_json(self) -> dict[str, Any]:
        """The public facts as JSON (no key material)."""
        return {
            "name": self.name, "names": list(self.names), "serial_hex": self.serial_hex,
            "not_before": _iso(self.not_before), "not_after": _iso(self.not_after),
            "order_url": self.order_url, "directory_url": self.directory_url, "key_type": self.key_type,
            "fullchain": str(self.fullchain_path), "privkey": str(self.key_path),
            "installed": self.installed, "revoked": self.revoked, "profile": self.profile,
        }
