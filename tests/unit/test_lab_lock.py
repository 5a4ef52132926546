"""The run directory's lock: one starter or stopper at a time, across
threads and processes (no Pebble needed)."""

from __future__ import annotations

import subprocess
import sys
import threading

from acmelab.lab import run_dir_lock, status, stop

# exit status 0 if the lock is free, 1 if another process holds it
_TRY_LOCK = """
import fcntl, sys
with open(sys.argv[1], "a") as handle:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(1)
"""


def _free_for_another_process(run_dir) -> bool:
    return subprocess.run([sys.executable, "-c", _TRY_LOCK, str(run_dir / "lab.lock")], timeout=30).returncode == 0


def test_lock_excludes_other_processes_and_is_reentrant(tmp_path):
    with run_dir_lock(tmp_path):
        with run_dir_lock(tmp_path):  # ensure_running -> Lab.start -> Lab.stop
            assert not _free_for_another_process(tmp_path)
        assert not _free_for_another_process(tmp_path)  # still held by the outer block
    assert _free_for_another_process(tmp_path)


def test_lock_excludes_other_threads(tmp_path):
    got_it = threading.Event()

    def other():
        with run_dir_lock(tmp_path):
            got_it.set()

    with run_dir_lock(tmp_path):
        thread = threading.Thread(target=other)
        thread.start()
        assert not got_it.wait(0.3)  # blocked while we hold it
    thread.join(timeout=30)
    assert got_it.is_set()


def test_status_and_stop_of_a_missing_run_dir_create_nothing(tmp_path):
    missing = tmp_path / "nothing-here"
    assert status(missing) is None
    assert stop(missing) is False
    assert not missing.exists()
