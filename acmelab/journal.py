"""The DNS journal: every TXT record a service publishes is noted in the state directory.

A record is noted before it is published and forgotten once removed
(``dns-pending.json``), so a run killed outright leaves a list the next run
cleans up (:func:`remove_leftovers`).  A standing dns-persist-01 record
(draft-ietf-acme-dns-persist) is noted in the standing list instead
(:func:`standing_records`, :func:`remove_standing_records`; ``acmelab dns
persist list|remove``): it stays by design.

Records are removed only through a provider's public interface
(``cleanup(name, value)``, :mod:`acmelab.dns`): that value, nothing else.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from acmelab.challenges import is_standing
from acmelab.errors import Interrupted, StateError
from acmelab.state import StateDir

__all__ = ["JournaledDns", "remove_leftovers", "remove_standing_records", "standing_records"]

logger = logging.getLogger(__name__)


class JournaledDns:
    """The DnsProvider one service issues with: publishing stops once
    ``cancel`` is set (``cleanup`` always runs; issue_certificate removes
    what was published), and every record is noted in the state directory
    before it is published and forgotten once removed, so a run killed
    outright leaves a list the next run cleans up (:func:`remove_leftovers`).
    A standing dns-persist-01 record is noted in the standing list instead
    (``acmelab dns persist list|remove``): it stays by design.

    ``kind`` and ``region`` (the Alibaba Cloud region the provider was made
    for, None: the backend's) are noted with each record, so that it is
    removed later through the same provider on the same site."""

    def __init__(self, provider: Any, kind: str, state: StateDir, service: str,
                 cancel: threading.Event | None, region: str | None = None) -> None:
        self.provider = provider
        self.kind = kind
        self.region = region
        self.state = state
        self.service = service
        self.cancel = cancel
        self._lock = threading.Lock()
        self._written_at: dict[tuple[str, str], str] = {}
        if hasattr(provider, "wait_until_visible"):
            self.wait_until_visible = self._wait_until_visible

    def _check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Interrupted("interrupted before publishing the next DNS record")

    def _note(self, name: str, value: str, *, add: bool) -> None:
        entry = {"provider": self.kind, "name": name, "value": value}
        if self.region is not None:   # absent in older journals: the backend's region
            entry["region"] = self.region
        written_at = self._written_at.get((name, value), name)
        if written_at != name:      # a CNAME-delegated name: the record is at the chain's end
            entry["written_at"] = written_at
        read, write = ((self.state.standing_dns, self.state.set_standing_dns) if is_standing(name)
                       else (self.state.pending_dns, self.state.set_pending_dns))
        with self._lock:
            records = [r for r in read(self.service) if r != entry]
            write(self.service, records + [entry] if add else records)

    def present(self, name: str, value: str) -> None:
        self._check()
        record_name = getattr(self.provider, "record_name", None)
        if callable(record_name):     # where the record is written (CNAME delegation, acmelab.dns.alidns):
            # the provider's next present writes there, without looking the chain up again
            self._written_at[(name, value)] = record_name(name)
        self._note(name, value, add=True)
        self.provider.present(name, value)

    def cleanup(self, name: str, value: str) -> None:
        self.provider.cleanup(name, value)
        self._note(name, value, add=False)
        self._written_at.pop((name, value), None)

    def _wait_until_visible(self, name: str, value: str, timeout: float) -> None:
        self._check()
        self.provider.wait_until_visible(name, value, timeout)
        self._check()


def _where(record: dict[str, str]) -> str:
    """Where a journaled record was written: the end of a CNAME chain, else its name."""
    return record.get("written_at") or record["name"]


def _provider(providers: Callable[[str, str | None], Any], record: dict[str, str]) -> Any:
    """The provider a journaled record was published with: its kind, on its region's site."""
    return providers(record["provider"], record.get("region"))


def remove_leftovers(service_name: str, providers: Callable[[str, str | None], Any], state: StateDir) -> int:
    """Remove the TXT records an earlier, killed run published for the
    service ``service_name`` (``dns-pending.json``), each with
    ``providers(<provider name>, <region or None>).cleanup(name, value)`` --
    the provider's public interface (e.g. :meth:`acmelab.backends.Environment.dns_provider`).
    Returns how many were removed.

    Alibaba Cloud DNS: the record with exactly that value (DescribeSubDomainRecords,
    DeleteDomainRecord); challtestsrv (lab): that value, as its DNS server answers it."""
    leftovers = state.pending_dns(service_name)
    for record in leftovers:
        where = _where(record)
        _provider(providers, record).cleanup(where, record["value"])
        logger.warning("%s: removed TXT %s left by an interrupted run", service_name, where)
    state.set_pending_dns(service_name, [])
    return len(leftovers)


def standing_records(state: StateDir) -> list[dict[str, str]]:
    """Every dns-persist-01 record the certificates of ``state`` rely on:
    ``[{"certificate", "provider", "name", "value"}, ...]``."""
    return [{"certificate": name, **record} for name in state.certificate_names()
            for record in state.standing_dns(name)]


def remove_standing_records(state: StateDir, providers: Callable[[str, str | None], Any],
                            certificate: str) -> list[str]:
    """Remove the dns-persist-01 records of ``certificate`` from DNS
    (``providers(<provider name>, <region or None>).cleanup``: that value
    only, where it was written) and forget them.  The
    certificate keeps working; its next issuance publishes the record again.

    Returns:
        the record names removed.

    Raises:
        StateError: no such certificate.  DnsError, AliyunError: a record
            could not be removed (it stays listed).
    """
    if certificate not in state.certificate_names():
        raise StateError(f"no certificate named {certificate} in {state.root}")
    with state.lock(certificate):
        removed = []
        for record in state.standing_dns(certificate):
            _provider(providers, record).cleanup(_where(record), record["value"])
            state.set_standing_dns(certificate, [r for r in state.standing_dns(certificate) if r != record])
            removed.append(record["name"])
            logger.info("%s: removed the standing TXT %s", certificate, record["name"])
    return removed
