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
