"""The command on the 2026 protocol: profiles, ARI-driven renewal with
``replaces``, the lifetime fallback, dns-persist-01's standing records."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid

import pytest
import requests
from cryptography import x509

from acmelab import cli
from acmelab.renewal_info import cert_id
from acmelab.state import serial_hex
from tests.integration._accounts import forget_authorizations

pytestmark = pytest.mark.lab


@pytest.fixture
def run(lab, tmp_path, capsys):
    state = tmp_path / "state"

    def call(*argv: str):
        where = [] if tuple(argv[:3]) == ("dns", "persist", "list") else ["--lab-dir", str(lab.run_dir)]  # no network
        code = cli.main([*argv, *where, "--state-dir", str(state), "--json"])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    call.state = state
    return call


def _name() -> str:
    return f"r{uuid.uuid4().hex[:8]}.example.com"


def _leaf(run, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((run.state / "certificates" / name / "current" / "cert.pem").read_bytes())


def _issue(run, name: str, *extra: str) -> dict:
    code, out, err = run("issue", "-d", name, "--dns", "challtestsrv", *extra)
    assert code == 0, err
    return json.loads(out)["services"][0]


def _listed(run, name: str) -> dict:
    code, out, err = run("list")
    assert code == 0, err
    return next(row for row in json.loads(out) if row["name"] == name)


@pytest.mark.parametrize("profile, at_most", [("shortlived", dt.timedelta(hours=160)),
                                              ("tlsserver", dt.timedelta(days=45))])
def test_issue_with_a_profile(run, profile, at_most):
    name = _name()
    _issue(run, name, "--profile", profile)
    leaf = _leaf(run, name)
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= at_most
    assert _listed(run, name)["profile"] == profile


def test_an_unknown_profile_exits_2_before_any_order(run, lab):
    name = _name()
    code, _, err = run("issue", "-d", name, "--dns", "challtestsrv", "--profile", "fortnight")
    assert code == 2 and "offers no profile 'fortnight'" in err
    assert not (run.state / "certificates" / name).exists()


def test_list_shows_the_window_pebble_serves(run, lab):
    name = _name()
    _issue(run, name)
    row = _listed(run, name)
    leaf = _leaf(run, name)
    served = requests.get(f"{lab.directory_url.rsplit('/', 1)[0]}/draft-ietf-acme-ari-03/renewalInfo/{cert_id(leaf)}",
                          verify=str(lab.ca_bundle), headers={"User-Agent": "acmelab-tests"}, timeout=10).json()
    window = served["suggestedWindow"]
    assert dt.datetime.fromisoformat(row["renewal_window"]["start"]) == dt.datetime.fromisoformat(
        window["start"].replace("Z", "+00:00"))
    assert dt.datetime.fromisoformat(row["renewal_window"]["end"]) == dt.datetime.fromisoformat(
        window["end"].replace("Z", "+00:00"))
    assert row["ari_next_check"] and not row["due"] and row["reason"].startswith("not due:")
    assert row["profile"] == "classic"


def _issue_without_top_bit(run) -> str:
    """Pebble b1e1ca4 looks ``replaces`` up by the serial's hex with the DER
    leading zero kept, so it finds no certificate whose serial has its top
    bit set (a Pebble bug; the certID itself follows RFC 9773 §4.1; Pebble's
    serials are below 2**63, so that is about 1 in 256).  Issue until the
    serial's top bit is clear (its length not a whole number of bytes), and
    return that certificate's name."""
    for _ in range(40):
        name = _name()
        _issue(run, name)
        serial = _leaf(run, name).serial_number
        if serial.bit_length() % 8 != 0:
            return name
    raise AssertionError("every serial of 40 issuances had its top bit set")


def test_renew_force_sends_replaces(run, lab):
    name = _issue_without_top_bit(run)
    before = _leaf(run, name)
    code, out, err = run("renew", "--name", name, "--force")
    assert code == 0, err
    order_url = json.loads((run.state / "certificates" / name / "meta.json").read_text())["order_url"]
    log = (lab.run_dir / "logs" / "pebble.log").read_text()
    order_id = order_url.rsplit("/", 1)[1]
    assert f'ARI: order "{order_id}" is a replacement' in log
    assert _leaf(run, name).serial_number != before.serial_number


def _pem(run, name: str) -> str:
    return (run.state / "certificates" / name / "current" / "cert.pem").read_text()


def test_a_window_moved_into_the_past_renews_on_a_plain_renew(run, lab):
    name = _name()
    _issue(run, name)
    before = _leaf(run, name)
    # the CA moves the window (what Let's Encrypt does before a mass revocation)
    lab.set_renewal_info(_pem(run, name),
                         {"suggestedWindow": {"start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"}})
    code, out, err = run("renew", "--name", name)
    result = json.loads(out)["services"][0]
    assert code == 0 and result["status"] == "renewed", err
    # a window already over: due, and the reason says where "now" is
    assert "past the end of the CA's renewal window 2020-01-01T00:00:00Z .. 2020-01-02T00:00:00Z (ARI)" \
        in result["reason"]
    assert _leaf(run, name).serial_number != before.serial_number


