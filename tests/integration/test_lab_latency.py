"""Latency in the lab, on demand (#12): DNS propagation and Alibaba API latency.

Measured against the real components: records are written through the lab's
Alibaba endpoint with the classic SDK and looked up in the lab's DNS
(pebble-challtestsrv) with dnspython, as Pebble would.
"""

from __future__ import annotations

import json
import time
import uuid

import dns.message
import dns.query
import dns.rdatatype
import pytest

from acmelab.aliyun import AliyunClient
from acmelab.errors import AliyunError, InputError
from acmelab.lab import Lab, LabInfo, LabPorts

pytestmark = pytest.mark.lab

DELAY = 1.5
LATENCY = 0.3


@pytest.fixture(scope="module")
def slow_lab(lab_factory) -> LabInfo:
    return lab_factory(dns_propagation_delay=DELAY, aliyun_latency=LATENCY)


def client_for(info: LabInfo) -> AliyunClient:
    return AliyunClient.for_lab(info, max_retries=0)


def txt_values(info: LabInfo, name: str) -> list[str]:
    """The TXT values the lab DNS answers for ``name`` (over TCP, as Pebble asks)."""
    query = dns.message.make_query(name, dns.rdatatype.TXT)
    answer = dns.query.tcp(query, info.dns_server[0], port=info.dns_server[1], timeout=2)
    return sorted(b"".join(rdata.strings).decode() for rrset in answer.answer for rdata in rrset
                  if rdata.rdtype == dns.rdatatype.TXT)


def seconds_until(predicate, *, limit: float) -> float:
    """Seconds until ``predicate()`` is true, looking every 50 ms; fails after ``limit``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > limit:
            pytest.fail(f"not true within {limit} s")
        time.sleep(0.05)
    return time.monotonic() - start


def test_lab_info_reports_the_latency(slow_lab, lab):
    assert slow_lab.dns_propagation_delay == DELAY
    assert slow_lab.aliyun_latency == LATENCY
    assert lab.dns_propagation_delay == 0 and lab.aliyun_latency == 0
    data = json.loads(slow_lab.to_json())
    assert data["dns_propagation_delay"] == DELAY and data["aliyun_latency"] == LATENCY
    assert LabInfo.from_dict(data).dns_propagation_delay == DELAY
    state = json.loads((slow_lab.run_dir / "lab.json").read_text())
    assert state["dns_propagation_delay"] == DELAY and state["aliyun_latency"] == LATENCY


def test_a_txt_record_reaches_the_lab_dns_only_after_the_delay_and_so_does_its_removal(slow_lab):
    client = client_for(slow_lab)
    rr = f"_acme-challenge.delay-{uuid.uuid4().hex[:8]}"
    name = f"{rr}.example.com"
    value = uuid.uuid4().hex
    written = time.monotonic()
    record_id = client.call("AddDomainRecord", "2015-01-09", {"DomainName": "example.com", "RR": rr,
                            "Type": "TXT", "Value": value}, product="Alidns")["RecordId"]
    # the DNS only after the delay (looked at first: one API call, not two, before the look) ...
    looked = time.monotonic() - written
    assert looked < DELAY - 0.05, "the look came too late to show that the record was not there yet"
    assert txt_values(slow_lab, name) == []
    # ... the API sees it at once
    listed = client.call("DescribeSubDomainRecords", "2015-01-09", {"SubDomain": name}, product="Alidns")
    assert [r["Value"] for r in listed["DomainRecords"]["Record"]] == [value]
    seconds_until(lambda: txt_values(slow_lab, name) == [value], limit=DELAY + 3)
    visible = time.monotonic() - written
    assert DELAY - 0.05 <= visible <= DELAY + 2 * LATENCY + 1.0

    removed = time.monotonic()
    client.call("DeleteDomainRecord", "2015-01-09", {"RecordId": record_id}, product="Alidns")
    looked = time.monotonic() - removed
    assert looked < DELAY - 0.05, "the look came too late to show that the record was still there"
    assert txt_values(slow_lab, name) == [value]          # still served: the removal propagates too
    seconds_until(lambda: txt_values(slow_lab, name) == [], limit=DELAY + 3)
    gone = time.monotonic() - removed
    assert DELAY - 0.05 <= gone <= DELAY + LATENCY + 1.0


def test_changes_reach_the_dns_in_the_order_they_were_made(slow_lab):
    client = client_for(slow_lab)
    rr = f"_acme-challenge.order-{uuid.uuid4().hex[:8]}"
    name = f"{rr}.example.com"
    ids = [client.call("AddDomainRecord", "2015-01-09", {"DomainName": "example.com", "RR": rr, "Type": "TXT",
                       "Value": value}, product="Alidns")["RecordId"] for value in ("one", "two")]
    client.call("DeleteDomainRecord", "2015-01-09", {"RecordId": ids[0]}, product="Alidns")
    seconds_until(lambda: txt_values(slow_lab, name) == ["two"], limit=DELAY + 3)
    client.call("DeleteDomainRecord", "2015-01-09", {"RecordId": ids[1]}, product="Alidns")
    seconds_until(lambda: txt_values(slow_lab, name) == [], limit=DELAY + 3)


def test_every_api_answer_is_delayed_errors_too(slow_lab, lab):
    slow, fast = client_for(slow_lab), client_for(lab)
    for client in (slow, fast):
        client.call("DescribeDomains", "2015-01-09", {}, product="Alidns")   # connection up
    timings: dict[str, list[float]] = {}
    for _ in range(3):                       # interleaved, so a busy moment hits both labs alike
        for label, client in (("slow", slow), ("fast", fast)):
            start = time.monotonic()
            client.call("DescribeDomains", "2015-01-09", {"PageSize": 5}, product="Alidns")
            timings.setdefault(label, []).append(time.monotonic() - start)
            start = time.monotonic()
            with pytest.raises(AliyunError):
                client.call("DescribeDomainRecords", "2015-01-09", {"DomainName": "not-mine.example"},
                            product="Alidns")
            timings.setdefault(label + " error", []).append(time.monotonic() - start)
    # every slow answer is late; the fast lab adds nothing (compared with the slow one, not with
    # the clock: both pay the same HTTPS and SDK cost, only the slow one pays the latency on top)
    assert min(timings["slow"]) >= LATENCY and min(timings["slow error"]) >= LATENCY
    assert min(timings["slow"]) - min(timings["fast"]) >= 0.5 * LATENCY
    assert min(timings["slow error"]) - min(timings["fast error"]) >= 0.5 * LATENCY


def test_latency_knobs_are_checked(tmp_path):
    for bad in (-1, float("nan"), "2", True):
        with pytest.raises(InputError):
            Lab(tmp_path, ports=LabPorts.free(), dns_propagation_delay=bad)
        with pytest.raises(InputError):
            Lab(tmp_path, ports=LabPorts.free(), aliyun_latency=bad)


def test_pebble_va_sleeptime_alone_turns_sleeping_on():
    from acmelab.lab.pebble import pebble_environment

    assert pebble_environment({"PEBBLE_VA_SLEEPTIME": "3"})["PEBBLE_VA_NOSLEEP"] == "0"
    assert pebble_environment({"PEBBLE_VA_SLEEPTIME": "3", "PEBBLE_VA_NOSLEEP": "1"})["PEBBLE_VA_NOSLEEP"] == "1"
    assert pebble_environment({})["PEBBLE_VA_NOSLEEP"] == "1"
