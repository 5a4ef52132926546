"""The ``acmelab`` command line without a server: help for every
subcommand, usage errors (exit 2), secrets never taken from argv, export of
a stored certificate.  The lab round trips are in
tests/integration/test_cli_apply.py."""

from __future__ import annotations

import argparse
import json
import os

import pytest

from acmelab import cli, pkcs12
from acmelab.state import StateDir
from tests.unit._deploy_pki import Pki, pem

EXPECTED = {
    ("account", "create"), ("account", "show"), ("account", "update"), ("account", "rollover"),
    ("account", "deactivate"), ("issue",), ("renew",), ("revoke",), ("install", "cdn"),
    ("install", "apigateway"), ("install", "cas"), ("export", "pfx"), ("apply",), ("list",),
    ("lab", "up"), ("lab", "status"), ("lab", "down"),
}


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path, monkeypatch):
    """Never touch ~/.acmelab from a test."""
    monkeypatch.setenv("ACMELAB_STATE_DIR", str(tmp_path / "default-state"))


def leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        yield path
        return
    for name, child in subparsers[0].choices.items():
        yield from leaf_commands(child, path + (name,))


def test_every_command_exists():
    assert set(leaf_commands(cli.build_parser())) == EXPECTED


@pytest.mark.parametrize("path", sorted(EXPECTED) + [("account",), ("install",), ("export",), ("lab",), ()])
def test_help_for_every_subcommand(path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*path, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: acmelab {' '.join(path)}".rstrip())
    if path == ():
        assert "exit status" in out and "130" in out


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2


def test_production_needs_confirmation(tmp_path, capsys):
    code = cli.main(["account", "create", "--directory", "production", "--state-dir", str(tmp_path)])
    assert code == cli.EXIT_USAGE
    assert "--i-mean-production" in capsys.readouterr().err
    assert not any((tmp_path / "accounts").iterdir()) if (tmp_path / "accounts").exists() else True


def test_plain_http_directory_refused(tmp_path, capsys):
    code = cli.main(["account", "show", "--directory", "http://localhost:14000/dir", "--state-dir", str(tmp_path)])
    assert code == cli.EXIT_USAGE
    assert "https://" in capsys.readouterr().err


def test_invalid_services_file_is_exit_2(tmp_path, capsys):
    path = tmp_path / "services.toml"
    path.write_text('[[service]]\ndomains = ["a.example.com"]\ndns = "route53"\n')
    code = cli.main(["apply", str(path), "--state-dir", str(tmp_path / "state")])
    assert code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "route53" in err and "a.example.com" in err


def test_bad_threshold_and_now_are_exit_2(tmp_path, capsys):
    state = StateDir(tmp_path)
    store(state)
    assert cli.main(["renew", "--state-dir", str(tmp_path), "--threshold", "soon"]) == cli.EXIT_USAGE
    assert cli.main(["renew", "--state-dir", str(tmp_path), "--now", "tomorrow"]) == cli.EXIT_USAGE


def test_renew_with_nothing_managed(tmp_path, capsys):
    assert cli.main(["renew", "--state-dir", str(tmp_path), "--json"]) == cli.EXIT_OK
    assert json.loads(capsys.readouterr().out) == {"counts": {}, "exit_code": 0, "services": []}


def test_no_password_option_on_the_command_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["export", "pfx", "shop", "--profile", "modern", "--password", "hunter2",
                  "--state-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --password" in capsys.readouterr().err


def store(state: StateDir):
    pki = Pki.new()
    key, leaf = pki.leaf("shop.example.com")
    return key, state.store_certificate("shop", private_key=key, chain_pem=pem(leaf, pki.intermediate),
                                        order_url="https://ca/order/1", directory_url="https://ca/dir",
                                        service={"name": "shop", "domains": ["shop.example.com"]})


def test_export_pfx_from_password_file(tmp_path, capsys):
    state = StateDir(tmp_path / "state")
    key, managed = store(state)
    secret = "correct horse battery staple"
    (tmp_path / "password").write_text(secret + "\n")
    out = tmp_path / "shop.pfx"
    code = cli.main(["export", "pfx", "shop", "--profile", "legacy", "--out", str(out),
                     "--password-file", str(tmp_path / "password"), "--state-dir", str(state.root), "--json"])
    assert code == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["encrypted"] is True
    assert secret not in captured.out + captured.err
    assert out.stat().st_mode & 0o777 == 0o600
    bundle = pkcs12.load_pkcs12(out, password=secret)
    assert format(bundle.certificate.serial_number, "x") == managed.serial_hex and len(bundle.chain) == 1
    # never overwritten without --overwrite
    assert cli.main(["export", "pfx", "shop", "--profile", "legacy", "--out", str(out),
                     "--password-file", str(tmp_path / "password"), "--state-dir", str(state.root)]) == 1
    assert "overwrite" in capsys.readouterr().err


def test_export_pfx_password_from_environment_or_explicitly_none(tmp_path, capsys, monkeypatch):
    state = StateDir(tmp_path / "state")
    store(state)
    monkeypatch.setenv("ACMELAB_PFX_PASSWORD", "from-env")
    assert cli.main(["export", "pfx", "shop", "--profile", "modern", "--out", str(tmp_path / "a.pfx"),
                     "--state-dir", str(state.root)]) == 0
    pkcs12.load_pkcs12(tmp_path / "a.pfx", password="from-env")
    monkeypatch.delenv("ACMELAB_PFX_PASSWORD")
    assert cli.main(["export", "pfx", "shop", "--profile", "modern", "--out", str(tmp_path / "b.pfx"),
                     "--state-dir", str(state.root), "--no-password"]) == 0
    pkcs12.load_pkcs12(tmp_path / "b.pfx", password=None, unencrypted=True)
    assert "UNENCRYPTED" in capsys.readouterr().out


def test_export_pfx_without_a_password_source_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ACMELAB_PFX_PASSWORD", raising=False)
    state = StateDir(tmp_path / "state")
    store(state)
    code = cli.main(["export", "pfx", "shop", "--profile", "modern", "--out", str(tmp_path / "c.pfx"),
                     "--state-dir", str(state.root)])     # stdin is not a terminal under pytest
    assert code == cli.EXIT_USAGE
    assert "--password-file" in capsys.readouterr().err
    assert not (tmp_path / "c.pfx").exists()


def test_list_json(tmp_path, capsys):
    state = StateDir(tmp_path)
    _, managed = store(state)
    assert cli.main(["list", "--state-dir", str(tmp_path), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["name"] == "shop" and row["serial_hex"] == managed.serial_hex
    assert "PRIVATE KEY" not in json.dumps(row)


def test_unknown_certificate_names_the_ones_there_are(tmp_path, capsys):
    state = StateDir(tmp_path)
    store(state)
    code = cli.main(["export", "pfx", "nope", "--profile", "modern", "--no-password", "--state-dir", str(tmp_path)])
    assert code == 1 and "nope" in capsys.readouterr().err


def test_bad_revocation_reason(tmp_path, capsys):
    assert cli.main(["revoke", "shop", "--reason", "because", "--state-dir", str(tmp_path)]) == cli.EXIT_USAGE
    assert "keyCompromise" in capsys.readouterr().err


def test_deactivate_needs_yes(tmp_path, capsys):
    assert cli.main(["account", "deactivate", "--state-dir", str(tmp_path)]) == cli.EXIT_USAGE
    assert "--yes" in capsys.readouterr().err


def test_missing_alibaba_credentials_fail_before_any_request(tmp_path, capsys, monkeypatch):
    for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
                 "ALIYUN_ACCESS_KEY_ID", "ALIYUN_ACCESS_KEY_SECRET"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "services.toml"
    path.write_text('[[service]]\ndomains = ["a.example.com"]\ndns = "alidns"\n')
    code = cli.main(["apply", str(path), "--directory", "staging", "--state-dir", str(tmp_path / "state")])
    assert code == cli.EXIT_USAGE
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in capsys.readouterr().err
    assert not list((tmp_path / "state" / "accounts").iterdir())      # no account key made, nothing sent


def test_challtestsrv_outside_the_lab_is_a_usage_error(tmp_path, capsys):
    code = cli.main(["issue", "-d", "a.example.com", "--dns", "challtestsrv", "--directory", "staging",
                     "--state-dir", str(tmp_path)])
    assert code == cli.EXIT_USAGE
    assert "only with --directory lab" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["-d", "bad name.example.com"], ["-d", "a.example.com", "--name", "../x"],
                                  ["-d", "*.*.example.com"]])
def test_bad_names_for_issue_are_usage_errors(tmp_path, capsys, argv):
    code = cli.main(["issue", *argv, "--dns", "challtestsrv", "--state-dir", str(tmp_path)])
    assert code == cli.EXIT_USAGE
    assert "acmelab: error:" in capsys.readouterr().err
