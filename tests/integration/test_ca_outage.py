"""The CA disappears in the middle of an issuance through the lab's Alibaba
Cloud DNS: Pebble's process is killed (SIGKILL, by the pid the lab
recorded) right after the dns-01 TXT record is published and visible, so
the next request -- answering the challenge -- finds nobody listening.

What must hold, for ``issue_certificate`` and for the command: one line,
typed, naming the step, the name and the URL, with the plain reason
("connection refused") and no wrapper text of the HTTP library; and not one
``_acme-challenge`` TXT record left in the lab's Alibaba Cloud DNS, asked
through its own API (DescribeDomainRecords 2015-01-09).

Each test kills the Pebble of a lab of its own (``fresh=True``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import acmelab
from acmelab import keys
from acmelab.aliyun import AliyunClient
from acmelab.client import AcmeClient
from acmelab.dns.alidns import AlidnsProvider
from acmelab.errors import NetworkError
from acmelab.issue import issue_certificate

pytestmark = pytest.mark.lab

SOURCE_ROOT = Path(acmelab.__file__).resolve().parent.parent
#: what the HTTP library says around the reason; none of it may reach the user
LIBRARY_NOISE = ("HTTPSConnectionPool", "Max retries exceeded", "urllib3", "NewConnectionError",
                 "object at 0x", "Errno")


@pytest.fixture
def lab(lab_factory):
    return lab_factory(fresh=True, pebble_env={"PEBBLE_AUTHZREUSE": "0"})


def _kill_pebble(run_dir: Path) -> None:
    """SIGKILL the lab's Pebble (the pid its pid file records) and wait
    until its ACME port refuses connections."""
    record = json.loads((Path(run_dir) / "pids" / "pebble.json").read_text())
    os.kill(record["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{record['pid']}/stat") as stat:
                if stat.read().split(") ", 1)[1].startswith("Z"):
                    return   # a zombie holds no socket
        except FileNotFoundError:
            return
        time.sleep(0.05)
    raise AssertionError("Pebble did not die")


def challenge_txt_records(lab, zone: str) -> list[dict]:
    """Every ``_acme-challenge`` TXT record of ``zone`` in the lab's Alibaba Cloud DNS."""
    answer = AliyunClient.for_lab(lab).call("DescribeDomainRecords", "2015-01-09",
                         {"DomainName": zone, "Type": "TXT", "PageSize": 500}, product="Alidns")
    return [r for r in answer["DomainRecords"]["Record"] if r["RR"].startswith("_acme-challenge")]


def _assert_one_plain_line(text: str, lab, *, name: str | None = None) -> None:
    """One line: the step (for ``name``, when given), the URL at the CA,
    "connection refused", and none of the HTTP library's wrapper text."""
    base = re.escape(lab.directory_url.rsplit("/", 1)[0])
    step = "answering the dns-01 challenge" + (f" for {re.escape(name)}" if name else "")
    assert "\n" not in text.strip(), text
    # the request that found the CA gone: the challenge's POST, or the newNonce
    # it needed first (the nonce pool may be empty just then)
    assert re.search(rf"{step}: {base}/(chalZ/\S+|nonce-plz): connection refused \(after \d+ tries\)", text), text
    for noise in LIBRARY_NOISE:
        assert noise not in text, text


def _issue_while_the_ca_dies(lab, name: str) -> NetworkError:
    """issue_certificate for ``name`` through the lab's Alibaba Cloud DNS,
    the CA killed once the TXT record is visible; returns the error."""

    class KillsTheCa(AlidnsProvider):
        def wait_until_visible(self, record_name, value, timeout=120.0):
            super().wait_until_visible(record_name, value, timeout)
            assert len(challenge_txt_records(lab, "example.com")) == 1   # published, for real
            _kill_pebble(lab.run_dir)

    client = AcmeClient(lab.directory_url, keys.generate_key("ec256"), verify=lab.ca_bundle)
    client.new_account()
    with pytest.raises(NetworkError) as raised:
        issue_certificate([name], client=client, dns=KillsTheCa.for_lab(lab, propagation_interval=0.2),
                          propagation_timeout=20)
    return raised.value


def test_ca_killed_while_issuing_through_alidns(lab):
    name = f"www{uuid.uuid4().hex[:6]}.example.com"
    error = _issue_while_the_ca_dies(lab, name)
    _assert_one_plain_line(str(error), lab, name=name)
    assert error.step.startswith("answering the dns-01 challenge") and error.url in str(error)
    assert challenge_txt_records(lab, "example.com") == []


def test_the_failed_step_names_the_name(lab):
    name = f"www{uuid.uuid4().hex[:6]}.example.com"
    error = _issue_while_the_ca_dies(lab, name)
    _assert_one_plain_line(str(error), lab, name=name)
    assert error.step == f"answering the dns-01 challenge for {name}"


#: run the command with the CA killed once the TXT record is visible
COMMAND = """
import os, sys
from acmelab.dns.alidns import AlidnsProvider
from tests.integration.test_ca_outage import _kill_pebble

visible = AlidnsProvider.wait_until_visible

def wait_then_kill(self, *args, **kwargs):
    visible(self, *args, **kwargs)
    _kill_pebble(os.environ["KILL_LAB"])

AlidnsProvider.wait_until_visible = wait_then_kill
from acmelab.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_ca_killed_while_the_command_issues(lab, tmp_path):
    name = f"shop{uuid.uuid4().hex[:6]}.example.com"
    state = tmp_path / "state"
    env = {**os.environ, "PYTHONPATH": str(SOURCE_ROOT), "KILL_LAB": str(lab.run_dir), "NO_COLOR": "1"}
    where = ["--lab-dir", str(lab.run_dir), "--state-dir", str(state), "-q"]
    created = subprocess.run([sys.executable, "-m", "acmelab.cli", "account", "create", *where],
                             capture_output=True, text=True, env=env, timeout=120, check=False)
    assert created.returncode == 0, created.stderr
    result = subprocess.run([sys.executable, "-c", COMMAND, "issue", "-d", name, "--dns", "alidns", *where],
                            capture_output=True, text=True, env=env, cwd=SOURCE_ROOT, timeout=300, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    _assert_one_plain_line(result.stderr, lab, name=name)
    assert result.stderr.startswith(f"acmelab: {name} failed: answering the dns-01 challenge for {name}")
    assert challenge_txt_records(lab, "example.com") == []
    assert not (state / "certificates" / name).exists()        # no pending list, no empty directory
    assert sorted(p.name for p in (state / "locks").iterdir()) == []
