"""The services file, the renewal threshold, and the engine's bookkeeping
(no network here: the end-to-end runs are in tests/integration/test_cli_apply.py)."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest

from acmelab.errors import ConfigError
from acmelab.services import (
    DEFAULT_CONCURRENCY,
    Environment,
    InstallTarget,
    RenewalThreshold,
    Service,
    apply_services,
    load_services,
    parse_services,
)
from acmelab.state import ManagedCertificate, StateDir

GROUP = "523e8dc7bbe04613b5b1d726c2a7889d"

GOOD = f"""
[defaults]
dns = "challtestsrv"
key_type = "rsa2048"

[[service]]
name = "shop"
domains = ["Shop.Example.com", "www.shop.example.com"]
cdn = ["shop.example.com", "www.shop.example.com"]
apigateway = {{ group_id = "{GROUP}", domain = "api.shop.example.com" }}
cas = true

[[service]]
domains = ["*.dev.example.com"]
dns = "alidns"
key_type = "ec384"
preferred_chain = "Pebble Root CA"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "services.toml"
    path.write_text(text)
    return path


def test_good_file(tmp_path):
    shop, wildcard = load_services(write(tmp_path, GOOD))
    assert shop.name == "shop" and shop.domains == ("shop.example.com", "www.shop.example.com")
    assert shop.dns == "challtestsrv" and shop.key_type == "rsa2048"
    assert [t.id for t in shop.install] == ["cdn:shop.example.com", "cdn:www.shop.example.com",
                                            f"apigateway:{GROUP}/api.shop.example.com", "cas"]
    assert wildcard.name == "wildcard.dev.example.com" and wildcard.dns == "alidns"
    assert wildcard.key_type == "ec384" and wildcard.install == () and wildcard.preferred_chain == "Pebble Root CA"
    assert Service.from_dict(shop.to_dict()) == shop


@pytest.mark.parametrize("text, message", [
    ('[[service]]\ndomains = ["a.example.com"]\ncdns = "a.example.com"\n', "unknown key"),
    ('[[service]]\ndomains = ["a.example.com"]\ndns = "route53"\n', "dns must be one of"),
    ('[[service]]\ndomains = ["a.example.com"]\nkey_type = "dsa"\n', "key_type must be one of"),
    ('[[service]]\ndomains = []\n', "domains is required"),
    ('[[service]]\ndomains = ["bad name.example.com"]\n', "service"),
    ('[[service]]\nname = "A"\ndomains = ["a.example.com"]\n', "not a usable certificate name"),
    ('[[service]]\ndomains = ["a.example.com"]\n[[service]]\ndomains = ["a.example.com"]\n', "two services"),
    ('[[service]]\ndomains = ["a.example.com"]\ncdn = "x.example.com"\n'
     '[[service]]\ndomains = ["b.example.com"]\ncdn = "x.example.com"\n', "also claimed by service 'a.example.com'"),
    ('[[service]]\ndomains = ["a.example.com"]\napigateway = { domain = "a.example.com" }\n', "group_id and domain"),
    ('[[service]]\ndomains = ["a.example.com"]\ncas = "yes"\n', "cas must be true or false"),
    ('[defaults]\ndomains = ["a.example.com"]\n[[service]]\nname = "x"\n', "allowed keys"),
    ('[default]\n[[service]]\ndomains = ["a.example.com"]\n', "unknown top-level key"),
    ('title = "x"\n', "unknown top-level key"),
    ('[defaults]\n', "no [[service]]"),
    ('[[service]\n', "not valid TOML"),
])
def test_bad_files_are_config_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=None) as error:
        load_services(write(tmp_path, text))
    assert message in str(error.value)
    assert str(tmp_path / "services.toml") in str(error.value)


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_services(tmp_path / "missing.toml")


def test_a_string_is_one_cdn_domain():
    [service] = parse_services({"service": [{"domains": ["a.example.com"], "cdn": "a.example.com"}]})
    assert service.install == (InstallTarget("cdn", "a.example.com"),)
    assert service.dns == "alidns" and service.key_type == "ec256"


