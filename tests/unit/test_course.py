"""acmelab.course: the course's working directory (no lab needed: the target
is pointed at Let's Encrypt staging, which is never contacted here)."""

from __future__ import annotations

import stat

import pytest

from acmelab import course, keys
from acmelab.csr import inspect_csr
from acmelab.errors import InputError


@pytest.fixture()
def staging(tmp_path, monkeypatch):
    monkeypatch.setenv("ACMELAB_COURSE_DIR", str(tmp_path / "course"))
    monkeypatch.setenv("ACMELAB_ACME", "staging")
    monkeypatch.setenv("ACMELAB_DOMAIN", "Example.ORG.")
    monkeypatch.delenv("ACMELAB_CONTACT", raising=False)
    monkeypatch.delenv("ACMELAB_CA_BUNDLE", raising=False)
    return tmp_path / "course"


def test_target_staging_names_and_folder(staging):
    target = course.target()
    assert target.environment == "staging"
    assert target.directory_url == course.LETSENCRYPT_STAGING
    assert target.verify is True
    assert target.domain == "example.org"
    assert course.names() == ["api.example.org", "cdn.example.org"]
    assert course.directory() == staging / "staging"
    assert stat.S_IMODE(course.directory().stat().st_mode) == 0o700


def test_account_key_is_made_once_0600_and_never_replaced(staging):
    first = course.account_key()
    path = course.account_key_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    again = course.account_key("rsa2048")  # a saved key wins over the requested type
    assert keys.thumbprint(again) == keys.thumbprint(first)
    assert keys.key_type_of(again) == "ec256"
    assert path.read_bytes() == before


def test_certificate_key_and_csr_are_separate_and_follow_the_names(staging):
    key = course.certificate_key()
    assert keys.thumbprint(key) != keys.thumbprint(course.account_key())
    request = course.csr()
    info = inspect_csr(request)
    assert info.names == ["api.example.org", "cdn.example.org"]
    assert info.signature_valid
    assert keys.thumbprint(request.public_key()) == keys.thumbprint(key)
    saved = course.csr_path().read_bytes()
    assert inspect_csr(course.csr()).names == info.names and course.csr_path().read_bytes() == saved
    other = course.csr(certificate_names=["www.example.org"])  # other names: a new CSR, same key
    assert inspect_csr(other).names == ["www.example.org"]
    assert keys.thumbprint(other.public_key()) == keys.thumbprint(key)
    assert stat.S_IMODE(course.certificate_key_path().stat().st_mode) == 0o600


def test_helpers_say_what_they_created_and_nothing_when_they_load(staging, capsys):
    course.account_key()
    course.csr()
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "course: created the account key course/staging/account.key (ec256, mode 0600; notebook 01 makes it)",
        "course: created the certificate key course/staging/certificates/course/privkey.pem "
        "(ec256, mode 0600; notebook 02 makes it)",
        "course: created the CSR course/staging/certificates/course/request.csr for api.example.org, "
        "cdn.example.org (notebook 02 makes it)"]
    course.account_key()
    course.certificate_key()
    course.csr()
    assert capsys.readouterr().out == ""
    course.csr(certificate_names=["www.example.org"])  # other names: a new CSR (the key is loaded)
    assert capsys.readouterr().out.splitlines() == [
        "course: created the CSR course/staging/certificates/course/request.csr for www.example.org "
        "(notebook 02 makes it)"]


def test_staging_trusts_the_published_staging_roots_offline(staging, monkeypatch):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    roots = [x509.load_pem_x509_certificate(pem.encode("ascii")) for pem in course.trust_roots()]
    names = [root.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value for root in roots]
    assert names == ["(STAGING) Pretend Pear X1", "(STAGING) Bogus Broccoli X2",
                     "(STAGING) Yonder Yam Root YR", "(STAGING) Yearning Yucca Root YE"]
    for root in roots:
        assert root.issuer == root.subject
        root.verify_directly_issued_by(root)   # self-signed: InvalidSignature otherwise
        assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert roots[0].fingerprint(hashes.SHA256()).hex() == \
        "e70570a989f8565aabdf7cae27abd1621872d6a3f811e3fef27e3dba02912198"
    assert roots[1].fingerprint(hashes.SHA256()).hex() == \
        "9b2a339fe6a3e85585c4cd75536cb8c1cf7cd603b9a64bec2521858ae48da85d"
    monkeypatch.setenv("ACMELAB_ACME", "production")
    monkeypatch.setenv("ACMELAB_PRODUCTION", "yes")
    assert course.trust_roots() is None   # production: the system's trust store


