"""Preflight before ordering, and one owner per target (issue #14), against the lab.

Every check runs against the real lab: Pebble behind the fault proxy (which
only records: its log is what reached the CA), the lab's Alibaba Cloud
endpoint (CDN, API Gateway, SLB, DNS) and its TLS edges.  A failed
preflight must leave the CA untouched: no ``newOrder`` in the proxy's log.
"""

from __future__ import annotations

import json
import uuid

import pytest

from acmelab import cli
from acmelab.config import parse_services
from acmelab.deploy import apigateway, cdn, lab_client
from acmelab.engine import apply_services
from tests.integration._served import served_serial

pytestmark = pytest.mark.lab

RUN = uuid.uuid4().hex[:6]
GROUP = "523e8dc7bbe04613b5b1d726c2a7889d"          # the lab's seeded API group
SHOP_LB = "lb-bp1acmelabshop0000001"                # seeded, HTTPS listener on 443 only


def cname(lab, zone: str, rr: str, target: str) -> None:
    lab_client(lab).call("AddDomainRecord", "2015-01-09", {"DomainName": zone, "RR": rr, "Type": "CNAME",
                                                            "Value": target}, product="Alidns")


def test_every_target_is_checked_before_a_single_order(lab, proxied):
    env, proxy, state = proxied
    good = f"pre-ok-{RUN}.example.com"
    cdn.add_cdn_domain(lab_client(lab), good)
    delegated = f"pre-cname-{RUN}.example.com"
    cname(lab, "example.com", f"_acme-challenge.pre-cname-{RUN}", f"_acme-challenge.x.nowhere-{RUN}.example")
    entries = {
        "cdn-missing": {"domains": [f"pre-nocdn-{RUN}.example.com"], "cdn": f"pre-nocdn-{RUN}.example.com"},
        "group-missing": {"domains": [f"pre-g-{RUN}.example.com"],
                          "apigateway": {"group_id": "0" * 32, "domain": f"pre-g-{RUN}.example.com"}},
        "not-bound": {"domains": [f"pre-nb-{RUN}.example.com"],
                      "apigateway": {"group_id": GROUP, "domain": f"pre-nb-{RUN}.example.com"}},
        "lb-missing": {"domains": [f"pre-lb-{RUN}.example.com"],
                       "slb": {"load_balancer_id": "lb-doesnotexist0000000", "listener_port": 443}},
        "listener-missing": {"domains": [f"pre-li-{RUN}.example.com"],
                             "slb": {"load_balancer_id": SHOP_LB, "listener_port": 8443}},
        "zone-missing": {"domains": [f"pre-{RUN}.no-such-zone.test"]},
        "cname-zone-missing": {"domains": [delegated]},
    }
    services = parse_services({"defaults": {"dns": "alidns"},
                               "service": [{"name": name, **entry} for name, entry in entries.items()]
                               + [{"name": "good", "domains": [good], "cdn": good}]})
    before = proxied.orders()
    results = {r.name: r for r in apply_services(services, env, state, concurrency=2)}
    expected = {
        "cdn-missing": (f"cdn:pre-nocdn-{RUN}.example.com", "InvalidDomain.NotFound"),
        "group-missing": (f"apigateway:{'0' * 32}/pre-g-{RUN}.example.com", "no API group"),
        "not-bound": (f"apigateway:{GROUP}/pre-nb-{RUN}.example.com", "is not bound to group"),
        "lb-missing": ("slb:lb-doesnotexist0000000:443", "InvalidLoadBalancerId.NotFound"),
        "listener-missing": (f"slb:{SHOP_LB}:8443", "no HTTPS listener on port 8443"),
        "zone-missing": (f"pre-{RUN}.no-such-zone.test", "no zone"),
        "cname-zone-missing": (f"nowhere-{RUN}.example", "is not in this DNS account"),
    }
    for name, (target, why) in expected.items():
        result = results[name]
        assert result.status == "failed" and result.serial_hex is None, (name, result)
        assert target in result.error and why in result.error, (name, result.error)
        assert result.reason == "no certificate yet"
        assert state.certificate(name) is None
    assert results["good"].status == "issued" and results["good"].verified == (f"cdn:{good}",)
    # at the CA: exactly one newOrder -- the good service's; none for the seven that failed
    assert proxied.orders() - before == 1


