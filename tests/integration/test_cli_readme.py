"""The README's end-to-end command block, run exactly as written against a
lab of its own (free ports, its own run directory and state directory):
issue prints the certificate's name, serial and files; the first ``renew``
leaves it alone; ``renew --now`` really renews and reinstalls (the CDN and
SLB edges serve the new serial); ``lab status --inventory`` lists the lab
account; ``lab down`` stops it.  Also ``lab status --inventory --json``."""

from __future__ import annotations

import json
import re
import shlex
import stat
from pathlib import Path

import pytest

from acmelab import cli, lab as lab_module
from acmelab.state import StateDir
from tests.integration._served import served_serial

pytestmark = pytest.mark.lab

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands() -> list[list[str]]:
    """The argv of every line of the fenced block after the README line that
    names this file (without the leading ``acmelab``)."""
    lines = README.read_text("utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if "tests/integration/test_cli_readme.py" in line)
    opening = next(i for i in range(start, len(lines)) if lines[i].startswith("```"))
    closing = next(i for i in range(opening + 1, len(lines)) if lines[i].startswith("```"))
    commands = [shlex.split(line, comments=True) for line in lines[opening + 1:closing] if line.strip()]
    assert commands and all(argv[0] == "acmelab" for argv in commands), commands
    return [argv[1:] for argv in commands]


def test_the_readme_block_is_what_this_test_expects():
    assert [argv[:2] for argv in readme_commands()] == [
        ["lab", "up"], ["issue", "-d"], ["install", "cdn"], ["install", "slb"], ["renew"],
        ["renew", "--now"], ["lab", "status"], ["lab", "down"]]


@pytest.fixture
def own_lab(tmp_path, monkeypatch):
    """A run directory and a state directory of this test only, as the
    README's commands find them (``$ACMELAB_LAB_DIR``, ``$ACMELAB_STATE_DIR``);
    the lab is started on free ports first, so the README's ``lab up`` finds
    it running.  Stopped whatever happens."""
    run_dir, state_dir = tmp_path / "lab", tmp_path / "state"
    monkeypatch.setenv("ACMELAB_LAB_DIR", str(run_dir))
    monkeypatch.setenv("ACMELAB_STATE_DIR", str(state_dir))
    try:
        assert cli.main(["lab", "up", "--free-ports"]) == 0
        yield run_dir, StateDir(state_dir)
    finally:
        lab_module.stop(run_dir)


def test_the_readme_commands_issue_install_and_really_renew(own_lab, capsys):
    run_dir, state = own_lab
    capsys.readouterr()
    outputs = {}
    for argv in readme_commands():
        code = cli.main(argv)
        captured = capsys.readouterr()
        assert code == 0, (argv, captured.out, captured.err)
        outputs[" ".join(argv[:2])] = captured.out
        if argv[0] == "issue":
            issued = state.certificate("shop.example.com")
        elif argv == ["renew"]:
            assert state.certificate("shop.example.com").serial_hex == issued.serial_hex
        elif argv[:2] == ["renew", "--now"]:
            renewed = state.certificate("shop.example.com")
            info = lab_module.status(run_dir)
            assert renewed.serial_hex != issued.serial_hex
            # really renewed and reinstalled: both edges serve the new certificate
            assert served_serial(info, "cdn.example.com", info.cdn_edge_port) == renewed.serial_hex
            assert served_serial(info, "shop.example.com", info.slb_edge_port) == renewed.serial_hex
            assert {record["serial_hex"] for record in renewed.installed.values()} == {renewed.serial_hex}
    assert lab_module.status(run_dir) is None          # lab down stopped it

    # issue: the certificate name, serial and files (not the services table)
    out = outputs["issue -d"]
    assert out.startswith(f"Issued certificate 'shop.example.com': serial {issued.serial_hex}, valid until ")
    assert "┃" not in out and "service" not in out
    current = issued.version_dir.parent / "current"
    for label, file in (("certificate", "cert.pem"), ("chain", "chain.pem"), ("fullchain", "fullchain.pem"),
                        ("private key", "privkey.pem")):
        assert re.search(rf"^  {label} +{re.escape(str(current / file))}", out, re.M), (label, out)
    assert stat.S_IMODE((issued.version_dir / "privkey.pem").stat().st_mode) == 0o600
    assert "PRIVATE KEY" not in "".join(outputs.values())

    # the results say why
    assert "1 unchanged" in outputs["renew"] and "not due" in outputs["renew"]
    assert "1 renewed" in outputs["renew --now"] and "due:" in outputs["renew --now"]

    # the inventory: zones, CDN domains and the SLB listener (serving the renewed serial), API groups,
    # load balancers, no CAS certificate
    inventory = outputs["lab status"]
    assert re.search(r"^Zones \(\d+\): example\.com, dev\.example\.com", inventory, re.M)
    assert re.search(rf"^  cdn\.example\.com +HTTPS on  serial {renewed.serial_hex}$", inventory, re.M)
    assert re.search(r"^  static\.example\.com +HTTPS off$", inventory, re.M)
    assert re.search(r"^  523e8dc7bbe04613b5b1d726c2a7889d  \S+: api\.dev\.example\.com, api\.example\.com$",
                     inventory, re.M)
    assert re.search(rf"^  lb-bp1acmelabshop0000001  \S+  HTTPS listeners 443 \(serial {renewed.serial_hex}\)$",
                     inventory, re.M)
    assert re.search(r"^  lb-bp1acmelabapi00000002  \S+  HTTPS listeners 443, 8443$", inventory, re.M)
    assert re.search(r"^Certificate Management Service \(CAS\): none$", inventory, re.M)


def test_lab_status_inventory_json(lab, capsys):
    assert cli.main(["lab", "status", "--inventory", "--json", "--run-dir", str(lab.run_dir)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["directory_url"] == lab.directory_url
    inventory = data["inventory"]
    assert {"example.com", "dev.example.com", "bücher.example"} <= {z["DomainName"] for z in inventory["Zones"]}
    assert {"cdn.example.com", "static.example.com"} <= {d["DomainName"] for d in inventory["CdnDomains"]}
    assert "523e8dc7bbe04613b5b1d726c2a7889d" in {g["GroupId"] for g in inventory["ApiGroups"]}
    assert {"lb-bp1acmelabshop0000001", "lb-bp1acmelabapi00000002"} <= {
        b["LoadBalancerId"] for b in inventory["LoadBalancers"]}
    text = json.dumps(data)
    assert lab.aliyun_access_key_secret not in text and "PRIVATE KEY" not in text