@pytest.mark.parametrize("text, fraction, days", [
    ("0.33", 0.33, None), ("0.5", 0.5, None), ("30", None, 30.0), ("30d", None, 30.0), ("1.5d", None, 1.5),
    ("1", None, 1.0),
])
def test_threshold_parse(text, fraction, days):
    threshold = RenewalThreshold.parse(text)
    assert (threshold.fraction, threshold.days) == (fraction, days)


@pytest.mark.parametrize("text", ["", "abc", "-1", "0", "0d", "thirty"])
def test_threshold_parse_errors(text):
    with pytest.raises(ConfigError, match="--threshold"):
        RenewalThreshold.parse(text)


def managed(not_before: dt.datetime, days: int, **kwargs) -> ManagedCertificate:
    return ManagedCertificate(name="shop", names=("shop.example.com",), serial_hex="1", not_before=not_before,
                              not_after=not_before + dt.timedelta(days=days), order_url="", directory_url="",
                              key_type="ec256", version_dir=Path("/nonexistent"), **kwargs)


def test_threshold_is_due():
    start = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    certificate = managed(start, 90)
    default = RenewalThreshold()
    assert not default.is_due(certificate, start + dt.timedelta(days=59))       # 31 days left > 30
    assert default.is_due(certificate, start + dt.timedelta(days=61))           # 29 days left < 30
    assert RenewalThreshold(None, 10).is_due(certificate, start + dt.timedelta(days=81))
    assert not RenewalThreshold(None, 10).is_due(certificate, start + dt.timedelta(days=79))
    assert RenewalThreshold(0.0, None).is_due(certificate, start + dt.timedelta(days=91))   # expired
    assert str(default) == "a third of the lifetime (half under 10 days)"
    assert str(RenewalThreshold(1 / 3, None)) == "0.333 of the lifetime" and str(RenewalThreshold(None, 30)) == "30 days"
    shortlived = ManagedCertificate(**{**certificate.__dict__, "not_after": start + dt.timedelta(hours=160)})
    assert not default.is_due(shortlived, start + dt.timedelta(hours=79))       # half-life for under 10 days
    assert default.is_due(shortlived, start + dt.timedelta(hours=81))


def test_service_from_managed_adds_install_targets():
    start = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    service = Service("shop", ("shop.example.com",), "alidns", "ec256", (InstallTarget("cdn", "shop.example.com"),))
    certificate = managed(start, 90, service=service.to_dict(),
                          installed={"cas": {"product": "cas", "serial_hex": "1"},
                                     "cdn:shop.example.com": {"product": "cdn", "domain": "shop.example.com"}})
    again = Service.from_managed(certificate)
    assert [t.id for t in again.install] == ["cdn:shop.example.com", "cas"]


def test_default_concurrency_is_bounded():
    # waiting work: more than the CPU count, and bounded, polite to the CA
    assert 8 <= DEFAULT_CONCURRENCY <= 16


def test_cancelled_before_start_touches_nothing(tmp_path):
    """With the cancel event set, every service ends ``interrupted`` and the
    engine contacts nothing (the directory URL below does not exist)."""
    state = StateDir(tmp_path)
    env = Environment("https://127.0.0.1:9/dir", True, None, "https://127.0.0.1:9/acct/1")
    services = [Service(f"s{n}", (f"s{n}.example.com",)) for n in range(5)]
    cancel = threading.Event()
    cancel.set()
    seen = []
    results = apply_services(services, env, state, concurrency=2, cancel=cancel, on_result=seen.append)
    assert [r.name for r in results] == [s.name for s in services]
    assert {r.status for r in results} == {"interrupted"} and len(seen) == 5
    assert not any(r.ok for r in results)
    assert state.certificate_names() == []


def test_concurrency_must_be_positive(tmp_path):
    with pytest.raises(ConfigError):
        apply_services([], Environment("https://x/dir", True, None, "u"), StateDir(tmp_path), concurrency=0)


def test_failure_is_a_result_not_an_exception(tmp_path):
    """A service whose ACME server is unreachable fails alone, with the
    reason in the result (port 9 on loopback refuses connections)."""
    from acmelab import keys

    env = Environment("https://127.0.0.1:9/dir", True, keys.generate_key("ec256"), "https://127.0.0.1:9/acct/1")
    [result] = apply_services([Service("s", ("s.example.com",), dns="alidns")], env, StateDir(tmp_path),
                              concurrency=1)
    assert result.status == "failed" and result.reason == "no certificate yet"
    assert result.error


