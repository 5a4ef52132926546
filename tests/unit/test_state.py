"""The state directory: atomic files, versions, corruption found, locks.

Certificates come from a throw-away PKI made with ``cryptography``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from acmelab import keys
from acmelab.errors import InputError, KeyExistsError, StateError, StateLocked
from acmelab.state import (
    StateDir,
    atomic_write,
    certificate_name_for,
    check_certificate_name,
    default_state_dir,
)
from tests.unit._deploy_pki import Pki, pem

SERVICE = {"name": "shop", "domains": ["shop.example.com"], "dns": "alidns", "key_type": "ec256",
           "install": [{"product": "cdn", "domain": "shop.example.com"}], "preferred_chain": None}


def issue(pki: Pki, *names: str):
    key, leaf = pki.leaf(*names)
    return key, pem(leaf, pki.intermediate)


def store(state: StateDir, pki: Pki, name: str = "shop", **kwargs):
    key, chain_pem = issue(pki, "shop.example.com")
    return key, state.store_certificate(name, private_key=key, chain_pem=chain_pem, order_url="https://ca/order/1",
                                        directory_url="https://ca/dir", service=SERVICE, **kwargs)


def test_default_state_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ACMELAB_STATE_DIR", str(tmp_path / "s"))
    assert default_state_dir() == tmp_path / "s"
    monkeypatch.delenv("ACMELAB_STATE_DIR")
    assert default_state_dir() == Path.home() / ".acmelab"


def test_created_private(tmp_path):
    state = StateDir(tmp_path / "state")
    for sub in ("", "accounts", "certificates", "locks"):
        assert (state.root / sub).stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("bad", ["", "../x", "A B", "Shop", ".hidden", "x/y", "a" * 129])
def test_bad_certificate_names(bad):
    with pytest.raises(InputError):
        check_certificate_name(bad)


def test_wildcard_default_name():
    assert certificate_name_for("*.Example.com.") == "wildcard.example.com"


def test_atomic_write_keeps_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "fullchain.pem"
    atomic_write(target, "old")

    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["fullchain.pem"]   # no temp file left


def test_atomic_write_mode(tmp_path):
    atomic_write(tmp_path / "secret", b"x", mode=0o600)
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600


def test_store_layout_and_reload(tmp_path):
    state = StateDir(tmp_path)
    pki = Pki.new()
    key, managed = store(state, pki)
    assert managed.key_path.stat().st_mode & 0o777 == 0o600
    assert (state.certificate_dir("shop") / "current").resolve() == managed.version_dir
    chain = x509.load_pem_x509_certificates(managed.fullchain_path.read_bytes())
    assert int(managed.serial_hex, 16) == chain[0].serial_number and len(chain) == 2
    assert x509.load_pem_x509_certificate(managed.cert_path.read_bytes()) == chain[0]
    again = state.certificate("shop")
    assert again.serial_hex == managed.serial_hex and again.names == ("shop.example.com",)
    assert again.service == SERVICE and again.key_type == "ec256"
    assert keys.public_jwk(again.load_key()) == keys.public_jwk(key)
    assert state.certificate_names() == ["shop"]
    assert "PRIVATE" not in json.dumps(again.to_json())


def test_renewal_keeps_previous_version_and_prunes_older(tmp_path):
    state = StateDir(tmp_path)
    pki = Pki.new()
    _, first = store(state, pki)
    first_key = first.key_path.read_bytes()
    _, second = store(state, pki)
    assert first.version_dir.exists() and first.key_path.read_bytes() == first_key   # never overwritten
    _, third = store(state, pki)
    assert not first.version_dir.exists()
    assert second.version_dir.exists() and third.version_dir.exists()
    assert state.certificate("shop").serial_hex == third.serial_hex


def test_half_written_version_of_an_interrupted_run_is_ignored_then_pruned(tmp_path):
    state = StateDir(tmp_path)
    _, live = store(state, Pki.new())
    half = state.certificate_dir("shop") / "29991231T000000-deadbeef"
    half.mkdir()
    (half / "privkey.pem").write_text("-----BEGIN PRIV")          # what a kill mid-write could leave
    assert state.certificate("shop").serial_hex == live.serial_hex
    assert state.prune("shop") == [half.name]
    assert not half.exists()


def test_corrupt_files_are_reported(tmp_path):
    state = StateDir(tmp_path)
    pki = Pki.new()
    _, managed = store(state, pki)
    managed.fullchain_path.write_text("garbage")
    with pytest.raises(StateError, match="unreadable"):
        state.certificate("shop")
    # a key that does not belong to the certificate
    _, managed = store(state, pki)
    keys.write_private_file(managed.key_path, keys.private_key_pem(keys.generate_key("ec256")), overwrite=True)
    with pytest.raises(StateError, match="does not match"):
        state.certificate("shop")
    (state.certificate_dir("shop") / "meta.json").write_text("{")
    with pytest.raises(StateError, match="meta.json"):
        state.certificate("shop")


def test_install_records_and_revoked_flag(tmp_path):
    state = StateDir(tmp_path)
    _, managed = store(state, Pki.new())
    state.record_install("shop", "cdn:shop.example.com", {"product": "cdn", "domain": "shop.example.com",
                                                          "serial_hex": managed.serial_hex})
    assert state.mark_revoked("shop", managed.serial_hex).revoked
    again = state.certificate("shop")
    assert again.installed["cdn:shop.example.com"]["serial_hex"] == managed.serial_hex
    assert again.revoked
    with pytest.raises(StateError):
        state.record_install("nothing", "cas", {})


def test_mark_revoked_only_the_revoked_live_version_under_the_lock(tmp_path):
    """Another run renewed meanwhile (holding the lock): marking waits for
    the lock, then records nothing for the new live version; with the lock
    still held it gives up with StateLocked."""
    import threading
    from acmelab.errors import StateLocked

    state = StateDir(tmp_path)
    _, first = store(state, Pki.new())
    with state.lock("shop"):
        with pytest.raises(StateLocked):
            state.mark_revoked("shop", first.serial_hex, wait=0.1)
        assert not state.certificate("shop").revoked

    renewed = threading.Event()
    release = threading.Event()

    def renew():
        with state.lock("shop"):
            store(state, Pki.new())
            renewed.set()
            release.wait(5)

    worker = threading.Thread(target=renew)
    worker.start()
    renewed.wait(5)
    threading.Timer(0.2, release.set).start()
    assert state.mark_revoked("shop", first.serial_hex, wait=5) is None   # waited, then saw the new version
    worker.join()
    live = state.certificate("shop")
    assert live.serial_hex != first.serial_hex and not live.revoked
    assert state.mark_revoked("shop", int(live.serial_hex, 16)).revoked


def test_pending_dns_round_trip(tmp_path):
    state = StateDir(tmp_path)
    record = {"provider": "alidns", "name": "_acme-challenge.shop.example.com", "value": "v"}
    state.set_pending_dns("shop", [record])
    path = state.certificate_dir("shop") / "dns-pending.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert state.pending_dns("shop") == [record]
    state.set_pending_dns("shop", [])
    assert not path.exists() and state.pending_dns("shop") == []


def test_lock_is_exclusive_and_released(tmp_path):
    state = StateDir(tmp_path)
    with state.lock("shop"):
        with pytest.raises(StateLocked, match="another acmelab run"):
            with state.lock("shop"):
                pass
        # another process sees it too
        code = subprocess.run([sys.executable, "-c",
                               "import sys; from acmelab.state import StateDir; from acmelab.errors import StateLocked\n"
                               f"s = StateDir({str(tmp_path)!r})\n"
                               "try:\n    s.lock('shop').__enter__()\nexcept StateLocked:\n    sys.exit(3)\n"],
                              check=False).returncode
        assert code == 3
        with state.lock("other"):
            pass
    with state.lock("shop"):
        pass


def test_account_key_never_overwritten(tmp_path):
    state = StateDir(tmp_path)
    url = "https://localhost:14000/dir"
    assert state.account(url) is None
    record = state.create_account_key(url, keys.generate_key("ec256"))
    assert record.key_path.stat().st_mode & 0o777 == 0o600
    before = record.key_path.read_bytes()
    with pytest.raises(KeyExistsError):
        state.create_account_key(url, keys.generate_key("ec256"))
    assert record.key_path.read_bytes() == before
    assert state.account(url).account_url is None


def test_servers_get_separate_accounts():
    ids = {StateDir.server_id(u) for u in ("https://localhost:14000/dir", "https://localhost:14001/dir",
                                           "https://acme-staging-v02.api.letsencrypt.org/directory",
                                           "https://acme-v02.api.letsencrypt.org/directory")}
    assert len(ids) == 4
    assert StateDir.server_id("https://localhost:14000/dir").startswith("localhost_14000-")


# -- serial numbers: one spelling everywhere ---------------------------------

@pytest.mark.parametrize("given, expected", [
    (0x5544890CA8EEE9F, "05544890ca8eee9f"), (0xABC, "0abc"), (0xAB, "ab"), (1, "01"),
    ("5544890CA8EEE9F", "05544890ca8eee9f"), ("0A:BC", "0abc"), ("00ab", "ab"),
])
def test_serial_hex_is_full_even_lower_case(given, expected):
    from acmelab.state import serial_hex

    assert serial_hex(given) == expected


def test_serial_hex_refuses_non_hex():
    from acmelab.state import serial_hex

    with pytest.raises(InputError, match="hexadecimal"):
        serial_hex("xyz")


def test_stored_serial_is_even_length_and_older_meta_is_read_padded(tmp_path):
    """meta.json of an older acmelab holds an odd-length serial: it is read
    in the one spelling, and the files still check out against it."""
    state = StateDir(tmp_path)
    _, managed = store(state, Pki.new())
    assert len(managed.serial_hex) % 2 == 0
    meta_path = state.certificate_dir("shop") / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["serial_hex"] = meta["serial_hex"].lstrip("0").upper()
    meta_path.write_text(json.dumps(meta))
    assert state.certificate("shop").serial_hex == managed.serial_hex


def test_find_by_serial_finds_only_the_live_version(tmp_path):
    state = StateDir(tmp_path)
    pki = Pki.new()
    _, first = store(state, pki)
    _, second = store(state, pki)
    _, other = store(state, pki, name="other")
    leaf = x509.load_pem_x509_certificate(second.cert_path.read_bytes())
    assert state.find_by_serial(leaf.serial_number).name == "shop"
    assert state.find_by_serial(other.serial_hex.upper()).name == "other"
    assert state.find_by_serial(first.serial_hex) is None          # replaced: no longer live


def test_lock_can_wait_for_another_holder(tmp_path):
    """An overlapping run waits for the short account lock instead of
    stopping; without ``wait`` it is refused at once."""
    import threading

    state = StateDir(tmp_path)
    held, release = threading.Event(), threading.Event()

    def other_run():
        with StateDir(tmp_path).lock("account-x"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=other_run)
    thread.start()
    held.wait(10)
    try:
        with pytest.raises(StateLocked):
            with state.lock("account-x"):
                pass
    finally:
        release.set()
    with state.lock("account-x", wait=30):
        pass
    thread.join()


# -- a state directory that cannot be written (tests/integration/test_state_faults.py
#    does it for real: read-only mount, file modes, a full tmpfs) ---------------------

def _no_space_for(monkeypatch, file_name: str) -> None:
    """Writing ``file_name`` fails as on a full disk (ENOSPC)."""
    import errno
    import tempfile

    real = tempfile.mkstemp

    def mkstemp(*args, prefix="", **kwargs):
        if prefix.startswith(f".{file_name}."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, prefix=prefix, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def _listing(root: Path) -> list[tuple[str, bytes]]:
    return sorted((str(p.relative_to(root)), p.read_bytes() if p.is_file() else b"") for p in root.rglob("*"))


def test_a_store_that_cannot_finish_takes_back_its_version(tmp_path, monkeypatch):
    state = StateDir(tmp_path)
    pki = Pki.new()
    _, live = store(state, pki)
    before = _listing(tmp_path)
    _no_space_for(monkeypatch, "cert.pem")
    with pytest.raises(StateError) as raised:
        store(state, pki)
    message = str(raised.value)
    assert "cannot be stored" in message and "cert.pem: No space left on device" in message
    assert str(state.certificate_dir("shop")) in message
    assert _listing(tmp_path) == before                          # no half-made version
    assert state.certificate("shop").serial_hex == live.serial_hex
    with pytest.raises(StateError):
        store(state, pki, name="new")
    assert not state.certificate_dir("new").exists()             # no empty certificate directory


def test_meta_json_that_cannot_be_written_keeps_the_old_one_live(tmp_path, monkeypatch):
    state = StateDir(tmp_path)
    pki = Pki.new()
    _, live = store(state, pki)
    before = _listing(tmp_path)
    _no_space_for(monkeypatch, "meta.json")
    with pytest.raises(StateError, match="meta.json: No space left on device"):
        store(state, pki)
    assert _listing(tmp_path) == before and state.certificate("shop").serial_hex == live.serial_hex


def test_emptied_dns_list_removes_the_empty_certificate_directory(tmp_path):
    state = StateDir(tmp_path)
    record = {"provider": "alidns", "name": "_acme-challenge.shop.example.com", "value": "v"}
    state.set_pending_dns("first", [record])
    state.set_pending_dns("first", [])          # a first run that failed after its cleanup
    assert not state.certificate_dir("first").exists()
    _, managed = store(state, Pki.new())
    state.set_pending_dns("shop", [record])
    state.set_pending_dns("shop", [])
    assert managed.version_dir.exists()         # a directory with a certificate stays


def test_dns_list_that_cannot_be_written_names_it(tmp_path, monkeypatch):
    state = StateDir(tmp_path)
    _no_space_for(monkeypatch, "dns-pending.json")
    with pytest.raises(StateError, match="dns-pending.json: No space left on device"):
        state.set_pending_dns("shop", [{"provider": "alidns", "name": "n", "value": "v"}])
    assert not state.certificate_dir("shop").exists()


def test_account_key_that_cannot_be_written_leaves_no_account_directory(tmp_path, monkeypatch):
    state = StateDir(tmp_path)
    url = "https://localhost:14000/dir"
    _no_space_for(monkeypatch, "account.key")
    with pytest.raises(StateError, match="account.key: No space left on device"):
        state.create_account_key(url, keys.generate_key("ec256"))
    assert list((tmp_path / "accounts").iterdir()) == [] and state.account(url) is None


def test_unchanged_account_is_not_rewritten(tmp_path, monkeypatch):
    state = StateDir(tmp_path)
    url = "https://localhost:14000/dir"
    record = state.create_account_key(url, keys.generate_key("ec256"))
    from acmelab.state import AccountRecord

    record = state.save_account(AccountRecord(url, record.key_path, "https://ca/acct/1"))
    _no_space_for(monkeypatch, "account.json")
    state.save_account(record)                                   # nothing to write: no error
    with pytest.raises(StateError, match="account.json: No space left on device"):
        state.save_account(AccountRecord(url, record.key_path, "https://ca/acct/1", "deactivated"))
    assert state.account(url).status == "valid"


def test_lock_file_exists_only_while_held(tmp_path):
    state = StateDir(tmp_path)
    path = tmp_path / "locks" / "shop.lock"
    with state.lock("shop"):
        assert path.exists()
    assert not path.exists()
    path.touch()                                                  # left by an older acmelab
    with state.lock("shop"):
        pass
    assert not path.exists()


def test_a_waiting_run_takes_the_lock_its_holder_removed(tmp_path, monkeypatch):
    """B opened the lock file A holds; A removes it on release: B must not
    hold the removed file while C locks a new one (the inode is checked).

    No sleeping: B's flock, once refused, waits until A has released and
    removed the file, then locks the file it still has open -- the removed
    one -- so the inode check is always the thing that sends B on."""
    import fcntl
    import threading

    state = StateDir(tmp_path)
    path = tmp_path / "locks" / "account-x.lock"
    a_holds, a_release, b_holds, b_release = (threading.Event() for _ in range(4))
    b_waits, a_gone = threading.Event(), threading.Event()
    b_inode, b_locked_removed = [], []
    flock = fcntl.flock

    def run(holds, release, inode=None):
        with state.lock("account-x", wait=10):
            if inode is not None:
                inode.append(path.stat().st_ino)
            holds.set()
            release.wait(10)

    def b_flock(fd, operation):
        try:
            return flock(fd, operation)
        except BlockingIOError:
            if threading.current_thread() is not b or b_waits.is_set():
                raise
            b_waits.set()                    # B has A's file open and is waiting for it
            assert a_gone.wait(10)
            flock(fd, operation)             # A's file, removed: B locks it ...
            b_locked_removed.append(os.fstat(fd).st_nlink == 0)

    monkeypatch.setattr(fcntl, "flock", b_flock)
    a = threading.Thread(target=run, args=(a_holds, a_release))
    a.start()
    assert a_holds.wait(10)
    b = threading.Thread(target=run, args=(b_holds, b_release, b_inode))
    b.start()
    assert b_waits.wait(10)
    a_release.set()
    a.join(10)
    a_gone.set()
    assert b_holds.wait(10)
    assert b_locked_removed == [True]    # ... and goes on to the new file (the inode check)
    with pytest.raises(StateLocked):     # C: B holds the lock file that is there
        with state.lock("account-x"):
            pass
    assert path.stat().st_ino == b_inode[0]
    b_release.set()
    b.join(10)
    assert not path.exists()


def test_lock_that_cannot_be_created_names_it(tmp_path):
    state = StateDir(tmp_path)
    (tmp_path / "locks").rmdir()
    (tmp_path / "locks").write_text("not a directory")
    with pytest.raises(StateError, match=r"cannot create the lock .*locks/shop.lock: Not a directory"):
        with state.lock("shop"):
            pass
