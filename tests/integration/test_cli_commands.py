"""The single-certificate commands against the lab: account life cycle,
issue, install (CDN / API Gateway / CAS), revoke, renew of a revoked
certificate, export -- and no secret in any output, even at -vv."""

from __future__ import annotations

import json
import uuid

import pytest
from cryptography import x509

from acmelab import cli, keys
from acmelab.deploy import apigateway, cdn, lab_client
from tests.integration._served import served_serial

pytestmark = pytest.mark.lab

RUN = uuid.uuid4().hex[:6]
#: one second lab (shared by the tests that need it): alternate roots for --preferred-chain
SECOND_LAB_ENV = {"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_ALTERNATE_ROOTS": "1"}


@pytest.fixture
def run(lab, tmp_path, capsys):
    """``run(*argv) -> (exit code, stdout, stderr)`` with the lab and a private state dir."""
    state = tmp_path / "state"

    def call(*argv: str, json_out: bool = True):
        where = [] if tuple(argv[:2]) == ("export", "pfx") else ["--lab-dir", str(lab.run_dir)]  # no network
        extra = [*where, "--state-dir", str(state)] + (["--json"] if json_out else [])
        if argv[0] == "lab":
            extra = []
        code = cli.main([*argv, *extra])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    call.state = state
    return call


def test_account_life_cycle(run, lab):
    code, out, _ = run("account", "create", "--contact", "mailto:ops@example.com")
    assert code == 0
    created = json.loads(out)
    assert created["status"] == "valid" and created["account_url"].startswith(lab.directory_url.rsplit("/", 1)[0])
    key_file = run.state / "accounts" / created["key_file"].split("/accounts/")[1]
    assert key_file.stat().st_mode & 0o777 == 0o600

    code, out, _ = run("account", "show")
    assert code == 0 and json.loads(out)["contact"] == ["mailto:ops@example.com"]

    code, out, _ = run("account", "update", "--contact", "mailto:new@example.com")
    assert code == 0 and json.loads(out)["contact"] == ["mailto:new@example.com"]

    code, out, _ = run("account", "rollover", "--key-type", "ec384")
    rolled = json.loads(out)
    assert code == 0 and rolled["account_url"] == created["account_url"]
    assert rolled["key_thumbprint"] != created["key_thumbprint"]
    assert keys.key_type_of(keys.load_private_key(key_file)) == "ec384"
    assert len(list(key_file.parent.glob("account.key.*.old"))) == 1       # the old key kept, not overwritten
    code, out, _ = run("account", "show")                                 # the new key works
    assert code == 0 and json.loads(out)["key_thumbprint"] == rolled["key_thumbprint"]

    code, out, _ = run("account", "deactivate", "--yes")
    assert code == 0 and json.loads(out)["status"] == "deactivated"
    code, _, err = run("issue", "-d", f"x-{RUN}.example.com", "--dns", "challtestsrv")
    assert code == 1 and "deactivated" in err


@pytest.mark.parametrize("lost", ["answer", "request", "everything"])
def test_rollover_whose_answer_is_lost_keeps_every_key(run, lab, monkeypatch, lost):
    """keyChange fails at the network level: the CA is asked which key it
    knows.  answer: the CA switched -> the new key is promoted (exit 0);
    request: it never arrived -> the old key stays, the pending one goes;
    everything: the CA cannot be asked -> both keys are kept (exit 1)."""
    from acmelab.client import AcmeClient, AcmeTransport
    from acmelab.errors import AccountDoesNotExist, NetworkError

    code, out, _ = run("account", "create")
    assert code == 0
    created = json.loads(out)
    key_file = run.state / "accounts" / created["key_file"].split("/accounts/")[1]
    old_key = keys.load_private_key(key_file)
    original = AcmeTransport._send
    state = {"sent": False}

    def lossy(self, method, url, **kwargs):
        if state["sent"] and lost == "everything":
            raise NetworkError("simulated: the CA is unreachable")
        if method == "POST" and "rollover" in url or "key-change" in url:
            state["sent"] = True
            if lost == "request":
                raise NetworkError("simulated: connection reset before the request went out")
            original(self, method, url, **kwargs)
            raise NetworkError("simulated: the answer was lost (read timeout)")
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(AcmeTransport, "_send", lossy)
    code, out, err = run("account", "rollover")
    monkeypatch.setattr(AcmeTransport, "_send", original)
    pending = key_file.with_name("account.key.next")
    assert "asking the CA" in err

    def finds(key) -> bool:
        try:
            AcmeClient(lab.directory_url, key, verify=str(lab.ca_bundle)).find_account()
            return True
        except AccountDoesNotExist:
            return False

    if lost == "answer":
        assert code == 0 and "the CA has the new key" in err
        assert not pending.exists() and len(list(key_file.parent.glob("account.key.*.old"))) == 1
        assert json.loads(out)["key_thumbprint"] != created["key_thumbprint"]
        assert finds(keys.load_private_key(key_file)) and not finds(old_key)
    elif lost == "request":
        assert code == 1 and "keeps its old key" in err
        assert not pending.exists() and finds(keys.load_private_key(key_file))
    else:
        assert code == 1 and "Both keys are kept" in err
        assert pending.exists() and keys.public_jwk(keys.load_private_key(key_file)) == keys.public_jwk(old_key)
        new_key = keys.load_private_key(pending)
        assert finds(new_key) and not finds(old_key)  # the CA switched: the pending key is the account's


