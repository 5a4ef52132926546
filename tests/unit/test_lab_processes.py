"""Process records: a pid is only signalled while it is still the process we started."""

from __future__ import annotations

import subprocess
import sys
import time

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
