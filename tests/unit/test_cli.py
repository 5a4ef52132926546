"""The ``acmelab`` command line without a server: help for every
subcommand, usage errors (exit 2), secrets never taken from argv, export of
a stored certificate.  The lab round trips are in
tests/integration/test_cli_apply.py."""

from __future__ import annotations

import argparse
import json

import pytest

from acmelab import cli, pkcs12
from acmelab.state import StateDir
from tests.unit._deploy_pki import Pki, pem

EXPECTED = {
    ("account", "create"), ("account", "show"), ("account", "update"), ("account", "rollover"),
    ("account", "deactivate"), ("issue",), ("renew",), ("revoke",), ("install", "cdn"),
    ("install", "apigateway"), ("install", "cas"), ("install", "slb"), ("export", "pfx"), ("apply",), ("list",),
    ("lab", "up"), ("lab", "status"), ("lab", "down"), ("dns", "persist", "list"), ("dns", "persist", "remove"),
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
    assert int(managed.serial_hex, 16) == bundle.certificate.serial_number and len(bundle.chain) == 1
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


@pytest.mark.parametrize("text", ["certificateHold", "6", "cACompromise", "2"])
def test_revocation_reasons_lets_encrypt_refuses_are_refused_before_sending(text, tmp_path, capsys):
    assert cli.main(["revoke", "shop", "--reason", text, "--state-dir", str(tmp_path)]) == cli.EXIT_USAGE
    assert "the reasons Let's Encrypt accepts" in capsys.readouterr().err


def test_revocation_reason_names_in_any_case():
    from acmelab.cli.certificates import _reason

    assert [_reason(t) for t in ("keycompromise", "KeyCompromise", "1", " superseded ")] == [1, 1, 1, 4]


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


# -- what a new-user trial found ------------------------------------------------

def test_password_file_that_is_not_utf8_is_a_usage_error(tmp_path, capsys):
    state = StateDir(tmp_path / "state")
    store(state)
    (tmp_path / "password").write_bytes(b"caf\xe9\n")
    code = cli.main(["export", "pfx", "shop", "--profile", "modern", "--out", str(tmp_path / "a.pfx"),
                     "--password-file", str(tmp_path / "password"), "--state-dir", str(state.root)])
    assert code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "not UTF-8" in err and "Traceback" not in err and not (tmp_path / "a.pfx").exists()


def test_services_file_that_is_not_utf8_is_exit_2(tmp_path, capsys):
    path = tmp_path / "services.toml"
    path.write_bytes(b'[[service]]\ndomains = ["caf\xe9.example.com"]\n')
    assert cli.main(["apply", str(path), "--state-dir", str(tmp_path / "state")]) == cli.EXIT_USAGE
    assert "not UTF-8" in capsys.readouterr().err


def test_export_over_an_existing_file_names_the_option(tmp_path, capsys):
    state = StateDir(tmp_path / "state")
    store(state)
    out = tmp_path / "a.pfx"
    out.write_bytes(b"keep me")
    code = cli.main(["export", "pfx", "shop", "--profile", "modern", "--out", str(out), "--no-password",
                     "--state-dir", str(state.root)])
    err = capsys.readouterr().err
    assert code == 1 and "use --overwrite" in err and "overwrite=True" not in err
    assert out.read_bytes() == b"keep me"


def test_export_to_dash_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    state = StateDir(tmp_path / "state")
    store(state)
    code = cli.main(["export", "pfx", "shop", "--profile", "modern", "--out", "-", "--no-password",
                     "--state-dir", str(state.root)])
    assert code == cli.EXIT_USAGE and "--out -" in capsys.readouterr().err
    assert not (tmp_path / "-").exists()


def test_revoke_a_missing_file_says_no_such_file(tmp_path, capsys):
    code = cli.main(["revoke", str(tmp_path / "no" / "such" / "file.pem"), "--state-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and "no such file" in err and "certificate name" not in err


def test_list_shows_revoked_and_full_serials(tmp_path, capsys):
    state = StateDir(tmp_path)
    _, managed = store(state)
    state.mark_revoked("shop", managed.serial_hex)
    assert cli.main(["list", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "revoked" in out and managed.serial_hex in out


def test_global_options_before_the_command(tmp_path, capsys):
    import logging

    state = StateDir(tmp_path)
    _, managed = store(state)
    assert cli.main(["--json", "list", "--state-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["serial_hex"] == managed.serial_hex
    assert cli.main(["-vv", "list", "--state-dir", str(tmp_path)]) == 0
    assert logging.getLogger().level == logging.DEBUG
    capsys.readouterr()
    assert cli.main(["-q", "renew", "--state-dir", str(tmp_path / "empty")]) == 0
    assert capsys.readouterr().out == ""
    cli.main(["list", "--state-dir", str(tmp_path)])     # back to the default level for later tests
    capsys.readouterr()


def result(name, status, **kwargs):
    from acmelab.services import ServiceResult

    return ServiceResult(name, status, **kwargs)


def test_summary_pluralises_and_quiet_prints_only_errors(capsys):
    assert cli._summary([result("a", "unchanged", serial_hex="0abc")], as_json=False) == 0
    out = capsys.readouterr().out
    assert "1 service:" in out and "1 services" not in out and "0abc" in out
    assert cli._summary([result("a", "unchanged"), result("b", "failed", error="boom")],
                        as_json=False, quiet=True) == cli.EXIT_ERROR
    captured = capsys.readouterr()
    assert captured.out == "" and "b failed: boom" in captured.err and "a " not in captured.err


@pytest.mark.parametrize("statuses, code", [
    (["unchanged", "skipped"], cli.EXIT_LOCKED), (["skipped", "skipped"], cli.EXIT_LOCKED),
    (["skipped", "failed"], cli.EXIT_ERROR), (["renewed"], cli.EXIT_OK), (["skipped", "interrupted"], 130),
])
def test_exit_status_of_a_run(statuses, code, capsys):
    results = [result(f"s{n}", status) for n, status in enumerate(statuses)]
    assert cli._summary(results, as_json=True) == code
    assert json.loads(capsys.readouterr().out)["exit_code"] == code


def test_lab_up_refuses_an_unknown_pebble_knob(tmp_path, capsys):
    code = cli.main(["lab", "up", "--run-dir", str(tmp_path), "--pebble-env", "PEBBLE_NO_SUCH_KNOB=1"])
    assert code == cli.EXIT_USAGE and "PEBBLE_NO_SUCH_KNOB" in capsys.readouterr().err
    assert not (tmp_path / "pebble.pid").exists() and not list(tmp_path.glob("*.pid"))


@pytest.mark.parametrize("command", ["list", "list --json"])
def test_stdout_closed_early_is_no_traceback(tmp_path, command):
    """`acmelab list | head -1`: the reader goes away; exit 141, no traceback."""
    import subprocess
    import sys

    state = StateDir(tmp_path)
    store(state)
    process = subprocess.Popen([sys.executable, "-m", "acmelab.cli", *command.split(), "--state-dir", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()                  # before the command writes anything
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == cli.EXIT_BROKEN_PIPE
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err


# --------------------------------------------------------------------------
# Issue #14's CLI polish: descriptions, only the options a command uses,
# "did you mean"
# --------------------------------------------------------------------------

def parser_at(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = cli.build_parser()
    for name in path:
        [subparsers] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = subparsers.choices[name]
    return parser


GROUPS = sorted({path[:i] for path in EXPECTED for i in range(1, len(path))})


@pytest.mark.parametrize("path", sorted(EXPECTED) + GROUPS)
def test_every_command_has_a_description(path, capsys):
    description = parser_at(path).description
    assert description and len(description) > 40, path
    with pytest.raises(SystemExit):
        cli.main([*path, "--help"])
    shown = "".join(capsys.readouterr().out.split())        # argparse re-wraps it, also at hyphens
    assert "".join(description.split()) in shown, path


ACME = {"--directory", "--i-mean-production", "--ca-bundle", "--lab-dir"}
STATE = {"--state-dir"}
CLOUD = {"--region-id", "--aliyun-profile"}
VERIFY = {"--trust-root"}
OUTPUT = {"--json", "--verbose", "--quiet"}
COMMON = ACME | STATE | CLOUD | VERIFY | OUTPUT
#: the common options each command reads -- nothing it would ignore
USES = {
    **{("account", c): ACME | STATE | OUTPUT for c in ("create", "show", "update", "rollover", "deactivate")},
    ("issue",): COMMON, ("renew",): COMMON, ("apply",): COMMON,
    **{("install", p): COMMON for p in ("cdn", "apigateway", "cas", "slb")},
    ("revoke",): ACME | STATE | OUTPUT, ("list",): ACME | STATE | OUTPUT,
    ("dns", "persist", "list"): STATE | OUTPUT, ("dns", "persist", "remove"): ACME | STATE | CLOUD | OUTPUT,
    ("export", "pfx"): STATE | OUTPUT,
    ("lab", "up"): {"--json", "--lab-dir"}, ("lab", "status"): {"--json", "--lab-dir"}, ("lab", "down"): {"--lab-dir"},
}


def test_the_table_of_used_options_covers_every_command():
    assert set(USES) == EXPECTED


@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_a_command_shows_only_the_common_options_it_uses(path):
    shown = {option for action in parser_at(path)._actions for option in action.option_strings
             if option.startswith("--")}
    assert shown & COMMON == USES[path]


def test_an_option_a_command_does_not_use_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["export", "pfx", "shop", "--profile", "modern", "--directory", "staging",
                  "--state-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --directory staging" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["isue"], "unknown command 'isue'; did you mean 'issue'?"),
    (["reneww"], "unknown command 'reneww'; did you mean 'renew'?"),
    (["account", "creat"], "unknown account command 'creat'; did you mean 'create'?"),
    (["install", "sbl", "shop"], "unknown install command 'sbl'; did you mean 'slb'?"),
    (["dns", "persist", "lst"], "unknown dns persist command 'lst'; did you mean 'list'?"),
    (["lab", "stauts"], "unknown lab command 'stauts'; did you mean 'status'?"),
    (["-v", "xyzzy"], "unknown command 'xyzzy'; choose from account, issue, renew,"),
])
def test_a_mistyped_command_gets_did_you_mean(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("usage: acmelab")


def test_every_result_says_why():
    from acmelab.cli.output import why
    from acmelab.engine import ServiceResult

    unchanged = ServiceResult("shop", "unchanged", "not due: 61.0 days left, renewal window opens 2027-01-29",
                              serial_hex="05a1", verified=("cdn:cdn.example.com",))
    assert why(unchanged) == "not due: 61.0 days left, renewal window opens 2027-01-29"
    renewed = ServiceResult("shop", "renewed", "due: 20.0 days left", serial_hex="05a1",
                            installed=("cdn:cdn.example.com", "cas", "slb:lb-1:443"),
                            verified=("cdn:cdn.example.com", "slb:lb-1:443"),
                            notes=("installed: cdn:cdn.example.com, slb:lb-1:443 (serial 05a1, handshake verified)",
                                   "installed: cas (serial 05a1, no handshake check)"))
    assert why(renewed) == ("due: 20.0 days left; installed: cdn:cdn.example.com, slb:lb-1:443 "
                            "(serial 05a1, handshake verified); installed: cas (serial 05a1, no handshake check)")
    installed = ServiceResult("shop", "installed", "not due: 61.0 days left", serial_hex="05a1",
                              installed=("cdn:cdn.example.com",), verified=("cdn:cdn.example.com",),
                              notes=("installed: cdn:cdn.example.com (serial 05a1, handshake verified)",))
    assert why(installed) == ("installed: cdn:cdn.example.com (serial 05a1, handshake verified); "
                              "not due: 61.0 days left")
    # a result without notes is its reason as it is: nothing is made up from installed / verified
    told = ServiceResult("shop", "installed", "installed: cdn:cdn.example.com (serial 05a1, handshake verified)",
                         serial_hex="05a1", installed=("cdn:cdn.example.com",), verified=("cdn:cdn.example.com",))
    assert why(told) == told.reason
    failed = ServiceResult("shop", "failed", "due: no certificate yet", error="CDN domain x.example.com not found")
    assert why(failed) == "CDN domain x.example.com not found"


def test_the_summary_table_shows_why(capsys):
    from acmelab.engine import ServiceResult

    result = ServiceResult("shop", "unchanged", "not due: 61.0 days left [ARI]", serial_hex="05a1")
    assert cli._summary([result], as_json=False) == 0
    assert "not due: 61.0 days left [ARI]" in capsys.readouterr().out   # brackets are text, not markup


def test_the_engines_notes_are_printed_as_they_are():
    from types import SimpleNamespace

    from acmelab.cli.output import why

    result = SimpleNamespace(name="shop", status="unchanged", reason="not due: 61.0 days left", error=None,
                             serial_hex="05a1", installed=(), verified=("cdn:cdn.example.com",),
                             notes=("cdn:cdn.example.com: serves serial 05a1 (handshake verified)",))
    assert why(result) == "not due: 61.0 days left; cdn:cdn.example.com: serves serial 05a1 (handshake verified)"


def test_a_lab_dir_where_no_lab_runs_is_an_error_not_a_new_lab(tmp_path, capsys):
    missing = tmp_path / "no-lab-here"
    code = cli.main(["account", "create", "--lab-dir", str(missing), "--state-dir", str(tmp_path / "state")])
    assert code == cli.EXIT_USAGE
    assert f"lab up --lab-dir {missing}" in capsys.readouterr().err
    assert not missing.exists() and not (tmp_path / "state" / "accounts").exists()


def test_a_mistyped_option_gets_the_command_usage_and_the_closest_option(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["list", "--ofline", "--state-dir", str(tmp_path)])
    assert exited.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "acmelab list: error: unrecognized arguments: --ofline; did you mean --offline?" in err
    assert err.startswith("usage: acmelab list")
    # the command's own options and the root's output options after it still work
    assert cli.main(["list", "--offline", "--json", "-q", "--state-dir", str(tmp_path)]) == cli.EXIT_OK