def test_renewal_info_is_asked_no_more_often_than_retry_after(run, lab):
    name = _name()
    _issue(run, name)
    code, out, _ = run("renew", "--name", name)        # asks ARI: not due
    result = json.loads(out)["services"][0]
    assert code == 0 and result["status"] == "unchanged" and "renewal window" in result["reason"]
    from acmelab.renewal import AriState

    stored = AriState.from_dict(json.loads((run.state / "certificates" / name / "meta.json").read_text())["ari"])
    assert stored.next_check > dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=5)   # Pebble: Retry-After 6 h
    lab.set_renewal_info(_pem(run, name),
                         {"suggestedWindow": {"start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"}})
    code, out, _ = run("renew", "--name", name)        # within Retry-After: not asked, still not due
    assert json.loads(out)["services"][0]["status"] == "unchanged"
    assert _listed(run, name)["ari_next_check"] == stored.next_check.isoformat()


def test_a_malformed_answer_falls_back_to_the_lifetime_rule(run, lab, caplog):
    name = _name()
    _issue(run, name)
    lab.set_renewal_info(_pem(run, name), "{garbage")
    with caplog.at_level(logging.WARNING):
        code, out, _ = run("renew", "--name", name)
    result = json.loads(out)["services"][0]
    assert code == 0 and result["status"] == "unchanged"
    assert "ARI unusable" in result["reason"] and "a third of the lifetime" in result["reason"]
    assert "renewalInfo (ARI) unusable" in caplog.text
    # ... and the lifetime rule still renews when the time comes
    code, out, _ = run("renew", "--name", name, "--now", "2099-01-01T00:00:00Z")
    assert json.loads(out)["services"][0]["status"] == "renewed"


def test_dns_persist_01_standing_record_listed_and_removed(run, lab, challtestsrv):
    name = _name()
    _issue(run, name, "--challenge", "dns-persist-01")
    code, out, _ = run("dns", "persist", "list")
    records = json.loads(out)
    assert code == 0 and [r["name"] for r in records] == [f"_validation-persist.{name}"]
    assert records[0]["certificate"] == name and "accounturi=" in records[0]["value"]
    # renewal by the standing record alone: with the account's authorization given up (this lab
    # would reuse it half the time), the CA validates afresh against the same record; nothing written
    first = _leaf(run, name).serial_number
    assert len(forget_authorizations(lab, run.state, [name])) == 1
    code, out, _ = run("renew", "--name", name, "--force")
    assert code == 0
    assert _leaf(run, name).serial_number != first
    assert json.loads(run("dns", "persist", "list")[1]) == records
    code, out, _ = run("dns", "persist", "remove", name)
    assert code == 0 and json.loads(out)["removed"] == [f"_validation-persist.{name}"]
    assert json.loads(run("dns", "persist", "list")[1]) == []


def _spec_targets(run, name: str) -> list[dict]:
    return json.loads((run.state / "certificates" / name / "meta.json").read_text())["service"]["install"]


def test_install_inside_the_ari_window_installs_the_live_certificate(run, lab):
    """``acmelab install`` issues nothing while the certificate is valid, even
    with the CA's renewal window open: the live serial goes onto the target."""
    name = _name()
    _issue(run, name, "-d", "static.example.com")
    before = _leaf(run, name)
    lab.set_renewal_info(_pem(run, name),
                         {"suggestedWindow": {"start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"}})
    code, out, err = run("install", "cdn", name, "--domain", "static.example.com")
    [result] = json.loads(out)["services"]
    assert code == 0 and result["status"] == "installed", err
    assert result["serial_hex"] == serial_hex(before.serial_number)
    assert _leaf(run, name).serial_number == before.serial_number
    assert result["verified"] == ["cdn:static.example.com"]
    # renew follows the window, and reinstalls there
    code, out, err = run("renew", "--name", name)
    [renewed] = json.loads(out)["services"]
    assert code == 0 and renewed["status"] == "renewed" and renewed["installed"] == ["cdn:static.example.com"], err


def test_install_that_fails_after_a_new_certificate_does_not_remember_the_target(run, lab, monkeypatch):
    """A revoked certificate is replaced by ``install`` before it installs; if
    the install then fails, the new target is not in the stored spec."""
    from acmelab import engine
    from acmelab.errors import DeployError
    from acmelab.state import StateDir

    name = _name()
    _issue(run, name, "-d", "static.example.com")
    before = _leaf(run, name)
    assert StateDir(run.state).mark_revoked(name, before.serial_number) is not None

    def refuse(target, *args, **kwargs):
        raise DeployError(f"{target.id}: refused by the test")

    monkeypatch.setattr(engine, "install_and_verify", refuse)
    code, out, err = run("install", "cdn", name, "--domain", "static.example.com")
    [result] = json.loads(out)["services"]
    assert code != 0 and result["status"] == "failed" and "refused by the test" in result["error"]
    assert _leaf(run, name).serial_number != before.serial_number      # the revoked one was replaced
    assert _spec_targets(run, name) == []                              # ... but the target is not remembered


def test_dns_persist_remove_needs_no_account(run, lab):
    """``dns persist remove`` is DNS only: with the account gone from the
    state directory it removes the record and registers no account."""
    import shutil

    from acmelab.dns.propagation import txt_values
    from acmelab.state import StateDir

    name = _name()
    _issue(run, name, "--challenge", "dns-persist-01")
    record = f"_validation-persist.{name}"
    assert txt_values(record, tuple(lab.dns_server))[0]
    shutil.rmtree(run.state / "accounts")
    code, out, err = run("dns", "persist", "remove", name)
    assert code == 0 and json.loads(out)["removed"] == [record], err
    assert txt_values(record, tuple(lab.dns_server))[0] == set()
    assert StateDir(run.state).account(lab.directory_url) is None
    assert not any((run.state / "accounts").rglob("*"))
