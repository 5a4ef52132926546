"""The state directory of the ``acmelab`` command (default ``~/.acmelab``).

Theory of operation
-------------------
Everything the command must remember between runs lives in one directory
(``--state-dir``, else ``$ACMELAB_STATE_DIR``, else ``~/.acmelab``)::

    accounts/<server>/account.key        the ACME account key (0600)
    accounts/<server>/account.json       {"directory_url", "account_url", ...}
    certificates/<name>/meta.json        what is live: names, serial, dates,
                                         order URL, the service spec, where
                                         it is installed
    certificates/<name>/<version>/       privkey.pem (0600), fullchain.pem,
                                         cert.pem, chain.pem
    certificates/<name>/current          symlink to the live <version>
    certificates/<name>/dns-pending.json TXT records published and not yet
                                         removed (only while issuing)
    locks/<name>.lock                    fcntl lock of one certificate

``<server>`` is the directory URL's host and port plus a short hash of the
URL, so the lab, staging and production never share an account.

Crash safety.  Every file is written to a temporary file in the same
directory and renamed into place (``os.replace``), so a reader sees the old
file or the new one, never half of one.  A renewal writes the new key and
chain into a *new* version directory; only then is ``meta.json`` -- the
single pointer to the live version -- replaced.  Interrupted before that,
the old certificate stays live and the half-made version is removed by the
next run; interrupted after, the new one is live.  The key of a live
certificate is never overwritten.  DNS-01 TXT records are noted in
``dns-pending.json`` before they are published and dropped from it once
removed, so even a run killed with SIGKILL leaves nothing behind for long:
the next run on that certificate removes them first.

Concurrency.  :meth:`StateDir.lock` takes an exclusive, non-blocking
``fcntl.flock`` on ``locks/<name>.lock``; a second run working on the same
certificate gets :class:`~acmelab.errors.StateLocked` instead of clobbering
it.  The lock goes away with the process, even after ``kill -9``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from acmelab import keys
from acmelab.certificates import serial_hex  # the one spelling (re-exported)
from acmelab.errors import InputError, StateError, StateLocked
from acmelab.files import write_atomically

__all__ = [
    "STATE_DIR_ENV", "StateDir", "AccountRecord", "ManagedCertificate", "default_state_dir",
    "atomic_write", "certificate_name_for", "check_certificate_name", "serial_hex",
]

STATE_DIR_ENV = "ACMELAB_STATE_DIR"
META_FILE = "meta.json"
KEY_FILE = "privkey.pem"
FULLCHAIN_FILE = "fullchain.pem"
CERT_FILE = "cert.pem"
CHAIN_FILE = "chain.pem"

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")


def default_state_dir() -> Path:
    """``$ACMELAB_STATE_DIR`` if set, else ``~/.acmelab``."""
    configured = os.environ.get(STATE_DIR_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".acmelab"


def check_certificate_name(name: str) -> str:
    """A certificate's name in the state directory: lower-case letters,
    digits, ``.``, ``_``, ``-`` (at most 128, not starting with a
    punctuation mark).  Raises InputError otherwise."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(f"{name!r} is not a usable certificate name (use a-z, 0-9, '.', '_', '-')")
    return name


#: seconds mark_revoked waits for a certificate's lock (an apply renewing
#: and installing it holds it for a while)
MARK_REVOKED_WAIT = 60.0


def certificate_name_for(domain: str) -> str:
    """The default certificate name for a first domain: the domain with
    ``*`` written as ``wildcard`` (``*.example.com`` -> ``wildcard.example.com``)."""
    return check_certificate_name(domain.strip().rstrip(".").lower().replace("*", "wildcard"))


