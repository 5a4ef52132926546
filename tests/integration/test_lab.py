"""The lab against real Pebble and pebble-challtestsrv processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import dns.message
import dns.query
import pytest
import requests
from cryptography import x509

from acmelab.errors import LabError
from acmelab.lab import COURSE_PEBBLE_ENV, Lab, LabPorts, stop
from acmelab.lab.processes import process_start_time, read_records

pytestmark = pytest.mark.lab


def _txt_answer_count(dns_server: tuple[str, int], name: str) -> int:
    """ANCOUNT of a raw TXT answer (dnspython would merge duplicate records)."""
    query = dns.message.make_query(name, "TXT")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(query.to_wire(), dns_server)
        data = sock.recv(65535)
    return int.from_bytes(data[6:8], "big")


def _txt_values(dns_server: tuple[str, int], name: str) -> list[str]:
    response = dns.query.udp(dns.message.make_query(name, "TXT"), dns_server[0], port=dns_server[1], timeout=5)
    return sorted(b"".join(rdata.strings).decode() for rrset in response.answer for rdata in rrset)


def test_shared_lab_serves_directory_over_verified_https(lab):
    directory = requests.get(lab.directory_url, verify=str(lab.ca_bundle), timeout=10).json()
    assert directory["newNonce"].startswith(lab.directory_url.rsplit("/", 1)[0])
    assert set(directory) >= {"newNonce", "newAccount", "newOrder", "revokeCert", "keyChange"}
    assert directory["meta"]["externalAccountRequired"] is False
    # Verification is really on: without the lab CA the handshake fails.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(lab.directory_url, timeout=10)


def test_shared_lab_roots_and_intermediates(lab):
    roots = lab.roots()
    intermediates = lab.intermediates()
    assert len(roots) == 1 and len(intermediates) == 1
    root = x509.load_pem_x509_certificate(roots[0].encode())
    intermediate = x509.load_pem_x509_certificate(intermediates[0].encode())
    assert intermediate.issuer == root.subject
    intermediate.verify_directly_issued_by(root)


def test_challtestsrv_set_txt_appends_and_clear_txt_removes_all(lab, challtestsrv):
    host = "_acme-challenge.append.example.com"
    challtestsrv.set_txt(host, "first")
    challtestsrv.set_txt(host, "second")
    assert _txt_values(lab.dns_server, host) == ["first", "second"]
    challtestsrv.set_txt(host, "first")  # the same value again is stored twice
    assert _txt_answer_count(lab.dns_server, host) == 3
    challtestsrv.set_txt("_acme-challenge.other.example.com", "kept")
    challtestsrv.clear_txt(host)
    assert _txt_values(lab.dns_server, host) == []
    assert _txt_values(lab.dns_server, "_acme-challenge.other.example.com") == ["kept"]
    challtestsrv.replace_txt(host, ["only"])
    assert _txt_values(lab.dns_server, host) == ["only"]
    challtestsrv.clear_txt(host)
    challtestsrv.clear_txt("_acme-challenge.other.example.com")


def test_lab_stops_every_process_it_started(tmp_path):
    lab = Lab(tmp_path / "run", ports=LabPorts.free(), aliyun=False)
    with lab as info:
        records = read_records(info.run_dir)
        assert {record.name for record in records} == {"challtestsrv", "pebble"}
        assert all(record.is_ours() for record in records)
        assert requests.get(info.directory_url, verify=str(info.ca_bundle), timeout=10).status_code == 200
    assert all(process_start_time(record.pid) is None for record in records)
    assert read_records(tmp_path / "run") == []
    assert not (tmp_path / "run" / "lab.json").exists()


def test_port_in_use_is_named(tmp_path):
    ports = LabPorts.free()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", ports.acme))
        blocker.listen()
        with pytest.raises(LabError, match=rf"port already in use: acme port {ports.acme}"):
            Lab(tmp_path, ports=ports, aliyun=False).start()
    assert read_records(tmp_path) == []


def test_missing_binary_is_named(tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("ACMELAB_PEBBLE_BIN_DIR", str(empty))
    with pytest.raises(LabError, match=r"pebble and pebble-challtestsrv not found in .*make setup"):
        Lab(tmp_path, ports=LabPorts.free(), aliyun=False).start()
    assert read_records(tmp_path) == []


def test_the_lab_runs_the_pinned_pebble_with_lets_encrypts_profiles(lab):
    directory = requests.get(lab.directory_url, verify=str(lab.ca_bundle), timeout=10,
                             headers={"User-Agent": "acmelab-tests"}).json()
    assert directory["renewalInfo"].startswith(lab.directory_url.rsplit("/", 1)[0])
    assert sorted(directory["meta"]["profiles"]) == ["classic", "shortlived", "tlsserver"]
    assert lab.pebble_version == "b1e1ca4f3c30"
    assert lab.profiles == {"classic": 7776000, "tlsserver": 3888000, "shortlived": 576000}
    # Pebble refuses a request without a User-Agent (RFC 8555 §6.1 MUST)
    # (http.client, because urllib3 adds a User-Agent of its own)
    import http.client
    import ssl
    from urllib.parse import urlsplit

    url = urlsplit(lab.directory_url)
    connection = http.client.HTTPSConnection(url.hostname, url.port, timeout=10,
                                             context=ssl.create_default_context(cafile=str(lab.ca_bundle)))
    connection.request("GET", url.path)
    refused = connection.getresponse()
    body = refused.read().decode()
    connection.close()
    assert refused.status == 400 and "User-Agent" in body


def test_invalid_pebble_config_reports_pebble_log(tmp_path, monkeypatch):
    import acmelab.lab.core as core

    original = core.pebble_config.write_pebble_config

    def with_garbage_certificate(path, **options):
        garbage = tmp_path / "garbage.pem"
        garbage.write_text("this is not a certificate\n")
        options["certificate"] = garbage
        return original(path, **options)

    monkeypatch.setattr(core.pebble_config, "write_pebble_config", with_garbage_certificate)
    run_dir = tmp_path / "run"
    with pytest.raises(LabError) as caught:
        Lab(run_dir, ports=LabPorts.free(), aliyun=False).start()
    message = str(caught.value)
    assert "pebble exited at start" in message
    assert str(run_dir / "logs" / "pebble.log") in message
    assert "failed to find any PEM data in certificate input" in message  # Pebble's own words
    # Whatever had started (challtestsrv) is stopped again.
    assert read_records(run_dir) == []


def test_pebble_knobs_strict_and_eab(lab_factory):
    eab_keys = {"kid-1": "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"}
    info = lab_factory(
        pebble_env={"PEBBLE_ALTERNATE_ROOTS": "1", "PEBBLE_CHAIN_LENGTH": "2", "PEBBLE_WFE_NONCEREJECT": "0"},
        strict=True, eab_keys=eab_keys, aliyun=False,
    )
    directory = requests.get(info.directory_url, verify=str(info.ca_bundle), timeout=10).json()
    assert directory["meta"]["externalAccountRequired"] is True
    assert info.eab_keys == eab_keys
    assert len(info.roots()) == 2  # the default root plus one alternate
    assert len(info.intermediates()) == 2
    pebble_record = next(r for r in read_records(info.run_dir) if r.name == "pebble")
    assert "-strict" in pebble_record.argv
    log = (info.run_dir / "logs" / "pebble.log").read_text()
    assert "Configured to reject 0% of good nonces" in log
    # EAB keys are secrets: never in JSON or repr.
    assert eab_keys["kid-1"] not in info.to_json() and eab_keys["kid-1"] not in repr(info)


def test_cert_status_of_unknown_serial_is_a_lab_error(lab):
    with pytest.raises(LabError, match="no certificate with serial 1234abcd"):
        lab.cert_status("0x1234ABCD")


# --------------------------------------------------------------------------
# No orphans: the lab dies with the Python process that owns it
# --------------------------------------------------------------------------

_OWNER_SCRIPT = """
import json, sys, time
from acmelab.lab import Lab, LabPorts
from acmelab.lab.processes import read_records
with Lab(sys.argv[1], ports=LabPorts.free(), aliyun=sys.argv[2] == "aliyun") as info:
    print(json.dumps([[r.pid, r.start_time] for r in read_records(info.run_dir)]), flush=True)
    time.sleep(600)
