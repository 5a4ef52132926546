"""DNS-01 through Alibaba Cloud DNS (Alidns API 2015-01-09).

Theory of operation
-------------------
For each DNS-01 challenge (RFC 8555 §8.4) the client calls:

1. :meth:`AlidnsProvider.present` -- find the zone (``DescribeDomains``, all
   pages; the longest zone that is a suffix of the name, compared in A-label
   form), derive ``RR`` (the name relative to the zone) and ``AddDomainRecord``
   ``Type=TXT``, ``TTL=600``.  The ``RecordId`` is remembered, keyed by
   (name, value): a wildcard and its base name put two values on one name and
   each is a record of its own.
2. :meth:`AlidnsProvider.wait_until_visible` -- ask the zone's authoritative
   name servers until the value shows (:mod:`acmelab.dns.propagation`).
3. :meth:`AlidnsProvider.cleanup` -- ``DeleteDomainRecord`` by the remembered
   ``RecordId``.  If this process did not create it (a new process cleaning
   up after a crash), ``DescribeSubDomainRecords`` finds the records at the
   name and only a record of ``Type`` TXT whose ``Value`` equals ours exactly
   is deleted -- never another value, never a non-TXT record.

``DomainRecordDuplicate`` on ``present``: the TXT value is the SHA-256 of this
challenge's key authorization (token + account key thumbprint), so an
identical record can only be left over from an earlier attempt at this very
challenge.  It is treated as already present, and adopted -- ``cleanup``
deletes it.

Examples::

    provider = AlidnsProvider()      # ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET, real endpoint
    provider = AlidnsProvider.for_lab(lab_info)   # the offline lab endpoint
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import idna
from aliyunsdkalidns.request.v20150109.AddDomainRecordRequest import AddDomainRecordRequest
from aliyunsdkalidns.request.v20150109.DeleteDomainRecordRequest import DeleteDomainRecordRequest
from aliyunsdkalidns.request.v20150109.DescribeDomainsRequest import DescribeDomainsRequest
from aliyunsdkalidns.request.v20150109.DescribeSubDomainRecordsRequest import DescribeSubDomainRecordsRequest

from acmelab.aliyun import AliyunClient, Credentials
from acmelab.dns.propagation import Server, wait_for_txt
from acmelab.errors import AliyunError, DnsError, InputError

logger = logging.getLogger(__name__)

API_VERSION = "2015-01-09"
#: TTL of the TXT records we add, seconds (the smallest the free edition allows)
TXT_TTL = 600
#: the largest PageSize DescribeDomains accepts
DOMAINS_PAGE_SIZE = 100
RECORDS_PAGE_SIZE = 500


def a_label(name: str) -> str:
    """Lower-case A-label form of ``name`` without trailing dot; labels that
    are not IDNA (``_acme-challenge``, ``*``) are kept as they are.

    Raises:
        InputError: a label cannot be converted to an A-label.
    """
    labels = name.strip().rstrip(".").lower().split(".")
    result = []
    for label in labels:
        if label.isascii():
            result.append(label)
            continue
        try:
            result.append(idna.encode(label, uts46=True).decode("ascii"))
        except idna.IDNAError as error:
            raise InputError(f"{name!r} is not a valid domain name: {error}") from None
    return ".".join(result)


@dataclass(frozen=True)
class Zone:
    """One zone of the account, as DescribeDomains lists it.

    Attributes:
        domain_name: Alibaba's ``DomainName`` (Unicode for IDN zones); pass
            this as ``DomainName`` to the record actions.
        puny_code: the A-label form (``PunyCode``), used for comparisons.
        domain_id: Alibaba's ``DomainId``.
        dns_servers: Alibaba name servers assigned to the zone.
    """

    domain_name: str
    puny_code: str
    domain_id: str = ""
    dns_servers: tuple[str, ...] = ()

    def relative_name(self, name: str) -> str:
        """``RR`` of ``name`` (A-label) in this zone: ``"@"`` for the apex."""
        if name == self.puny_code:
            return "@"
        return name[: -(len(self.puny_code) + 1)]


class AlidnsProvider:
    """DNS-01 provider for Alibaba Cloud DNS (implements
    :class:`acmelab.dns.DnsProvider` and ``wait_until_visible``).

    Args:
        access_key_id, access_key_secret: the access key; default from
            ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET``
            (or ``ALIYUN_ACCESS_KEY_ID`` / ``ALIYUN_ACCESS_KEY_SECRET``).
        endpoint: API host (``"host:port"``); default ``alidns.aliyuncs.com``.
            Always HTTPS.
        region_id: ``RegionId`` sent with the calls.
        verify: ``True`` or a CA bundle path (the lab's ``ca_bundle``).
        nameservers: ``[(address, port), ...]`` for the propagation check;
            default: the zone's authoritative servers (NS lookup).
        client: an :class:`acmelab.aliyun.AliyunClient` to use instead of
            building one (the other connection arguments are then ignored).
        max_retries, backoff: throttling retries (see AliyunClient).

    Raises:
        InputError: missing credentials, a ``verify`` that would switch TLS checks off, an ``http://`` endpoint.
    """

    def __init__(self, access_key_id: str | None = None, access_key_secret: str | None = None, *,
                 endpoint: str | None = None, region_id: str = "cn-hangzhou",
                 verify: bool | str | Path = True,
                 nameservers: Iterable[Server] | Server | None = None,
                 client: AliyunClient | None = None, max_retries: int = 5, backoff: float = 0.5,
                 propagation_interval: float = 2.0) -> None:
        if client is None:
            credentials = Credentials.resolve(access_key_id, access_key_secret)
            client = AliyunClient(credentials, region_id=region_id, endpoint=endpoint, verify=verify,
                                  max_retries=max_retries, backoff=backoff)
        self.client = client
        if nameservers is not None and isinstance(nameservers, tuple) and len(nameservers) == 2 \
                and isinstance(nameservers[1], int):
            nameservers = [nameservers]          # a single (host, port)
        self.nameservers: list[Server] | None = [tuple(s) for s in nameservers] if nameservers is not None else None  # type: ignore[misc]
        self.propagation_interval = propagation_interval
        #: PageSize of DescribeDomains (Alibaba's maximum; smaller only to test paging)
        self.domains_page_size = DOMAINS_PAGE_SIZE
        self._zones: list[Zone] | None = None
        self._records: dict[tuple[str, str], tuple[Zone, str]] = {}   # (name, value) -> (zone, RecordId)
        self._lock = threading.Lock()
        self._zones_lock = threading.Lock()

    @classmethod
    def for_lab(cls, info: Any, **kwargs: Any) -> "AlidnsProvider":
        """A provider talking to the lab's endpoint (``info``: :class:`acmelab.lab.LabInfo`)."""
        if not info.aliyun_endpoint:
            raise InputError("this lab runs without the Alibaba Cloud endpoint (aliyun=False)")
        return cls(info.aliyun_access_key_id, info.aliyun_access_key_secret,
                   endpoint=info.aliyun_endpoint, verify=info.ca_bundle,
                   nameservers=[tuple(info.dns_server)], **kwargs)

    def __repr__(self) -> str:
        return f"AlidnsProvider({self.client!r})"

    # -- zones -------------------------------------------------------------
    def zones(self, *, refresh: bool = False) -> list[Zone]:
        """Every zone of the account (DescribeDomains, all pages, PageSize 100).

        Raises:
            AliyunError (and subclasses).
        """
        with self._zones_lock:  # names published concurrently share one lookup
            if self._zones is not None and not refresh:
                return self._zones
            return self._describe_domains()

    def _describe_domains(self) -> list[Zone]:
        zones: list[Zone] = []
        page = 1
        while True:
            request = DescribeDomainsRequest()
            request.set_PageNumber(page)
            request.set_PageSize(self.domains_page_size)
            answer = self.client.send(request)
            for domain in answer.get("Domains", {}).get("Domain", []):
                name = str(domain["DomainName"])
                puny = a_label(str(domain.get("PunyCode") or name))
                servers = tuple(domain.get("DnsServers", {}).get("DnsServer", []))
                zones.append(Zone(name, puny, str(domain.get("DomainId", "")), servers))
            total = int(answer.get("TotalCount", 0))
            if page * self.domains_page_size >= total or not answer.get("Domains", {}).get("Domain"):
                break
            page += 1
        self._zones = zones
        logger.debug("Alibaba Cloud DNS zones: %s", ", ".join(z.puny_code for z in zones))
        return zones

    def find_zone(self, name: str) -> tuple[Zone, str]:
        """The zone holding ``name`` and the ``RR`` of ``name`` in it.

        The longest zone that equals ``name`` or is a suffix of it at a label
        boundary wins, so a separately hosted sub-zone (``dev.example.com``)
        beats its parent; names are compared in A-label form.

        Raises:
            DnsError: no zone of the account holds ``name``.
        """
        wanted = a_label(name)
        for refresh in (False, True):
            matches = [z for z in self.zones(refresh=refresh)
                       if wanted == z.puny_code or wanted.endswith("." + z.puny_code)]
            if matches:
                zone = max(matches, key=lambda z: len(z.puny_code))
                return zone, zone.relative_name(wanted)
        raise DnsError(f"no zone of this Alibaba Cloud DNS account holds {name} "
                       f"(the account has {len(self._zones or [])} zones; add the domain in the Alibaba Cloud DNS console)")

    # -- DnsProvider ---------------------------------------------------------
    def present(self, name: str, value: str) -> None:
        """Publish TXT ``value`` at ``name`` (AddDomainRecord, TTL 600).

        Raises:
            DnsError: no zone holds ``name``.
            AliyunError (and subclasses): the API refused the call.
        """
        fqdn = a_label(name)
        zone, rr = self.find_zone(fqdn)
        request = AddDomainRecordRequest()
        request.set_DomainName(zone.domain_name)
        request.set_RR(rr)
        request.set_Type("TXT")
        request.set_Value(value)
        request.set_TTL(TXT_TTL)
        try:
            record_id = str(self.client.send(request)["RecordId"])
        except AliyunError as error:
            if error.code != "DomainRecordDuplicate":
                raise
            record_id = self._find_record_id(zone, fqdn, value)
            if record_id is None:
                raise
            logger.info("TXT %s = %s already exists (RecordId %s); adopting it", fqdn, value, record_id)
        with self._lock:
            self._records[(fqdn, value)] = (zone, record_id)
        logger.info("added TXT %s = %s in zone %s (RR %s, RecordId %s)", fqdn, value, zone.puny_code, rr, record_id)

    def cleanup(self, name: str, value: str) -> None:
        """Remove the TXT record (``name``, ``value``) -- only that one.

        Deletes by the remembered RecordId; otherwise looks the record up
        (DescribeSubDomainRecords) and deletes only a TXT record with exactly
        this value.  A record that is already gone is not an error.

        Raises:
            AliyunError (and subclasses): the API refused the call.
        """
        fqdn = a_label(name)
        with self._lock:
            remembered = self._records.pop((fqdn, value), None)
        if remembered is not None:
            record_ids = [remembered[1]]
        else:
            try:
                zone, _rr = self.find_zone(fqdn)
            except DnsError:
                logger.info("cleanup: no zone holds %s; nothing to delete", fqdn)
                return
            record_ids = self._find_record_ids(zone, fqdn, value)
        for record_id in record_ids:
            request = DeleteDomainRecordRequest()
            request.set_RecordId(record_id)
            try:
                self.client.send(request)
            except AliyunError as error:
                if error.code != "DomainRecordNotBelongToUser":
                    raise
                logger.info("TXT record %s (%s) was already deleted", record_id, fqdn)
                continue
            logger.info("deleted TXT %s = %s (RecordId %s)", fqdn, value, record_id)

    def wait_until_visible(self, name: str, value: str, timeout: float = 120.0) -> None:
        """Return once TXT ``value`` is answered at ``name`` by every
        authoritative server (the ``nameservers`` given, or the zone's NS --
        or, if ``name`` is a CNAME, the NS of the target's zone), following a
        CNAME at ``name`` (RFC 8555 §8.4 delegated validation).

        Raises:
            DnsError: not visible within ``timeout`` seconds.
        """
        fqdn = a_label(name)
        zone = None if self.nameservers is not None else self.find_zone(fqdn)[0].puny_code
        wait_for_txt(fqdn, value, nameservers=self.nameservers, zone=zone, timeout=timeout,
                     interval=self.propagation_interval)

    # -- helpers -----------------------------------------------------------
    def sub_domain_records(self, zone: Zone, fqdn: str) -> list[dict[str, Any]]:
        """Every record at ``fqdn`` in ``zone`` (DescribeSubDomainRecords, all pages)."""
        records: list[dict[str, Any]] = []
        page = 1
        while True:
            request = DescribeSubDomainRecordsRequest()
            request.set_SubDomain(fqdn)
            request.set_DomainName(zone.domain_name)
            request.set_PageNumber(page)
            request.set_PageSize(RECORDS_PAGE_SIZE)
            answer = self.client.send(request)
            batch = answer.get("DomainRecords", {}).get("Record", [])
            records.extend(batch)
            if not batch or page * RECORDS_PAGE_SIZE >= int(answer.get("TotalCount", 0)):
                return records
            page += 1

    def _find_record_ids(self, zone: Zone, fqdn: str, value: str) -> list[str]:
        return [str(r["RecordId"]) for r in self.sub_domain_records(zone, fqdn)
                if r.get("Type") == "TXT" and r.get("Value") == value]

    def _find_record_id(self, zone: Zone, fqdn: str, value: str) -> str | None:
        found = self._find_record_ids(zone, fqdn, value)
        return found[0] if found else None
