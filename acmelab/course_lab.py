"""The course's lab: started once with the course's Pebble settings, shared
between processes (notebook kernels, test sessions, ``make run``).

:func:`ensure_lab` starts or reuses it under one file lock;
:func:`join_lab` / :func:`leave_lab` let the last user out stop a lab that
was started for the users.  :mod:`acmelab.course` re-exports these.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Any

from acmelab import files

#: How the course runs Pebble (what and why: :data:`acmelab.lab.pebble.COURSE_PEBBLE_ENV`).
from acmelab.lab.pebble import COURSE_PEBBLE_ENV as LAB_PEBBLE_ENV


def ensure_lab() -> tuple[Any, str]:
    """:func:`lab`, also telling what it did.

    Returns:
        ``(LabInfo, action)``; ``action`` is ``"reused"`` (a lab with the
        course's settings was running), ``"started"`` (none was running) or
        ``"restarted"`` (one ran with other Pebble settings; the warning is
        on stderr).

    Raises:
        LabError: the lab could not be started.
    """
    from acmelab import lab as lab_module

    info = lab_module.status()
    if info is not None and _has_course_settings(info):
        return info, "reused"
    with _lab_lock():
        info = lab_module.status()
        if info is None:
            info = lab_module.ensure_running(pebble_env=LAB_PEBBLE_ENV)
            action = "started"
        else:
            action = "reused"
        if not _has_course_settings(info):
            _warn_restart(info)
            lab_module.stop(info.run_dir)
            info = lab_module.ensure_running(info.run_dir, pebble_env=LAB_PEBBLE_ENV)
            action = "restarted"
    return info, action


def _has_course_settings(info) -> bool:
    return all(info.pebble_env.get(name) == value for name, value in LAB_PEBBLE_ENV.items())


def _warn_restart(info) -> None:
    """Say on stderr (never in a clean run's stored outputs: the course's
    lab is started with the course's settings) that a lab is restarted."""
    import sys

    differences = ", ".join(f"{name}={info.pebble_env.get(name, '(unset)')} (course: {value})"
                            for name, value in sorted(LAB_PEBBLE_ENV.items())
                            if info.pebble_env.get(name) != value)
    print(f"acmelab.course: restarting the lab in {info.run_dir}: its Pebble ran with other "
          f"settings: {differences}.  Accounts and orders on it are forgotten; the keys in the "
          f"course directory are kept.", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Sharing the course's lab between processes (test sessions, make run)
# --------------------------------------------------------------------------

@contextlib.contextmanager
def _lab_lock():
    """An exclusive lock on ``<lab run dir>/course.lock``
    (:func:`acmelab.files.exclusive_lock`, waiting as long as it takes)
    while the course's lab is started, checked or stopped; yields the
    folder of the sessions' leases."""
    from acmelab.lab import default_run_dir

    run_dir = default_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    with files.exclusive_lock(run_dir / "course.lock", wait=math.inf):
        yield run_dir / "course-sessions"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def join_lab() -> None:
    """Register this process as a user of the course's lab (a test session,
    ``make run``).  If no lab is running now, the last user to
    :func:`leave_lab` stops the one that gets started -- so ``make test``
    leaves no process behind, and two sessions that overlap do not stop the
    lab under each other.  A lab started by hand (``acmelab lab up``) before
    any user joined is never stopped."""
    from acmelab.lab import status

    with _lab_lock() as sessions:
        sessions.mkdir(exist_ok=True)
        if status() is None:
            (sessions / "stop-when-idle").touch()
        (sessions / str(os.getpid())).touch()


def leave_lab() -> bool:
    """Unregister this process (see :func:`join_lab`); stop the lab if it
    was started for the users and none is left.  Returns True if stopped."""
    from acmelab.lab import stop

    with _lab_lock() as sessions:
        sessions.mkdir(exist_ok=True)
        (sessions / str(os.getpid())).unlink(missing_ok=True)
        for lease in sessions.iterdir():
            if lease.name.isdigit() and not _alive(int(lease.name)):
                lease.unlink(missing_ok=True)  # a session that died without leaving
        others = [p for p in sessions.iterdir() if p.name.isdigit()]
        marker = sessions / "stop-when-idle"
        if others or not marker.exists():
            return False
        marker.unlink()
        stop()
        return True
