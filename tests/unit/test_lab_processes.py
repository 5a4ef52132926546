"""Process records: a pid is only signalled while it is still the process we started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acmelab.lab.processes import (
    ProcessRecord,
    process_command_line,
    process_start_time,
    read_records,
    spawn,
    stop_record,
)

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)", ""]  # note the empty argument


@pytest.fixture
def sleeper():
    process = subprocess.Popen(SLEEPER)
    for _ in range(400):  # just after exec the kernel briefly shows an empty command line
        if process_command_line(process.pid):
            break
        time.sleep(0.005)
    yield process
    process.kill()
    process.wait()


def test_command_line_keeps_empty_arguments(sleeper):
    assert process_command_line(sleeper.pid) == SLEEPER
    assert process_start_time(sleeper.pid) is not None


def test_no_such_process():
    assert process_start_time(2**22 + 12345) is None
    assert process_command_line(2**22 + 12345) == []


def test_stop_leaves_a_recycled_pid_alone(sleeper, tmp_path):
    start = process_start_time(sleeper.pid)
    other_start = ProcessRecord("pebble", sleeper.pid, start + 1, tuple(SLEEPER), tmp_path / "log")
    other_command = ProcessRecord("pebble", sleeper.pid, start, ("/usr/bin/pebble",), tmp_path / "log")
    assert ProcessRecord("pebble", sleeper.pid, start, tuple(SLEEPER), tmp_path / "log").is_ours()
    for record in (other_start, other_command):
        assert not record.is_ours()
        stop_record(record, tmp_path, grace=0.2)
        assert sleeper.poll() is None  # still running: it was not ours


def test_spawn_records_and_stop_ends_the_process(tmp_path):
    process, record = spawn("sleeper", SLEEPER, run_dir=tmp_path, env={}, die_with_parent=True)
    try:
        assert record.is_ours()
        assert read_records(tmp_path) == [record]
        assert (tmp_path / "logs" / "sleeper.log").read_text().startswith("=== acmelab lab: starting sleeper")
        stop_record(record, tmp_path)
        assert process.poll() is not None
        assert process_start_time(record.pid) is None
        assert read_records(tmp_path) == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_stop_of_a_stale_record_leaves_a_newer_record_of_the_same_name(sleeper, tmp_path):
    # A stop that read an old record (its process long gone) while a start
    # wrote a new one must not delete the new one: that orphaned processes.
    process, record = spawn("challtestsrv", SLEEPER, run_dir=tmp_path, env={}, die_with_parent=True)
    try:
        stale = ProcessRecord("challtestsrv", 2**22 + 12345, 1, tuple(SLEEPER), tmp_path / "log")
        assert stop_record(stale, tmp_path, grace=0.2) is True  # gone: nothing to do
        assert read_records(tmp_path) == [record] and record.is_ours()
    finally:
        stop_record(record, tmp_path)
        process.wait()


def test_stop_of_a_recycled_pid_removes_only_the_stale_record(sleeper, tmp_path):
    start = process_start_time(sleeper.pid)
    stale = ProcessRecord("pebble", sleeper.pid, start + 1, tuple(SLEEPER), tmp_path / "log")
    (tmp_path / "pids").mkdir()
    (tmp_path / "pids" / "pebble.json").write_text(json.dumps(stale.to_dict()))
    assert stop_record(stale, tmp_path, grace=0.2) is True
    assert sleeper.poll() is None  # the pid's new owner is left alone
    assert read_records(tmp_path) == []  # the record was stale


def test_spawn_kills_the_process_if_it_cannot_record_it(tmp_path):
    (tmp_path / "pids").write_text("a file where the pid directory should be")
    with pytest.raises(OSError):
        spawn("sleeper", SLEEPER, run_dir=tmp_path, env={}, die_with_parent=True)
    log = (tmp_path / "logs" / "sleeper.log").read_text()
    assert log.startswith("=== acmelab lab: starting sleeper")
    # no sleeper of ours is left: none of our children is still running
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
    assert all(process_command_line(int(pid)) != SLEEPER for pid in children)
