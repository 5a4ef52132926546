"""End to end: ``acmelab apply`` on 100 services against the lab.

Everything is real: Pebble issues, DNS-01 goes through the lab's Alibaba
Cloud DNS endpoint (names under its seeded zones ``shopNN.example``), the
certificates are installed on the lab's CDN and API Gateway through the
signed API, and every install is proven by a TLS handshake on the lab's
edge ports.  The command runs in-process through ``cli.main(argv)``.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from aliyunsdkalidns.request.v20150109.DescribeDomainRecordsRequest import DescribeDomainRecordsRequest
from cryptography import x509

from acmelab import cli, keys
from acmelab.deploy import apigateway, cdn, lab_client
from tests.integration._served import served_serial

pytestmark = pytest.mark.lab

RUN = uuid.uuid4().hex[:6]
SERVICES = 100
API_SERVICES = 10          # the last ten go to API Gateway, the rest to CDN
ZONES = [f"shop{n:02d}.example" for n in range(1, 20)]


def service_domain(prefix: str, number: int) -> str:
    return f"{prefix}{number:03d}-{RUN}.{ZONES[number % len(ZONES)]}"


def write_services(path: Path, prefix: str, count: int, *, group_id: str | None = None,
                   api_services: int = 0) -> list[dict]:
    """A services file: ``count`` services, one name each, dns-01 via alidns."""
    lines = ['[defaults]', 'dns = "alidns"', 'key_type = "ec256"', '']
    services = []
    for number in range(count):
        domain = service_domain(prefix, number)
        lines += ['[[service]]', f'domains = ["{domain}"]']
        if number >= count - api_services:
            lines.append(f'apigateway = {{ group_id = "{group_id}", domain = "{domain}" }}')
            services.append({"name": domain, "product": "apigateway", "group_id": group_id})
        else:
            lines.append(f'cdn = "{domain}"')
            services.append({"name": domain, "product": "cdn"})
        if number == 0:
            lines.append("cas = true")
        lines.append("")
    path.write_text("\n".join(lines))
    return services


def prepare_targets(lab, services: list[dict]) -> None:
    """Create the CDN domains and bind the API Gateway domains (real actions)."""
    client = lab_client(lab)
    for service in services:
        if service["product"] == "cdn":
            cdn.add_cdn_domain(client, service["name"])
        else:
            apigateway.set_domain(client, service["group_id"], service["name"])


def acme_txt_records(lab, marker: str) -> list[dict]:
    """TXT records under ``_acme-challenge`` whose name contains ``marker``, in
    every seeded zone (DescribeDomainRecords through the SDK, all pages)."""
    client = lab_client(lab)
    found = []
    for zone in ZONES:
        page = 1
        while True:
            request = DescribeDomainRecordsRequest()
            request.set_DomainName(zone)
            request.set_TypeKeyWord("TXT")
            request.set_PageNumber(page)
            request.set_PageSize(500)
            answer = client.send(request)
            records = answer["DomainRecords"]["Record"]
            found += [r for r in records if r["RR"].startswith("_acme-challenge") and marker in r["RR"]]
            if not records or page * 500 >= int(answer["TotalCount"]):
                break
            page += 1
    return found


def run_cli(capsys, *argv: str) -> tuple[int, dict]:
    code = cli.main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out)


def assert_state_files_parse(state_dir: Path) -> int:
    """Every key and chain file of every version directory parses; key 0600;
    no temporary file is left.  Returns how many versions were checked."""
    checked = 0
    for meta in (state_dir / "certificates").glob("*/meta.json"):
        json.loads(meta.read_text())
    for version in (state_dir / "certificates").glob("*/*/"):
        if version.is_symlink():
            continue
        key = version / "privkey.pem"
        keys.load_private_key(key)
        assert key.stat().st_mode & 0o777 == 0o600
        chain = x509.load_pem_x509_certificates((version / "fullchain.pem").read_bytes())
        assert len(chain) >= 2
        checked += 1
    assert not list(state_dir.rglob("*.tmp")), "a temporary file was left behind"
    return checked


@pytest.fixture(scope="module")
def api_group(lab) -> str:
    return apigateway.create_api_group(lab_client(lab), f"cli_{RUN}")


def test_apply_100_services_then_nothing_then_renew_all(lab, tmp_path, capsys, api_group):
    services_file = tmp_path / "services.toml"
    services = write_services(services_file, "svc", SERVICES, group_id=api_group, api_services=API_SERVICES)
    prepare_targets(lab, services)
    common = ["--lab-dir", str(lab.run_dir), "--state-dir", str(tmp_path / "state"), "--json"]

    # 1. everything issued, installed and verified by a handshake
    started = time.monotonic()
    code, first = run_cli(capsys, "apply", str(services_file), *common)
    first_seconds = time.monotonic() - started
    assert code == cli.EXIT_OK, [s for s in first["services"] if s["status"] != "issued"][:3]
    assert first["counts"] == {"issued": SERVICES}
    by_name = {s["name"]: s for s in first["services"]}
    for service in services:
        result = by_name[service["name"]]
        target = (f"cdn:{service['name']}" if service["product"] == "cdn"
                  else f"apigateway:{api_group}/{service['name']}")
        assert result["installed"][0] == target
        assert target in result["verified"]
    assert by_name[services[0]["name"]]["installed"] == [f"cdn:{services[0]['name']}", "cas"]
    # our own handshake with each edge: the served serial is the stored one
    for service in services:
        port = lab.cdn_edge_port if service["product"] == "cdn" else lab.apigateway_edge_port
        assert served_serial(lab, service["name"], port) == by_name[service["name"]]["serial_hex"]
    assert assert_state_files_parse(tmp_path / "state") == SERVICES
    assert acme_txt_records(lab, RUN) == []

    # 2. run again: nothing is due, nothing is installed, everything verified
    code, second = run_cli(capsys, "apply", str(services_file), *common)
    assert code == cli.EXIT_OK
    assert second["counts"] == {"unchanged": SERVICES}
    assert all(s["installed"] == [] and len(s["verified"]) == 1 for s in second["services"])
    assert {s["name"]: s["serial_hex"] for s in second["services"]} == \
        {name: s["serial_hex"] for name, s in by_name.items()}

    # 3. move the clock to one day before expiry: everything renewed and re-installed
    not_after = dt.datetime.fromisoformat(first["services"][0]["not_after"])
    later = (not_after - dt.timedelta(days=1)).isoformat()
    code, third = run_cli(capsys, "apply", str(services_file), *common, "--now", later)
    assert code == cli.EXIT_OK, [s for s in third["services"] if s["status"] != "renewed"][:3]
    assert third["counts"] == {"renewed": SERVICES}
    for result in third["services"]:
        assert result["serial_hex"] != by_name[result["name"]]["serial_hex"]
        assert result["verified"] and result["installed"][0] in result["verified"]
    assert acme_txt_records(lab, RUN) == []
    print(f"\n100 services: first apply {first_seconds:.1f} s")


def test_renew_follows_threshold_and_reinstalls(lab, tmp_path, capsys, api_group):
    """``acmelab renew`` works from the state directory alone: it renews by
    threshold and installs where the old certificate was installed."""
    services_file = tmp_path / "services.toml"
    services = write_services(services_file, "rnw", 3)
    prepare_targets(lab, services)
    common = ["--lab-dir", str(lab.run_dir), "--state-dir", str(tmp_path / "state"), "--json"]
    code, first = run_cli(capsys, "apply", str(services_file), *common)
    assert code == 0 and first["counts"] == {"issued": 3}

    code, same = run_cli(capsys, "renew", *common)                 # default: a third of the lifetime
    assert code == 0 and same["counts"] == {"unchanged": 3}
    code, renewed = run_cli(capsys, "renew", *common, "--threshold", "99999d")
    assert code == 0 and renewed["counts"] == {"renewed": 3}
    for result in renewed["services"]:
        assert result["installed"][0] == f"cdn:{result['name']}"       # (and "cas" for the first)
        assert result["verified"] == [f"cdn:{result['name']}"]
    # half-way through the lifetime: not due by default (a third), due with 0.5
    meta = json.loads((tmp_path / "state" / "certificates" / services[0]["name"] / "meta.json").read_text())
    not_before, not_after = (dt.datetime.fromisoformat(meta[k]) for k in ("not_before", "not_after"))
    halfway = (not_before + (not_after - not_before) / 2 + dt.timedelta(days=1)).isoformat()
    only = ["--name", services[0]["name"], "--now", halfway]
    code, default = run_cli(capsys, "renew", *common, *only)
    assert code == 0 and [s["status"] for s in default["services"]] == ["unchanged"]
    code, fraction = run_cli(capsys, "renew", *common, *only, "--threshold", "0.5")
    assert code == 0 and [s["status"] for s in fraction["services"]] == ["renewed"]


def test_one_failing_service_does_not_stop_the_others(lab, tmp_path, capsys):
    services_file = tmp_path / "services.toml"
    good = service_domain("ok", 1)
    cdn.add_cdn_domain(lab_client(lab), good)
    services_file.write_text(
        '[[service]]\n'
        f'domains = ["{good}"]\ndns = "alidns"\ncdn = "{good}"\n\n'
        '[[service]]\n'   # a CDN domain the account does not have
        f'domains = ["{service_domain("bad", 2)}"]\ndns = "alidns"\ncdn = "{service_domain("bad", 2)}"\n\n'
        '[[service]]\n'   # a name in no zone of the account
        f'domains = ["nozone-{RUN}.invalid-zone.test"]\ndns = "alidns"\n')
    code, result = run_cli(capsys, "apply", str(services_file), "--lab-dir", str(lab.run_dir),
                           "--state-dir", str(tmp_path / "state"), "--json")
    assert code == cli.EXIT_ERROR
    statuses = {s["name"]: s for s in result["services"]}
    assert statuses[good]["status"] == "issued" and statuses[good]["verified"] == [f"cdn:{good}"]
    bad = statuses[service_domain("bad", 2)]
    assert bad["status"] == "failed" and "InvalidDomain.NotFound" in bad["error"]
    # issue #14: the target is checked before the order, so no certificate was issued
    assert bad["serial_hex"] is None and f"cdn:{service_domain('bad', 2)}" in bad["error"]
    assert not (tmp_path / "state" / "certificates" / service_domain("bad", 2) / "meta.json").exists()
    nozone = statuses[f"nozone-{RUN}.invalid-zone.test"]
    assert nozone["status"] == "failed" and "no zone" in nozone["error"]
    assert acme_txt_records(lab, RUN) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_run_then_rerun_completes(lab, tmp_path, capsys, signum):
    count = 60
    services_file = tmp_path / "services.toml"
    services = write_services(services_file, f"i{signum.value:02d}", count)
    prepare_targets(lab, services)
    state_dir = tmp_path / "state"
    argv = [sys.executable, "-m", "acmelab.cli", "apply", str(services_file), "--lab-dir", str(lab.run_dir),
            "--state-dir", str(state_dir), "--json", "--concurrency", "2"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(list(state_dir.glob("certificates/*/meta.json"))) < 5:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.02)
        process.send_signal(signum)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == cli.EXIT_INTERRUPTED, err
    interrupted = json.loads(out)
    done = [s for s in interrupted["services"] if s["status"] == "issued"]
    assert 3 <= len(done) < count     # 5 stored, at most 2 (--concurrency 2) still installing
    assert interrupted["counts"].get("interrupted", 0) > 0
    assert f"acmelab: {signum.name}: finishing the steps in flight" in err
    # nothing corrupt, no TXT record left at the endpoint
    assert_state_files_parse(state_dir)
    assert acme_txt_records(lab, RUN) == []

    code, rerun = run_cli(capsys, "apply", str(services_file), "--lab-dir", str(lab.run_dir),
                          "--state-dir", str(state_dir), "--json")
    assert code == cli.EXIT_OK, rerun["counts"]
    statuses = {s["name"]: s["status"] for s in rerun["services"]}
    assert all(statuses[s["name"]] == "unchanged" for s in done)
    assert set(statuses.values()) <= {"unchanged", "issued"}
    assert all(s["verified"] for s in rerun["services"])
    assert assert_state_files_parse(state_dir) == count
    assert acme_txt_records(lab, RUN) == []


def test_records_of_a_killed_run_are_removed_by_the_next(lab, tmp_path, capsys):
    """A run killed with SIGKILL cannot clean up; the TXT records it noted in
    dns-pending.json (before publishing them) are removed by the next run."""
    from acmelab.dns.alidns import AlidnsProvider
    from acmelab.state import StateDir

    domain = service_domain("kil", 7)
    services_file = tmp_path / "services.toml"
    services_file.write_text(f'[[service]]\ndomains = ["{domain}"]\ndns = "alidns"\n')
    state = StateDir(tmp_path / "state")
    # what the killed run had done: noted, then published, a TXT record
    name, value = f"_acme-challenge.{domain}", "left-by-a-killed-run-" + RUN
    state.set_pending_dns(domain, [{"provider": "alidns", "name": name, "value": value}])
    AlidnsProvider.for_lab(lab).present(name, value)
    assert [r["Value"] for r in acme_txt_records(lab, f"kil007-{RUN}")] == [value]

    code, result = run_cli(capsys, "apply", str(services_file), "--lab-dir", str(lab.run_dir),
                           "--state-dir", str(state.root), "--json")
    assert code == cli.EXIT_OK and result["counts"] == {"issued": 1}
    assert acme_txt_records(lab, f"kil007-{RUN}") == []
    assert state.pending_dns(domain) == []
    assert not (state.certificate_dir(domain) / "dns-pending.json").exists()


def test_record_that_cannot_be_removed_keeps_the_certificate(lab, tmp_path, capsys, monkeypatch, caplog):
    """DeleteDomainRecord fails after issuance: the certificate is stored
    (issued, exit 0), a warning names the record, dns-pending.json keeps it,
    and the next run removes it."""
    from acmelab.dns.alidns import AlidnsProvider
    from acmelab.errors import DnsError
    from acmelab.state import StateDir

    domain = service_domain("cln", 8)
    services_file = tmp_path / "services.toml"
    services_file.write_text(f'[[service]]\ndomains = ["{domain}"]\ndns = "alidns"\n')
    state = StateDir(tmp_path / "state")
    original = AlidnsProvider.cleanup

    def stuck(self, name, value):
        raise DnsError("simulated: DeleteDomainRecord failed")

    monkeypatch.setattr(AlidnsProvider, "cleanup", stuck)
    with caplog.at_level("WARNING"):
        code, result = run_cli(capsys, "apply", str(services_file), "--lab-dir", str(lab.run_dir),
                               "--state-dir", str(state.root), "--json")
    assert code == cli.EXIT_OK and result["counts"] == {"issued": 1}
    assert state.certificate(domain) is not None
    assert f"{domain}: could not remove the TXT record at _acme-challenge.{domain}" in caplog.text
    assert [r["name"] for r in state.pending_dns(domain)] == [f"_acme-challenge.{domain}"]
    assert len(acme_txt_records(lab, f"cln008-{RUN}")) == 1

    monkeypatch.setattr(AlidnsProvider, "cleanup", original)
    code, result = run_cli(capsys, "apply", str(services_file), "--lab-dir", str(lab.run_dir),
                           "--state-dir", str(state.root), "--json")
    assert code == cli.EXIT_OK and result["counts"] == {"unchanged": 1}
    assert acme_txt_records(lab, f"cln008-{RUN}") == []
    assert state.pending_dns(domain) == []


def test_locked_and_damaged_services(lab, tmp_path, capsys):
    """A service another run holds is left alone (and reported); a service
    whose stored files were damaged is issued again; the others are unchanged."""
    from acmelab.state import StateDir

    services_file = tmp_path / "services.toml"
    services = write_services(services_file, "lck", 3)
    prepare_targets(lab, services)
    state = StateDir(tmp_path / "state")
    common = ["--lab-dir", str(lab.run_dir), "--state-dir", str(state.root), "--json"]
    code, first = run_cli(capsys, "apply", str(services_file), *common)
    assert code == 0
    serials = {s["name"]: s["serial_hex"] for s in first["services"]}
    locked, damaged, fine = (s["name"] for s in services)
    state.certificate(damaged).fullchain_path.write_text("-----BEGIN CERTIFICATE-----\ntruncat")
    locked_meta = (state.certificate_dir(locked) / "meta.json").read_bytes()

    with state.lock(locked):                                  # "another run" holds it
        code, second = run_cli(capsys, "apply", str(services_file), *common, "--force")
    assert code == cli.EXIT_LOCKED                            # the only service not ok was skipped for its lock
    result = {s["name"]: s for s in second["services"]}
    assert result[locked]["status"] == "skipped" and result[locked]["reason"] == "locked by another run"
    assert (state.certificate_dir(locked) / "meta.json").read_bytes() == locked_meta
    assert result[damaged]["status"] == "issued" and "unusable" in result[damaged]["reason"]
    assert result[fine]["status"] == "renewed" and result[fine]["reason"] == "forced"

    state.certificate(damaged).fullchain_path.write_text("garbage")
    code, third = run_cli(capsys, "apply", str(services_file), *common)
    assert code == 0
    result = {s["name"]: s for s in third["services"]}
    assert result[damaged]["status"] == "issued" and "unusable" in result[damaged]["reason"]
    assert result[damaged]["verified"] == [f"cdn:{damaged}"]
    assert result[locked]["status"] == "unchanged" and result[locked]["serial_hex"] == serials[locked]
    assert_state_files_parse(state.root)
