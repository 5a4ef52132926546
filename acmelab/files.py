"""Writing files so that nothing is half-written and nothing is lost.

Every file acmelab writes -- private keys, certificates, PKCS#12 bundles,
the command's state, the lab's configuration, executed notebooks -- goes
through :func:`write_atomically`:

1. a temporary file is created in the target's own directory, with its
   final mode set *before* any byte is written (so a private key is never
   readable by others, not even for a moment);
2. the data is written and ``fsync``'ed;
3. the temporary file gets the final name in one step: ``os.replace`` when
   overwriting is allowed, ``os.link`` otherwise -- ``link`` fails if the
   name exists, so a file someone else created meanwhile is never replaced;
4. the directory is ``fsync``'ed, so the new name survives a crash.

A reader therefore sees the old file or the new one, never a mixture, and
an interrupted write leaves no temporary file behind.  A write that fails
(read-only file system, permission denied, disk full) raises one typed
error naming the path, and leaves the old file as it was.

Two more helpers keep failed runs from leaving traces:
:func:`new_directory` removes a directory it made when the block fails and
leaves it empty, and :func:`exclusive_lock` is an ``flock`` whose lock file
exists only while it is held.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from pathlib import Path
from typing import Iterator

from acmelab.errors import AcmelabError, InputError, StateLocked, WouldOverwriteError, WriteFailed

__all__ = ["write_atomically", "new_directory", "exclusive_lock", "os_error_text"]


def os_error_text(error: BaseException) -> str:
    """The system's words for an OSError ("No space left on device"), else ``str(error)``."""
    return error.strerror if isinstance(error, OSError) and error.strerror else str(error)


def write_atomically(path: str | os.PathLike[str], data: bytes | str, *, mode: int = 0o644,
                     overwrite: bool = True, parents: bool = False,
                     exists_error: type[WouldOverwriteError] = WouldOverwriteError) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring).

    Args:
        path: the target file.
        data: bytes, or text (written as UTF-8).
        mode: the file's permission bits, e.g. ``0o600`` for anything that
            holds a private key.
        overwrite: replace an existing file (default); when False an
            existing file is refused, also one that appears while writing.
        parents: create missing parent directories (default: the
            directory must exist).
        exists_error: the error class raised when refusing to overwrite
            (e.g. :class:`~acmelab.errors.KeyExistsError` for keys).

    Returns:
        The target path (Path).

    Raises:
        WouldOverwriteError (or ``exists_error``): the file exists and
            ``overwrite`` is False.
        InputError: the target is a directory, or its directory is missing.
        WriteFailed (an InputError and an OSError): the directory is not
            writable or the write failed (read-only, permission denied,
            disk full); the message names the path.
    """
    target = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    if target.is_dir():
        raise InputError(f"{target} is a directory")
    if target.exists() and not overwrite:
        raise exists_error(f"{target} already exists; refusing to overwrite it (pass overwrite=True)")
    directory = _directory_of(target, parents)
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise WriteFailed(f"cannot write {target}: {os_error_text(error)}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temp_name, target)
        else:
            _publish_without_overwrite(temp_name, target, exists_error)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        if isinstance(error, OSError) and not isinstance(error, WouldOverwriteError):
            raise WriteFailed(f"cannot write {target}: {os_error_text(error)}") from None
        raise
    _fsync_directory(directory)  # make the new name durable too
    return target


def _directory_of(target: Path, parents: bool) -> Path:
    """The directory ``target`` is written in, made first when ``parents``.
    Raises WriteFailed (cannot make it), InputError (it does not exist)."""
    directory = target.parent if str(target.parent) else Path(".")
    if parents:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise WriteFailed(f"cannot create the directory {directory}: {os_error_text(error)}") from None
    if not directory.is_dir():
        raise InputError(f"directory {directory} does not exist")
    return directory


def _fsync_directory(directory: Path) -> None:
    """fsync ``directory`` so that a rename in it survives a crash; best effort."""
    with contextlib.suppress(OSError):
        directory_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)


def _publish_without_overwrite(temp_name: str, target: Path, exists_error: type[WouldOverwriteError]) -> None:
    """Give the finished temporary file its final name unless that name
    exists.  ``os.link`` fails if ``target`` exists, so a file created by
    someone else between our check and now is never replaced; on file
    systems without hard links we fall back to check-then-rename."""
    try:
        os.link(temp_name, target)
    except FileExistsError:
        raise exists_error(f"{target} already exists; refusing to overwrite it (pass overwrite=True)") from None
    except OSError:  # no hard links here (some FUSE/SMB mounts)
        if target.exists():
            raise exists_error(f"{target} already exists; refusing to overwrite it (pass overwrite=True)") from None
        os.replace(temp_name, target)
        return
    os.unlink(temp_name)


@contextlib.contextmanager
def new_directory(path: str | os.PathLike[str], *, mode: int = 0o700,
                  error: type[AcmelabError] = WriteFailed) -> Iterator[Path]:
    """``path`` (made with ``mode`` and its parents if missing) for the
    ``with`` block; if the block raises, the directory is removed again when
    it was made here and is left empty -- a failed run leaves no empty
    directory.  Raises ``error`` naming the path if it cannot be made."""
    directory = Path(path)
    try:
        directory.mkdir(mode=mode, parents=True)
        made = True
    except FileExistsError:
        made = False
    except OSError as failure:
        raise error(f"cannot create the directory {directory}: {os_error_text(failure)}") from None
    try:
        yield directory
    except BaseException:
        if made:
            with contextlib.suppress(OSError):
                directory.rmdir()   # only if empty
        raise


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike[str], *, wait: float = 0.0, busy: str = "",
                   error: type[AcmelabError] = WriteFailed) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` for the ``with`` block.

    The lock file exists only while it is held: the holder removes it on
    the way out, and a process that locked a file removed meanwhile locks
    the new one instead (the inode is compared), so two processes never
    both hold ``path`` and a failed run leaves no lock file behind.  An
    existing lock file is opened read-only (enough for ``flock``), so one
    left on a read-only disk can still be taken.  Released when the
    process dies, even after ``kill -9``.

    Args:
        wait: seconds to keep trying while another process holds it (0:
            do not wait).
        busy: the message of the StateLocked raised when it stays held
            (default: "<path> is locked by another process").
        error: the class raised when the lock file cannot be created.

    Raises:
        StateLocked: another process holds it (after ``wait`` seconds).
        ``error``: the lock file cannot be created (read-only, permission
            denied, ...), naming it.
    """
    target = Path(path)
    deadline = time.monotonic() + wait
    while True:
        try:
            fd = os.open(target, os.O_RDONLY | os.O_CREAT, 0o600)
        except OSError as failure:
            raise error(f"cannot create the lock {target}: {os_error_text(failure)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _still_named(fd, target):
                break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise StateLocked(busy or f"{target} is locked by another process") from None
            time.sleep(0.05)
        except OSError as failure:   # no locks on this file system (ENOLCK on some NFS), ...
            os.close(fd)
            raise error(f"cannot lock {target}: {os_error_text(failure)}") from None
        os.close(fd)   # held by another process, or removed by its holder meanwhile: again
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            target.unlink()   # still held: nobody else has this file
        os.close(fd)          # closing releases the flock


def _still_named(fd: int, path: Path) -> bool:
    """Is ``path`` still the file open as ``fd`` (not removed, not replaced)?"""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)