def test_remember_and_recall(staging):
    assert course.recall("order_url") is None
    course.remember(order_url="https://example.org/order/1", count=2)
    course.remember(count=3)
    assert course.recall("order_url") == "https://example.org/order/1"
    assert course.load_state() == {"count": 3, "order_url": "https://example.org/order/1"}
    course.state_path().write_text("{not json")
    with pytest.raises(InputError):
        course.load_state()


def test_relative_paths_for_printing(staging):
    assert course.relative(course.account_key_path()) == "course/staging/account.key"
    assert course.relative(staging.parent / "elsewhere") == str(staging.parent / "elsewhere")


@pytest.mark.parametrize("environment, message", [
    ({"ACMELAB_ACME": "production"}, "ACMELAB_PRODUCTION=yes"),
    ({"ACMELAB_ACME": "http://insecure.example/directory"}, "https://"),
    ({"ACMELAB_ACME": "staging", "ACMELAB_DOMAIN": ""}, "ACMELAB_DOMAIN"),
])
def test_bad_targets_are_refused(staging, monkeypatch, environment, message):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(InputError, match=message):
        course.target()


def test_production_with_opt_in_and_contact(staging, monkeypatch):
    monkeypatch.setenv("ACMELAB_ACME", "production")
    monkeypatch.setenv("ACMELAB_PRODUCTION", "yes")
    monkeypatch.setenv("ACMELAB_CONTACT", "admin@example.org")
    target = course.target()
    assert (target.environment, target.directory_url) == ("production", course.LETSENCRYPT_PRODUCTION)
    assert target.contact == ["mailto:admin@example.org"]


def test_certificate_labels_must_be_plain_folder_names(staging):
    for label in ("", "../x", ".hidden", "a/b"):
        with pytest.raises(InputError):
            course.certificate_directory(label)