def test_show_without_account(run):
    code, _, err = run("account", "show")
    assert code == 1 and "account create" in err


def test_issue_install_revoke_renew_export(run, lab, tmp_path):
    domain = f"one-{RUN}.example.com"
    code, out, _ = run("issue", "-d", domain, "-d", f"www.{domain}", "--dns", "challtestsrv", "--key-type", "rsa2048")
    assert code == 0
    [issued] = json.loads(out)["services"]
    assert issued["status"] == "issued" and issued["installed"] == []
    chain = (run.state / "certificates" / domain / "current" / "fullchain.pem").read_bytes()
    leaf = x509.load_pem_x509_certificates(chain)[0]
    assert int(issued["serial_hex"], 16) == leaf.serial_number
    assert len(issued["serial_hex"]) % 2 == 0 and issued["serial_hex"] == issued["serial_hex"].lower()
    assert {n.value for n in leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value} \
        == {domain, f"www.{domain}"}

    # install on CDN and API Gateway (+ CAS), each proven by a handshake
    client = lab_client(lab)
    cdn.add_cdn_domain(client, domain)
    group = apigateway.create_api_group(client, f"cmd_{RUN}")
    apigateway.set_domain(client, group, f"www.{domain}")
    code, out, _ = run("install", "cdn", domain, "--domain", domain)
    assert code == 0 and json.loads(out)["services"][0]["verified"] == [f"cdn:{domain}"]
    code, out, _ = run("install", "apigateway", domain, "--group-id", group, "--domain", f"www.{domain}")
    assert code == 0 and json.loads(out)["services"][0]["verified"] == [f"apigateway:{group}/www.{domain}"]
    code, out, _ = run("install", "cas", domain)
    assert code == 0 and json.loads(out)["services"][0]["installed"] == ["cas"]
    code, out, _ = run("install", "cdn", domain, "--domain", "cdn.example.org")   # not covered: refused, nothing sent
    assert code == 1 and "not cdn.example.org" in json.loads(out)["services"][0]["error"]

    # revoke: Pebble says revoked with the reason; renew replaces it and re-installs everywhere
    code, out, _ = run("revoke", domain, "--reason", "keyCompromise")
    assert code == 0
    status = lab.cert_status(issued["serial_hex"])
    assert status["Status"] == "Revoked" and int(status["Reason"]) == 1
    code, _, err = run("export", "pfx", domain, "--profile", "modern", "--no-password",
                       "--out", str(tmp_path / "revoked.pfx"))
    assert code == 0 and f"{domain} (serial {issued['serial_hex']}) was revoked" in err
    code, out, _ = run("renew")
    [renewed] = json.loads(out)["services"]
    assert code == 0, renewed["error"]
    assert renewed["status"] == "renewed" and renewed["reason"] == "revoked"
    assert set(renewed["installed"]) == {f"cdn:{domain}", f"apigateway:{group}/www.{domain}", "cas"}
    assert set(renewed["verified"]) == {f"cdn:{domain}", f"apigateway:{group}/www.{domain}"}
    assert served_serial(lab, domain, lab.cdn_edge_port) == renewed["serial_hex"] != issued["serial_hex"]
    code, out, _ = run("renew")
    assert code == 0 and json.loads(out)["counts"] == {"unchanged": 1}

    # list, export
    code, out, _ = run("list")
    [row] = json.loads(out)
    assert row["serial_hex"] == renewed["serial_hex"] and set(row["installed"]) >= {f"cdn:{domain}", "cas"}
    (tmp_path / "pw").write_text("s3cret-pfx")
    code, out, _ = run("export", "pfx", domain, "--profile", "modern", "--out", str(tmp_path / "a.pfx"),
                       "--password-file", str(tmp_path / "pw"))
    assert code == 0 and json.loads(out)["serial_hex"] == renewed["serial_hex"]


