"""The lab runs only the pinned Pebble (acmelab.lab.build)."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from acmelab.errors import LabError
from acmelab.lab import build


def _fake_pebble(directory, version: str) -> None:
    for name in build.COMMANDS:
        path = directory / name
        path.write_text(f"#!/bin/sh\necho 'Pebble version: {version}'\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_the_pin_is_one_commit():
    assert len(build.PEBBLE_COMMIT) == 40 and int(build.PEBBLE_COMMIT, 16)
    assert build.PEBBLE_VERSION == build.PEBBLE_COMMIT[:12] == "b1e1ca4f3c30"


def test_find_binaries_accepts_only_the_pinned_version(tmp_path):
    _fake_pebble(tmp_path, build.PEBBLE_VERSION)
    assert build.find_binaries(tmp_path) == (tmp_path / "pebble", tmp_path / "pebble-challtestsrv")
    _fake_pebble(tmp_path, "v2.4.0")
    with pytest.raises(LabError, match="'v2.4.0', not the pinned b1e1ca4f3c30.*make setup"):
        build.find_binaries(tmp_path)


def test_find_binaries_never_looks_on_path(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _fake_pebble(elsewhere, build.PEBBLE_VERSION)
    monkeypatch.setenv("PATH", f"{elsewhere}{os.pathsep}{os.environ['PATH']}")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LabError, match="pebble and pebble-challtestsrv not found in"):
        build.find_binaries(empty)


def test_bin_dir_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(build.BIN_DIR_ENV, str(tmp_path))
    assert build.default_bin_dir() == tmp_path


def test_a_tarball_with_another_checksum_is_not_built(tmp_path):
    tarball = tmp_path / "pebble.tar.gz"
    tarball.write_bytes(b"not the pinned source")
    with pytest.raises(LabError, match=hashlib.sha256(b"not the pinned source").hexdigest()):
        build.build_from_source(tarball, tmp_path / "bin")
    assert not (tmp_path / "bin").exists()
    with pytest.raises(LabError, match="no such file"):
        build.build_from_source(tmp_path / "missing.tar.gz", tmp_path / "bin")


@pytest.mark.parametrize("with_filter", [True, False])
@pytest.mark.parametrize("bad", ["../escape.txt", "/abs.txt", "link-out"])
def test_unpack_refuses_members_outside_the_folder(tmp_path, monkeypatch, with_filter, bad):
    """Python 3.11.2 (Debian's) has no tarfile data filter: the same rules hold."""
    import io
    import tarfile

    from acmelab.lab import build

    tarball = tmp_path / "src.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        member = tarfile.TarInfo(bad)
        if bad == "link-out":
            member.type, member.linkname = tarfile.SYMTYPE, "../../outside"
            archive.addfile(member)
        else:
            member.size = 2
            archive.addfile(member, io.BytesIO(b"hi"))
    if not with_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    into = tmp_path / "into"
    into.mkdir()
    if bad == "/abs.txt" and with_filter and hasattr(tarfile, "data_filter"):   # made relative: inside, harmless
        build._unpack(tarball, str(into))
        assert (into / "abs.txt").read_bytes() == b"hi"
        return
    with pytest.raises(LabError, match="unsafe member"):
        build._unpack(tarball, str(into))
    assert not (tmp_path / "escape.txt").exists()


def test_unpack_without_the_filter_unpacks_a_plain_tree(tmp_path, monkeypatch):
    import io
    import tarfile

    from acmelab.lab import build

    tarball = tmp_path / "src.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        member = tarfile.TarInfo("pebble/go.mod")
        member.size = 6
        archive.addfile(member, io.BytesIO(b"module"))
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    build._unpack(tarball, str(tmp_path))
    assert (tmp_path / "pebble" / "go.mod").read_text() == "module"