def test_custom_directory_with_its_own_ca_bundle(staging, monkeypatch, tmp_path):
    monkeypatch.setenv("ACMELAB_ACME", "https://acme.internal.example/directory")
    monkeypatch.setenv("ACMELAB_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(InputError, match="ACMELAB_CA_BUNDLE"):
        course.target()
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("ACMELAB_CA_BUNDLE", str(tmp_path / "ca.pem"))
    target = course.target()
    assert (target.environment, target.verify) == ("custom", tmp_path / "ca.pem")


def test_lab_sharing_the_last_user_out_stops_a_lab_it_started(tmp_path, monkeypatch):
    """join_lab/leave_lab bookkeeping, on a run dir where no lab runs (nothing
    is started here; ``stop`` of an empty run dir is harmless)."""
    import os

    monkeypatch.setenv("ACMELAB_LAB_DIR", str(tmp_path / "lab"))
    sessions = tmp_path / "lab" / "course-sessions"
    course.join_lab()
    assert (sessions / "stop-when-idle").exists() and (sessions / str(os.getpid())).exists()

    other = sessions / str(os.getppid())  # another live session (our parent process)
    other.touch()
    dead = sessions / "999999999"  # a session that died without leaving
    dead.touch()
    assert course.leave_lab() is False  # someone still uses the lab
    assert not dead.exists() and (sessions / "stop-when-idle").exists()

    other.unlink()
    course.join_lab()
    assert course.leave_lab() is True  # last one out, and the lab was started for the users
    assert not (sessions / "stop-when-idle").exists()
    assert course.leave_lab() is False  # nothing left to stop


def test_lab_started_by_hand_is_never_stopped_by_users(tmp_path, monkeypatch):
    from acmelab import lab as lab_module

    monkeypatch.setenv("ACMELAB_LAB_DIR", str(tmp_path / "lab"))
    monkeypatch.setattr(lab_module, "status", lambda run_dir=None: object())  # "a lab runs"
    course.join_lab()
    assert not (tmp_path / "lab" / "course-sessions" / "stop-when-idle").exists()
    assert course.leave_lab() is False


@pytest.mark.parametrize("running, action, calls", [
    (course.LAB_PEBBLE_ENV, "reused", []),
    (None, "started", ["ensure_running"]),
    ({**course.LAB_PEBBLE_ENV, "PEBBLE_AUTHZREUSE": "50"}, "restarted", ["stop", "ensure_running"]),
    ({"PEBBLE_VA_NOSLEEP": "1"}, "restarted", ["stop", "ensure_running"]),  # a lab.json without the knobs
])
def test_ensure_lab_reuses_starts_or_restarts_and_warns_only_on_restart(
        tmp_path, monkeypatch, capsys, running, action, calls):
    """The decision alone (the course's lab lives at the default ports, which
    tests never use): status/ensure_running/stop stand in for the lab."""
    from types import SimpleNamespace

    from acmelab import lab as lab_module

    monkeypatch.setenv("ACMELAB_LAB_DIR", str(tmp_path / "lab"))
    lab = {"env": running}
    made = []

    def status(run_dir=None):
        return None if lab["env"] is None else SimpleNamespace(pebble_env=dict(lab["env"]), run_dir=tmp_path / "lab")

    def ensure_running(run_dir=None, pebble_env=None):
        made.append("ensure_running")
        if lab["env"] is None:
            lab["env"] = dict(pebble_env)
        return status()

    def stop(run_dir=None):
        made.append("stop")
        lab["env"] = None
        return True

    monkeypatch.setattr(lab_module, "status", status)
    monkeypatch.setattr(lab_module, "ensure_running", ensure_running)
    monkeypatch.setattr(lab_module, "stop", stop)

    info, done = course.ensure_lab()
    assert (done, made) == (action, calls)
    assert info.pebble_env == course.LAB_PEBBLE_ENV
    captured = capsys.readouterr()
    assert captured.out == ""
    if action == "restarted":
        assert "restarting the lab" in captured.err and "(course: 0)" in captured.err
    else:
        assert captured.err == ""


def test_ram_policy_allows_only_what_the_services_need():
    from acmelab.services import parse_services

    wanted = parse_services({"service": [
        {"name": "www", "domains": ["cdn.example.com"], "cdn": ["cdn.example.com"]},
        {"name": "api", "domains": ["api.example.com"], "cas": True,
         "apigateway": [{"group_id": "G1", "domain": "api.example.com"}]}]})
    policy = course.ram_policy(wanted, {"example.com"}, region="cn-shanghai")
    resources = {action: statement["Resource"] for statement in policy["Statement"] for action in statement["Action"]}
    assert policy["Version"] == "1"
    assert resources["alidns:AddDomainRecord"] == ["acs:alidns:*:*:domain/example.com"]
    assert resources["cdn:SetCdnDomainSSLCertificate"] == ["acs:cdn:*:*:domain/cdn.example.com"]
    assert resources["apigateway:SetDomainCertificate"] == ["acs:apigateway:cn-shanghai:*:apigroup/G1"]
    assert "yundun-cert:UploadUserCertificate" in resources
    only_dns = course.ram_policy([], {"example.com"})
    assert [s["Action"][0] for s in only_dns["Statement"]] == ["alidns:DescribeDomains", "alidns:AddDomainRecord"]


def test_services_file_of_notebooks_14_and_15(staging, monkeypatch):
    import tomllib

    from acmelab.services import parse_services

    monkeypatch.setenv("ACMELAB_API_GROUP_ID", "G1")
    every = parse_services(tomllib.loads(course.services_toml()))
    assert [s.name for s in every] == ["www", "api", "dev"]
    assert {t.id for s in every for t in s.install} >= {"cdn:cdn.example.org", "apigateway:G1/api.example.org",
                                                         "cdn:cdn.dev.example.org"}
    assert [s.name for s in parse_services(tomllib.loads(course.services_toml(only=("www", "api"))))] \
        == ["www", "api"]
    with pytest.raises(InputError, match="no course service 'shop'"):
        course.services_toml(only=("www", "shop"))
