"""What the ``acmelab`` commands do, callable from Python and the notebooks.

Each operation takes a :class:`~acmelab.backends.Backend` (the cloud or the
lab, :func:`acmelab.backends.open_backend`) and a
:class:`~acmelab.state.StateDir`, does one thing, and returns data; the
command (:mod:`acmelab.cli`) only parses and prints.  Messages meant for
the person at the terminal (what a recovery found out) go to ``notify``
(default: the log at warning level).

* :func:`account` -- the account key and URL for a CA: registered on first
  use, looked up after, registered again when the lab forgot it
  (RFC 8555 §7.3, §7.3.1);
* :func:`update_contacts`, :func:`deactivate`, :func:`rollover` (§7.3.2,
  §7.3.6, §7.3.5; a keyChange whose answer was lost is resolved by asking
  the CA which key it knows);
* :func:`environment` -- the engine's :class:`~acmelab.backends.Environment`;
* :func:`check_profiles` -- every profile the services name is offered;
* :func:`preflight` -- every target exists and DNS can write every record,
  before any order (``acmelab issue``);
* :func:`install` -- put a managed certificate on one more target and
  remember it for renewals (moving the target's ownership);
* :func:`revoke` -- revoke at the CA and keep the bookkeeping (§7.6);
* :func:`certificate_rows` -- the managed certificates with their renewal decisions.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from acmelab import delivery, keys, ownership
from acmelab.backends import Backend, Environment
from acmelab.certificates import serial_hex
from acmelab.config import InstallTarget, Service
from acmelab.engine import ServiceResult, apply_services, refresh_renewal_info
from acmelab.errors import AccountDoesNotExist, AcmelabError, AcmeProblem, ConfigError, InputError, \
    KeyExistsError, StateLocked
from acmelab.renewal import AriState, RenewalPolicy, RenewalThreshold
from acmelab.state import AccountRecord, ManagedCertificate, StateDir

__all__ = [
    "ACCOUNT_LOCK_WAIT", "Revocation", "account", "certificate_rows", "check_profiles", "deactivate",
    "environment", "install", "managed_certificate", "preflight", "revoke", "rollover", "update_contacts",
]

logger = logging.getLogger(__name__)

#: seconds a run waits for the account lock another run holds (one request)
ACCOUNT_LOCK_WAIT = 30.0

Notify = Callable[[str], None]

#: ``acmelab install``'s renewal policy: a new certificate only when the
#: current one has expired (or rule 1 of :mod:`acmelab.renewal` holds), never
#: because the CA's renewal window (ARI) is open
INSTALL_POLICY = RenewalPolicy(RenewalThreshold(None, 0.0), use_ari=False)


def _log(message: str) -> None:
    logger.warning("%s", message)


def _account_lock(backend: Backend, state: StateDir, wait: float = 0.0):
    return state.lock("account-" + state.server_id(backend.directory_url), wait=wait)


# --------------------------------------------------------------------------
# The account (RFC 8555 §7.3)
# --------------------------------------------------------------------------

def account(backend: Backend, state: StateDir, *, create: bool = True, key_type: str = "ec256",
            contact: Sequence[str] = (), eab_kid: str | None = None,
            register: bool = False) -> tuple[AccountRecord, keys.PrivateKey]:
    """The account key and URL for ``backend.directory_url``.

    A key with no account URL stored yet (or ``register``, ``acmelab
    account create``) is registered with newAccount (RFC 8555 §7.3: the
    key's existing account, or a new one; EAB from the backend, §7.3.4).  A
    key whose account URL is stored is looked up with ``onlyReturnExisting``
    (§7.3.1).  If the CA answers accountDoesNotExist, it forgot the account:
    a backend that forgets accounts on its own (the lab, on every restart)
    has the stored key registered again (logged at info level); any other
    raises.  With ``create`` a new key (0600) is made when there is none.

    Returns:
        (AccountRecord, key), the record saved in ``state``.

    Raises:
        InputError: no account and not ``create``; deactivated; a CA that forgot the account.
        ConfigError: EAB needed but no HMAC key.
    """
    # held for one request; an overlapping run waits for it instead of stopping
    with _account_lock(backend, state, ACCOUNT_LOCK_WAIT):
        record = _stored_account(backend, state, create, key_type)
        key = record.load_key()
        with backend.acme_client(key) as client:
            if register or record.account_url is None:
                # newAccount: the key's account, created if the server does not know it
                found = client.new_account(contact or record.contact, **backend.eab(eab_kid))
            else:
                found = _existing_account(backend, client, record, contact, eab_kid)
        record = AccountRecord(backend.directory_url, record.key_path, found.url, found.json.get("status", "valid"),
                               tuple(found.json.get("contact") or contact or record.contact))
        state.save_account(record)
        return record, key


def _stored_account(backend: Backend, state: StateDir, create: bool, key_type: str) -> AccountRecord:
    record = state.account(backend.directory_url)
    if record is None:
        if not create:
            raise InputError(f"no account for {backend.directory_url} in {state.root}: run acmelab account create")
        try:
            record = state.create_account_key(backend.directory_url, keys.generate_key(key_type))
        except KeyExistsError:
            record = state.account(backend.directory_url)
    if record.status == "deactivated":
        raise InputError(f"the account {record.account_url} is deactivated; move "
                         f"{record.key_path.parent} away and run acmelab account create")
    return record


def _existing_account(backend: Backend, client: Any, record: AccountRecord, contact: Sequence[str],
                      eab_kid: str | None) -> Any:
    try:   # §7.3.1 onlyReturnExisting: AccountDoesNotExist instead of a new account
        return client.find_account()
    except AccountDoesNotExist:
        if not backend.forgets_accounts:
            raise InputError(
                f"the CA at {backend.directory_url} does not know the account {record.account_url} "
                f"(key {record.key_path}): run 'acmelab account create' to register this key again") from None
    logger.info("the lab does not know the account %s (a fresh lab forgot it); "
                "registering the stored key %s again", record.account_url, record.key_path)
    return client.new_account(contact or record.contact, **backend.eab(eab_kid))


def fetch(backend: Backend, state: StateDir) -> tuple[AccountRecord, Any]:
    """The stored account and the account object as the CA has it (§7.3.3, POST-as-GET)."""
    record, key = account(backend, state, create=False)
    with backend.acme_client(key, record.account_url) as client:
        return record, client.fetch_account()


def update_contacts(backend: Backend, state: StateDir, contact: Sequence[str]) -> tuple[AccountRecord, Any]:
    """Replace the account's contacts (RFC 8555 §7.3.2; ``[]`` removes every one).
    Returns (saved record, account object)."""
    record, key = account(backend, state, create=False)
    with backend.acme_client(key, record.account_url) as client:
        found = client.update_account(list(contact))
    record = state.save_account(AccountRecord(record.directory_url, record.key_path, record.account_url,
                                              found.json.get("status", "valid"), tuple(contact)))
    return record, found


def deactivate(backend: Backend, state: StateDir) -> tuple[AccountRecord, Any]:
    """Deactivate the account for good (RFC 8555 §7.3.6).  Returns (saved record, account object)."""
    record, key = account(backend, state, create=False)
    with backend.acme_client(key, record.account_url) as client:
        found = client.deactivate_account()
    record = state.save_account(AccountRecord(record.directory_url, record.key_path, record.account_url,
                                              found.json.get("status", "deactivated"), record.contact))
    return record, found


def rollover(backend: Backend, state: StateDir, *, key_type: str = "ec256",
             notify: Notify = _log) -> AccountRecord:
    """Replace the account key (RFC 8555 §7.3.5, keyChange).  The new key is
    saved (0600, ``account.key.next``) before the request; the old one is
    kept as ``account.key.<time>.old``.  If the answer is lost, the CA is
    asked which key it knows (:func:`_resolve_rollover`); no key is deleted
    unless the CA said it does not know it.

    Raises:
        InputError: an earlier rollover was interrupted (``account.key.next`` exists).
        AcmeProblem, NetworkError: the CA refused, or could not be asked.
    """
    record, key = account(backend, state, create=False)
    pending = record.key_path.with_name("account.key.next")
    if pending.exists():
        raise InputError(f"{pending} exists: an earlier rollover was interrupted.  If 'acmelab account show' "
                         f"fails with accountDoesNotExist, the server has the new key: move {pending.name} to "
                         f"account.key; otherwise remove {pending.name}")
    new_key = keys.generate_key(key_type)
    keys.save_private_key(new_key, pending)
    with _account_lock(backend, state):
        with backend.acme_client(key, record.account_url) as client:
            try:
                client.change_key(new_key)
            except (AcmeProblem, InputError):
                # the CA refused (or nothing was sent): the old key stays the account's
                pending.unlink(missing_ok=True)
                raise
            except BaseException as error:
                # NetworkError after the POST went out, KeyboardInterrupt, ...:
                # the CA may already have switched keys.  Ask it.
                if not _resolve_rollover(backend, record, new_key, pending, error, notify):
                    raise
        state.replace_account_key(record, pending)
        state.save_account(record)
    return record


def _resolve_rollover(backend: Backend, record: AccountRecord, new_key: Any, pending: Path,
                      error: BaseException, notify: Notify) -> bool:
    """After a keyChange whose answer never came (RFC 8555 §7.3.5), find out
    which key the CA knows with ``onlyReturnExisting`` (§7.3.1) signed by the
    new key.

    Returns True if the CA has the new key (the caller promotes it to
    account.key), False if the CA still has the old key (the pending new key
    is removed) or if that could not be found out (both keys kept; guidance
    given to ``notify``).  The caller re-raises on False."""
    notify(f"the key rollover's answer was lost ({type(error).__name__}: {error}); asking the CA which key it knows")
    try:
        with backend.acme_client(new_key) as probe:
            found = probe.find_account()
    except AccountDoesNotExist:
        pending.unlink(missing_ok=True)
        notify("the CA does not know the new key: the account keeps its old key "
               "(nothing changed); run 'acmelab account rollover' again")
        return False
    except BaseException as lookup_error:  # noqa: BLE001 - keep both keys, whatever happened
        notify(f"could not ask the CA ({type(lookup_error).__name__}: {lookup_error}).  Both keys are "
               f"kept: {record.key_path} (old) and {pending} (new).  When the CA is reachable, run "
               f"'acmelab account show': if it fails with accountDoesNotExist the CA has the new key -- move "
               f"{pending.name} to {record.key_path.name}; otherwise remove {pending.name}")
        return False
    if found.url != record.account_url:
        notify(f"the new key belongs to another account ({found.url}), not {record.account_url}; "
               f"both keys are kept ({record.key_path}, {pending})")
        return False
    notify("the CA has the new key: the rollover went through; the new key is now account.key")
    return True


# --------------------------------------------------------------------------
# The engine's environment, and checks before it runs
# --------------------------------------------------------------------------

def environment(backend: Backend, state: StateDir, *, verify_installs: bool = True) -> Environment:
    """The engine's :class:`~acmelab.backends.Environment` on ``backend`` with
    the stored account (:func:`account`, registered if needed)."""
    record, key = account(backend, state)
    return Environment.for_backend(backend, key, record.account_url, verify_installs=verify_installs)


def check_profiles(env: Environment, services: Sequence[Service]) -> None:
    """Every profile the services name is in the directory's
    ``meta.profiles`` (draft-ietf-acme-profiles), checked before any order.

    Raises ConfigError naming the services and what the CA offers."""
    from acmelab.errors import UnknownProfile

    client = env.acme_client()
    problems = []
    for profile in sorted({s.profile for s in services if s.profile is not None}):
        try:
            client.check_profile(profile)
        except UnknownProfile as error:
            users = sorted(s.name for s in services if s.profile == profile)
            problems.append(f"{error} (service{'s' if len(users) > 1 else ''} {', '.join(users[:5])})")
    if problems:
        raise ConfigError("; ".join(problems))


def preflight(env: Environment, services: Sequence[Service]) -> None:
    """Every target of every service exists and fits, and DNS can write
    every challenge record (:func:`acmelab.delivery.preflight`) -- for
    ``acmelab issue``, which refuses (exit 2) before any order instead of
    reporting a failed service, and then runs the engine with
    ``preflighted=True`` so nothing is checked twice.  Raises the first ConfigError."""
    for service in services:
        delivery.preflight(service, env)


def managed_certificate(state: StateDir, name: str) -> ManagedCertificate:
    """The managed certificate ``name``.  Raises InputError naming the ones there are."""
    managed = state.certificate(name)
    if managed is None:
        raise InputError(f"no certificate named {name!r} in {state.root} "
                         f"(have: {', '.join(state.certificate_names()) or 'none'})")
    return managed


# --------------------------------------------------------------------------
# Install on one more target
# --------------------------------------------------------------------------

def install(env: Environment, state: StateDir, certificate: str, target: InstallTarget) -> ServiceResult:
    """Install the managed certificate ``certificate`` on ``target``, verify
    it with a TLS handshake, and -- only once it worked -- remember the
    target for renewals (the certificate's spec in meta.json).  No new
    certificate is issued unless the current one is unusable (expired,
    revoked, from another CA, ...; ARI's renewal window is not followed
    here: ``renew`` does that for every target at once).  One issued here
    goes onto ``target`` only; the other targets get it on the next ``renew``.

    A target another managed certificate owns (:func:`acmelab.ownership.target_owners`)
    changes hands: once the install worked, the other certificate forgets
    it (under its lock), and the result's notes say so -- so the two never
    install over each other on ``renew``.

    Returns the :class:`~acmelab.engine.ServiceResult` (status
    ``"installed"`` when the live certificate went onto the new target).
    Raises InputError for an unknown certificate."""
    managed = managed_certificate(state, certificate)
    service = Service.from_managed(managed)
    if target not in service.install:
        service = dataclasses.replace(service, install=(*service.install, target))
    owners = ownership.target_owners(state)
    previous_owner = owners.get(target.id) if target.deployer.exclusive else None
    owners[target.id] = certificate
    # Only the new target is worked on; the spec (what renew reinstalls) is
    # stored only once it is installed.  Due only once expired: no ARI, no lifetime rule.
    [result] = apply_services([service], env, state, concurrency=1, policy=INSTALL_POLICY,
                              targets=(target,), remember_service=False, owners=owners)
    if result.ok:
        stored = state.certificate(managed.name, check_files=False)
        state.write_meta(dataclasses.replace(stored, service=service.to_dict()))
        if result.installed and result.status == "unchanged":
            result = dataclasses.replace(result, status="installed")
        if previous_owner not in (None, certificate):
            with state.lock(previous_owner, wait=ACCOUNT_LOCK_WAIT):
                ownership.forget_target(state, previous_owner, target.id)
            note = (f"{target.id}: ownership moved from the certificate {previous_owner!r} to {certificate!r}; "
                    f"renewing {previous_owner!r} no longer installs there")
            logger.warning("%s", note)
            result = dataclasses.replace(result, notes=(*result.notes, note))
    return result


# --------------------------------------------------------------------------
# Revocation (RFC 8555 §7.6) and its bookkeeping
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Revocation:
    """What :func:`revoke` did.

    Attributes:
        serial_hex: the revoked serial (:func:`acmelab.certificates.serial_hex`).
        reason: the RFC 5280 reason code (int).
        managed: the managed certificate recorded as revoked (replaced on
            the next renew), or None.
    """

    serial_hex: str
    reason: int
    managed: str | None


def revoke(backend: Backend, state: StateDir, certificate: Any, *, reason: int = 0,
           managed: ManagedCertificate | None = None, certificate_key: Any = None,
           notify: Notify = _log) -> Revocation:
    """Revoke ``certificate`` (an x509 object) at the CA, signed by the
    account key, or by ``certificate_key`` (jwk header; no account needed),
    and record it on ``managed`` (the managed certificate it is the live
    version of, if any) under that certificate's lock -- only if it is still
    the live version.  What could not be recorded goes to ``notify``.

    Raises what the client raises (AcmeProblem ``alreadyRevoked``, ...)."""
    if certificate_key is not None:
        with backend.acme_client(certificate_key) as client:
            client.revoke_certificate(certificate, reason=reason, certificate_key=certificate_key)
    else:
        record, key = account(backend, state, create=False)
        with backend.acme_client(key, record.account_url) as client:
            client.revoke_certificate(certificate, reason=reason)
    serial = serial_hex(certificate.serial_number)
    if managed is None:
        return Revocation(serial, reason, None)
    try:
        marked = state.mark_revoked(managed.name, certificate.serial_number)
    except StateLocked as error:
        notify(f"revoked at the CA, but not recorded: {error}; once that run is done, replace "
               f"it with 'acmelab renew --name {managed.name} --force'")
        return Revocation(serial, reason, None)
    if marked is None:
        notify(f"serial {serial} is no longer the live certificate of {managed.name!r} "
               f"(another run renewed it meanwhile); revoked at the CA only, nothing recorded for the live one")
        return Revocation(serial, reason, None)
    return Revocation(serial, reason, managed.name)


# --------------------------------------------------------------------------
# The managed certificates and their renewal decisions
# --------------------------------------------------------------------------

def renewal_json(decision: Any) -> dict[str, Any]:
    """A :class:`~acmelab.renewal.Decision` as JSON (window, next ARI check, renew_at, due, reason)."""
    window = decision.window
    return {
        "renewal_window": {"start": window[0].isoformat(), "end": window[1].isoformat()} if window else None,
        "ari_next_check": decision.next_check.isoformat() if decision.next_check else None,
        "renew_at": decision.renew_at.isoformat() if decision.renew_at else None,
        "due": decision.due, "reason": decision.reason,
    }


def certificate_rows(state: StateDir, client: Any = None) -> list[dict[str, Any]]:
    """Every managed certificate as JSON (:meth:`ManagedCertificate.to_json`)
    with its renewal decision (:func:`renewal_json`); ``{"name", "error"}``
    for one that cannot be read.  With ``client`` (an AcmeClient; no account
    needed) the CA's renewalInfo (ARI, RFC 9773) is asked where the stored
    answer's Retry-After has passed."""
    policy = RenewalPolicy()
    rows = []
    for name in state.certificate_names():
        try:
            managed = state.certificate(name)
            service = Service.from_managed(managed)
            if client is not None:
                managed = refresh_renewal_info(managed, client, state)
            decision = policy.decide(managed, names=service.domains, key_type=service.key_type,
                                     profile=service.profile, ari=AriState.from_dict(managed.ari))
            rows.append({**managed.to_json(), **renewal_json(decision)})
        except AcmelabError as error:
            rows.append({"name": name, "error": str(error)})
    return rows
