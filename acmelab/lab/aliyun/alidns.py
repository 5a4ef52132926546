"""Alibaba Cloud DNS (Alidns, API version 2015-01-09) actions of the lab endpoint.

The lab account hosts a set of zones (:data:`DEFAULT_ZONES`, or the JSON file
``<state-dir>/alidns_zones.json``: ``[{"DomainName": "example.com",
"Records": [{"RR": "www", "Type": "A", "Value": "127.0.0.1"}]}, ...]``).
Every TXT and CNAME record a zone holds is mirrored into pebble-challtestsrv,
so Pebble's DNS-01 lookup (RFC 8555 §8.4) sees exactly what was published.
A name is served by the most specific zone that contains it: a record under
``dev.example.com`` lives in the hosted sub-zone ``dev.example.com``, and a
record written into ``example.com`` as ``_acme-challenge.www.dev`` is *not*
visible (just as a delegated sub-zone hides it in real DNS).

Actions: DescribeDomains, DescribeDomainRecords, DescribeSubDomainRecords,
AddDomainRecord, DeleteDomainRecord, GetMainDomainName.  Answers and error
codes follow Alibaba's documentation for each action.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import idna

from acmelab.lab.aliyun.server import ApiFault, LabState, action, int_param, require

logger = logging.getLogger(__name__)

VERSION = "2015-01-09"
ZONES_FILE = "alidns_zones.json"
RECORD_TYPES = ("A", "AAAA", "CNAME", "TXT", "MX", "NS", "CAA", "SRV", "REDIRECT_URL", "FORWARD_URL")
DNS_SERVERS = ["dns1.hichina.com", "dns2.hichina.com"]

#: the seeded lab account: a sub-zone hosted on its own, a ".com.cn" zone,
#: an IDN zone and enough zones (> 20) that DescribeDomains needs two pages.
DEFAULT_ZONES: list[dict[str, Any]] = [
    {"DomainName": "example.com", "Records": [
        {"RR": "www", "Type": "A", "Value": "127.0.0.1"},
        {"RR": "@", "Type": "TXT", "Value": "v=spf1 -all"},
    ]},
    {"DomainName": "dev.example.com", "Records": [{"RR": "api", "Type": "A", "Value": "127.0.0.1"}]},
    {"DomainName": "example.com.cn"},
    {"DomainName": "bücher.example"},
    {"DomainName": "example.org"},
    {"DomainName": "example.net"},
    *({"DomainName": f"shop{number:02d}.example"} for number in range(1, 20)),
]


def a_label(name: str) -> str:
    """``name`` in lower-case A-label (punycode) form, without trailing dot;
    labels that are not IDNA (``_acme-challenge``, ``*``) are kept as they are."""
    labels = name.strip().rstrip(".").lower().split(".")
    return ".".join(_label_a(label) for label in labels)


def _label_a(label: str) -> str:
    if label.isascii():
        return label
    try:
        return idna.encode(label, uts46=True).decode("ascii")
    except idna.IDNAError:
        return label


def u_label(name: str) -> str:
    """``name`` in Unicode form (for ``DomainName`` of IDN zones)."""
    try:
        return idna.decode(name)
    except idna.IDNAError:
        return name


@dataclass
class Zone:
    domain_id: str
    domain_name: str                   # Unicode form, as Alibaba shows it
    puny_code: str                     # A-label form
    create_timestamp: int
    records: dict[str, dict[str, Any]] = field(default_factory=dict)   # RecordId -> record


@dataclass
class AlidnsState:
    zones: dict[str, Zone] = field(default_factory=dict)        # puny code -> Zone
    record_ids: itertools.count = field(default_factory=lambda: itertools.count(17000000000000001))
    domain_ids: itertools.count = field(default_factory=lambda: itertools.count(1001))


def _state(state: LabState) -> AlidnsState:
    return state.extension("alidns", lambda: _load_zones(state))


def _load_zones(state: LabState) -> AlidnsState:
    zones = DEFAULT_ZONES
    if state.state_dir is not None and (state.state_dir / ZONES_FILE).is_file():
        zones = json.loads((state.state_dir / ZONES_FILE).read_text(encoding="utf-8"))
    dns = AlidnsState()
    now = int(time.time() * 1000)
    for entry in zones:
        puny = a_label(entry["DomainName"])
        zone = Zone(str(next(dns.domain_ids)), u_label(puny), puny, now)
        dns.zones[puny] = zone
        for record in entry.get("Records", []):
            _insert(dns, zone, record["RR"], record["Type"], record["Value"], int(record.get("TTL", 600)))
    return dns


def _insert(dns: AlidnsState, zone: Zone, rr: str, record_type: str, value: str, ttl: int,
            line: str = "default", priority: int | None = None) -> dict[str, Any]:
    record_id = str(next(dns.record_ids))
    record = {"DomainName": zone.domain_name, "RecordId": record_id, "RR": rr, "Type": record_type,
              "Value": value, "TTL": ttl, "Line": line, "Status": "ENABLE", "Locked": False,
              "Weight": 1, "CreateTimestamp": int(time.time() * 1000)}
    if priority is not None:
        record["Priority"] = priority
    zone.records[record_id] = record
    return record


def _fqdn(zone: Zone, rr: str) -> str:
    return zone.puny_code if rr == "@" else f"{a_label(rr)}.{zone.puny_code}"


def _authoritative_zone(dns: AlidnsState, name: str) -> Zone | None:
    """The most specific zone of the account that contains ``name``."""
    name = a_label(name)
    best = None
    for puny, zone in dns.zones.items():
        if name == puny or name.endswith("." + puny):
            if best is None or len(puny) > len(best.puny_code):
                best = zone
    return best


def _find_zone(dns: AlidnsState, domain_name: str) -> Zone:
    zone = dns.zones.get(a_label(domain_name))
    if zone is None:
        raise ApiFault("InvalidDomainName.NoExist",
                       "The specified domain name does not exist. Refresh the page and try again.", 400)
    return zone


def _mirror(state: LabState, dns: AlidnsState, name: str) -> None:
    """Make challtestsrv answer ``name`` exactly as the authoritative zone says."""
    if state.challtestsrv is None:
        return
    zone = _authoritative_zone(dns, name)
    records = [r for r in zone.records.values() if _fqdn(zone, r["RR"]) == name] if zone else []
    state.challtestsrv.replace_txt(name, [r["Value"] for r in records if r["Type"] == "TXT"])
    cnames = [r["Value"] for r in records if r["Type"] == "CNAME"]
    if cnames:
        state.challtestsrv.set_cname(name, cnames[0])
    else:
        state.challtestsrv.clear_cname(name)


def mirror_all(state: LabState) -> None:
    """Publish every TXT/CNAME record of every zone into challtestsrv (at start)."""
    with state.lock:
        dns = _state(state)
        names = {_fqdn(zone, r["RR"]) for zone in dns.zones.values() for r in zone.records.values()
                 if r["Type"] in ("TXT", "CNAME")}
        for name in sorted(names):
            _mirror(state, dns, name)


def _page(items: list[Any], params: dict[str, str], *, default_size: int = 20,
          max_size: int = 500) -> tuple[list[Any], int, int]:
    number = int_param(params, "PageNumber", 1)
    size = int_param(params, "PageSize", default_size, maximum=max_size)
    return items[(number - 1) * size: number * size], number, size


def _domain_json(zone: Zone) -> dict[str, Any]:
    return {
        "DomainId": zone.domain_id, "DomainName": zone.domain_name, "PunyCode": zone.puny_code,
        "AliDomain": False, "RecordCount": len(zone.records), "VersionCode": "mianfei",
        "VersionName": "Alibaba Cloud DNS", "InstanceId": "", "ResourceGroupId": "rg-acmelab",
        "CreateTimestamp": zone.create_timestamp,
        "CreateTime": datetime.fromtimestamp(zone.create_timestamp / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
        "Starmark": False, "DnsServers": {"DnsServer": list(DNS_SERVERS)}, "Tags": {"Tag": []},
    }


def _records_answer(records: list[dict[str, Any]], params: dict[str, str]) -> dict[str, Any]:
    page, number, size = _page(records, params)
    return {"TotalCount": len(records), "PageNumber": number, "PageSize": size,
            "DomainRecords": {"Record": page}}


@action("DescribeDomains", version=VERSION)
def describe_domains(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """DescribeDomains: the account's zones, PageSize default 20, max 100; KeyWord filters."""
    keyword = params.get("KeyWord", "").lower()
    with state.lock:
        zones = sorted(_state(state).zones.values(), key=lambda z: int(z.domain_id))
        zones = [z for z in zones if keyword in z.domain_name.lower() or keyword in z.puny_code]
        page, number, size = _page(zones, params, max_size=100)
        return {"TotalCount": len(zones), "PageNumber": number, "PageSize": size,
                "Domains": {"Domain": [_domain_json(z) for z in page]}}