"""


def _wait_until_gone(processes, seconds=15.0):

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(process_start_time(pid) != start for pid, start in processes):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("signal_name, aliyun", [("SIGINT", "no"), ("SIGTERM", "no"), ("SIGKILL", "aliyun")])
def test_no_orphans_when_python_is_interrupted(tmp_path, signal_name, aliyun):

    run_dir = tmp_path / "run"
    owner = subprocess.Popen([sys.executable, "-c", _OWNER_SCRIPT, str(run_dir), aliyun],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = owner.stdout.readline()
        assert line, owner.stderr.read()
        processes = json.loads(line)
        assert len(processes) == (3 if aliyun == "aliyun" else 2)
        assert all(process_start_time(pid) == start for pid, start in processes)
        owner.send_signal(getattr(signal, signal_name))
        owner.wait(timeout=30)
        assert _wait_until_gone(processes), f"lab processes survived {signal_name}"
        if signal_name != "SIGKILL":  # a clean exit also removes the pid files
            assert read_records(run_dir) == []
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


# --------------------------------------------------------------------------
# acmelab lab up | status --json | down
# --------------------------------------------------------------------------

def test_cli_up_status_down(tmp_path):

    env = dict(os.environ, ACMELAB_LAB_DIR=str(tmp_path / "lab"))

    def acmelab(*args):
        return subprocess.run([sys.executable, "-m", "acmelab.cli", "lab", *args],
                              env=env, capture_output=True, text=True, timeout=120)

    assert acmelab("status").returncode == 3
    up = acmelab("up", "--free-ports", "--json", "--pebble-env", "PEBBLE_AUTHZREUSE=100")
    try:
        assert up.returncode == 0, up.stderr
        info = json.loads(up.stdout)
        assert info["run_dir"] == str(tmp_path / "lab")
        status = acmelab("status", "--json")
        assert status.returncode == 0 and json.loads(status.stdout) == info
        # The course's Pebble settings, with the explicit knob on top.
        assert info["pebble_env"] == dict(COURSE_PEBBLE_ENV, PEBBLE_AUTHZREUSE="100")
        log = (tmp_path / "lab" / "logs" / "pebble.log").read_text()
        assert "Configured to reject 0% of good nonces" in log
        assert "Configured to attempt authz reuse for each identifier 100% of the time" in log  # not 0
        roots = requests.get(info["management_url"] + "/roots/1", verify=info["ca_bundle"], timeout=10)
        assert roots.status_code == 200  # COURSE_PEBBLE_ENV's alternate chain
        directory = requests.get(info["directory_url"], verify=info["ca_bundle"], timeout=10).json()
        assert "newOrder" in directory and "renewalInfo" in directory
        assert sorted(directory["meta"]["profiles"]) == ["classic", "shortlived", "tlsserver"]
        assert info["pebble_version"] == "b1e1ca4f3c30"
        assert info["retry_after"] == {"authz": 1, "order": 1}  # the course's lab meets real Retry-After
        # Secrets stay out of the output.
        secret = json.loads((tmp_path / "lab" / "aliyun-access-key.json").read_text())["AccessKeySecret"]
        assert secret not in up.stdout + status.stdout + up.stderr
        assert oct((tmp_path / "lab" / "aliyun-access-key.json").stat().st_mode & 0o777) == "0o600"
        # `up` again is a no-op reporting the same lab.
        again = acmelab("up", "--json")
        assert again.returncode == 0 and json.loads(again.stdout) == info
        processes = [(r.pid, r.start_time) for r in read_records(tmp_path / "lab")]
        assert len(processes) >= 2
    finally:
        down = acmelab("down")
    assert down.returncode == 0, down.stderr
    assert "is down" in down.stdout
    assert _wait_until_gone(processes)
    assert acmelab("status").returncode == 3


def test_second_lab_in_the_same_run_dir_is_refused_and_leaves_the_first_alone(lab):
    records = read_records(lab.run_dir)
    with pytest.raises(LabError, match="a lab is already running in"):
        Lab(lab.run_dir, ports=LabPorts.free()).start()
    assert read_records(lab.run_dir) == records
    assert all(record.is_ours() for record in records)
    assert (lab.run_dir / "lab.json").exists()
    assert requests.get(lab.directory_url, verify=str(lab.ca_bundle), timeout=10).status_code == 200


def test_lab_without_run_dir_uses_and_removes_a_temporary_one():
    with Lab(ports=LabPorts.free(), aliyun=False) as info:
        assert info.run_dir.is_dir() and info.ca_bundle.is_file()
        records = read_records(info.run_dir)
        assert requests.get(info.directory_url, verify=str(info.ca_bundle), timeout=10).status_code == 200
    assert not info.run_dir.exists()
    assert all(process_start_time(record.pid) != record.start_time for record in records)


def test_ensure_running_twice_concurrently_starts_one_lab(tmp_path):

    ports = LabPorts.free()
    script = ("import json, sys; from acmelab.lab import ensure_running, LabPorts; "
              f"print(ensure_running(sys.argv[1], ports=LabPorts(**{ports.to_dict()!r}), aliyun=False).to_json())")
    starters = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "lab")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        outputs = [starter.communicate(timeout=120) for starter in starters]
        assert all(starter.returncode == 0 for starter in starters), [err for _, err in outputs]
        first, second = (json.loads(out) for out, _ in outputs)
        assert first == second
        assert len(read_records(tmp_path / "lab")) == 2  # one pebble, one challtestsrv
    finally:
        records = read_records(tmp_path / "lab")
        assert stop(tmp_path / "lab") is True
    assert all(process_start_time(record.pid) != record.start_time for record in records)
    assert os.listdir(tmp_path / "lab" / "pids") == []


# --------------------------------------------------------------------------
# Starts and stops racing in one run directory leave no orphan
# --------------------------------------------------------------------------

_RACER_SCRIPT = """
import json, sys, threading
from acmelab.lab import LabPorts, ensure_running, stop
run_dir, ports, rounds = sys.argv[1], LabPorts(**json.loads(sys.argv[2])), int(sys.argv[3])
errors, started = [], []
barrier = threading.Barrier(2)