@pytest.mark.parametrize("entry, where", [
    ('name = "shop"\ndomains = "shop.example.com"', "service 'shop'"),
    ('domains = "x"', "[[service]] #1"),
])
def test_domains_must_be_a_list(tmp_path, entry, where):
    path = tmp_path / "services.toml"
    path.write_text(f"[[service]]\n{entry}\n")
    with pytest.raises(ConfigError) as error:
        load_services(path)
    assert where in str(error.value) and "domains must be a list" in str(error.value)


def test_services_file_that_is_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "services.toml"
    path.write_bytes(b'[[service]]\ndomains = ["caf\xe9.example.com"]\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_services(path)


def test_a_services_file_does_not_take_over_a_certificate_of_acmelab_issue(tmp_path):
    """Same certificate name, other names: the service fails naming the
    clash and the stored certificate is untouched (nothing is sent: the
    directory URL does not exist)."""
    from tests.unit._deploy_pki import Pki, pem

    state = StateDir(tmp_path)
    pki = Pki.new()
    key, leaf = pki.leaf("shop.example.com")
    issued = Service("shop", ("shop.example.com",), origin="issue")
    stored = state.store_certificate("shop", private_key=key, chain_pem=pem(leaf, pki.intermediate),
                                     order_url="o", directory_url="https://127.0.0.1:9/dir",
                                     service=issued.to_dict())
    env = Environment("https://127.0.0.1:9/dir", True, None, "https://127.0.0.1:9/acct/1")
    [service] = parse_services({"service": [{"name": "shop", "domains": ["other.example.com"], "dns": "alidns"}]})
    assert service.origin == "services"
    [result] = apply_services([service], env, state, concurrency=1)
    assert result.status == "failed" and "acmelab issue" in result.error and "shop.example.com" in result.error
    assert state.certificate("shop").serial_hex == stored.serial_hex


def test_chain_leads_to_current_roots_only(tmp_path):
    """A chain from an earlier lab (other roots) is due for renewal."""
    from acmelab.renewal import RenewalPolicy
    from acmelab.services import chain_leads_to
    from tests.unit._deploy_pki import Pki, pem

    old, new = Pki.new("Old"), Pki.new("New")
    key, leaf = old.leaf("shop.example.com")
    chain = pem(leaf, old.intermediate)
    assert chain_leads_to(chain, [old.root_pem]) and not chain_leads_to(chain, [new.root_pem])
    assert not chain_leads_to(pem(leaf, new.intermediate), [new.root_pem])     # broken link
    state = StateDir(tmp_path)
    stored = state.store_certificate("shop", private_key=key, chain_pem=chain, order_url="o",
                                     directory_url="https://ca/dir", service={})
    service = Service("shop", ("shop.example.com",))
    def decide(roots):
        return RenewalPolicy().decide(stored, names=service.domains, key_type=service.key_type,
                                      directory_url="https://ca/dir",
                                      chain_trusted=chain_leads_to(stored.fullchain_pem(), roots))

    assert not decide([old.root_pem]).due
    assert "no longer trusts" in decide([new.root_pem]).reason


def test_a_service_locked_by_another_run_is_skipped(tmp_path):
    state = StateDir(tmp_path)
    env = Environment("https://127.0.0.1:9/dir", True, None, "https://127.0.0.1:9/acct/1")
    with state.lock("s"):
        [result] = apply_services([Service("s", ("s.example.com",))], env, state, concurrency=1)
    assert result.status == "skipped" and result.reason == "locked by another run" and not result.ok


@pytest.mark.parametrize("table", ["[defaults]\nkeytype = \"ec256\"\n[[service]]\ndomains = [\"a.example.com\"]\n",
                                   "[[service]]\ndomains = [\"a.example.com\"]\nkeytype = \"ec256\"\n"])
def test_a_mistyped_key_is_named_with_the_closest_one(table):
    import tomllib

    with pytest.raises(ConfigError, match=r"keytype \(did you mean key_type\?\)"):
        parse_services(tomllib.loads(table))
