"""DNS-01 through Alibaba Cloud DNS (Alidns API 2015-01-09).

Theory of operation
-------------------
For each DNS-01 challenge (RFC 8555 §8.4) the client calls:

1. :meth:`AlidnsProvider.present` -- follow the CNAME chain of the name
   (:meth:`AlidnsProvider.record_name`; CNAME delegation, RFC 8555 §8.4: the
   CA follows ``_acme-challenge.shop.example.com CNAME
   _acme-challenge.shop.example.net``, so the TXT record belongs at the
   chain's end), find the zone of that name (``DescribeDomains``, all pages;
   the longest zone that is a suffix of the name, compared in A-label form),
   derive ``RR`` (the name relative to the zone) and ``AddDomainRecord``
   ``Type=TXT``, ``TTL=600``.  The ``RecordId`` is remembered, keyed by
   (name, value): a wildcard and its base name put two values on one name and
   each is a record of its own.  A CNAME target outside the account's zones
   is :class:`~acmelab.errors.DelegatedZoneMissing`, found before anything is
   written (:meth:`AlidnsProvider.check_names` finds it before an order).
2. :meth:`AlidnsProvider.wait_until_visible` -- ask the authoritative name
   servers until the value shows (:mod:`acmelab.dns.propagation`): the
   given ones at the validation name, following its CNAME as the CA does,
   else those of the zone the record was written in.
3. :meth:`AlidnsProvider.cleanup` -- ``DeleteDomainRecord`` by the remembered
   ``RecordId``.  If this process did not create it (a new process cleaning
   up after a crash, given the validation name or the name the record was
   written at), ``DescribeSubDomainRecords`` finds the records at the chain's
   end and only a record of ``Type`` TXT whose ``Value`` equals ours exactly
   is deleted -- never another value, never a non-TXT record.

``DomainRecordDuplicate`` on ``present``: the TXT value is the SHA-256 of this
challenge's key authorization (token + account key thumbprint), so an
identical record can only be left over from an earlier attempt at this very
challenge.  It is treated as already present, and adopted -- ``cleanup``
deletes it.

Examples::

    provider = AlidnsProvider()      # ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET (or a token, role...), real endpoint
    provider = AlidnsProvider(profile="ops")      # a profile of the aliyun CLI's config.json
    provider = AlidnsProvider.for_lab(lab_info)   # the offline lab endpoint
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import dns.exception
import dns.resolver
from aliyunsdkalidns.request.v20150109.AddDomainRecordRequest import AddDomainRecordRequest
from aliyunsdkalidns.request.v20150109.DeleteDomainRecordRequest import DeleteDomainRecordRequest
from aliyunsdkalidns.request.v20150109.DescribeDomainsRequest import DescribeDomainsRequest
from aliyunsdkalidns.request.v20150109.DescribeSubDomainRecordsRequest import DescribeSubDomainRecordsRequest

from acmelab.aliyun import AliyunClient, resolve_credentials
from acmelab.csr import ascii_name
from acmelab.dns.propagation import Server, cname_chain, wait_for_txt
from acmelab.errors import AliyunError, DelegatedZoneMissing, DnsError, ZoneMissing

logger = logging.getLogger(__name__)

API_VERSION = "2015-01-09"
#: TTL of the TXT records we add, seconds (the smallest the free edition allows)
TXT_TTL = 600
#: the largest PageSize DescribeDomains accepts
DOMAINS_PAGE_SIZE = 100
RECORDS_PAGE_SIZE = 500


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
        access_key_id, access_key_secret: the access key; default
            :func:`acmelab.aliyun.resolve_credentials` (``ALIBABA_CLOUD_ACCESS_KEY_ID`` /
            ``ALIBABA_CLOUD_ACCESS_KEY_SECRET``, ``ALIBABA_CLOUD_SECURITY_TOKEN``,
            ``ALIBABA_CLOUD_ROLE_ARN``, a profile, the ECS instance role).
        profile: a profile of the ``aliyun`` CLI's ``~/.aliyun/config.json``.
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
                 profile: str | None = None, endpoint: str | None = None, region_id: str = "cn-hangzhou",
                 verify: bool | str | Path = True,
                 nameservers: Iterable[Server] | Server | None = None,
                 client: AliyunClient | None = None, max_retries: int = 5, backoff: float = 0.5,
                 propagation_interval: float = 2.0) -> None:
        if client is None:
            credentials = resolve_credentials(access_key_id, access_key_secret, profile=profile)
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
        self._records: dict[tuple[str, str], tuple[Zone, str, str]] = {}   # (name, value) -> (zone, RecordId, written at)
        self._chains: dict[str, tuple[str, ...]] = {}   # validation name -> CNAME chain record_name found
        self._lock = threading.Lock()
        self._zones_lock = threading.Lock()

    @classmethod
    def for_lab(cls, info: Any, **kwargs: Any) -> "AlidnsProvider":
        """A provider talking to the lab's endpoint (``info``: :class:`acmelab.lab.LabInfo`;
        :meth:`AliyunClient.for_lab`) and checking propagation at the lab's DNS
        server.  ``kwargs``: ``region_id``, ``max_retries``, ``backoff`` for
        the client, the other provider arguments.  Raises ConfigError for a
        lab without the Alibaba endpoint."""
        options = {name: kwargs.pop(name) for name in ("region_id", "max_retries", "backoff") if name in kwargs}
        return cls(client=AliyunClient.for_lab(info, **options), nameservers=[tuple(info.dns_server)], **kwargs)

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
                puny = ascii_name(str(domain.get("PunyCode") or name))
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
        wanted = ascii_name(name)
        for refresh in (False, True):
            matches = [z for z in self.zones(refresh=refresh)
                       if wanted == z.puny_code or wanted.endswith("." + z.puny_code)]
            if matches:
                zone = max(matches, key=lambda z: len(z.puny_code))
                return zone, zone.relative_name(wanted)
        raise ZoneMissing(f"no zone of this Alibaba Cloud DNS account holds {name} "
                       f"(the account has {len(self._zones or [])} zones; add the domain in the Alibaba Cloud DNS console)")

    # -- DnsProvider ---------------------------------------------------------
    def present(self, name: str, value: str) -> None:
        """Publish TXT ``value`` at ``name``, or at the end of its CNAME chain
        (AddDomainRecord, TTL 600).

        Raises:
            DelegatedZoneMissing: ``name`` is a CNAME into a zone the account does not hold.
            DnsError: no zone holds ``name``; a CNAME loop or more than
                :data:`acmelab.dns.propagation.MAX_CNAME_HOPS` hops; the name
                servers did not answer (never taken for "no CNAME").
            AliyunError (and subclasses): the API refused the call.
        """
        fqdn = ascii_name(name)
        with self._lock:
            found = self._chains.pop(fqdn, None)      # record_name's lookup, if it just made one
        target, zone, rr = self._delegated_zone(fqdn, found=found)
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
            record_id = self._find_record_id(zone, target, value)
            if record_id is None:
                raise
            logger.info("TXT %s = %s already exists (RecordId %s); adopting it", target, value, record_id)
        with self._lock:
            self._records[(fqdn, value)] = (zone, record_id, target)
        via = f" (CNAME target of {fqdn})" if target != fqdn else ""
        logger.info("added TXT %s = %s%s in zone %s (RR %s, RecordId %s)", target, value, via, zone.puny_code,
                    rr, record_id)

    def cleanup(self, name: str, value: str) -> None:
        """Remove the TXT record (``name``, ``value``) -- only that one.

        Deletes by the remembered RecordId; otherwise follows ``name``'s
        CNAME chain as :meth:`present` did (``name`` may also be the name the
        record was written at, :meth:`record_name`), looks the record up
        (DescribeSubDomainRecords) and deletes only a TXT record with exactly
        this value.  A record that is already gone is not an error.

        Raises:
            AliyunError (and subclasses): the API refused the call.
        """
        fqdn = ascii_name(name)
        with self._lock:
            remembered = self._records.pop((fqdn, value), None)
            self._chains.pop(fqdn, None)
        if remembered is not None:
            record_ids, target = [remembered[1]], remembered[2]
        else:
            try:
                target, zone, _rr = self._delegated_zone(fqdn)
            except DnsError as error:
                logger.info("cleanup: %s; nothing to delete", error)
                return
            record_ids = self._find_record_ids(zone, target, value)
        fqdn = target
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
        """Return once TXT ``value`` is answered by every authoritative
        server: the ``nameservers`` given, asked at ``name`` and following its
        CNAME as the CA does (RFC 8555 §8.4), else the NS of the zone the
        record was written in, asked at the end of the CNAME chain.

        Raises:
            DnsError: not visible within ``timeout`` seconds.
        """
        fqdn = ascii_name(name)
        if self.nameservers is not None:      # the CA's view: the validation name, CNAME followed
            wait_for_txt(fqdn, value, nameservers=self.nameservers, timeout=timeout,
                         interval=self.propagation_interval)
            return
        with self._lock:
            remembered = self._records.get((fqdn, value))
        if remembered is not None:
            zone, target = remembered[0], remembered[2]
        else:
            target, zone, _rr = self._delegated_zone(fqdn)
        # the servers of the zone the record is in, asked at the name it is at (the chain's end)
        wait_for_txt(target, value, zone=zone.puny_code, timeout=timeout, interval=self.propagation_interval,
                     follow_cname=False)

    # -- CNAME delegation ------------------------------------------------------
    def record_name(self, name: str) -> str:
        """Where :meth:`present` writes the TXT record for validation name
        ``name``: the end of its CNAME chain (``name`` itself if none).
        A journal of published records keeps this name; :meth:`cleanup`
        accepts it as well as ``name``.

        The chain found is kept for the next :meth:`present` (or
        :meth:`cleanup`) of ``name``, which writes exactly there: the journal's
        name and the record's place agree, and the chain is looked up once.

        Raises:
            DnsError: as :func:`acmelab.dns.propagation.cname_chain`.
        """
        fqdn = ascii_name(name)
        chain = cname_chain(fqdn, self.nameservers)
        with self._lock:
            self._chains[fqdn] = chain
        return chain[-1]

    def check_names(self, names: Iterable[str]) -> None:
        """Before ordering: every ``_acme-challenge.<name>`` (wildcards
        without ``*.``) can be written, directly or at the end of its CNAME
        chain, in a zone of this account.  Looks only (DescribeDomains, DNS).

        Raises:
            DelegatedZoneMissing, DnsError: as :meth:`present` would.
        """
        for name in dict.fromkeys(ascii_name(n).removeprefix("*.") for n in names):
            self._delegated_zone(f"_acme-challenge.{name}")

    def _delegated_zone(self, fqdn: str, *, found: tuple[str, ...] | None = None) -> tuple[str, Zone, str]:
        """(name the record belongs at, its zone, its RR) for validation name
        ``fqdn``; ``found``: its CNAME chain if already looked up."""
        self.zones()        # the account first: a refused key is reported before any DNS lookup
        chain = found or cname_chain(fqdn, self.nameservers)
        target = chain[-1]
        try:
            zone, rr = self.find_zone(target)
        except DnsError:
            if target == fqdn:
                raise
            raise DelegatedZoneMissing(fqdn, target, self._zone_guess(target), chain) from None
        if target != fqdn:
            logger.info("%s is delegated by CNAME to %s (zone %s)", fqdn, target, zone.puny_code)
        return target, zone, rr

    def _zone_guess(self, name: str) -> str:
        """The zone holding ``name`` as DNS tells it (the SOA owner, system
        resolver), else the registrable part of ``name`` (its last two
        labels, three under ``com.cn``-style suffixes)."""
        if self.nameservers is None:
            try:
                return ascii_name(dns.resolver.zone_for_name(name).to_text())
            except dns.exception.DNSException:
                pass
        labels = [label for label in name.split(".") if label]
        width = 3 if len(labels) >= 3 and labels[-2] in ("com", "net", "org", "gov", "edu") \
            and len(labels[-1]) == 2 else 2
        return ".".join(labels[-width:])

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
