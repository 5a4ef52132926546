"""What Let's Encrypt speaks in 2026, against the pinned Pebble: profiles,
ARI (RFC 9773), Retry-After on polls, dns-account-01 and dns-persist-01."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
import requests
from cryptography import x509

from acmelab import keys
from acmelab.challenges import account_label
from acmelab.client import AcmeClient
from acmelab.dns.challtestsrv import ChallTestSrvProvider
from acmelab.errors import AlreadyReplaced, InvalidProfile, ProtocolError, UnknownProfile
from acmelab.issue import issue_certificate
from tests.integration._recording import RecordingProvider
from acmelab.renewal_info import cert_id

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def acme_lab(lab_factory):
    return lab_factory(aliyun=False, pebble_env={"PEBBLE_AUTHZREUSE": "0"})


@pytest.fixture
def client(acme_lab):
    client = AcmeClient(acme_lab.directory_url, keys.generate_key("ec256"), verify=acme_lab.ca_bundle)
    client.new_account()
    yield client
    client.close()


def _domain() -> str:
    return f"{uuid.uuid4().hex[:12]}.example.com"


def _lifetime(issued) -> dt.timedelta:
    leaf = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    return leaf.not_valid_after_utc - leaf.not_valid_before_utc


@pytest.mark.parametrize("profile, at_most", [
    ("shortlived", dt.timedelta(hours=160)), ("tlsserver", dt.timedelta(days=45)), ("classic", dt.timedelta(days=90)),
])
def test_profile_sets_the_lifetime(client, acme_lab, profile, at_most):
    issued = issue_certificate([f"www.{_domain()}"], client=client, dns=ChallTestSrvProvider.for_lab(acme_lab),
                               profile=profile)
    assert issued.profile == profile
    assert at_most - dt.timedelta(minutes=5) < _lifetime(issued) <= at_most + dt.timedelta(seconds=1)
    # classic keeps the first name as CN, the others leave the subject empty (as at Let's Encrypt)
    subject = x509.load_pem_x509_certificate(issued.certificate_pem.encode()).subject
    assert [a.value for a in subject] == (list(issued.names[:1]) if profile == "classic" else [])


def test_no_profile_means_classic_never_pebbles_random_choice(client, acme_lab):
    for _ in range(3):
        issued = issue_certificate([f"www.{_domain()}"], client=client, dns=ChallTestSrvProvider.for_lab(acme_lab))
        assert issued.profile == "classic"
        assert _lifetime(issued) > dt.timedelta(days=89)


def test_unknown_profile_refused_before_sending_and_typed_from_the_ca(client):
    before = client.request_count
    with pytest.raises(UnknownProfile, match="offers classic, shortlived, tlsserver"):
        client.new_order([f"www.{_domain()}"], profile="fortnight")
    assert client.request_count == before
    # what the CA itself answers to an unknown profile: invalidProfile
    order = client.directory.newOrder
    with pytest.raises(InvalidProfile):
        client._post(order, {"identifiers": [{"type": "dns", "value": f"www.{_domain()}"}], "profile": "fortnight"})


def test_renewal_info_window_matches_pebble_and_replaces(client, acme_lab):
    dns = ChallTestSrvProvider.for_lab(acme_lab)
    names = [f"www.{_domain()}"]
    issued = issue_certificate(names, client=client, dns=dns, profile="shortlived")
    leaf = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    info = client.renewal_info(leaf)
    assert info.cert_id == cert_id(leaf)
    # Pebble: a window of two days around 2/3 of the lifetime, clamped to the validity
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    ideal = leaf.not_valid_after_utc - (lifetime + dt.timedelta(seconds=1)) / 3
    assert abs(info.start - max(leaf.not_valid_before_utc, ideal - dt.timedelta(days=1))) < dt.timedelta(seconds=2)
    assert abs(info.end - min(leaf.not_valid_after_utc, ideal + dt.timedelta(days=1))) < dt.timedelta(seconds=2)
    assert info.retry_after == 6 * 3600  # Pebble's Retry-After on renewalInfo
    # the same answer by hand: GET <renewalInfo>/<certID>, no JWS
    raw = requests.get(f"{client.directory.renewalInfo}/{cert_id(leaf)}", verify=str(acme_lab.ca_bundle),
                       headers={"User-Agent": "acmelab-tests"}, timeout=10)
    assert raw.status_code == 200 and raw.headers["Retry-After"] == "21600"
    assert "suggestedWindow" in raw.json()

    # renew with replaces; replacing the same certificate twice is alreadyReplaced
    renewed = issue_certificate(names, client=client, dns=dns, profile="shortlived", replaces=info.cert_id)
    order = client.fetch_order(renewed.order_url)
    assert order.replaces == info.cert_id
    with pytest.raises(AlreadyReplaced):
        client.new_order(names, replaces=info.cert_id)
    # issue_certificate drops a replaces the CA calls alreadyReplaced (a lost answer's replacement)
    again = issue_certificate(names, client=client, dns=dns, replaces=info.cert_id)
    assert client.fetch_order(again.order_url).replaces is None


def test_a_replaces_the_ca_cannot_handle_is_dropped_with_a_warning(client, acme_lab, caplog):
    """Pebble answers serverInternal to a replaces it finds no order for (and,
    by a Pebble bug, for a serial whose top bit is set): issue_certificate
    orders again without it, with a warning."""
    dns = ChallTestSrvProvider.for_lab(acme_lab)
    names = [f"www.{_domain()}"]
    issued = issue_certificate(names, client=client, dns=dns)
    key_id = cert_id(x509.load_pem_x509_certificate(issued.certificate_pem.encode())).split(".")[0]
    unknown = f"{key_id}.AQIDBAUGBwg"   # a serial Pebble never issued
    with caplog.at_level("WARNING"):
        renewed = issue_certificate(names, client=client, dns=dns, replaces=unknown)
    assert f"the CA refused replaces={unknown} (serverInternal" in caplog.text
    assert client.fetch_order(renewed.order_url).replaces is None


def test_management_api_moves_the_window_and_malformed_answers_are_protocol_errors(client, acme_lab):
    issued = issue_certificate([f"www.{_domain()}"], client=client, dns=ChallTestSrvProvider.for_lab(acme_lab))
    past = {"suggestedWindow": {"start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"}}
    acme_lab.set_renewal_info(issued.certificate_pem, json.dumps(past))
    info = client.renewal_info(issued.certificate_pem)
    assert info.end == dt.datetime(2020, 1, 2, tzinfo=dt.timezone.utc)
    acme_lab.set_renewal_info(issued.certificate_pem, "{not json")
    with pytest.raises(ProtocolError):
        client.renewal_info(issued.certificate_pem)
    acme_lab.set_renewal_info(issued.certificate_pem, json.dumps({"suggestedWindow": {"start": "tomorrow"}}))
    with pytest.raises(ProtocolError):
        client.renewal_info(issued.certificate_pem)


def test_dns_account_01_record_name_from_the_account_url(client, acme_lab):
    dns = RecordingProvider(acme_lab.challtestsrv_url, acme_lab.dns_server)
    domain = _domain()
    issued = issue_certificate([domain, f"*.{domain}"], client=client, dns=dns, challenge="dns-account-01")
    label = account_label(client.account_url)
    assert {name for name, _ in dns.presented} == {f"_{label}._acme-challenge.{domain}"}
    assert len(dns.presented) == 2 and dns.published == {}  # both removed afterwards
    assert issued.standing_records == ()


def test_dns_persist_01_second_issuance_writes_no_record(client, acme_lab):
    dns = RecordingProvider(acme_lab.challtestsrv_url, acme_lab.dns_server)
    domain = _domain()
    first = issue_certificate([f"www.{domain}"], client=client, dns=dns, challenge="dns-persist-01")
    assert dns.presented == [(f"_validation-persist.www.{domain}",
                              f"pebble.letsencrypt.org; accounturi={client.account_url}")]
    assert [r.name for r in first.standing_records] == [f"_validation-persist.www.{domain}"]
    assert dns.published == {f"_validation-persist.www.{domain}": [dns.presented[0][1]]}  # left in place
    # a fresh authorization, validated by the standing record (Pebble reuses a valid one about
    # 1 time in 100 even at AUTHZREUSE=0, and then nothing would be validated at all)
    assert len(client.deactivate_valid_authorizations([f"www.{domain}"])) == 1
    second = issue_certificate([f"www.{domain}"], client=client, dns=dns, challenge="dns-persist-01")
    assert len(dns.presented) == 1  # nothing written the second time
    assert set(client.fetch_order(second.order_url).authorizations).isdisjoint(
        client.fetch_order(first.order_url).authorizations)
    assert second.serial_hex != first.serial_hex
    # a wildcard needs policy=wildcard
    wild = issue_certificate([f"*.{domain}"], client=client, dns=dns, challenge="dns-persist-01")
    assert wild.standing_records[0].value.endswith("; policy=wildcard")
    dns.cleanup(*dns.presented[0])


def test_retry_after_on_authorization_and_order_polls(lab_factory):
    info = lab_factory(aliyun=False, retry_after={"authz": 1, "order": 1},
                       pebble_env={"PEBBLE_AUTHZREUSE": "0", "PEBBLE_VA_NOSLEEP": "0", "PEBBLE_VA_SLEEPTIME": "2"})
    client = AcmeClient(info.directory_url, keys.generate_key("ec256"), verify=info.ca_bundle)
    client.new_account()
    seen: list[tuple[str, str]] = []
    post = client.transport.post

    def recording(url, *args, **kwargs):
        response = post(url, *args, **kwargs)
        if response.headers.get("Retry-After"):
            seen.append((url, response.headers["Retry-After"]))
        return response

    client.transport.post = recording
    for _ in range(3):
        issue_certificate([f"www.{_domain()}"], client=client, dns=ChallTestSrvProvider.for_lab(info))
    # the finalize answer always carries one (the order is processing); Pebble
    # writes it as seconds or as an HTTP-date
    finalize = [value for url, value in seen if "/finalize-order/" in url]
    assert len(finalize) == 3
    assert all(value == "1" or value.endswith(" GMT") for value in finalize)