def test_no_secret_in_verbose_output(run, lab):
    """At -vv (debug logs of acmelab, requests and the Alibaba SDK), neither the
    certificate key, the account key nor the access key secret shows up."""
    domain = f"secret-{RUN}.shop03.example"
    cdn.add_cdn_domain(lab_client(lab), domain)
    services = run.state.parent / "services.toml"
    services.write_text(f'[[service]]\ndomains = ["{domain}"]\ndns = "alidns"\ncdn = "{domain}"\ncas = true\n')
    code, out, err = run("apply", str(services), "-vv", json_out=False)
    assert code == 0, err[-2000:]
    assert "DEBUG" in err and "SetCdnDomainSSLCertificate" in err
    text = out + err
    assert lab.aliyun_access_key_secret not in text
    key_files = {p.resolve() for p in [*run.state.glob("certificates/*/*/privkey.pem"),
                                       *run.state.glob("accounts/*/account.key")]}
    assert len(key_files) == 2
    for key_file in key_files:
        body = [line for line in key_file.read_text().splitlines() if "-----" not in line]
        assert body and not any(line in text for line in body)
        pem = keys.load_private_key(key_file)
        for fmt_line in keys.private_key_pem(pem).decode().splitlines()[1:-1]:
            assert fmt_line not in text
    assert "PRIVATE KEY" not in text


def test_lab_commands_still_work(run, lab):
    code, out, _ = run("lab", "status", "--run-dir", str(lab.run_dir), "--json")
    assert code == 0 and json.loads(out)["directory_url"] == lab.directory_url
    assert lab.aliyun_access_key_secret not in out


def test_revoke_a_pem_file_with_its_own_key(run, lab):
    """RFC 8555 §7.6: revocation signed by the certificate key (jwk), no account needed."""
    domain = f"ownkey-{RUN}.example.com"
    code, out, _ = run("issue", "-d", domain, "--dns", "challtestsrv")
    assert code == 0
    [issued] = json.loads(out)["services"]
    current = run.state / "certificates" / domain / "current"
    code, out, _ = run("revoke", str(current / "cert.pem"), "--key", str(current / "privkey.pem"),
                       "--reason", "4")
    assert code == 0 and json.loads(out) == {"serial_hex": issued["serial_hex"], "reason": "superseded",
                                             "certificate": str(current / "cert.pem"),
                                             "replaced_on_next_renew": True, "managed_certificate": domain}
    status = lab.cert_status(issued["serial_hex"])
    assert status["Status"] == "Revoked" and int(status["Reason"]) == 4
    code, _, err = run("revoke", str(current / "cert.pem"), "--key", str(current / "privkey.pem"))
    assert code == 1 and "alreadyRevoked" in err


def test_certificate_from_another_acme_server_is_replaced(run, lab, lab_factory, tmp_path, capsys):
    """Moving a state directory to another ACME server (staging -> production,
    here: a second lab) replaces its certificates on the next apply."""
    domain = f"moved-{RUN}.example.com"
    services = tmp_path / "services.toml"
    services.write_text(f'[[service]]\ndomains = ["{domain}"]\ndns = "challtestsrv"\n')
    code, out, _ = run("apply", str(services))
    assert code == 0 and json.loads(out)["counts"] == {"issued": 1}
    other = lab_factory(pebble_env=SECOND_LAB_ENV)
    assert other.directory_url != lab.directory_url
    code = cli.main(["apply", str(services), "--lab-dir", str(other.run_dir), "--state-dir", str(run.state), "--json"])
    [moved] = json.loads(capsys.readouterr().out)["services"]
    assert code == 0 and moved["status"] == "renewed"
    assert moved["reason"] == f"issued by another ACME server ({lab.directory_url})"