def racer(phase):
    barrier.wait()
    for turn in range(rounds):
        try:
            if (turn + phase) % 2 == 0:
                started.append(ensure_running(run_dir, ports=ports, aliyun=False).pebble_env)
            else:
                stop(run_dir)
        except Exception as error:
            errors.append(f"{type(error).__name__}: {error}")

threads = [threading.Thread(target=racer, args=(phase,)) for phase in (0, 1)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"errors": errors, "started": started}))
"""


def _processes_of(run_dir) -> dict[int, list[str]]:
    """pid -> command line of every process running in ``run_dir`` (its
    working directory) or naming it on its command line."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
            raw = open(f"/proc/{entry}/cmdline", "rb").read()
        except OSError:
            continue
        arguments = [part.decode(errors="replace") for part in raw.split(b"\0") if part]
        if not arguments or process_start_time(int(entry)) is None:
            continue  # gone or a zombie
        if cwd == str(run_dir) or any(str(run_dir) in argument for argument in arguments):
            found[int(entry)] = arguments
    return found


def test_racing_starts_and_stops_leave_no_orphans(tmp_path):
    run_dir = (tmp_path / "lab").resolve()
    ports = LabPorts.free()
    racers = [subprocess.Popen([sys.executable, "-c", _RACER_SCRIPT, str(run_dir), json.dumps(ports.to_dict()), "4"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        outputs = [racer.communicate(timeout=300) for racer in racers]
        assert all(racer.returncode == 0 for racer in racers), [err for _, err in outputs]
        results = [json.loads(out) for out, _ in outputs]
        # Every process of the run directory is recorded, every record is alive.
        records = read_records(run_dir)
        assert all(record.is_ours() for record in records), records
        assert sorted(_processes_of(run_dir)) == sorted(record.pid for record in records)
        assert {record.name for record in records} in (set(), {"challtestsrv", "pebble"})
        # Serialised by the run directory's lock, no start or stop failed.
        assert [result["errors"] for result in results] == [[], []]
        started = [env for result in results for env in result["started"]]
        assert len(started) == 8 and all(env == COURSE_PEBBLE_ENV for env in started)
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait()
        stop(run_dir)
        leftovers = _processes_of(run_dir)
        for pid in leftovers:  # an orphan would block these ports for everyone
            os.killpg(pid, signal.SIGKILL)
    assert leftovers == {}
    assert read_records(run_dir) == []
