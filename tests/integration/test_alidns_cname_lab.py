"""CNAME delegation of ``_acme-challenge`` through Alibaba Cloud DNS, against the lab.

The delegating CNAME is a real record of the lab's Alibaba endpoint
(AddDomainRecord Type=CNAME), served by pebble-challtestsrv; Pebble follows it
when it validates (RFC 8555 §8.4), the provider follows it before writing.
"""

from __future__ import annotations

import uuid

import dns.message
import dns.query
import pytest

from acmelab import keys
from acmelab.aliyun import AliyunClient
from acmelab.client import AcmeClient
from acmelab.dns.alidns import AlidnsProvider
from acmelab.errors import DelegatedZoneMissing, DnsError
from acmelab.issue import issue_certificate
from acmelab.journal import JournaledDns
from acmelab.state import StateDir

pytestmark = pytest.mark.lab

RUN = uuid.uuid4().hex[:8]


def records_at(lab, zone: str, name: str) -> list[dict]:
    answer = AliyunClient.for_lab(lab).call("DescribeSubDomainRecords", "2015-01-09",
                                  {"DomainName": zone, "SubDomain": name}, product="Alidns")
    return answer["DomainRecords"]["Record"]


def served(lab, name: str, rdtype: str) -> list[str]:
    response = dns.query.udp(dns.message.make_query(name, rdtype), lab.dns_server[0],
                             port=lab.dns_server[1], timeout=5)
    return [rrset.to_text() for rrset in response.answer]


@pytest.fixture
def cname(lab):
    """add(zone, rr, target) makes a CNAME record in the lab account; removed afterwards."""
    made = []

    def add(zone: str, rr: str, target: str) -> str:
        answer = AliyunClient.for_lab(lab).call("AddDomainRecord", "2015-01-09",
                                      {"DomainName": zone, "RR": rr, "Type": "CNAME", "Value": target},
                                      product="Alidns")
        made.append(answer["RecordId"])
        return answer["RecordId"]

    yield add
    for record_id in made:
        AliyunClient.for_lab(lab).call("DeleteDomainRecord", "2015-01-09", {"RecordId": record_id}, product="Alidns")


@pytest.fixture
def provider(lab) -> AlidnsProvider:
    return AlidnsProvider.for_lab(lab, backoff=0.01, propagation_interval=0.1)


@pytest.fixture
def acme(lab):
    client = AcmeClient(lab.directory_url, keys.generate_key("ec256"), verify=lab.ca_bundle)
    client.new_account()
    yield client
    client.close()


class Watching(AlidnsProvider):
    """Notes, while the CA may look, which records the account holds at both names."""

    seen: dict[str, list[dict]]

    def wait_until_visible(self, name, value, timeout=120.0):
        super().wait_until_visible(name, value, timeout)
        self.seen = {zone: records_at(self._lab, zone, at) for zone, at in self.watch}


def test_delegated_challenge_issues_with_the_record_at_the_target_and_removes_it(lab, cname, acme):
    domain = f"shop-{RUN}.example.com"
    target = f"_acme-challenge.shop-{RUN}.example.net"
    cname("example.com", f"_acme-challenge.shop-{RUN}", target)
    provider = Watching.for_lab(lab, propagation_interval=0.1)
    provider._lab = lab
    provider.watch = [("example.net", target), ("example.com", f"_acme-challenge.{domain}")]

    assert provider.record_name(f"_acme-challenge.{domain}") == target
    provider.check_names([domain, f"*.{domain}"])          # nothing missing: no error
    issued = issue_certificate([domain], client=acme, dns=provider, propagation_timeout=20)

    assert list(issued.names) == [domain]
    # during validation: one TXT record at the target, in zone example.net; at the
    # validation name only the CNAME (a TXT there would be a DomainRecordConflict)
    at_target = provider.seen["example.net"]
    assert [(r["Type"], r["RR"]) for r in at_target] == [("TXT", f"_acme-challenge.shop-{RUN}")]
    assert [r["Type"] for r in provider.seen["example.com"]] == ["CNAME"]
    # afterwards: the TXT record is gone, the user's CNAME stays
    assert records_at(lab, "example.net", target) == []
    assert [r["Type"] for r in records_at(lab, "example.com", f"_acme-challenge.{domain}")] == ["CNAME"]
    assert not any("TXT" in rrset for rrset in served(lab, target, "TXT"))


