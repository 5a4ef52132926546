"""A DNS-01 provider on the lab's mock DNS, pebble-challtestsrv.

Records go in through pebble-challtestsrv's management API
(:class:`acmelab.lab.challtestsrv.ChallTestSrv`); Pebble's validation
authority queries its DNS port, which is also where
:meth:`ChallTestSrvProvider.wait_until_visible` looks (with dnspython).

pebble-challtestsrv can only *clear all* TXT values of a name, so this
provider remembers the values it published per name, and ``cleanup`` clears
the name and publishes the remaining values again.
"""

from __future__ import annotations

import threading
import time

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from acmelab.errors import DnsError, LabError
from acmelab.lab.challtestsrv import ChallTestSrv

__all__ = ["ChallTestSrvProvider"]


class ChallTestSrvProvider:
    """DnsProvider (see :mod:`acmelab.dns`) backed by pebble-challtestsrv.

    Args:
        challtestsrv: the management API URL (the lab's
            ``challtestsrv_url``, e.g. ``"http://127.0.0.1:8055"``) or a
            :class:`~acmelab.lab.challtestsrv.ChallTestSrv`.
        dns_server: ``(host, port)`` of its DNS server (the lab's
            ``dns_server``), for :meth:`wait_until_visible`.

    ``LabInfo`` has both: ``ChallTestSrvProvider.for_lab(info)``.
    """

    def __init__(self, challtestsrv: str | ChallTestSrv, dns_server: tuple[str, int] | None = None) -> None:
        self.server = challtestsrv if isinstance(challtestsrv, ChallTestSrv) else ChallTestSrv(challtestsrv)
        self.dns_server = dns_server
        self._published: dict[str, list[str]] = {}
        # cleanup is clear-then-set-again: one name at a time across threads
        self._lock = threading.Lock()

    @classmethod
    def for_lab(cls, info: object) -> "ChallTestSrvProvider":
        """The provider for a running lab (an :class:`acmelab.lab.LabInfo`)."""
        return cls(getattr(info, "challtestsrv_url"), tuple(getattr(info, "dns_server")))

    def __repr__(self) -> str:
        return f"ChallTestSrvProvider({self.server.url!r}, dns_server={self.dns_server!r})"

    @property
    def published(self) -> dict[str, list[str]]:
        """A copy of the records this provider has up: name -> TXT values."""
        return {name: list(values) for name, values in self._published.items() if values}

    def present(self, name: str, value: str) -> None:
        """Add TXT ``value`` at ``name`` (other values stay).  Raises DnsError."""
        with self._lock:
            try:
                self.server.set_txt(name, value)
            except LabError as error:
                raise DnsError(f"could not publish TXT at {name}: {error}") from error
            self._published.setdefault(name.rstrip("."), []).append(value)

    def cleanup(self, name: str, value: str) -> None:
        """Remove TXT ``value`` at ``name`` and keep the name's other values.
        A record this provider did not publish (an earlier run's) is found
        by asking the DNS server.  Removing a value that is not published
        does nothing.  Raises DnsError."""
        name = name.rstrip(".")
        with self._lock:
            values = self._published.get(name)
            if values is None and self.dns_server is not None:
                values = self.txt_values(name)   # published by another run (or process)
            values = values or []
            if value not in values:
                return
            remaining = list(values)
            remaining.remove(value)
            try:
                self.server.replace_txt(name, remaining)
            except LabError as error:  # still tracked, so a later cleanup can retry
                raise DnsError(f"could not remove TXT at {name}: {error}") from error
            if remaining:
                self._published[name] = remaining
            else:
                self._published.pop(name, None)

    def txt_values(self, name: str) -> list[str]:
        """The TXT values the DNS server answers for ``name`` now (one UDP
        query).  Raises DnsError (no dns_server, or no answer)."""
        if self.dns_server is None:
            raise DnsError("this provider has no dns_server to query")
        host, port = self.dns_server
        query = dns.message.make_query(name.rstrip(".") + ".", dns.rdatatype.TXT)
        try:
            answer = dns.query.udp(query, host, port=port, timeout=2.0)
        except (dns.exception.DNSException, OSError) as error:
            raise DnsError(f"the DNS server {host}:{port} did not answer for {name}: {error}") from error
        return [b"".join(rdata.strings).decode("ascii", "replace")
                for rrset in answer.answer if rrset.rdtype == dns.rdatatype.TXT for rdata in rrset]

    def wait_until_visible(self, name: str, value: str, timeout: float = 10.0) -> None:
        """Return once the DNS server answers TXT ``value`` for ``name``.
        Raises DnsError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                if value in self.txt_values(name):
                    return
            except DnsError:
                if time.monotonic() >= deadline:
                    raise
            if time.monotonic() + delay > deadline:
                raise DnsError(f"TXT {value!r} at {name} is not visible after {timeout:g} s")
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