def atomic_write(path: Path, data: bytes | str, *, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` with :func:`acmelab.files.write_atomically`
    (mode set before any byte is written; readers see the old file or the
    new one).  Raises StateError if the directory cannot be written."""
    try:
        return write_atomically(path, data, mode=mode)
    except InputError as error:
        raise StateError(str(error)) from None


def _utc(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------
# What is stored
# --------------------------------------------------------------------------

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

    def to_json(self) -> dict[str, Any]:
        """The public facts as JSON (no key material)."""
        return {
            "name": self.name, "names": list(self.names), "serial_hex": self.serial_hex,
            "not_before": _iso(self.not_before), "not_after": _iso(self.not_after),
            "order_url": self.order_url, "directory_url": self.directory_url, "key_type": self.key_type,
            "fullchain": str(self.fullchain_path), "privkey": str(self.key_path),
            "installed": self.installed, "revoked": self.revoked, "profile": self.profile,
        }


# --------------------------------------------------------------------------
# The directory
# --------------------------------------------------------------------------

class StateDir:
    """The state directory (created 0700 on first use).

    Args:
        root: the directory (default :func:`default_state_dir`).

    Raises:
        StateError: the directory cannot be created.
    """

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_state_dir()
        try:
            for sub in ("", "accounts", "certificates", "locks"):
                (self.root / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise StateError(f"cannot create the state directory {self.root}: {error.strerror}") from None

    def __repr__(self) -> str:
        return f"StateDir({str(self.root)!r})"

    # -- locks -------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, name: str, *, wait: float = 0.0) -> Iterator[None]:
        """Hold the exclusive lock of ``name`` (a certificate name, or
        ``"account-<server>"``) for the ``with`` block.

        Args:
            wait: seconds to keep trying while another process holds it
                (default 0: do not wait; the account lock, held only for one
                request, is waited for so that overlapping runs both go on).

        Raises:
            StateLocked: another process holds it (after ``wait`` seconds).
        """
        path = self.root / "locks" / f"{name}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StateLocked(f"another acmelab run is working on {name} (lock {path})") from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    # -- accounts ------------------------------------------------------------
    @staticmethod
    def server_id(directory_url: str) -> str:
        """``<host>_<port>-<8 hex of SHA-256(url)>`` for a directory URL."""
        parts = urlsplit(directory_url)
        host = re.sub(r"[^a-z0-9.-]", "_", (parts.hostname or "server").lower())
        port = parts.port or (443 if parts.scheme == "https" else 80)
        digest = hashlib.sha256(directory_url.encode("utf-8")).hexdigest()[:8]
        return f"{host}_{port}-{digest}"

    def account_dir(self, directory_url: str) -> Path:
        return self.root / "accounts" / self.server_id(directory_url)

    def account(self, directory_url: str) -> AccountRecord | None:
        """The stored account for a directory URL, or None if there is no key.

        Raises StateError if account.json is corrupt."""
        directory = self.account_dir(directory_url)
        key_path = directory / "account.key"
        if not key_path.exists():
            return None
        record: dict[str, Any] = {}
        meta = directory / "account.json"
        if meta.exists():
            try:
                record = json.loads(meta.read_text("utf-8"))
            except ValueError as error:
                raise StateError(f"{meta} is not JSON ({error}); move it away to start over") from None
        return AccountRecord(directory_url, key_path, record.get("account_url"),
                             record.get("status", "valid"), tuple(record.get("contact") or ()))

    def create_account_key(self, directory_url: str, key: keys.PrivateKey) -> AccountRecord:
        """Save a new account key (0600, atomic, never over an existing one).

        Raises KeyExistsError if there is one already."""
        directory = self.account_dir(directory_url)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        keys.save_private_key(key, directory / "account.key")
        return AccountRecord(directory_url, directory / "account.key")

    def save_account(self, record: AccountRecord) -> AccountRecord:
        """Store the account URL, status and contact (atomic)."""
        directory = self.account_dir(record.directory_url)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(directory / "account.json", json.dumps({
            "directory_url": record.directory_url, "account_url": record.account_url,
            "status": record.status, "contact": list(record.contact),
            "key_thumbprint": keys.thumbprint(record.load_key()),
        }, indent=2) + "\n")
        return record

    def replace_account_key(self, record: AccountRecord, new_key_path: Path) -> AccountRecord:
        """After a key rollover (RFC 8555 §7.3.5): keep the old key as
        ``account.key.<UTC time>.old`` and move ``new_key_path`` into place."""
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        os.link(record.key_path, record.key_path.with_name(f"account.key.{stamp}.old"))
        os.replace(new_key_path, record.key_path)
        return record

    # -- certificates --------------------------------------------------------
    def certificate_dir(self, name: str) -> Path:
        return self.root / "certificates" / check_certificate_name(name)

    def certificate_names(self) -> list[str]:
        """Names of the certificates with a ``meta.json``, sorted."""
        base = self.root / "certificates"
        return sorted(p.name for p in base.iterdir() if (p / META_FILE).is_file()) if base.is_dir() else []

    def certificate(self, name: str, *, check_files: bool = True) -> ManagedCertificate | None:
        """The live certificate ``name``, or None if there is none.

        With ``check_files`` the key and chain are loaded and must match.

        Raises:
            StateError: meta.json or the files it points to are unreadable,
                or the key does not match the certificate (the caller may
                issue again: nothing is overwritten by doing so).
        """
        directory = self.certificate_dir(name)
        meta_path = directory / META_FILE
        if not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
            managed = ManagedCertificate(
                name=name, names=tuple(meta["names"]), serial_hex=serial_hex(meta["serial_hex"]),
                not_before=_utc(meta["not_before"]), not_after=_utc(meta["not_after"]),
                order_url=meta.get("order_url", ""), directory_url=meta.get("directory_url", ""),
                key_type=meta.get("key_type", ""), version_dir=directory / meta["version"],
                service=dict(meta.get("service") or {}), installed=dict(meta.get("installed") or {}),
                revoked=bool(meta.get("revoked", False)),
                issued_at=_utc(meta["issued_at"]) if meta.get("issued_at") else None,
                previous_version=meta.get("previous_version"), profile=meta.get("profile"),
                ari=meta.get("ari") if isinstance(meta.get("ari"), dict) else None)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise StateError(f"{meta_path} is unreadable: {error}") from None
        if check_files:
            self._check_files(managed)
        return managed

    @staticmethod
    def _check_files(managed: ManagedCertificate) -> None:
        try:
            key = managed.load_key()
            chain = x509.load_pem_x509_certificates(managed.fullchain_path.read_bytes())
        except (OSError, ValueError, InputError) as error:
            raise StateError(f"the files of {managed.name} in {managed.version_dir} are unreadable: {error}") from None
        if not chain or serial_hex(chain[0].serial_number) != managed.serial_hex:
            raise StateError(f"{managed.fullchain_path} does not hold serial {managed.serial_hex}")
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        if (key.public_key().public_bytes(serialization.Encoding.DER, spki)
                != chain[0].public_key().public_bytes(serialization.Encoding.DER, spki)):
            raise StateError(f"{managed.key_path} does not match the certificate {managed.serial_hex}")

    def store_certificate(self, name: str, *, private_key: keys.PrivateKey, chain_pem: str,
                          order_url: str, directory_url: str, service: dict[str, Any],
                          names: Sequence[str] | None = None,
                          installed: dict[str, dict[str, Any]] | None = None,
                          keep_previous: bool = True, profile: str | None = None) -> ManagedCertificate:
        """Make a freshly issued certificate the live one of ``name``.

        Writes a new version directory (key 0600 first, then the chain
        files), then replaces meta.json (the switch), then the ``current``
        symlink, then removes every version but the live one and the one
        it replaced.

        Args:
            private_key: the certificate key.
            chain_pem: full chain PEM, leaf first.
            service: the service spec (dict) to remember for renewals.
            names: the certificate's names in order (default: its SAN).
            installed: install records to keep (default: none).
            keep_previous: keep the replaced version (False when it was
                found damaged: it is removed with the other leftovers).
            profile: the ACME profile it was ordered with.

        Raises:
            InputError: the chain PEM does not parse.
            StateError: the files cannot be written.
        """
        try:
            chain = x509.load_pem_x509_certificates(chain_pem.encode("ascii"))
        except ValueError as error:
            raise InputError(f"the certificate chain does not parse: {error}") from None
        leaf = chain[0]
        serial = serial_hex(leaf.serial_number)
        directory = self.certificate_dir(name)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        version = f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S.%f}-{serial[:16]}"
        version_dir = directory / version
        version_dir.mkdir(mode=0o700)
        keys.save_private_key(private_key, version_dir / KEY_FILE)
        pem = serialization.Encoding.PEM
        atomic_write(version_dir / CERT_FILE, leaf.public_bytes(pem))
        atomic_write(version_dir / CHAIN_FILE, b"".join(c.public_bytes(pem) for c in chain[1:]))
        atomic_write(version_dir / FULLCHAIN_FILE, b"".join(c.public_bytes(pem) for c in chain))
        if names is None:
            names = [v.value for v in leaf.extensions.get_extension_for_class(
                x509.SubjectAlternativeName).value if isinstance(v, x509.DNSName)]
        previous = None
        if keep_previous:
            try:
                previous = json.loads((directory / META_FILE).read_text("utf-8")).get("version")
            except (OSError, ValueError, AttributeError):
                previous = None
        managed = ManagedCertificate(
            name=name, names=tuple(names), serial_hex=serial,
            not_before=leaf.not_valid_before_utc, not_after=leaf.not_valid_after_utc,
            order_url=order_url, directory_url=directory_url, key_type=keys.key_type_of(private_key),
            version_dir=version_dir, service=dict(service), installed=dict(installed or {}),
            issued_at=dt.datetime.now(dt.timezone.utc), previous_version=previous, profile=profile)
        self.write_meta(managed)
        self._point_current(directory, version)
        self.prune(name)
        return managed

    def write_meta(self, managed: ManagedCertificate) -> None:
        """Replace meta.json of ``managed.name`` (atomic)."""
        meta = {
            "names": list(managed.names), "serial_hex": managed.serial_hex,
            "not_before": _iso(managed.not_before), "not_after": _iso(managed.not_after),
            "order_url": managed.order_url, "directory_url": managed.directory_url,
            "key_type": managed.key_type, "version": managed.version_dir.name,
            "service": managed.service, "installed": managed.installed, "revoked": managed.revoked,
            "issued_at": _iso(managed.issued_at) if managed.issued_at else None,
            "previous_version": managed.previous_version,
            "profile": managed.profile, "ari": managed.ari,
        }
        atomic_write(self.certificate_dir(managed.name) / META_FILE, json.dumps(meta, indent=2) + "\n")

    @staticmethod
    def _point_current(directory: Path, version: str) -> None:
        temp = directory / f".current.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        os.symlink(version, temp)
        os.replace(temp, directory / "current")

    def prune(self, name: str) -> list[str]:
        """Remove the version directories of ``name`` other than the live one
        and the one it replaced (leftovers of interrupted runs included).
        Call with the certificate's lock held.  Returns the removed version
        names."""
        directory = self.certificate_dir(name)
        try:
            meta = json.loads((directory / META_FILE).read_text("utf-8"))
            keep = {meta["version"], meta.get("previous_version")}
        except (OSError, ValueError, KeyError):
            return []
        removed = sorted(p.name for p in directory.iterdir()
                         if p.is_dir() and not p.is_symlink() and p.name not in keep)
        for version in removed:
            shutil.rmtree(directory / version, ignore_errors=True)
        return removed

    # -- DNS records in flight ----------------------------------------------
    def pending_dns(self, name: str) -> list[dict[str, str]]:
        """DNS TXT records of ``name`` published and not yet known to be
        removed: ``[{"provider", "name", "value"}, ...]`` (a run killed
        mid-issuance leaves them; the next run removes them first)."""
        return self._dns_records(name, "dns-pending.json")

    def set_pending_dns(self, name: str, records: list[dict[str, str]]) -> None:
        """Replace the in-flight DNS record list of ``name`` (atomic; the
        file is removed when the list is empty)."""
        self._set_dns_records(name, "dns-pending.json", records)

    def standing_dns(self, name: str) -> list[dict[str, str]]:
        """The dns-persist-01 records ``name`` relies on, left in place by
        design (``acmelab dns persist list``): same shape as :meth:`pending_dns`."""
        return self._dns_records(name, "dns-standing.json")

    def set_standing_dns(self, name: str, records: list[dict[str, str]]) -> None:
        """Replace the standing record list of ``name`` (atomic)."""
        self._set_dns_records(name, "dns-standing.json", records)

    def _dns_records(self, name: str, file_name: str) -> list[dict[str, str]]:
        path = self.certificate_dir(name) / file_name
        try:
            records = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            raise StateError(f"{path} is unreadable") from None
        return [r for r in records if isinstance(r, dict) and {"provider", "name", "value"} <= set(r)]

    def _set_dns_records(self, name: str, file_name: str, records: list[dict[str, str]]) -> None:
        directory = self.certificate_dir(name)
        path = directory / file_name
        if not records:
            path.unlink(missing_ok=True)
            return
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(path, json.dumps(records, indent=2) + "\n", mode=0o600)

    def record_install(self, name: str, target_id: str, record: dict[str, Any]) -> ManagedCertificate:
        """Remember that the live certificate of ``name`` is installed at
        ``target_id`` (meta.json rewritten atomically).  Raises StateError."""
        managed = self.certificate(name, check_files=False)
        if managed is None:
            raise StateError(f"no certificate named {name} in {self.root}")
        installed = dict(managed.installed)
        installed[target_id] = dict(record)
        updated = ManagedCertificate(**{**managed.__dict__, "installed": installed})
        self.write_meta(updated)
        return updated

    def find_by_serial(self, serial: int | str) -> ManagedCertificate | None:
        """The managed certificate whose *live* version has this serial
        (an int or hex text, see :func:`serial_hex`), or None.  Certificates
        whose meta.json is unreadable are skipped."""
        wanted = serial_hex(serial)
        for name in self.certificate_names():
            try:
                managed = self.certificate(name, check_files=False)
            except StateError:
                continue
            if managed is not None and managed.serial_hex == wanted:
                return managed
        return None

    def mark_revoked(self, name: str, serial: int | str, *,
                     wait: float = MARK_REVOKED_WAIT) -> ManagedCertificate | None:
        """Record that the certificate ``serial`` of ``name`` was revoked
        (RFC 8555 §7.6) -- only if it is still the live version, so that a
        version another run put in place meanwhile is never marked.  The
        next apply or renew replaces a revoked live certificate.

        Args:
            name: the certificate name.
            serial: the revoked certificate's serial (int or hex text,
                see :func:`serial_hex`).
            wait: seconds to wait for the certificate's lock (another run
                renewing it holds it).

        Returns:
            the updated ManagedCertificate, or None when the live version
            has another serial (nothing recorded).

        Raises:
            StateLocked: another run still holds the lock after ``wait`` s.
            StateError: no certificate ``name``, or unreadable meta.json.
        """
        wanted = serial_hex(serial)
        with self.lock(name, wait=wait):
            managed = self.certificate(name, check_files=False)
            if managed is None:
                raise StateError(f"no certificate named {name} in {self.root}")
            if managed.serial_hex != wanted:
                return None
            updated = ManagedCertificate(**{**managed.__dict__, "revoked": True})
            self.write_meta(updated)
            return updated
