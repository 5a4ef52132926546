"""The DNS journal (acmelab.journal): a record is removed later through the
provider it was published with -- the same kind, the same region's site,
where it was written (the end of a CNAME chain)."""

from __future__ import annotations

from acmelab.journal import JournaledDns, remove_leftovers, remove_standing_records
from acmelab.state import StateDir


class Zone:
    """A DNS provider over a dict, one per (kind, region) as the backend makes them."""

    def __init__(self, kind: str, region: str | None, records: dict) -> None:
        self.kind, self.region, self.records = kind, region, records

    def present(self, name: str, value: str) -> None:
        self.records.setdefault((self.kind, self.region), set()).add((name, value))

    def cleanup(self, name: str, value: str) -> None:
        self.records.get((self.kind, self.region), set()).discard((name, value))


def providers_over(records: dict):
    made = []

    def providers(kind: str, region: str | None = None) -> Zone:
        made.append((kind, region))
        return Zone(kind, region, records)

    providers.made = made
    return providers


def test_a_killed_run_is_cleaned_up_on_the_region_it_published_in(tmp_path):
    state, records = StateDir(tmp_path / "state"), {}
    providers = providers_over(records)
    journaled = JournaledDns(providers("alidns", "ap-southeast-1"), "alidns", state, "intl", None,
                             region="ap-southeast-1")
    journaled.present("_acme-challenge.intl.example.com", "left-by-a-killed-run")
    assert state.pending_dns("intl") == [{"provider": "alidns", "name": "_acme-challenge.intl.example.com",
                                          "value": "left-by-a-killed-run", "region": "ap-southeast-1"}]
    assert remove_leftovers("intl", providers, state) == 1
    assert providers.made[-1] == ("alidns", "ap-southeast-1")
    assert records[("alidns", "ap-southeast-1")] == set() and state.pending_dns("intl") == []


def test_a_journal_without_a_region_uses_the_backend_default(tmp_path):
    state, records = StateDir(tmp_path / "state"), {}
    providers = providers_over(records)
    JournaledDns(providers("alidns"), "alidns", state, "shop", None).present("_acme-challenge.shop.example.com", "v")
    assert "region" not in state.pending_dns("shop")[0]       # as older journals read
    assert remove_leftovers("shop", providers, state) == 1
    assert providers.made[-1] == ("alidns", None) and records[("alidns", None)] == set()


def test_standing_records_are_removed_where_and_on_the_site_they_were_written(tmp_path):
    state, records = StateDir(tmp_path / "state"), {}
    name, target = "_validation-persist.shop.example.com", "_validation-persist.shop.example.org"
    state.set_standing_dns("shop", [{"provider": "alidns", "name": name, "value": "v", "written_at": target,
                                     "region": "ap-southeast-1"}])
    (state.certificate_dir("shop") / "meta.json").write_text("{}")   # listed as a certificate
    records[("alidns", "ap-southeast-1")] = {(target, "v")}
    providers = providers_over(records)
    assert remove_standing_records(state, providers, "shop") == [name]
    assert providers.made == [("alidns", "ap-southeast-1")]
    assert records[("alidns", "ap-southeast-1")] == set() and state.standing_dns("shop") == []
