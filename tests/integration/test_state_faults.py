"""A state directory that is read-only, not permitted or full, through the
real command (``python -m acmelab.cli`` in a subprocess) against the lab.

Every case asserts what the user sees and what is left: exit status 1, one
line on stderr naming the path, no traceback, and the state directory
exactly as before (every path, mode, content and symlink target).

How the faults are made, honestly and without root where possible:

* read-only: a read-only bind mount of the state directory, in a mount
  namespace of its own (``unshare --mount --map-root-user``, held open by a
  sleeping process); the command runs outside and reaches it through
  ``/proc/<pid>/root/...``, which resolves paths in that namespace;
* permission denied: ``chmod -R a-w``; when the tests run as root (which
  ignores file modes) the command runs with CAP_DAC_OVERRIDE and
  CAP_DAC_READ_SEARCH dropped from its bounding set (``setpriv``), so the
  modes apply to it as to anyone;
* full: a real 256 KiB tmpfs in such a namespace, filled with a filler file
  until ``ENOSPC`` and then given back exactly the pages a case needs.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import acmelab
from tests.integration._accounts import forget_authorizations

pytestmark = pytest.mark.lab

SOURCE_ROOT = Path(acmelab.__file__).resolve().parent.parent
PAGE = 4096


#: the lab of tests/integration/test_faults.py (shared): no authorization
#: reuse, so every issuance publishes (and notes) its TXT record
PLAIN = dict(aliyun=False, pebble_env={"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0",
                                       "PEBBLE_WFE_ORDERS_PER_PAGE": "2"})


@pytest.fixture(scope="module")
def lab(lab_factory):
    return lab_factory(**PLAIN)


def _cli(lab, state: Path, *argv: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SOURCE_ROOT), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run([*prefix, sys.executable, "-m", "acmelab.cli", *argv, "-q",
                           "--lab-dir", str(lab.run_dir), "--state-dir", str(state)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def _snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root``: (mode, SHA-256 of the content or the symlink target)."""
    seen = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            what = "-> " + os.readlink(path)
        elif stat.S_ISDIR(info.st_mode):
            what = "dir"
        else:
            what = hashlib.sha256(path.read_bytes()).hexdigest()
        seen[str(path.relative_to(root))] = (stat.S_IMODE(info.st_mode), what)
    return seen


def _assert_failed_cleanly(result: subprocess.CompletedProcess, path: Path, *, reason: str) -> str:
    """Exit 1, no traceback, one line on stderr naming ``path`` and the reason."""
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, output
    assert str(path) in lines[0] and reason in lines[0], lines[0]
    return lines[0]


