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
    certificates/<name>/dns-standing.json dns-persist-01 records the
                                         certificate relies on, left in
                                         place by design
    certificates/<name>/not-before.json  the CA rate-limited this certificate:
                                         not before {"not_before", "reason"}
    locks/<name>.lock                    flock of one certificate (exists
                                         only while a run holds it)

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
``flock`` on ``locks/<name>.lock`` (:func:`acmelab.files.exclusive_lock`);
a second run working on the same certificate gets
:class:`~acmelab.errors.StateLocked` instead of clobbering it.  The lock
goes away with the process, even after ``kill -9``.

Failures.  A directory that is read-only, not permitted or full gives one
:class:`~acmelab.errors.StateError` naming the path ("cannot write
<file>: No space left on device"), never a traceback; what the failed step
had begun is taken back (a half-made version directory, an account
directory without a key, a certificate directory left empty, the lock
file), so the state directory is as it was.  Reading needs no write
access: an existing account is not rewritten when nothing changed.  The
record types live in :mod:`acmelab.records`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from acmelab import keys
from acmelab.errors import InputError, StateError, WouldOverwriteError
from acmelab.files import exclusive_lock, new_directory, os_error_text, write_atomically
from acmelab.certificates import certificate_names, key_matches, serial_hex  # serial_hex: the one spelling (re-exported)
from acmelab.records import (CHAIN_FILE, META_FILE, AccountRecord, ManagedCertificate, certificate_name_for,
                             check_certificate_name)

__all__ = [
    "STATE_DIR_ENV", "StateDir", "AccountRecord", "ManagedCertificate", "default_state_dir",
    "atomic_write", "certificate_name_for", "check_certificate_name", "serial_hex",
]

STATE_DIR_ENV = "ACMELAB_STATE_DIR"
#: seconds mark_revoked waits for a certificate's lock (an apply renewing
#: and installing it holds it for a while)
MARK_REVOKED_WAIT = 60.0


def default_state_dir() -> Path:
    """``$ACMELAB_STATE_DIR`` if set, else ``~/.acmelab``."""
    configured = os.environ.get(STATE_DIR_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".acmelab"


def atomic_write(path: Path, data: bytes | str, *, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` with :func:`acmelab.files.write_atomically`
    (mode set before any byte is written; readers see the old file or the
    new one).  Raises StateError if the directory cannot be written."""
    try:
        return write_atomically(path, data, mode=mode)
    except InputError as error:
        raise StateError(str(error)) from None


def _cannot(doing: str, path: Path, error: BaseException) -> StateError:
    """``StateError("cannot <doing> <path>: <reason>")`` for an OSError
    (the reason as the system says it: "No space left on device")."""
    return StateError(f"cannot {doing} {path}: {os_error_text(error)}")


def _read_json(path: Path, missing: Any) -> Any:
    """The JSON document at ``path``; ``missing`` when there is no such file.
    Raises StateError when it cannot be read or parsed."""
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return missing
    except (OSError, ValueError) as error:
        raise _cannot("read", path, error) from None


def _write_json(path: Path, value: Any, *, mode: int = 0o644) -> None:
    """Write ``value`` as JSON to ``path`` atomically (its directory made if
    need be), or remove the file when ``value`` is None.  Raises StateError."""
    if value is None:
        try:
            if os.path.lexists(path):
                path.unlink()
        except OSError as error:
            raise _cannot("remove", path, error) from None
        return
    with new_directory(path.parent, error=StateError):
        atomic_write(path, json.dumps(value, indent=2) + "\n", mode=mode)


def _live_version(directory: Path) -> str | None:
    """The version directory a certificate's meta.json names (None: no
    readable meta.json)."""
    try:
        return json.loads((directory / META_FILE).read_text("utf-8")).get("version")
    except (OSError, ValueError, AttributeError):
        return None


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
    def lock(self, name: str, *, wait: float = 0.0) -> contextlib.AbstractContextManager[None]:
        """Hold the exclusive lock of ``name`` (a certificate name, or
        ``"account-<server>"``) for the ``with`` block
        (:func:`acmelab.files.exclusive_lock`: the lock file exists only
        while held).

        Args:
            wait: seconds to keep trying while another process holds it
                (default 0: do not wait; the account lock, held only for one
                request, is waited for so that overlapping runs both go on).

        Raises:
            StateLocked: another process holds it (after ``wait`` seconds).
            StateError: the lock file cannot be created (naming it).
        """
        path = self.root / "locks" / f"{name}.lock"
        return exclusive_lock(path, wait=wait, error=StateError,
                              busy=f"another acmelab run is working on {name} (lock {path})")

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

        Raises StateError if account.json is corrupt or unreadable."""
        directory = self.account_dir(directory_url)
        key_path, meta = directory / "account.key", directory / "account.json"
        record: dict[str, Any] = {}
        try:
            if not key_path.exists():
                return None
        except OSError as error:
            raise _cannot("read", key_path, error) from None
        try:
            record = json.loads(meta.read_text("utf-8"))
        except FileNotFoundError:
            pass
        except OSError as error:
            raise _cannot("read", meta, error) from None
        except ValueError as error:
            raise StateError(f"{meta} is not JSON ({error}); move it away to start over") from None
        return AccountRecord(directory_url, key_path, record.get("account_url"),
                             record.get("status", "valid"), tuple(record.get("contact") or ()))

    def create_account_key(self, directory_url: str, key: keys.PrivateKey) -> AccountRecord:
        """Save a new account key (0600, atomic, never over an existing one).

        Raises KeyExistsError if there is one already, StateError if it
        cannot be written (nothing is left behind: no key, no directory)."""
        directory = self.account_dir(directory_url)
        with new_directory(directory, error=StateError):
            try:
                keys.save_private_key(key, directory / "account.key")
            except WouldOverwriteError:
                raise
            except InputError as error:
                raise StateError(f"cannot save the account key: {error}") from None
        return AccountRecord(directory_url, directory / "account.key")

    def save_account(self, record: AccountRecord) -> AccountRecord:
        """Store the account URL, status and contact (atomic; not written
        when unchanged, so a read-only state directory can still be used
        with an existing account).  Raises StateError."""
        directory = self.account_dir(record.directory_url)
        path = directory / "account.json"
        text = json.dumps({
            "directory_url": record.directory_url, "account_url": record.account_url,
            "status": record.status, "contact": list(record.contact),
            "key_thumbprint": keys.thumbprint(record.load_key()),
        }, indent=2) + "\n"
        with contextlib.suppress(OSError, UnicodeDecodeError):
            if path.read_text("utf-8") == text:
                return record
        with new_directory(directory, error=StateError):
            atomic_write(path, text)
        return record

    def replace_account_key(self, record: AccountRecord, new_key_path: Path) -> AccountRecord:
        """After a key rollover (RFC 8555 §7.3.5): keep the old key as
        ``account.key.<UTC time>.old`` and move ``new_key_path`` into place.

        Raises StateError (both keys left where they were, saying so)."""
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        old = record.key_path.with_name(f"account.key.{stamp}.old")
        try:
            os.link(record.key_path, old)
            try:
                os.replace(new_key_path, record.key_path)
            except OSError:
                old.unlink(missing_ok=True)   # a second name of the key that stays
                raise
        except OSError as error:
            raise StateError(f"cannot move the new account key {new_key_path} to {record.key_path}: "
                             f"{error.strerror}; the CA has the new key: move it there once the "
                             "directory is writable") from None
        return record

    # -- certificates --------------------------------------------------------
    def certificate_dir(self, name: str) -> Path:
        return self.root / "certificates" / check_certificate_name(name)

    def certificate_names(self) -> list[str]:
        """Names of the certificates with a ``meta.json``, sorted.  Raises StateError."""
        base = self.root / "certificates"
        try:
            return sorted(p.name for p in base.iterdir() if (p / META_FILE).is_file()) if base.is_dir() else []
        except OSError as error:
            raise _cannot("read", base, error) from None

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
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
        except FileNotFoundError:
            return None
        except OSError as error:
            raise _cannot("read", meta_path, error) from None
        except ValueError as error:
            raise StateError(f"{meta_path} is unreadable: {error}") from None
        try:
            managed = ManagedCertificate.from_meta(name, directory, meta)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
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
        if not key_matches(key, chain[0]):
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
        it replaced.  If anything before the switch fails, the new version
        directory is removed again (and the certificate's directory, if
        this made it): the state is as before.

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
            StateError: the files cannot be written (the message names the
                path and the serial that could not be kept).
        """
        try:
            chain = x509.load_pem_x509_certificates(chain_pem.encode("ascii"))
        except ValueError as error:
            raise InputError(f"the certificate chain does not parse: {error}") from None
        leaf = chain[0]
        serial = serial_hex(leaf.serial_number)
        directory = self.certificate_dir(name)
        version = f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S.%f}-{serial[:16]}"
        if names is None:
            names = certificate_names(leaf)
        previous = _live_version(directory) if keep_previous else None
        managed = ManagedCertificate(
            name=name, names=tuple(names), serial_hex=serial,
            not_before=leaf.not_valid_before_utc, not_after=leaf.not_valid_after_utc,
            order_url=order_url, directory_url=directory_url, key_type=keys.key_type_of(private_key),
            version_dir=directory / version, service=dict(service), installed=dict(installed or {}),
            issued_at=dt.datetime.now(dt.timezone.utc), previous_version=previous, profile=profile)
        with new_directory(directory, error=StateError):
            self._write_version(managed, private_key, chain)
        try:
            self._point_current(directory, version)
        except OSError as error:   # the next run's prune points it
            raise StateError(f"the new certificate {serial} of {name} is stored and live, but "
                             f"{_cannot('update', directory / 'current', error)}") from None
        self.prune(name)
        return managed

    def _write_version(self, managed: ManagedCertificate, private_key: keys.PrivateKey,
                       chain: Sequence[x509.Certificate]) -> None:
        """The new version directory (key 0600 first, then the chain files),
        then meta.json (the switch).  If anything fails the version
        directory is removed again.  Raises StateError."""
        try:
            managed.version_dir.mkdir(mode=0o700)
            keys.save_private_key(private_key, managed.key_path)
            pem = serialization.Encoding.PEM
            atomic_write(managed.cert_path, chain[0].public_bytes(pem))
            atomic_write(managed.version_dir / CHAIN_FILE, b"".join(c.public_bytes(pem) for c in chain[1:]))
            atomic_write(managed.fullchain_path, b"".join(c.public_bytes(pem) for c in chain))
            self.write_meta(managed)
        except BaseException as error:
            shutil.rmtree(managed.version_dir, ignore_errors=True)
            if isinstance(error, (OSError, InputError, StateError)):
                reason = _cannot("write", managed.version_dir, error) if isinstance(error, OSError) else error
                raise StateError(f"the new certificate {managed.serial_hex} of {managed.name} "
                                 f"cannot be stored: {reason}") from None
            raise

    def write_meta(self, managed: ManagedCertificate) -> None:
        """Replace meta.json of ``managed.name`` (atomic)."""
        atomic_write(self.certificate_dir(managed.name) / META_FILE, json.dumps(managed.to_meta(), indent=2) + "\n")

    @staticmethod
    def _point_current(directory: Path, version: str) -> None:
        temp = directory / f".current.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        os.symlink(version, temp)
        try:
            os.replace(temp, directory / "current")
        except OSError:
            temp.unlink(missing_ok=True)
            raise

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
        current = directory / "current"
        with contextlib.suppress(OSError):   # a run that could not point it (store_certificate)
            if (os.readlink(current) if current.is_symlink() else None) != meta["version"]:
                self._point_current(directory, meta["version"])
        try:
            removed = sorted(p.name for p in directory.iterdir()
                             if p.is_dir() and not p.is_symlink() and p.name not in keep)
        except OSError as error:
            raise _cannot("read", directory, error) from None
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
        records = _read_json(self.certificate_dir(name) / file_name, [])
        return [r for r in records if isinstance(r, dict) and {"provider", "name", "value"} <= set(r)] \
            if isinstance(records, list) else []

    def _set_dns_records(self, name: str, file_name: str, records: list[dict[str, str]]) -> None:
        directory = self.certificate_dir(name)
        _write_json(directory / file_name, records or None, mode=0o600)
        if not records:   # and the certificate's directory too, if that leaves it empty (a failed first run)
            with contextlib.suppress(OSError):
                directory.rmdir()

    # -- rate limits ---------------------------------------------------------
    def not_before(self, name: str) -> dict[str, Any] | None:
        """``{"not_before": ISO time, "reason": str}`` when the CA said to
        come back later for ``name`` (RFC 8555 §6.6, ``Retry-After``), else None."""
        record = _read_json(self.certificate_dir(name) / "not-before.json", None)
        return record if isinstance(record, dict) else None

    def set_not_before(self, name: str, record: dict[str, Any] | None) -> None:
        """Replace (atomic) or, with None, remove the "not before" record of ``name``."""
        _write_json(self.certificate_dir(name) / "not-before.json", record)

    def record_install(self, name: str, target_id: str, record: dict[str, Any]) -> ManagedCertificate:
        """Remember that the live certificate of ``name`` is installed at
        ``target_id`` (meta.json rewritten atomically).  Raises StateError."""
        managed = self.certificate(name, check_files=False)
        if managed is None:
            raise StateError(f"no certificate named {name} in {self.root}")
        installed = dict(managed.installed)
        installed[target_id] = dict(record)
        updated = dataclasses.replace(managed, installed=installed)
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
            updated = dataclasses.replace(managed, revoked=True)
            self.write_meta(updated)
            return updated
