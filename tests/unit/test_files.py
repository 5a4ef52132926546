"""acmelab.files.write_atomically: the one way acmelab writes a file."""

import os
import stat

import pytest

from acmelab.errors import InputError, KeyExistsError, WouldOverwriteError
from acmelab.files import write_atomically


def test_writes_bytes_and_text_with_the_mode(tmp_path):
    write_atomically(tmp_path / "a", b"\x00\x01", mode=0o600)
    write_atomically(tmp_path / "b", "héllo")
    assert (tmp_path / "a").read_bytes() == b"\x00\x01"
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o600
    assert (tmp_path / "b").read_text(encoding="utf-8") == "héllo"
    assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o644


def test_mode_is_set_before_any_byte_is_written(tmp_path, monkeypatch):
    seen = []
    real_fdopen = os.fdopen

    def spying_fdopen(fd, *args, **kwargs):
        handle = real_fdopen(fd, *args, **kwargs)
        real_write = handle.write

        def write(data):
            seen.append(stat.S_IMODE(os.fstat(handle.fileno()).st_mode))
            return real_write(data)
        handle.write = write
        return handle

    monkeypatch.setattr(os, "fdopen", spying_fdopen)
    write_atomically(tmp_path / "secret", b"key material", mode=0o600)
    assert seen == [0o600]


def test_overwrite_refused_and_nothing_changes(tmp_path):
    target = write_atomically(tmp_path / "k", b"old")
    with pytest.raises(WouldOverwriteError):
        write_atomically(target, b"new", overwrite=False)
    with pytest.raises(KeyExistsError):
        write_atomically(target, b"new", overwrite=False, exists_error=KeyExistsError)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


def test_a_file_appearing_while_writing_is_not_replaced(tmp_path, monkeypatch):
    target = tmp_path / "k"
    real_fsync = os.fsync

    def racing_fsync(fd):
        real_fsync(fd)
        if not target.exists():
            target.write_bytes(b"theirs")   # someone else creates it meanwhile
    monkeypatch.setattr(os, "fsync", racing_fsync)
    with pytest.raises(WouldOverwriteError):
        write_atomically(target, b"ours", overwrite=False)
    assert target.read_bytes() == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


def test_interrupted_write_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = write_atomically(tmp_path / "chain.pem", b"old")

    def interrupted(src, dst):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.pem"]


def test_missing_directory_and_directory_target(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        write_atomically(tmp_path / "no" / "such" / "file", b"x")
    assert not (tmp_path / "no").exists()
    write_atomically(tmp_path / "made" / "file", b"x", parents=True)
    assert (tmp_path / "made" / "file").read_bytes() == b"x"
    with pytest.raises(InputError, match="is a directory"):
        write_atomically(tmp_path / "made", b"x")


def test_a_failed_write_is_one_typed_error_naming_the_file(tmp_path, monkeypatch):
    """Disk full at the fsync: WriteFailed (an InputError and an OSError)
    naming the file and the reason; the old file kept, no temporary left."""
    import errno

    from acmelab.errors import WriteFailed

    target = write_atomically(tmp_path / "meta.json", b"old")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(WriteFailed, match=f"cannot write {target}: No space left on device") as raised:
        write_atomically(target, b"new")
    assert isinstance(raised.value, InputError) and isinstance(raised.value, OSError)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json"]


def test_new_directory_is_taken_back_when_the_block_fails(tmp_path):
    from acmelab.files import new_directory

    with pytest.raises(RuntimeError):
        with new_directory(tmp_path / "made"):
            raise RuntimeError
    assert not (tmp_path / "made").exists()
    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError):
        with new_directory(tmp_path / "kept"):
            raise RuntimeError
    assert (tmp_path / "kept").is_dir()          # not made here: stays


def test_a_file_system_without_locks_is_the_typed_error_and_no_descriptor_is_left(tmp_path, monkeypatch):
    import errno
    import fcntl

    from acmelab.errors import WriteFailed
    from acmelab.files import exclusive_lock

    opened, closed = [], []
    real_open, real_close = os.open, os.close
    monkeypatch.setattr(os, "open", lambda *a, **k: opened.append(real_open(*a, **k)) or opened[-1])
    monkeypatch.setattr(os, "close", lambda fd: closed.append(fd) or real_close(fd))

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(WriteFailed, match=r"cannot lock .*x\.lock: .*No locks available"):
        with exclusive_lock(tmp_path / "x.lock"):
            pass
    assert opened and opened == closed