def test_issue_exits_2_before_any_order_for_a_missing_zone(lab, tmp_path, capsys):
    name = f"issue-{RUN}.no-such-zone.test"
    code = cli.main(["issue", "-d", name, "--dns", "alidns", "--lab-dir", str(lab.run_dir),
                     "--state-dir", str(tmp_path / "state"), "--json"])
    captured = capsys.readouterr()
    assert code == cli.EXIT_USAGE and "no zone" in captured.err and name in captured.err
    assert not (tmp_path / "state" / "certificates" / name).exists()


def test_services_file_with_a_cdn_domain_outside_its_names_exits_2(lab, tmp_path, capsys):
    services = tmp_path / "services.toml"
    services.write_text(f'[[service]]\nname = "shop"\ndomains = ["shop-{RUN}.example.com"]\ndns = "challtestsrv"\n'
                        f'cdn = "cdn.example.com"\n')
    code = cli.main(["apply", str(services), "--lab-dir", str(lab.run_dir), "--state-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE
    assert "service 'shop': cdn:cdn.example.com: the certificate covers" in err
    assert not (tmp_path / "s" / "certificates" / "shop").exists()


# --------------------------------------------------------------------------
# One owner per target
# --------------------------------------------------------------------------

@pytest.fixture
def run(cli_json):
    """``run(*argv) -> (exit code, JSON stdout, stderr)``: conftest's ``cli_json``."""
    return cli_json


def meta(run, name: str) -> dict:
    return json.loads((run.state / "certificates" / name / "meta.json").read_text())


def own_group(lab, label: str) -> str:
    """A new API group of the lab account (the seeded one stays as seeded)."""
    return apigateway.create_api_group(lab_client(lab), f"acmelab_{label}_{RUN}")


def test_two_certificates_on_one_api_gateway_domain_never_swap(run, lab):
    domain = f"owner-{RUN}.example.com"
    group = own_group(lab, "owner")
    apigateway.set_domain(lab_client(lab), group, domain)
    target = f"apigateway:{group}/{domain}"
    for name in ("first", "second"):
        code, _, err = run("issue", "-d", domain, "--dns", "challtestsrv", "--name", name)
        assert code == 0, err
    code, out, err = run("install", "apigateway", "first", "--group-id", group, "--domain", domain)
    assert code == 0 and out["services"][0]["status"] == "installed", err
    code, out, err = run("install", "apigateway", "second", "--group-id", group, "--domain", domain)
    [moved] = out["services"]
    assert code == 0 and moved["status"] == "installed", err
    assert any("ownership moved from the certificate 'first' to 'second'" in n for n in moved["notes"])
    assert target not in meta(run, "first")["installed"] and target in meta(run, "second")["installed"]
    serial = served_serial(lab, domain, lab.apigateway_edge_port)
    assert serial == moved["serial_hex"]

    for _ in range(2):
        code, out, err = run("renew")
        assert code == 0, err
        results = {r["name"]: r for r in out["services"]}
        assert results["first"]["installed"] == [] and results["second"]["installed"] == []
        assert results["second"]["verified"] == [target]
        assert served_serial(lab, domain, lab.apigateway_edge_port) == serial
    assert target not in meta(run, "first")["installed"] and target in meta(run, "second")["installed"]
    assert all(t.get("domain") != domain for t in meta(run, "first")["service"]["install"])


def test_a_state_with_two_owners_is_resolved_without_a_swap(run, lab):
    """Two certificates whose meta.json both record the target (an older
    acmelab's install): renew keeps the one installed last and the other
    gives the target up, saying so; the served serial never changes."""
    domain = f"owner2-{RUN}.example.com"
    group = own_group(lab, "owner2")
    apigateway.set_domain(lab_client(lab), group, domain)
    target = f"apigateway:{group}/{domain}"
    for name in ("old", "new"):
        code, _, err = run("issue", "-d", domain, "--dns", "challtestsrv", "--name", name)
        assert code == 0, err
    code, _, err = run("install", "apigateway", "old", "--group-id", group, "--domain", domain)
    assert code == 0, err
    old_record = meta(run, "old")["installed"][target]
    code, _, err = run("install", "apigateway", "new", "--group-id", group, "--domain", domain)
    assert code == 0, err
    # an older acmelab did not move ownership: put the record back
    path = run.state / "certificates" / "old" / "meta.json"
    data = json.loads(path.read_text())
    data["installed"][target] = {**old_record, "installed_at": "2020-01-01T00:00:00+00:00"}
    data["service"]["install"].append({"product": "apigateway", "group_id": group, "domain": domain})
    path.write_text(json.dumps(data))
    serial = served_serial(lab, domain, lab.apigateway_edge_port)

    for _ in range(2):
        code, out, err = run("renew")
        assert code == 0, err
        results = {r["name"]: r for r in out["services"]}
        assert results["old"]["installed"] == [] and served_serial(lab, domain, lab.apigateway_edge_port) == serial
    assert target not in meta(run, "old")["installed"]
    code, out, _ = run("renew")
    notes = [n for r in out["services"] for n in r["notes"]]
    assert not any("owned by" in n for n in notes), notes


def test_a_services_file_claiming_a_target_another_certificate_owns_fails_naming_both(run, lab, tmp_path):
    domain = f"owner3-{RUN}.example.com"
    cdn.add_cdn_domain(lab_client(lab), domain)
    code, _, err = run("issue", "-d", domain, "--dns", "challtestsrv", "--name", "manual")
    assert code == 0, err
    code, _, err = run("install", "cdn", "manual", "--domain", domain)
    assert code == 0, err
    services = tmp_path / "services.toml"
    services.write_text(f'[[service]]\nname = "filed"\ndomains = ["{domain}"]\ndns = "challtestsrv"\ncdn = "{domain}"\n')
    code, out, _ = run("apply", str(services))
    [result] = out["services"]
    assert code == cli.EXIT_ERROR and result["status"] == "failed" and result["serial_hex"] is None
    assert f"cdn:{domain} is claimed by service 'filed' and by the certificate 'manual'" in result["error"]


# --------------------------------------------------------------------------
# Preflight once per run
# --------------------------------------------------------------------------

#: what each target's preflight asks the account (Deployer.check_exists)
PREFLIGHT_ACTIONS = ("DescribeCdnDomainDetail", "DescribeApiGroup")


@pytest.fixture
def sent(monkeypatch):
    """The action of every request an AliyunClient sends from now on, in order."""
    from acmelab.aliyun import AliyunClient

    actions: list[str] = []
    send = AliyunClient.send

    def recording(self, request, **options):
        actions.append(request.get_action_name())
        return send(self, request, **options)

    monkeypatch.setattr(AliyunClient, "send", recording)
    return actions


@pytest.mark.parametrize("command", ["apply", "issue"])
def test_each_target_is_preflighted_once_per_run(run, lab, tmp_path, sent, command):
    """A new certificate for a CDN domain and an API Gateway domain: each
    target's existence is asked once -- not again before its install, and
    for ``acmelab issue`` (strict preflight, then the engine) not twice."""
    domain = f"once-{command}-{RUN}.example.com"
    cdn.add_cdn_domain(lab_client(lab), domain)
    group = own_group(lab, f"once_{command}")
    apigateway.set_domain(lab_client(lab), group, domain)
    services = tmp_path / "services.toml"
    services.write_text(f'[[service]]\nname = "once"\ndomains = ["{domain}"]\ndns = "alidns"\ncdn = "{domain}"\n'
                        f'apigateway = {{ group_id = "{group}", domain = "{domain}" }}\n')
    if command == "issue":   # a name whose stored spec has the two targets
        code, _, err = run("apply", str(services))
        assert code == 0, err
        sent.clear()
        code, out, err = run("issue", "-d", domain, "--dns", "alidns", "--name", "once")
    else:
        code, out, err = run("apply", str(services))
    assert code == 0, err
    [result] = out["services"]
    assert result["installed"] == [f"cdn:{domain}", f"apigateway:{group}/{domain}"], result
    assert [action for action in sent if action in PREFLIGHT_ACTIONS] == list(PREFLIGHT_ACTIONS), sent
