"""Client of pebble-challtestsrv's management API (the lab's mock DNS).

pebble-challtestsrv answers DNS queries on a loopback port (the lab's
``dns_server``) from records set over a small HTTP management API (the lab's
``challtestsrv_url``).  Pebble's validation authority is pointed at that DNS
server (``pebble -dnsserver``), so a TXT record set here is what Pebble sees
when it validates a DNS-01 challenge (RFC 8555 §8.4).

Every request is ``POST <url>/<endpoint>`` with a JSON body; host names are
sent fully qualified (a trailing dot is added when missing).

Behaviour of TXT records, observed on pebble-challtestsrv 2.4.0 (and pinned by
tests/integration/test_lab.py):

* ``set_txt(host, value)`` **appends**: setting two different values on one
  host makes the DNS server answer both TXT records (exactly what DNS-01 for
  ``example.com`` plus ``*.example.com`` needs).  Setting the same value twice
  stores it twice.
* ``clear_txt(host)`` removes **all** TXT values of that host; there is no way
  to remove a single value.  To delete one value while keeping the others,
  clear the host and set the remaining values again
  (:meth:`ChallTestSrv.replace_txt` does that).
"""

from __future__ import annotations

from typing import Any, Iterable

import requests

from acmelab.errors import LabError


def _fqdn(host: str) -> str:
    host = host.strip()
    if not host:
        raise LabError("pebble-challtestsrv: empty host name")
    return host if host.endswith(".") else host + "."


class ChallTestSrv:
    """Talk to pebble-challtestsrv's management API.

    Args:
        url: the management base URL, e.g. ``"http://127.0.0.1:8055"``
            (:attr:`acmelab.lab.LabInfo.challtestsrv_url`).
        timeout: seconds per HTTP request.

    Raises (every method):
        LabError: the server could not be reached or answered non-2xx.
    """

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()

    def __repr__(self) -> str:
        return f"ChallTestSrv({self.url!r})"

    def _post(self, endpoint: str, body: dict[str, Any]) -> requests.Response:
        try:
            response = self._session.post(f"{self.url}/{endpoint}", json=body, timeout=self.timeout)
        except requests.RequestException as error:
            raise LabError(f"pebble-challtestsrv at {self.url} is not reachable: {error}") from error
        if not 200 <= response.status_code < 300:
            raise LabError(
                f"pebble-challtestsrv {endpoint} answered HTTP {response.status_code}: {response.text.strip()[:200]}"
            )
        return response

    # -- TXT (DNS-01, RFC 8555 §8.4) ------------------------------------
    def set_txt(self, host: str, value: str) -> None:
        """Add TXT ``value`` to ``host`` (appends; see the module docstring)."""
        self._post("set-txt", {"host": _fqdn(host), "value": value})

    def clear_txt(self, host: str) -> None:
        """Remove every TXT value of ``host``."""
        self._post("clear-txt", {"host": _fqdn(host)})

    def replace_txt(self, host: str, values: Iterable[str]) -> None:
        """Make ``values`` exactly the TXT values of ``host`` (clear, then set
        each); an empty ``values`` just clears."""
        self.clear_txt(host)
        for value in values:
            self.set_txt(host, value)

    # -- A / AAAA ------------------------------------------------------
    def add_a(self, host: str, addresses: list[str]) -> None:
        """Answer A queries for ``host`` with ``addresses`` (IPv4 strings)."""
        self._post("add-a", {"host": _fqdn(host), "addresses": list(addresses)})

    def clear_a(self, host: str) -> None:
        """Remove the A records of ``host`` (falls back to the default IPv4)."""
        self._post("clear-a", {"host": _fqdn(host)})

    def add_aaaa(self, host: str, addresses: list[str]) -> None:
        """Answer AAAA queries for ``host`` with ``addresses`` (IPv6 strings)."""
        self._post("add-aaaa", {"host": _fqdn(host), "addresses": list(addresses)})

    def clear_aaaa(self, host: str) -> None:
        """Remove the AAAA records of ``host``."""
        self._post("clear-aaaa", {"host": _fqdn(host)})

    def set_default_ipv4(self, address: str) -> None:
        """The IPv4 address answered for hosts without an A record ("" = none)."""
        self._post("set-default-ipv4", {"ip": address})

    def set_default_ipv6(self, address: str) -> None:
        """The IPv6 address answered for hosts without an AAAA record ("" = none)."""
        self._post("set-default-ipv6", {"ip": address})

    # -- CNAME -----------------------------------------------------------
    def set_cname(self, host: str, target: str) -> None:
        """Answer ``host`` with a CNAME to ``target`` (replaces any earlier one)."""
        self._post("set-cname", {"host": _fqdn(host), "target": _fqdn(target)})

    def clear_cname(self, host: str) -> None:
        """Remove the CNAME of ``host``."""
        self._post("clear-cname", {"host": _fqdn(host)})

    # -- CAA (RFC 8659) ------------------------------------------------
    def add_caa(self, host: str, policies: list[dict[str, str]]) -> None:
        """Answer CAA queries for ``host``; each policy is
        ``{"tag": "issue", "value": "pebble.letsencrypt.org"}``."""
        self._post("add-caa", {"host": _fqdn(host), "policies": list(policies)})

    def clear_caa(self, host: str) -> None:
        """Remove the CAA records of ``host``."""
        self._post("clear-caa", {"host": _fqdn(host)})

    # -- failures --------------------------------------------------------
    def set_servfail(self, host: str) -> None:
        """Answer every query for ``host`` with SERVFAIL."""
        self._post("set-servfail", {"host": _fqdn(host)})

    def clear_servfail(self, host: str) -> None:
        """Stop answering SERVFAIL for ``host``."""
        self._post("clear-servfail", {"host": _fqdn(host)})

    # -- history ---------------------------------------------------------
    def dns_request_history(self, host: str) -> list[dict[str, Any]]:
        """The DNS questions the server received for ``host`` (list of dicts
        as pebble-challtestsrv reports them, e.g. ``{"Name": ..., "Qtype": 16}``)."""
        response = self._post("dns-request-history", {"host": _fqdn(host)})
        return list(response.json() or [])

    def clear_request_history(self, host: str, kind: str = "dns") -> None:
        """Forget the recorded requests of ``kind`` ("dns", "http", "tlsalpn") for ``host``."""
        self._post("clear-request-history", {"host": _fqdn(host), "type": kind})
