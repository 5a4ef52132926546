"""The engine: bring services to a valid, installed, verified certificate.

Theory of operation
-------------------
:func:`process_service` brings one :class:`~acmelab.config.Service` to its
desired state, under the service's lock in the state directory:

0. **not before**: a service the CA rate-limited (429 ``rateLimited``
   with a long ``Retry-After``, RFC 8555 §6.6) is skipped, status
   ``"scheduled"``, until the time it named (:mod:`acmelab.rate_limits`);
   **one owner per target**: a target another certificate owns (installed
   there last, :mod:`acmelab.ownership`) is a ConfigError naming both for a
   services-file service, and given up by a stored one (``renew``), so two
   certificates never install over each other;
1. **decide** (:class:`acmelab.renewal.RenewalPolicy`, ARI first, then the
   lifetime rule): a new certificate when there is none usable, it came
   from another ACME server (staging -> production), its names, key type
   or profile changed, it was revoked, or it is due -- the reason always
   says why, or why not ("not due: 61.0 days left, renewal window opens ...");
2. **preflight** (:func:`acmelab.delivery.preflight`), only when a certificate is to be
   ordered, before the order: every target is covered by the names and
   exists in the account (each :meth:`acmelab.deploy.Deployer.preflight`),
   and DNS can write every ``_acme-challenge`` record (the zone is in the
   account, CNAME delegation followed); ConfigError naming the target.
   Skipped when the caller ran it already (``preflighted``: ``acmelab issue``);
3. **issue** (RFC 8555 §7.4 with dns-01, :func:`acmelab.issue.issue_certificate`);
   stored atomically (:mod:`acmelab.state`), every TXT record noted in the
   DNS journal (:mod:`acmelab.journal`).  ``RateLimited`` with a
   ``Retry-After`` records "not before" (step 0) and the run goes on;
4. **install** (:mod:`acmelab.delivery`, as steps 5 and 6) on every target
   whose record does not carry the live serial, through the target's
   :class:`~acmelab.deploy.Deployer` (its preflight with the Alibaba Cloud
   client first, unless step 2 -- or the caller, ``preflighted`` -- checked
   it in this run), then :meth:`~acmelab.deploy.Deployer.retire` what the
   previous install left.
   With CAS-first delivery (``service.delivery = "cas"``) the carrier (CAS)
   is a target of its own, first, and the products that can bind it (CDN)
   are given its ``CertId`` instead of the key;
5. **verify** each target that serves TLS with a handshake
   (:func:`acmelab.deploy.verify`) that must show the live serial; a target
   that serves something else is installed again, once;
6. **prune**: once every target has the live version, a carrier's
   superseded uploads are deleted, keeping ``service.keep_previous``.

Every step leaves a line in :attr:`ServiceResult.notes`.

:func:`apply_services` runs :func:`process_service` for many services on a
bounded thread pool; one failure does not stop the others.  Setting the
``cancel`` event (the command does it on SIGINT) stops new work: services
not started are reported ``interrupted``, running ones stop at their next
step, and every DNS record they published is removed on the way out.

Everything outside -- the ACME server, DNS, the Alibaba Cloud API, where a
TLS check connects -- comes from the :class:`~acmelab.backends.Environment`'s
:class:`~acmelab.backends.Backend` (the cloud or the lab); the engine never
asks which.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from acmelab.backends import Environment
from acmelab.certificates import chain_leads_to
from acmelab.config import InstallTarget, Service
from acmelab.delivery import install_and_verify, preflight, prune_superseded
from acmelab.errors import AcmelabError, ConfigError, Interrupted, RateLimited, StateError, StateLocked
from acmelab.journal import JournaledDns, remove_leftovers
from acmelab.ownership import check_not_taken_over, forget_target, target_owners
from acmelab.rate_limits import schedule, scheduled_until
from acmelab.renewal import AriState, Decision, RenewalPolicy, RenewalThreshold, refresh_ari
from acmelab.state import ManagedCertificate, StateDir

__all__ = ["DEFAULT_CONCURRENCY", "SKIPPED_LOCKED", "ServiceResult", "apply_services", "process_service",
           "refresh_renewal_info"]

logger = logging.getLogger(__name__)

#: services worked on at once by default.  A service is mostly waiting (DNS
#: propagation, the CA's validation, the cloud API), not computing, so the
#: number does not follow the CPU count; 16 stays far inside Let's Encrypt's
#: request limits (each service sends about 7 requests, newOrder 300 per
#: account per 3 hours).  bench/many_services.py measures it.
DEFAULT_CONCURRENCY = 16
#: the reason of a ``"skipped"`` result
SKIPPED_LOCKED = "locked by another run"


# --------------------------------------------------------------------------
# One service
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class ServiceResult:
    """What :func:`process_service` did for one service.

    Attributes:
        name: the service (certificate) name.
        status: ``"issued"`` (first certificate), ``"renewed"``,
            ``"unchanged"``, ``"installed"`` (``acmelab install`` put the
            live certificate on a new target), ``"failed"``, ``"interrupted"`` or
            ``"skipped"`` (another run holds the service's lock; nothing
            was done, reason ``"locked by another run"``) or ``"scheduled"``
            (the CA's rate limit said come back later, RFC 8555 §6.6: the
            reason says when; the next run before then skips the service
            with the same status).
        reason: why it was (re)issued or not, e.g. ``"due: 20.0 days left; ..."``,
            ``"not due: 61.0 days left, renewal window opens 2027-01-09T00:00:00Z ..."``,
            or why it was skipped or scheduled.
        serial_hex, not_after: the live certificate afterwards (None if
            none); serial as :func:`acmelab.state.serial_hex`.
        installed: target ids installed during this run.
        verified: target ids whose TLS handshake showed the live serial.
        error: the error message when failed or interrupted.
        seconds: wall time spent on the service.
        notes: what happened on each target, one line each, e.g.
            ``"installed: cdn:shop.example.com (serial 0a1b..., handshake verified)"``,
            ``"cdn:shop.example.com: serves serial 0a1b... (handshake verified)"``,
            an ownership move or a superseded CAS certificate deleted.
    """

    name: str
    status: str
    reason: str = ""
    serial_hex: str | None = None
    not_after: dt.datetime | None = None
    installed: tuple[str, ...] = ()
    verified: tuple[str, ...] = ()
    error: str | None = None
    seconds: float = 0.0
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status in ("issued", "renewed", "unchanged", "installed")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "reason": self.reason, "serial_hex": self.serial_hex,
                "not_after": self.not_after.isoformat() if self.not_after else None,
                "installed": list(self.installed), "verified": list(self.verified), "error": self.error,
                "seconds": round(self.seconds, 3), "notes": list(self.notes)}


class _ServiceRun:
    """The steps of :func:`process_service` for one service, under its lock;
    what was done so far is kept for the result, whatever fails."""

    def __init__(self, service: Service, env: Environment, state: StateDir,
                 cancel: threading.Event | None) -> None:
        self.service, self.env, self.state, self.cancel = service, env, state, cancel
        self.status, self.reason = "unchanged", ""
        self.installed: list[str] = []
        self.verified: list[str] = []
        self.notes: list[str] = []
        self.managed: ManagedCertificate | None = None

    def run(self, policy: RenewalPolicy, now: dt.datetime | None, force: bool,
            targets: Sequence[InstallTarget], remember_service: bool,
            owners: Mapping[str, str], preflighted: bool) -> None:
        service, state = self.service, self.state
        state.prune(service.name)              # half-made versions of an interrupted run
        remove_leftovers(service.name, self.env.dns_provider, state)  # TXT records of a run that was killed
        waiting = scheduled_until(state, service.name, now)
        if waiting is not None:                # the CA said: not before then (429 rateLimited, Retry-After)
            self.status, self.reason = "scheduled", waiting
            with contextlib.suppress(StateError):   # for the result: the certificate that stays live
                self.managed = state.certificate(service.name, check_files=False)
            return
        unusable = ""
        try:
            self.managed = state.certificate(service.name)
        except StateError as error:
            logger.warning("%s: %s; issuing a new certificate", service.name, error)
            self.managed, unusable = None, f"stored certificate unusable ({error})"
        check_not_taken_over(service, self.managed)
        targets = self.claimed(targets, owners)
        service = self.service
        if unusable:
            decision = Decision(True, unusable)
        else:
            self.managed, decision = _decide(service, self.managed, self.env, state, policy, now, force)
        self.reason = decision.reason
        if decision.due:
            if not preflighted:   # before any order: every target exists and fits; once per run
                preflight(service, self.env, targets)
                preflighted = True
            try:
                self.issue(decision, keep_previous=not unusable, remember_service=remember_service)
            except RateLimited as error:
                if error.retry_after is None:
                    raise
                self.status, self.reason = "scheduled", schedule(state, service.name, error)
                return
            state.set_not_before(service.name, None)
        elif remember_service and self.managed.service != service.to_dict():
            self.managed = dataclasses.replace(self.managed, service=service.to_dict())
            state.write_meta(self.managed)
        for target in targets:
            _check_cancel(self.cancel, f"installing on {target.id}")
            self.managed, did_install, did_verify, note = install_and_verify(
                target, self.managed, service, self.env, state, self.cancel, preflighted=preflighted)
            self.notes.append(note)
            if did_install:
                self.installed.append(target.id)
            if did_verify:
                self.verified.append(target.id)
        self.managed, notes = prune_superseded(service, self.managed, self.env, state)
        self.notes.extend(notes)

    def claimed(self, targets: Sequence[InstallTarget], owners: Mapping[str, str]) -> list[InstallTarget]:
        """``targets`` without the ones another certificate owns (``owners``:
        target id -> owner, :func:`target_owners`).  A services-file service
        claiming one is a ConfigError naming both; a stored spec (``renew``)
        gives it up -- forgotten in this certificate's meta.json, said in
        the notes -- so that two certificates never install over each other."""
        service, mine = self.service, []
        for target in targets:
            owner = owners.get(target.id)
            if owner is None or owner == service.name or not target.deployer.exclusive:
                mine.append(target)
                continue
            if not service.stored:
                raise ConfigError(f"{target.id} is claimed by service {service.name!r} and by the certificate "
                                  f"{owner!r} (installed there last); remove it from one of them, or move it "
                                  f"with 'acmelab install {target.product} {service.name} ...'")
            self.managed = forget_target(self.state, service.name, target.id) or self.managed
            self.service = dataclasses.replace(self.service, install=tuple(
                t for t in self.service.install if t.id != target.id))     # the spec stored below forgets it too
            self.notes.append(f"{target.id}: owned by the certificate {owner!r} (installed there last); "
                              f"{service.name!r} no longer installs there")
            logger.warning("%s: %s is owned by %s; not installing there", service.name, target.id, owner)
        return mine

    def issue(self, decision: Decision, *, keep_previous: bool, remember_service: bool = True) -> None:
        """Order, validate (dns-01 through the journal) and store a new
        certificate, with ``service`` as its spec -- or, without
        ``remember_service`` (``acmelab install``), the spec stored so far."""
        from acmelab.issue import issue_certificate

        service, env, state = self.service, self.env, self.state
        _check_cancel(self.cancel, "issuing")
        issued = issue_certificate(
            service.domains, client=env.acme_client(),
            dns=JournaledDns(env.dns_provider(service.dns, service.region), service.dns, state, service.name,
                             self.cancel, region=service.region),
            key_type=service.key_type, preferred_chain=service.preferred_chain,
            challenge=service.challenge, profile=service.profile, replaces=decision.replaces)
        self.status = "renewed" if self.managed is not None else "issued"
        spec = service.to_dict() if remember_service or self.managed is None else (self.managed.service or {})
        self.managed = state.store_certificate(
            service.name, private_key=issued.private_key, chain_pem=issued.chain_pem,
            order_url=issued.order_url, directory_url=env.directory_url,
            service=spec, names=issued.names,
            installed=self.managed.installed if self.managed is not None else {},
            keep_previous=keep_previous, profile=issued.profile)
        logger.info("%s: %s serial %s (%s)", service.name, self.status, self.managed.serial_hex, self.reason)
        for failure in issued.cleanup_failures:  # still in dns-pending.json: removed next run
            logger.warning("%s: %s (the next run removes it)", service.name, failure)

    def result(self, status: str | None = None, error: str | None = None, *, started: float) -> "ServiceResult":
        return _result(self.service, status or self.status, self.reason, self.managed, self.installed,
                       self.verified, error, started, self.notes)


def process_service(service: Service, env: Environment, state: StateDir, *,
                    threshold: RenewalThreshold | None = None, now: dt.datetime | None = None,
                    force: bool = False, cancel: threading.Event | None = None,
                    policy: RenewalPolicy | None = None,
                    targets: Sequence[InstallTarget] | None = None,
                    remember_service: bool = True,
                    owners: Mapping[str, str] | None = None,
                    preflighted: bool = False) -> ServiceResult:
    """Bring one service to a valid, installed, verified certificate.

    Args:
        service: what to do.
        env: where (ACME account, DNS, Alibaba Cloud, TLS endpoints).
        state: the state directory.
        threshold: the lifetime rule without ARI (default: Let's Encrypt's advice).
        policy: the whole renewal policy (default: ARI, then ``threshold``).
        now: the time renewal decisions use (default: now; tests move it).
        force: issue a new certificate even if the current one is fine.
        cancel: stop at the next step once set.
        targets: work on these install targets only (default: all of
            ``service.install``).
        remember_service: store ``service`` as the certificate's spec (what
            ``renew`` uses); ``acmelab install`` stores it only on success.
        owners: target id -> owning certificate (default: read from
            ``state``, :func:`target_owners`).
        preflighted: the caller ran :func:`acmelab.delivery.preflight` for
            ``service`` (``acmelab issue``'s strict preflight): neither the
            order nor an install checks the targets and DNS again.

    Returns:
        :class:`ServiceResult`; never raises for a failure of this service
        (status ``"failed"`` / ``"interrupted"`` with the message).  Its
        ``reason`` always says why a certificate was or was not issued.

    Sources: RFC 8555 §7.4 (orders), §8.4 (dns-01), RFC 9773 (ARI); each
    product's actions in its :mod:`acmelab.deploy` module.
    """
    started = time.monotonic()
    policy = policy or RenewalPolicy(threshold or RenewalThreshold(), threshold_always=threshold is not None)
    run = _ServiceRun(service, env, state, cancel)
    holding_lock = False   # a StateLocked before this is another run holding the service
    try:
        _check_cancel(cancel, "starting")
        with state.lock(service.name):
            holding_lock = True
            run.run(policy, now, force, service.install if targets is None else targets, remember_service,
                    target_owners(state) if owners is None else owners, preflighted)
    except Interrupted as error:
        return run.result("interrupted", str(error), started=started)
    except StateLocked as error:
        if not holding_lock:   # another run works on this service; nothing was done
            logger.info("%s: skipped: %s", service.name, error)
            return _result(service, "skipped", SKIPPED_LOCKED, None, [], [], None, started)
        logger.debug("%s failed", service.name, exc_info=True)
        return run.result("failed", _message(error), started=started)
    except AcmelabError as error:
        logger.debug("%s failed", service.name, exc_info=True)
        return run.result("failed", _message(error), started=started)
    except Exception as error:  # noqa: BLE001 - one service's bug must not stop the others
        logger.exception("%s failed unexpectedly", service.name)
        return run.result("failed", f"{type(error).__name__}: {error}", started=started)
    return run.result(started=started)



def _message(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    notes = getattr(error, "__notes__", None)
    return text + ("" if not notes else " (" + "; ".join(notes) + ")")


def _result(service: Service, status: str, reason: str, managed: ManagedCertificate | None,
            installed: list[str], verified: list[str], error: str | None, started: float,
            notes: Sequence[str] = ()) -> ServiceResult:
    return ServiceResult(service.name, status, reason, managed.serial_hex if managed else None,
                         managed.not_after if managed else None, tuple(installed), tuple(verified),
                         error, time.monotonic() - started, tuple(notes))


# --------------------------------------------------------------------------
# Renewal decisions
# --------------------------------------------------------------------------

def _decide(service: Service, managed: ManagedCertificate | None, env: Environment, state: StateDir,
            policy: RenewalPolicy, now: dt.datetime | None, force: bool) -> tuple[ManagedCertificate | None, Decision]:
    """Ask :class:`~acmelab.renewal.RenewalPolicy` whether ``service`` needs a
    new certificate.  The rules that need no network come first
    (:meth:`~acmelab.renewal.RenewalPolicy.changed`); only a certificate they
    leave alone has its ARI answer refreshed (when the CA has renewalInfo
    and the stored answer's Retry-After has passed, stored in meta.json)
    before its dates are judged, ARI first.

    With ``env.trust_roots`` (the lab's current Pebble roots, or
    ``--trust-root``), a certificate whose stored chain does not lead to one
    of them is due: a restarted lab has new roots, so everything it issued
    before is worthless."""
    trusted = managed is None or not env.trust_roots or chain_leads_to(managed.fullchain_pem(), env.trust_roots)
    wanted = dict(names=service.domains, key_type=service.key_type, profile=service.profile,
                  directory_url=env.directory_url, chain_trusted=trusted, force=force)
    changed = policy.changed(managed, **wanted)
    if changed is not None:
        return managed, changed
    if policy.use_ari:   # ARI before the lifetime rule: the CA's window may be earlier or later
        managed = refresh_renewal_info(managed, env.acme_client(), state)
    return managed, policy.decide(managed, now, ari=AriState.from_dict(managed.ari), **wanted)


def refresh_renewal_info(managed: ManagedCertificate, client: Any, state: StateDir) -> ManagedCertificate:
    """Ask the CA's renewalInfo (ARI, RFC 9773) about ``managed`` if its
    stored answer's ``Retry-After`` has passed, and store the answer in
    meta.json.  Nothing is asked when the CA has no renewalInfo or did not
    issue this certificate.  Returns the (possibly updated) certificate.

    Raises:
        StateError: meta.json cannot be written.  (A failed or malformed
            answer is stored as an error, see :func:`acmelab.renewal.refresh_ari`.)
    """
    if managed.directory_url and managed.directory_url != client.directory_url:
        return managed
    if not client.directory.renewalInfo:
        return managed
    previous = AriState.from_dict(managed.ari)
    ari = refresh_ari(managed.fullchain_pem(), previous, client.renewal_info)
    if ari is previous:
        return managed
    managed = dataclasses.replace(managed, ari=ari.to_dict())
    state.write_meta(managed)
    return managed


def _check_cancel(cancel: threading.Event | None, step: str) -> None:
    if cancel is not None and cancel.is_set():
        raise Interrupted(f"interrupted before {step}")


# --------------------------------------------------------------------------
# Many services
# --------------------------------------------------------------------------

def apply_services(services: Sequence[Service], env: Environment, state: StateDir, *,
                   threshold: RenewalThreshold | None = None, now: dt.datetime | None = None,
                   concurrency: int = DEFAULT_CONCURRENCY, force: bool = False,
                   cancel: threading.Event | None = None,
                   on_result: Callable[[ServiceResult], None] | None = None,
                   **options: Any) -> list[ServiceResult]:
    """Run :func:`process_service` for every service, ``concurrency`` at a time.

    Args:
        services: the services (names unique).
        concurrency: worker threads (int >= 1).
        cancel: set it (e.g. from a SIGINT handler) to stop: services not
            started yet end ``interrupted``; running ones stop at their next
            step after removing their DNS records.
        on_result: called in the calling thread as each service finishes.
        **options: ``targets``, ``remember_service``, ``owners``, ``preflighted`` of
            :func:`process_service` (``owners`` default: read once, :func:`target_owners`).
        (the rest as :func:`process_service`)

    Returns:
        one :class:`ServiceResult` per service, in the order given.

    Raises:
        ConfigError: concurrency below 1.
    """
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, not {concurrency}")
    cancel = cancel or threading.Event()
    options.setdefault("owners", target_owners(state))
    results: dict[str, ServiceResult] = {}
    with futures.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="acmelab-service") as pool:
        pending = {pool.submit(process_service, service, env, state, threshold=threshold, now=now,
                               force=force, cancel=cancel, **options): service for service in services}
        while pending:
            done, _ = futures.wait(pending, timeout=0.2, return_when=futures.FIRST_COMPLETED)
            if cancel.is_set():
                for future in list(pending):
                    if future.cancel():
                        service = pending.pop(future)
                        result = ServiceResult(service.name, "interrupted", error="interrupted before starting")
                        results[service.name] = result
                        if on_result:
                            on_result(result)
            for future in done:
                service = pending.pop(future)
                results[service.name] = future.result()
                if on_result:
                    on_result(results[service.name])
    return [results[service.name] for service in services]
