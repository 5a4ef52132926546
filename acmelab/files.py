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
an interrupted write leaves no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from acmelab.errors import InputError, WouldOverwriteError

__all__ = ["write_atomically"]


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
        InputError: the target is a directory, or its directory is missing
            or not writable.
    """
    target = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    if target.is_dir():
        raise InputError(f"{target} is a directory")
    if target.exists() and not overwrite:
        raise exists_error(f"{target} already exists; refusing to overwrite it (pass overwrite=True)")
    directory = target.parent if str(target.parent) else Path(".")
    if parents:
        directory.mkdir(parents=True, exist_ok=True)
    if not directory.is_dir():
        raise InputError(f"directory {directory} does not exist")
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise InputError(f"cannot write into {directory}: {error.strerror}") from None
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
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    with contextlib.suppress(OSError):  # make the new name durable too
        directory_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)
    return target


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
