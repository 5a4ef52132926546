"""LabPorts, LabInfo and Pebble's configuration, without starting anything."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

import pytest

from acmelab.errors import InputError
from acmelab.lab import LabInfo, LabPorts, default_run_dir
from acmelab.lab import pebble as pebble_config


def _info(**changes) -> LabInfo:
    values = dict(
        directory_url="https://localhost:14000/dir", ca_bundle=Path("/run/lab/ca.pem"),
        management_url="https://localhost:15000", challtestsrv_url="http://127.0.0.1:8055",
        dns_server=("127.0.0.1", 8053), aliyun_endpoint="localhost:8443",
        aliyun_access_key_id="LTAIexampleexampleexam", aliyun_access_key_secret="s3cr3t-value-never-shown",
        cdn_edge_port=9443, apigateway_edge_port=9444, run_dir=Path("/run/lab"),
        eab_keys={"kid-1": "hmac-key-never-shown"},
    )
    values.update(changes)
    return LabInfo(**values)


def test_default_ports_are_the_documented_ones():
    assert LabPorts().to_dict() == {"acme": 14000, "management": 15000, "dns": 8053, "challtestsrv": 8055,
                                    "aliyun": 8443, "cdn_edge": 9443, "apigateway_edge": 9444,
                                    "slb_edge": 9445}


def test_free_ports_are_distinct_and_bindable():
    ports = LabPorts.free()
    values = list(ports.to_dict().values())
    assert len(set(values)) == 8
    assert all(port >= 1024 for port in values)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", ports.dns))


@pytest.mark.parametrize("changes", [{"acme": 0}, {"dns": 70000}, {"management": "15000"}, {"dns": 14000},
                                     {"cdn_edge": True}])
def test_bad_ports_are_input_errors(changes):
    with pytest.raises(InputError, match="LabPorts"):
        LabPorts(**changes)


def test_lab_info_hides_secrets_from_repr_and_json():
    info = _info()
    for text in (repr(info), str(info), info.to_json()):
        assert "s3cr3t-value-never-shown" not in text
        assert "hmac-key-never-shown" not in text
    data = json.loads(info.to_json())
    assert data["eab_kids"] == ["kid-1"]
    assert data["dns_server"] == ["127.0.0.1", 8053]
    assert data["ca_bundle"] == "/run/lab/ca.pem"


def test_lab_info_round_trips_through_json():
    info = _info()
    assert LabInfo.from_dict(json.loads(info.to_json(include_secrets=True))) == info
    assert LabInfo.from_dict(json.loads(info.to_json(include_secrets=True))).eab_keys == info.eab_keys
    without = LabInfo.from_dict(json.loads(info.to_json()), aliyun_access_key_secret="other")
    assert without.aliyun_access_key_secret == "other" and without.eab_keys == {}


def test_cert_status_rejects_non_hex_serial():
    with pytest.raises(InputError, match="hexadecimal"):
        _info().cert_status("not-hex")


def test_pebble_environment_drops_inherited_knobs(monkeypatch):
    monkeypatch.setenv("PEBBLE_WFE_NONCEREJECT", "90")
    monkeypatch.setenv("PEBBLE_VA_ALWAYS_VALID", "1")
    environment = pebble_config.pebble_environment(None)
    assert environment["PEBBLE_VA_NOSLEEP"] == "1"
    assert "PEBBLE_WFE_NONCEREJECT" not in environment and "PEBBLE_VA_ALWAYS_VALID" not in environment
    assert environment["PATH"] == os.environ["PATH"]
    chosen = pebble_config.pebble_environment({"PEBBLE_WFE_NONCEREJECT": 0, "PEBBLE_VA_NOSLEEP": "0"})
    assert chosen["PEBBLE_WFE_NONCEREJECT"] == "0" and chosen["PEBBLE_VA_NOSLEEP"] == "0"


def test_pebble_environment_sleep_time_alone_turns_the_defaults_nosleep_off():
    """The rule sees the caller's knobs only, whichever layer of defaults is
    under them (the course's for ensure_running)."""
    course = pebble_config.COURSE_PEBBLE_ENV
    sleeping = pebble_config.pebble_environment({"PEBBLE_VA_SLEEPTIME": "3"}, course)
    assert sleeping["PEBBLE_VA_NOSLEEP"] == "0" and sleeping["PEBBLE_VA_SLEEPTIME"] == "3"
    assert all(sleeping[key] == value for key, value in course.items() if key != "PEBBLE_VA_NOSLEEP")
    assert pebble_config.pebble_environment({}, course)["PEBBLE_VA_NOSLEEP"] == "1"
    explicit = pebble_config.pebble_environment({"PEBBLE_VA_SLEEPTIME": "3", "PEBBLE_VA_NOSLEEP": "1"}, course)
    assert explicit["PEBBLE_VA_NOSLEEP"] == "1"


@pytest.mark.parametrize("bad", [{"WFE_NONCEREJECT": "0"}, {"PEBBLE_CHAIN_LENGTH": 2.5},
                                 {"PEBBLE_VA_NOSLEEP": True}])
def test_pebble_environment_rejects_bad_knobs(bad):
    with pytest.raises(InputError):
        pebble_config.pebble_environment(bad)


@pytest.mark.parametrize("bad", [{"": "abc"}, {"kid": "has/slash"}, {"kid": "padded=="}, {"kid": b"bytes"}])
def test_eab_keys_must_be_base64url(bad):
    with pytest.raises(InputError):
        pebble_config.check_eab_keys(bad)


def test_pebble_config_binds_loopback_only_and_is_private(tmp_path):
    path = pebble_config.write_pebble_config(
        tmp_path / "pebble-config.json", acme_port=41000, management_port=41001,
        certificate=tmp_path / "cert.pem", private_key=tmp_path / "key.pem", eab_keys={"kid-1": "abc_-"})
    config = json.loads(path.read_text())["pebble"]
    assert config["listenAddress"] == "127.0.0.1:41000"
    assert config["managementListenAddress"] == "127.0.0.1:41001"
    assert config["externalAccountBindingRequired"] is True
    assert config["externalAccountMACKeys"] == {"kid-1": "abc_-"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    plain = pebble_config.write_pebble_config(
        tmp_path / "plain.json", acme_port=1, management_port=2,
        certificate=tmp_path / "cert.pem", private_key=tmp_path / "key.pem")
    assert "externalAccountMACKeys" not in json.loads(plain.read_text())["pebble"]


def test_command_lines():
    assert pebble_config.pebble_argv("/usr/bin/pebble", Path("/r/c.json"), 5353, strict=True) == [
        "/usr/bin/pebble", "-config", "/r/c.json", "-dnsserver", "127.0.0.1:5353", "-strict"]
    assert "-strict" not in pebble_config.pebble_argv("pebble", Path("c"), 1, strict=False)
    argv = pebble_config.challtestsrv_argv("pebble-challtestsrv", 5353, 5355)
    assert argv[argv.index("-dnsserver") + 1] == "127.0.0.1:5353"
    assert argv[argv.index("-management") + 1] == "127.0.0.1:5355"
    for listener in ("-http01", "-https01", "-tlsalpn01", "-doh"):
        assert argv[argv.index(listener) + 1] == ""


def test_default_run_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("ACMELAB_LAB_DIR", str(tmp_path / "somewhere"))
    assert default_run_dir() == tmp_path / "somewhere"
    monkeypatch.delenv("ACMELAB_LAB_DIR")
    repo = Path(__file__).resolve().parents[2]
    assert default_run_dir() == repo / ".lab"


def test_access_key_is_made_once_and_never_overwritten(tmp_path):
    from acmelab.errors import LabError
    from acmelab.lab.core import _access_key

    key_id, key_secret = _access_key(tmp_path)
    assert key_id.startswith("LTAI") and len(key_secret) == 30
    assert _access_key(tmp_path) == (key_id, key_secret)
    path = tmp_path / "aliyun-access-key.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("{garbage")
    with pytest.raises(LabError, match="never overwritten") as caught:
        _access_key(tmp_path)
    assert key_secret not in str(caught.value)
    assert path.read_text() == "{garbage"


def test_config_profiles_retry_after_key_algorithm(tmp_path):
    path = pebble_config.write_pebble_config(
        tmp_path / "c.json", acme_port=1, management_port=2,
        certificate=tmp_path / "cert.pem", private_key=tmp_path / "key.pem",
        retry_after={"authz": 2}, key_algorithm="ecdsa")
    config = json.loads(path.read_text())["pebble"]
    assert config["retryAfter"] == {"authz": 2, "order": 0}
    assert config["keyAlgorithm"] == "ecdsa"
    assert {name: p["validityPeriod"] for name, p in config["profiles"].items()} == {
        "classic": 90 * 86400, "tlsserver": 45 * 86400, "shortlived": 160 * 3600}
    custom = pebble_config.write_pebble_config(
        tmp_path / "d.json", acme_port=1, management_port=2,
        certificate=tmp_path / "cert.pem", private_key=tmp_path / "key.pem",
        profiles={"tiny": ("ten minutes", 600)})
    assert json.loads(custom.read_text())["pebble"]["profiles"] == {
        "tiny": {"description": "ten minutes", "validityPeriod": 600, "promoteCommonName": False}}
    assert [name for name, p in config["profiles"].items() if p["promoteCommonName"]] == ["classic"]


@pytest.mark.parametrize("bad", [
    {"profiles": {}}, {"profiles": {"x": ("d", 0)}}, {"profiles": {"": ("d", 5)}}, {"profiles": {"x": 5}},
    {"retry_after": {"authz": -1}}, {"retry_after": {"poll": 1}}, {"retry_after": {"order": True}},
    {"key_algorithm": "dsa"},
])
def test_config_knobs_refused(tmp_path, bad):
    with pytest.raises(InputError):
        pebble_config.write_pebble_config(
            tmp_path / "c.json", acme_port=1, management_port=2,
            certificate=tmp_path / "cert.pem", private_key=tmp_path / "key.pem", **bad)
    assert not (tmp_path / "c.json").exists()
