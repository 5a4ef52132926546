"""One owner per install target: the certificate installed there last.

Two certificates must never install over each other.  The owner of a target
is read from the state directory (:func:`target_owners`: of the
certificates whose meta.json records an install there, the one installed
last); the engine (:mod:`acmelab.engine`) refuses a services-file service
that claims another's target and makes a stored one give it up
(:func:`forget_target`).  :func:`check_not_taken_over` keeps a services file
from taking over a certificate ``acmelab issue`` made under the same name.
"""

from __future__ import annotations

import dataclasses

from acmelab.config import InstallTarget, Service
from acmelab.errors import ConfigError, StateError
from acmelab.state import ManagedCertificate, StateDir

__all__ = ["check_not_taken_over", "forget_target", "target_owners"]


def target_owners(state: StateDir) -> dict[str, str]:
    """Target id -> the certificate that owns it: of the certificates whose
    meta.json records an install there, the one installed last (ties: the
    first name).  Unreadable certificates are skipped."""
    latest: dict[str, tuple[str, str]] = {}
    for name in state.certificate_names():
        try:
            managed = state.certificate(name, check_files=False)
        except StateError:
            continue
        for target_id, record in (managed.installed if managed else {}).items():
            when = str(record.get("installed_at") or "")
            if target_id not in latest or when > latest[target_id][0]:
                latest[target_id] = (when, name)
    return {target_id: name for target_id, (_, name) in latest.items()}


def forget_target(state: StateDir, name: str, target_id: str) -> ManagedCertificate | None:
    """Remove ``target_id`` from the certificate ``name`` (its install record
    and its spec), so that ``renew`` no longer installs it there.  Call with
    that certificate's lock held.  Returns the updated certificate (None if
    there is none)."""
    managed = state.certificate(name, check_files=False)
    if managed is None:
        return None
    spec = dict(managed.service)
    if spec.get("install"):
        spec["install"] = [t for t in spec["install"] if InstallTarget.from_dict(t).id != target_id]
    installed = {k: v for k, v in managed.installed.items() if k != target_id}
    if spec == managed.service and installed == managed.installed:
        return managed
    managed = dataclasses.replace(managed, service=spec, installed=installed)
    state.write_meta(managed)
    return managed


def check_not_taken_over(service: Service, managed: ManagedCertificate | None) -> None:
    """A services file must not silently take over a certificate that
    ``acmelab issue`` made under the same name for other names.

    Raises ConfigError naming the clash (the service fails; the stored
    certificate is left as it is)."""
    if managed is None or service.origin != "services" or managed.service.get("origin") != "issue":
        return
    if tuple(managed.names) != tuple(service.domains):
        raise ConfigError(
            f"certificate name {service.name!r} is taken by a certificate made with 'acmelab issue' for "
            f"{', '.join(managed.names)}; give this service another name (name = \"...\") or remove "
            f"{managed.version_dir.parent} first")