def inventory(state: LabState) -> dict[str, Any]:
    """``{"Zones": [{"DomainName", "PunyCode"}, ...]}``, in DescribeDomains' order."""
    with state.lock:
        zones = sorted(_state(state).zones.values(), key=lambda z: int(z.domain_id))
        return {"Zones": [{"DomainName": z.domain_name, "PunyCode": z.puny_code} for z in zones]}


@action("DescribeDomainRecords", version=VERSION)
def describe_domain_records(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """DescribeDomainRecords: records of zone ``DomainName``; optional RRKeyWord,
    TypeKeyWord, ValueKeyWord, Type (exact)."""
    with state.lock:
        zone = _find_zone(_state(state), require(params, "DomainName"))
        records = sorted(zone.records.values(), key=lambda r: int(r["RecordId"]))
        if params.get("RRKeyWord"):
            records = [r for r in records if params["RRKeyWord"].lower() in r["RR"].lower()]
        if params.get("TypeKeyWord") or params.get("Type"):
            wanted = (params.get("Type") or params["TypeKeyWord"]).upper()
            records = [r for r in records if r["Type"] == wanted]
        if params.get("ValueKeyWord"):
            records = [r for r in records if params["ValueKeyWord"] in r["Value"]]
        return _records_answer([dict(r) for r in records], params)


@action("DescribeSubDomainRecords", version=VERSION)
def describe_sub_domain_records(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """DescribeSubDomainRecords: records of the full name ``SubDomain``
    (zone ``DomainName`` if given, else the most specific zone); optional Type."""
    with state.lock:
        dns = _state(state)
        sub_domain = a_label(require(params, "SubDomain"))
        zone = _find_zone(dns, params["DomainName"]) if params.get("DomainName") else _authoritative_zone(dns, sub_domain)
        if zone is None:
            raise ApiFault("InvalidDomainName.NoExist",
                           "The specified domain name does not exist. Refresh the page and try again.", 400)
        records = sorted((r for r in zone.records.values() if _fqdn(zone, r["RR"]) == sub_domain),
                         key=lambda r: int(r["RecordId"]))
        if params.get("Type"):
            records = [r for r in records if r["Type"] == params["Type"].upper()]
        return _records_answer([dict(r) for r in records], params)


@action("AddDomainRecord", version=VERSION)
def add_domain_record(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """AddDomainRecord: DomainName, RR, Type, Value, optional TTL (600), Line, Priority -> RecordId."""
    record_type = require(params, "Type").upper()
    rr = require(params, "RR").strip().lower()
    value = require(params, "Value")
    if record_type not in RECORD_TYPES:
        raise ApiFault("InvalidType", f"The specified record type {record_type} is not supported.")
    if rr != "@" and not all(label and len(label) < 64 for label in rr.split(".")):
        raise ApiFault("InvalidRR.Format", "The format of the host record is invalid.")
    ttl = int_param(params, "TTL", 600, minimum=1, maximum=86400)
    line = params.get("Line") or "default"
    with state.lock:
        dns = _state(state)
        zone = _find_zone(dns, require(params, "DomainName"))
        same_name = [r for r in zone.records.values() if r["RR"] == rr and r["Line"] == line]
        if any(r["Type"] == record_type and r["Value"] == value for r in same_name):
            raise ApiFault("DomainRecordDuplicate", "The DNS record already exists.")
        if (record_type == "CNAME" and same_name) or any(r["Type"] == "CNAME" for r in same_name):
            raise ApiFault("DomainRecordConflict", "The DNS record conflicts with other records.")
        priority = int_param(params, "Priority", 10) if record_type == "MX" else None
        record = _insert(dns, zone, rr, record_type, value, ttl, line, priority)
        if record_type in ("TXT", "CNAME"):
            _mirror(state, dns, _fqdn(zone, rr))
        logger.info("AddDomainRecord %s %s %s %s -> %s", zone.puny_code, rr, record_type, value, record["RecordId"])
        return {"RecordId": record["RecordId"]}


@action("DeleteDomainRecord", version=VERSION)
def delete_domain_record(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """DeleteDomainRecord: RecordId -> RecordId; unknown id is DomainRecordNotBelongToUser."""
    record_id = require(params, "RecordId")
    with state.lock:
        dns = _state(state)
        for zone in dns.zones.values():
            record = zone.records.pop(record_id, None)
            if record is not None:
                if record["Type"] in ("TXT", "CNAME"):
                    _mirror(state, dns, _fqdn(zone, record["RR"]))
                logger.info("DeleteDomainRecord %s", record_id)
                return {"RecordId": record_id}
    raise ApiFault("DomainRecordNotBelongToUser", "The DNS record does not belong to the user.")


@action("GetMainDomainName", version=VERSION)
def get_main_domain_name(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """GetMainDomainName: InputString -> DomainName (registrable domain), RR, DomainLevel."""
    name = a_label(require(params, "InputString"))
    labels = name.split(".")
    if len(labels) < 2:
        raise ApiFault("InvalidDomainName.Format", "The format of the domain name is invalid.")
    width = 3 if len(labels) >= 3 and labels[-2] in ("com", "net", "org", "gov", "edu") and len(labels[-1]) == 2 else 2
    main = ".".join(labels[-width:])
    rr = ".".join(labels[:-width]) or "@"
    return {"DomainName": main, "RR": rr, "DomainLevel": len(labels) - width + 1}
