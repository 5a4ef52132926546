"""After the lab restarts, Pebble has forgotten every account and issues
from new roots: the command re-registers the stored account key (lab only;
another CA is an error telling what to do) and re-issues what the old lab
issued, instead of failing on the handshake check.  A lab of its own,
restarted on the same free ports."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from acmelab import cli
from acmelab.errors import LabError
from acmelab.lab import Lab, LabPorts

pytestmark = pytest.mark.lab

RUN = uuid.uuid4().hex[:6]


def start_lab(run_dir, ports=None):
    for attempt in range(3):
        lab = Lab(run_dir, ports=ports or LabPorts.free(), pebble_env={"PEBBLE_WFE_NONCEREJECT": "0"})
        try:
            return lab, lab.start()
        except LabError as error:
            # another test run may grab a just-chosen free port (or, on the restart, the freed one)
            if attempt == 2 or "in use" not in str(error):
                raise
            if ports is not None:
                pytest.skip(f"a port of the first lab was taken before the restart: {error}")


def test_restarted_lab(tmp_path, capsys, caplog):
    run_dir = tmp_path / "lab"
    lab, info = start_lab(run_dir)
    try:
        state = tmp_path / "state"
        common = ["--lab-dir", str(run_dir), "--state-dir", str(state), "--json"]
        domain = "cdn.example.com"       # a CDN domain the lab seeds, so the install is proven by a handshake
        services = tmp_path / "services.toml"
        services.write_text(f'[[service]]\nname = "restart-{RUN}"\ndomains = ["{domain}"]\n'
                            f'dns = "alidns"\ncdn = "{domain}"\n')
        assert cli.main(["apply", str(services), *common]) == 0
        [first] = json.loads(capsys.readouterr().out)["services"]
        assert first["status"] == "issued" and first["verified"] == [f"cdn:{domain}"]
        assert cli.main(["account", "show", *common]) == 0
        account_url = json.loads(capsys.readouterr().out)["account_url"]

        lab.stop()
        lab, info = start_lab(run_dir, lab.ports)

        # another CA (the same server, not as --directory lab) that forgot the account: a clear error
        code = cli.main(["account", "show", "--directory", info.directory_url, "--ca-bundle", str(info.ca_bundle),
                         "--state-dir", str(state)])
        err = capsys.readouterr().err
        assert code == 1 and "does not know the account" in err and "acmelab account create" in err

        # the lab: the stored key is registered again, said at info level
        with caplog.at_level(logging.INFO, logger="acmelab.cli"):
            assert cli.main(["account", "show", *common, "-v"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["status"] == "valid" and shown["account_url"] != account_url
        assert any("forgot" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)

        # the certificate of the old lab does not lead to the new roots: re-issued and re-installed
        assert cli.main(["apply", str(services), *common]) == 0
        [again] = json.loads(capsys.readouterr().out)["services"]
        assert again["status"] == "renewed" and "no longer trusts" in again["reason"]
        assert again["verified"] == [f"cdn:{domain}"] and again["serial_hex"] != first["serial_hex"]
        assert cli.main(["apply", str(services), *common]) == 0
        assert json.loads(capsys.readouterr().out)["counts"] == {"unchanged": 1}
    finally:
        lab.stop()