def test_target_outside_the_account_is_a_clear_error_before_any_order(lab, cname, provider, acme):
    domain = f"ext-{RUN}.example.com"
    target = f"_acme-challenge.ext-{RUN}.delegated-{RUN}.example"
    cname("example.com", f"_acme-challenge.ext-{RUN}", target)

    with pytest.raises(DelegatedZoneMissing) as caught:
        provider.check_names(["www.example.com", domain])          # looks only: no order, no record
    error = caught.value
    assert (error.record, error.target, error.zone) == (f"_acme-challenge.{domain}", target,
                                                        f"delegated-{RUN}.example")
    assert f"_acme-challenge.{domain}" in str(error) and target in str(error)
    assert f"the zone delegated-{RUN}.example is not in this DNS account" in str(error)
    assert isinstance(error, DnsError)

    # issue_certificate without the check: the same error, and no record written anywhere
    with pytest.raises(DelegatedZoneMissing):
        issue_certificate([domain], client=acme, dns=provider, propagation_timeout=5)
    assert [r["Type"] for r in records_at(lab, "example.com", f"_acme-challenge.{domain}")] == ["CNAME"]


def test_cname_chain_is_bounded_and_loop_safe(lab, cname, provider):
    a, b = f"_acme-challenge.loop-a-{RUN}.example.com", f"_acme-challenge.loop-b-{RUN}.example.com"
    cname("example.com", f"_acme-challenge.loop-a-{RUN}", b)
    cname("example.com", f"_acme-challenge.loop-b-{RUN}", a)
    with pytest.raises(DnsError, match="CNAME loop") as caught:
        provider.present(a, "never-written")
    assert a in str(caught.value) and b in str(caught.value)
    assert [r["Type"] for r in records_at(lab, "example.com", a)] == ["CNAME"]


def test_cleanup_by_a_new_process_and_the_journal_follow_the_target(lab, cname, tmp_path):
    domain = f"journal-{RUN}.example.com"
    validation = f"_acme-challenge.{domain}"
    target = f"_acme-challenge.journal-{RUN}.example.org"
    cname("example.com", f"_acme-challenge.journal-{RUN}", target)
    state = StateDir(tmp_path / "state")

    journaled = JournaledDns(AlidnsProvider.for_lab(lab), "alidns", state, "shop", None)
    journaled.present(validation, "from-a-killed-run")
    # the journal names where the record was written, as the next run reads it
    assert state.pending_dns("shop") == [{"provider": "alidns", "name": validation,
                                          "value": "from-a-killed-run", "written_at": target}]
    assert [r["Value"] for r in records_at(lab, "example.org", target)] == ["from-a-killed-run"]

    # "the next run": a provider that never saw the record removes it by the journal's name
    AlidnsProvider.for_lab(lab).cleanup(target, "from-a-killed-run")
    assert records_at(lab, "example.org", target) == []
    state.set_pending_dns("shop", [])

    # and by the validation name: it follows the CNAME as present did
    second = AlidnsProvider.for_lab(lab)
    second.present(validation, "again")
    AlidnsProvider.for_lab(lab).cleanup(validation, "again")
    assert records_at(lab, "example.org", target) == []
    # cleanup through the journaling wrapper empties the journal
    journaled.present(validation, "third")
    journaled.cleanup(validation, "third")
    assert state.pending_dns("shop") == [] and records_at(lab, "example.org", target) == []


def test_the_journal_looks_the_chain_up_once_per_record(lab, cname, tmp_path, monkeypatch):
    from acmelab.dns import propagation

    validation = f"_acme-challenge.once-{RUN}.example.com"
    target = f"_acme-challenge.once-{RUN}.example.org"
    cname("example.com", f"_acme-challenge.once-{RUN}", target)
    asked: list[str] = []
    real = propagation._cname_of
    monkeypatch.setattr(propagation, "_cname_of", lambda name, servers: asked.append(name) or real(name, servers))

    journaled = JournaledDns(AlidnsProvider.for_lab(lab), "alidns", StateDir(tmp_path / "state"), "shop", None)
    journaled.present(validation, "once")
    try:
        assert asked == [validation, target]        # one chain: the CNAME, then its end (no CNAME)
        assert [r["Value"] for r in records_at(lab, "example.org", target)] == ["once"]
    finally:
        journaled.cleanup(validation, "once")
    assert records_at(lab, "example.org", target) == []
