"""The ``acmelab lab`` command line (parsing and error reporting; the real
round trip is in tests/integration/test_lab.py)."""

from __future__ import annotations

import pytest

from acmelab import cli


def test_parser_has_lab_commands():
    parser = cli.build_parser()
    args = parser.parse_args(["lab", "up", "--free-ports", "--pebble-env", "PEBBLE_AUTHZREUSE=100",
                              "--eab", "kid-1=abc", "--strict", "--json"])
    assert args.func is cli.cmd_lab_up
    assert args.pebble_env == [("PEBBLE_AUTHZREUSE", "100")] and args.eab == [("kid-1", "abc")]
    assert parser.parse_args(["lab", "status", "--json"]).func is cli.cmd_lab_status
    assert parser.parse_args(["lab", "down"]).func is cli.cmd_lab_down
    assert parser.parse_args(["lab", "up", "--acme-port", "4000"]).acme_port == 4000


def test_bad_key_value_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["lab", "up", "--pebble-env", "NOEQUALS"])
    assert exit_info.value.code == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_free_ports_with_explicit_port_is_a_clear_error(capsys, tmp_path):
    assert cli.main(["lab", "up", "--run-dir", str(tmp_path), "--free-ports", "--acme-port", "4000"]) == 1
    assert "--free-ports cannot be combined" in capsys.readouterr().err


def test_status_of_empty_run_dir(capsys, tmp_path):
    assert cli.main(["lab", "status", "--run-dir", str(tmp_path), "--json"]) == cli.EXIT_NOT_RUNNING
    assert capsys.readouterr().out.strip() == "null"
    assert cli.main(["lab", "down", "--run-dir", str(tmp_path)]) == 0
    assert "No lab was running" in capsys.readouterr().out


def test_lab_up_latency_options(capsys, tmp_path):
    parser = cli.build_parser()
    args = parser.parse_args(["lab", "up", "--dns-propagation-delay", "2", "--aliyun-latency", "0.2"])
    assert (args.dns_propagation_delay, args.aliyun_latency) == (2.0, 0.2)
    defaults = parser.parse_args(["lab", "up"])
    assert (defaults.dns_propagation_delay, defaults.aliyun_latency) == (0.0, 0.0)
    assert cli.main(["lab", "up", "--run-dir", str(tmp_path), "--free-ports", "--dns-propagation-delay", "-1"]) == 1
    assert "dns_propagation_delay must be a number of seconds >= 0" in capsys.readouterr().err


def test_lab_commands_take_lab_dir_like_every_other_command(capsys, tmp_path):
    """--lab-dir, as the ACME commands name it; --run-dir stays its old spelling."""
    assert cli.main(["lab", "status", "--lab-dir", str(tmp_path / "a")]) == cli.EXIT_NOT_RUNNING
    assert f"No lab is running in {tmp_path / 'a'}" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["lab", "status", "--help"])
    assert "--lab-dir DIR, --run-dir DIR" in capsys.readouterr().out