def test_preferred_chain(lab_factory, tmp_path, capsys):
    """--preferred-chain picks the alternate chain (RFC 8555 §7.4.2, Link rel="alternate")
    that leads to the named root; the stored fullchain is that chain."""
    other = lab_factory(pebble_env=SECOND_LAB_ENV)
    roots = [x509.load_pem_x509_certificate(pem.encode()) for pem in other.roots()]
    assert len(roots) == 2
    domain = f"chain-{RUN}.example.com"
    for root in roots:
        root_cn = root.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
        code = cli.main(["issue", "-d", domain, "--dns", "challtestsrv", "--preferred-chain", root_cn,
                         "--lab-dir", str(other.run_dir), "--state-dir", str(tmp_path / "state"), "--json"])
        [result] = json.loads(capsys.readouterr().out)["services"]
        assert code == 0, result
        chain = x509.load_pem_x509_certificates(
            (tmp_path / "state" / "certificates" / domain / "current" / "fullchain.pem").read_bytes())
        assert chain[-1].issuer == root.subject


def test_revoke_a_managed_pem_file_by_account(run, lab, tmp_path):
    """Revoking the live certificate by its PEM file is recorded like revoking
    by name: list shows it revoked, renew replaces it.  A PEM file of no
    managed certificate is only revoked at the CA, and stderr says so."""
    domain = f"pemrevoke-{RUN}.example.com"
    code, out, _ = run("issue", "-d", domain, "--dns", "challtestsrv")
    assert code == 0
    [first] = json.loads(out)["services"]
    current = run.state / "certificates" / domain / "current"
    old_copy = tmp_path / "old.pem"
    old_copy.write_bytes((current / "cert.pem").read_bytes())
    code, out, _ = run("issue", "-d", domain, "--dns", "challtestsrv")       # old_copy is no longer live
    [second] = json.loads(out)["services"]
    assert code == 0 and second["serial_hex"] != first["serial_hex"]

    code, out, err = run("revoke", str(old_copy))
    assert code == 0 and "not a managed certificate; only revoked at the CA" in err
    assert json.loads(out)["replaced_on_next_renew"] is False

    code, out, err = run("revoke", str(current / "cert.pem"), "--reason", "superseded")
    assert code == 0 and json.loads(out)["managed_certificate"] == domain and "not a managed" not in err
    assert lab.cert_status(second["serial_hex"])["Status"] == "Revoked"
    code, out, _ = run("list", json_out=False)
    assert "revoked" in out and second["serial_hex"] in out
    code, out, _ = run("renew")
    [renewed] = json.loads(out)["services"]
    assert code == 0 and renewed["status"] == "renewed" and renewed["reason"] == "revoked"


def test_install_reports_installed(run, lab):
    """README's example: a certificate for a CDN domain the lab seeds."""
    domain = f"inst-{RUN}.example.com"
    code, out, _ = run("issue", "-d", domain, "-d", "static.example.com", "--dns", "alidns")
    assert code == 0
    code, out, _ = run("install", "cdn", domain, "--domain", "static.example.com")
    [installed] = json.loads(out)["services"]
    assert code == 0 and installed["status"] == "installed" and installed["verified"] == ["cdn:static.example.com"]
    code, out, _ = run("install", "cdn", domain, "--domain", "static.example.com", json_out=False)
    assert code == 0 and "1 service: 1 unchanged" in out


def test_lab_up_while_running_keeps_the_lab_and_warns(run, lab):
    code, out, err = run("lab", "up", "--run-dir", str(lab.run_dir), "--strict", "--json",
                         "--pebble-env", "PEBBLE_CHAIN_LENGTH=3")
    assert code == 0 and json.loads(out)["directory_url"] == lab.directory_url
    assert "warning" in err and "--strict" in err and "PEBBLE_CHAIN_LENGTH=3" in err and "acmelab lab down" in err
    code, _, err = run("lab", "up", "--run-dir", str(lab.run_dir), "--pebble-env", "PEBBLE_TYPO=1")
    assert code == cli.EXIT_USAGE and "PEBBLE_TYPO" in err
    code, _, err = run("lab", "up", "--run-dir", str(lab.run_dir), "--json")     # nothing asked: no warning
    assert code == 0 and err == ""


def test_lab_status_into_a_closed_pipe(lab):
    """`acmelab lab status --json | head -c1`: exit 141, no traceback."""
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "acmelab.cli", "lab", "status", "--json",
                                "--run-dir", str(lab.run_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == cli.EXIT_BROKEN_PIPE and "Traceback" not in err and "Exception" not in err
