"""Start and stop the lab's processes -- exactly the ones we started.

Each process the lab starts is recorded in ``<run_dir>/pids/<name>.json``:
its pid, its start time (field 22 of ``/proc/<pid>/stat``, clock ticks since
boot) and the executable we ran.  Stopping a process first checks that the
pid still belongs to that same process (same start time, same executable in
``/proc/<pid>/cmdline``), so a recycled pid is never signalled.

Every process runs in its own session (``start_new_session=True``): a Ctrl-C
in the terminal does not hit it directly, and it is stopped as a process
group (SIGTERM, then SIGKILL after a grace period).  Processes of a lab used
as a context manager additionally get ``PR_SET_PDEATHSIG`` (Linux), so the
kernel stops them even if Python is killed with SIGKILL.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from acmelab.errors import LabError
from acmelab.files import write_atomically

_PR_SET_PDEATHSIG = 1


def _set_parent_death_signal() -> None:  # runs in the child, before exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def process_start_time(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat`` (start time in clock ticks), or None
    if there is no such process or it is a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name (field 2) is in parentheses and may contain spaces
    fields = text[text.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):  # zombie / dead: not running any more
        return None
    return int(fields[19])


def process_command_line(pid: int) -> list[str]:
    """``/proc/<pid>/cmdline`` split into arguments ([] if unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    if raw.endswith(b"\0"):
        raw = raw[:-1]
    return [part.decode(errors="replace") for part in raw.split(b"\0")] if raw else []


@dataclass(frozen=True)
class ProcessRecord:
    """One process the lab started (what ``pids/<name>.json`` holds).

    Attributes:
        name: "challtestsrv", "pebble", "aliyun".
        pid: process id (also its process group id).
        start_time: clock ticks since boot, from ``/proc/<pid>/stat``.
        argv: the command line we started.
        log: the file its stdout and stderr go to.
    """

    name: str
    pid: int
    start_time: int
    argv: tuple[str, ...]
    log: Path

    def is_ours(self) -> bool:
        """True while the pid is still the very process we started."""
        if process_start_time(self.pid) != self.start_time:
            return False
        command_line = process_command_line(self.pid)
        return bool(command_line) and command_line[: len(self.argv)] == list(self.argv)

    def to_dict(self) -> dict:
        return {"name": self.name, "pid": self.pid, "start_time": self.start_time,
                "argv": list(self.argv), "log": str(self.log)}

    @classmethod
    def from_dict(cls, data: dict) -> "ProcessRecord":
        return cls(str(data["name"]), int(data["pid"]), int(data["start_time"]),
                   tuple(str(a) for a in data["argv"]), Path(data["log"]))


def pid_directory(run_dir: Path) -> Path:
    return Path(run_dir) / "pids"


def read_records(run_dir: Path) -> list[ProcessRecord]:
    """Every process record in ``run_dir`` (unreadable files are skipped)."""
    records = []
    directory = pid_directory(run_dir)
    if not directory.is_dir():
        return []
    for path in sorted(directory.glob("*.json")):
        try:
            records.append(ProcessRecord.from_dict(json.loads(path.read_text())))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return records


def log_tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file ("" if missing)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def spawn(name: str, argv: list[str], *, run_dir: Path, env: dict[str, str],
          die_with_parent: bool) -> tuple[subprocess.Popen, ProcessRecord]:
    """Start ``argv`` in a new session, output to ``<run_dir>/logs/<name>.log``,
    and record it in ``<run_dir>/pids/<name>.json``.

    Raises:
        LabError: the executable could not be started.
    """
    logs = Path(run_dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}.log"
    with open(log_path, "ab") as log:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"=== acmelab lab: starting {name} at {stamp}: {' '.join(argv)}\n".encode())
        log.flush()
        try:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, cwd=run_dir, start_new_session=True, close_fds=True,
                preexec_fn=_set_parent_death_signal if die_with_parent else None,
            )
        except OSError as error:
            raise LabError(f"could not start {name} ({argv[0]}): {error}") from error
    # From here on the process exists: whatever goes wrong (even Ctrl-C)
    # must not leave it running without a record.
    try:
        # Right after exec the kernel may still show an empty /proc/<pid>/cmdline
        # (the new arguments are set up after close-on-exec fds are closed, which
        # is when Popen returns); wait for it so is_ours() holds from the start.
        start_time = None
        for _ in range(200):
            start_time = process_start_time(process.pid)
            if process.poll() is not None or (start_time is not None and process_command_line(process.pid)):
                break
            time.sleep(0.005)
        record = ProcessRecord(name, process.pid, start_time or 0, tuple(argv), log_path)
        write_atomically(pid_directory(run_dir) / f"{name}.json",
                         json.dumps(record.to_dict(), indent=2).encode(), mode=0o644, parents=True)
    except BaseException:
        _kill_unrecorded(process)
        raise
    return process, record


def _kill_unrecorded(process: subprocess.Popen) -> None:
    """SIGKILL a process (group) we started but could not record, and reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait()


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our own child (no zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _still_running(record: ProcessRecord) -> bool:
    """True while the pid is the very process of ``record`` (same start
    time; a zombie counts as gone)."""
    return record.start_time != 0 and process_start_time(record.pid) == record.start_time


def _wait_gone(record: ProcessRecord, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        _reap(record.pid)
        if not _still_running(record):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def remove_record(record: ProcessRecord, run_dir: Path) -> None:
    """Delete ``pids/<name>.json`` -- only if it still holds ``record`` (same
    pid and start time): a newer record of the same name is left alone."""
    path = pid_directory(run_dir) / f"{record.name}.json"
    try:
        on_disk = ProcessRecord.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError):
        on_disk = None  # unreadable: nobody can use it, remove it
    if on_disk is not None and (on_disk.pid, on_disk.start_time) != (record.pid, record.start_time):
        return
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def stop_record(record: ProcessRecord, run_dir: Path, *, grace: float = 5.0) -> bool:
    """Stop the process of ``record`` if it is still ours (SIGTERM to its
    process group, SIGKILL after ``grace`` seconds) and, once it is gone,
    delete its pid file.

    A pid that now belongs to another process (recycled) is never signalled;
    its record is stale and is deleted.  The record of a process that is
    still ours after SIGKILL is kept, so it can be stopped later.

    Returns:
        True if the process is gone (or was never ours), False if it still runs.
    """
    if record.is_ours():
        _signal_group(record.pid, signal.SIGTERM)
        if not _wait_gone(record, grace):
            _signal_group(record.pid, signal.SIGKILL)
            _wait_gone(record, 2.0)
    _reap(record.pid)
    if record.is_ours():
        return False
    remove_record(record, run_dir)
    return True


def python_module_argv(module: str) -> list[str]:
    """argv to run ``python -m module`` with this interpreter."""
    return [sys.executable, "-m", module]
