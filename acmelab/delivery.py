"""Delivery: the live certificate onto its install targets, checked by handshake.

The engine (:mod:`acmelab.engine`) calls, for one service:

* :func:`preflight` -- before a single order: every target exists and is
  covered by the names (each :meth:`acmelab.deploy.Deployer.preflight`), and
  DNS can write every ``_acme-challenge`` record;
* :func:`install_and_verify` -- per target: a target whose record carries the
  live serial is checked by a TLS handshake (:func:`acmelab.deploy.verify`);
  one that does not, or serves something else, is installed (its deployer's
  preflight first, unless :func:`preflight` checked it earlier in the same
  run), recorded in meta.json, what the previous install left is
  retired, and the handshake must then show the live serial.  With CAS-first
  delivery (``service.delivery = "cas"``) the carrier (CAS) is uploaded once
  and the products that can bind it (CDN) are given its ``CertId`` instead
  of the key;
* :func:`prune_superseded` -- once every target has the live version, a
  carrier's superseded uploads are deleted (CAS ``DeleteUserCertificate``),
  keeping ``service.keep_previous``.

Every Alibaba Cloud call goes through the target's
:class:`~acmelab.deploy.Deployer`; the client, the handshake address and the
trust roots come from the :class:`~acmelab.backends.Environment`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any, Sequence

from acmelab.backends import Environment
from acmelab.certificates import same_serial
from acmelab.config import InstallTarget, Service
from acmelab.errors import AcmelabError, ConfigError, DeployError, Interrupted, ZoneMissing
from acmelab.state import ManagedCertificate, StateDir

__all__ = ["install_and_verify", "preflight", "prune_superseded"]

logger = logging.getLogger(__name__)


def preflight(service: Service, env: Environment, targets: Sequence[InstallTarget] | None = None) -> None:
    """Before a single order is placed for ``service``: every target
    (default ``service.install``) is covered by its names and exists in the
    account (each deployer's :meth:`~acmelab.deploy.Deployer.preflight`:
    ``DescribeCdnDomainDetail``, ``DescribeApiGroup`` and the domain bound,
    the load balancer and its HTTPS listener), and the DNS provider can
    write every name's ``_acme-challenge`` record (Alibaba Cloud DNS: a zone
    of the account holds it, at the end of a CNAME delegation too,
    ``check_names``).

    Raises:
        ConfigError: naming the target or the name (nothing was ordered).
        AliyunError, NetworkError, DnsError: the checks could not be made.
    """
    targets = service.install if targets is None else targets
    client = env.aliyun_client(service.region) if targets else None
    for target in targets:
        target.deployer.preflight(client, target, service.domains)
    provider = env.dns_provider(service.dns, service.region)
    check_names = getattr(provider, "check_names", None)
    if service.challenge != "dns-01" or not callable(check_names):
        return
    try:
        check_names(service.domains)
    except ZoneMissing as error:   # also at the end of a CNAME delegation (DelegatedZoneMissing)
        raise ConfigError(str(error)) from None


def _verify(target: InstallTarget, managed: ManagedCertificate, env: Environment) -> bool:
    """TLS handshake with the target; True if it serves the live serial,
    False if there is nothing to check.  Raises DeployError otherwise."""
    where = env.handshake(target, managed.names)
    if where is None:
        return False
    from acmelab.deploy.verify import verify

    server_name, host, port = where
    verify(server_name, host=host, port=port, root_pem=env.trust_roots, expected_serial_hex=managed.serial_hex)
    return True


def _carrier(target: InstallTarget, managed: ManagedCertificate, service: Service,
             env: Environment) -> dict[str, Any] | None:
    """What ``target`` binds instead of receiving the key, with CAS-first
    delivery (``service.delivery``): the carrier's install record of the
    live version plus the CDN ``CertRegion``; None for direct delivery, a
    product that cannot bind it, or no carrier upload of this version yet."""
    if service.delivery == "direct" or service.delivery not in target.deployer.binds:
        return None
    record = managed.installed.get(InstallTarget(service.delivery).id)
    if not record or not same_serial(record.get("serial_hex"), managed.serial_hex) or not record.get("cert_id"):
        return None
    from acmelab.deploy.regions import cert_region

    return {**record, "cert_region": service.cert_region or cert_region(service.region or env.region_id)}


def _install(target: InstallTarget, managed: ManagedCertificate, service: Service, env: Environment,
             state: StateDir, preflighted: bool) -> ManagedCertificate:
    """Send the live certificate to ``target`` (its deployer's preflight
    first, unless ``preflighted``: :func:`preflight` checked it in this run),
    record it, and retire what the previous install left behind.
    A carrier's superseded uploads (CAS) are listed in its record
    (``superseded``) until :func:`prune_superseded` removes them."""
    deployer = target.deployer
    client = env.aliyun_client(service.region)
    if not preflighted:
        deployer.preflight(client, target, managed.names)
    previous = managed.installed.get(target.id)
    options = {}
    carrier = _carrier(target, managed, service, env)
    if carrier is not None:
        options["carrier"] = carrier
    installation = deployer.install(client, target, managed.fullchain_pem(), managed.load_key(),
                                    label=f"{service.name}-{managed.serial_hex[:16]}", names=managed.names,
                                    **options)
    record = {**target.to_dict(), "serial_hex": managed.serial_hex,
              "installed_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "name": installation.name, "cert_id": installation.cert_id}
    if carrier is not None:
        record["via"] = service.delivery
    if deployer.carrier:
        superseded = list((previous or {}).get("superseded") or ())
        if previous and previous.get("cert_id") and previous.get("cert_id") != installation.cert_id:
            superseded.append({k: previous.get(k) for k in ("cert_id", "name", "serial_hex")})
        record["superseded"] = superseded
    managed = state.record_install(service.name, target.id, record)
    logger.info("%s: installed serial %s on %s", service.name, managed.serial_hex, target.id)
    try:
        deployer.retire(client, target, previous, installation)
    except AcmelabError as error:   # the new one is in place; the old one stays listed in the product
        logger.warning("%s: %s: could not remove the superseded certificate: %s", service.name, target.id, error)
    return managed


def install_and_verify(target: InstallTarget, managed: ManagedCertificate, service: Service,
                        env: Environment, state: StateDir, cancel: threading.Event | None, *,
                        preflighted: bool = False) -> tuple[ManagedCertificate, bool, bool, str]:
    """Bring one target to the live serial.  ``preflighted``: :func:`preflight`
    checked ``target`` in this run already, so an install does not check it
    again.  Returns (managed, installed?, verified?, a note saying what was
    found and done)."""
    record = managed.installed.get(target.id)
    if record and same_serial(record.get("serial_hex"), managed.serial_hex):
        if env.handshake(target, managed.names) is None:
            return managed, False, False, f"{target.id}: has serial {managed.serial_hex} (nothing to handshake with)"
        try:
            _verify(target, managed, env)
            return managed, False, True, f"{target.id}: serves serial {managed.serial_hex} (handshake verified)"
        except DeployError as error:
            logger.info("%s: %s serves something else (%s); installing again", service.name, target.id, error)
    if cancel is not None and cancel.is_set():
        raise Interrupted(f"interrupted before installing on {target.id}")
    managed = _install(target, managed, service, env, state, preflighted)
    via = " by CertId from " + service.delivery.upper() if managed.installed[target.id].get("via") else ""
    verified = _verify(target, managed, env)
    proof = "handshake verified" if verified else "nothing to handshake with"
    cert_id = managed.installed[target.id].get("cert_id")
    where = f"{target.id}, CertId {cert_id}" if target.deployer.carrier and cert_id else target.id
    return managed, True, verified, f"installed: {where} (serial {managed.serial_hex}{via}, {proof})"


def prune_superseded(service: Service, managed: ManagedCertificate, env: Environment,
                      state: StateDir) -> tuple[ManagedCertificate, list[str]]:
    """Once every target of ``service`` has the live version: delete the
    superseded uploads of each carrier target (CAS: ``DeleteUserCertificate``),
    keeping the newest ``service.keep_previous``.  One the product refuses
    to delete (still bound somewhere) stays listed for the next run.
    Returns (managed, notes)."""
    if not all(same_serial((managed.installed.get(t.id) or {}).get("serial_hex"), managed.serial_hex)
               for t in service.install):
        return managed, []
    notes = []
    for target in service.install:
        record = managed.installed.get(target.id) or {}
        superseded = list(record.get("superseded") or ())
        excess = len(superseded) - service.keep_previous
        if not target.deployer.carrier or excess <= 0:
            continue
        client = env.aliyun_client(service.region)
        refused = []
        for old in superseded[:excess]:
            try:
                target.deployer.delete(client, old)
            except AcmelabError as error:
                refused.append(old)
                notes.append(f"{target.id}: kept the superseded CertId {old.get('cert_id')}: {error}")
            else:
                notes.append(f"{target.id}: deleted the superseded CertId {old.get('cert_id')} "
                             f"(serial {old.get('serial_hex')})")
        managed = state.record_install(service.name, target.id, {**record, "superseded": refused + superseded[excess:]})
    return managed, notes