class Namespace:
    """A mount namespace held open by a sleeping process; ``path(p)`` is
    ``p`` as seen inside it, from outside."""

    def __init__(self, script: str) -> None:
        command = ["unshare", "--mount"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
        self.process = subprocess.Popen([*command, "sh", "-ec", f"{script}; echo ready; exec sleep 600"],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready = self.process.stdout.readline().strip()
        if ready != "ready":
            self.stop()
            pytest.skip(f"no mount namespace here: {self.process.stderr.read().strip()}")

    def path(self, inside: Path) -> Path:
        return Path(f"/proc/{self.process.pid}/root") / str(inside).lstrip("/")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(10)


@pytest.fixture
def namespaces():
    started: list[Namespace] = []

    def start(script: str) -> Namespace:
        started.append(Namespace(script))
        return started[-1]

    yield start
    for namespace in started:
        namespace.stop()


def _populate(lab, state: Path) -> str:
    """An account and one issued certificate in ``state``; returns its name."""
    name = f"st-{uuid.uuid4().hex[:8]}.example.com"
    for argv in (["account", "create"], ["issue", "-d", name, "--dns", "challtestsrv"]):
        result = _cli(lab, state, *argv)
        assert result.returncode == 0, result.stdout + result.stderr
    return name


def _server_dir(state: Path) -> Path:
    (account_dir,) = (state / "accounts").iterdir()
    return account_dir


# -- read-only ----------------------------------------------------------------

def test_read_only_state_directory(lab, tmp_path, namespaces):
    """``list`` works; whatever must write (a lock file first) is refused
    with the path, and nothing changes."""
    if not shutil.which("unshare"):
        pytest.skip("unshare(1) is not installed")
    real = tmp_path / "state"
    name = _populate(lab, real)
    namespace = namespaces(f"mount --bind {real} {real}; mount -o remount,bind,ro {real}")
    state = namespace.path(real)
    assert not os.access(state / "certificates", os.W_OK) or os.geteuid() == 0
    before = _snapshot(real)

    listed = _cli(lab, state, "list", "--offline")                    # reading needs no write access
    assert listed.returncode == 0 and name in listed.stdout, listed.stderr
    account_lock = state / "locks" / f"account-{_server_dir(real).name}.lock"
    for argv in (["issue", "-d", name, "--dns", "challtestsrv"], ["account", "show"], ["account", "rollover"]):
        _assert_failed_cleanly(_cli(lab, state, *argv), account_lock, reason="Read-only file system")
    other = namespace.path(real / "new-state")
    _assert_failed_cleanly(_cli(lab, other, "account", "create"), other, reason="Read-only file system")
    assert _snapshot(real) == before


# -- permission denied --------------------------------------------------------

def _without_dac_override() -> tuple[str, ...]:
    if os.geteuid() != 0:
        return ()
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv(1): file modes would not apply")
    return ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--")


def _chmod_tree(root: Path, strip: int) -> None:
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(stat.S_IMODE(path.lstat().st_mode) & ~strip)


def test_permission_denied_state_directory(lab, tmp_path):
    """Write permission taken away from one part of the state directory
    after another: each failure names the path it could not write."""
    state = tmp_path / "state"
    name = _populate(lab, state)
    assert len(forget_authorizations(lab, state, [name])) == 1   # the issue below must reach dns-pending.json
    prefix = _without_dac_override()
    no_write = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    certificate, account = state / "certificates" / name, _server_dir(state)
    try:
        _chmod_tree(certificate, no_write)
        before = _snapshot(state)
        _assert_failed_cleanly(_cli(lab, state, "issue", "-d", name, "--dns", "challtestsrv", prefix=prefix),
                               certificate / "dns-pending.json", reason="Permission denied")
        assert _snapshot(state) == before

        _chmod_tree(account, no_write)
        before = _snapshot(state)
        _assert_failed_cleanly(_cli(lab, state, "account", "rollover", prefix=prefix),
                               account / "account.key.next", reason="Permission denied")
        assert _snapshot(state) == before

        account.chmod(0)                                              # cannot even look inside
        before = _snapshot(state)
        _assert_failed_cleanly(_cli(lab, state, "account", "show", prefix=prefix),
                               account / "account.key", reason="Permission denied")
        assert _snapshot(state) == before

        account.chmod(0o500)
        _chmod_tree(state / "locks", no_write)
        before = _snapshot(state)
        _assert_failed_cleanly(_cli(lab, state, "account", "show", prefix=prefix),
                               state / "locks" / f"account-{account.name}.lock", reason="Permission denied")
        assert _snapshot(state) == before
    finally:
        for path in [state, *state.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o700 if path.is_dir() else stat.S_IMODE(path.lstat().st_mode) | stat.S_IWUSR)


# -- full ---------------------------------------------------------------------

def _fill(filler: Path, *, leave_pages: int) -> None:
    """Fill the file system of ``filler`` until ENOSPC, then free exactly
    ``leave_pages`` pages (tmpfs allocates whole pages)."""
    fd = os.open(filler, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        while os.write(fd, b"\0" * PAGE) == PAGE:
            pass
    except OSError as error:
        assert error.errno == errno.ENOSPC, error
    finally:
        os.close(fd)
    size = filler.stat().st_size // PAGE * PAGE
    os.truncate(filler, max(0, size - leave_pages * PAGE))


def test_full_state_directory(lab, tmp_path, namespaces):
    """On a full tmpfs: a renewal that cannot note its DNS record stops
    before publishing it; one that cannot store the certificate it got
    removes its half-made version (the old one stays live); an account key
    that cannot be written leaves no account directory."""
    if not shutil.which("unshare"):
        pytest.skip("unshare(1) is not installed")
    mount = tmp_path / "small"
    mount.mkdir()
    namespace = namespaces(f"mount -t tmpfs -o size=256k,mode=0700 tmpfs {mount}")
    disk = namespace.path(mount)
    state, empty = disk / "state", disk / "empty-state"
    name = _populate(lab, state)
    assert len(forget_authorizations(lab, state, [name])) == 1   # the issues below must publish
    for sub in ("accounts", "certificates", "locks"):
        (empty / sub).mkdir(parents=True)
    filler = disk / "filler"
    live = (state / "certificates" / name / "current").resolve().name

    # no page left: dns-pending.json cannot be written, nothing is published
    _fill(filler, leave_pages=0)
    before = _snapshot(state)
    _assert_failed_cleanly(_cli(lab, state, "issue", "-d", name, "--dns", "challtestsrv"),
                           state / "certificates" / name / "dns-pending.json", reason="No space left on device")
    assert _snapshot(state) == before

    # one page: the record is noted (and forgotten after cleanup), the CA
    # issues, the new key fits, the certificate does not: all taken back
    _fill(filler, leave_pages=1)
    line = _assert_failed_cleanly(_cli(lab, state, "issue", "-d", name, "--dns", "challtestsrv"),
                                  state / "certificates" / name, reason="No space left on device")
    assert "cannot be stored" in line and "cert.pem" in line
    assert _snapshot(state) == before
    assert (state / "certificates" / name / "current").resolve().name == live

    _fill(filler, leave_pages=0)
    before = _snapshot(empty)
    _assert_failed_cleanly(_cli(lab, empty, "account", "create"), empty / "accounts",
                           reason="No space left on device")
    assert _snapshot(empty) == before          # no account directory without a key
