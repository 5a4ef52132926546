"""The renewal policy (acmelab.renewal): ARI first, then the lifetime rule, one Decision."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from acmelab.errors import ProtocolError
from acmelab.renewal import AriState, RenewalPolicy, RenewalThreshold, refresh_ari
from acmelab.renewal_info import RenewalInfo
from acmelab.state import ManagedCertificate

UTC = dt.timezone.utc
START = dt.datetime(2030, 1, 1, tzinfo=UTC)


def managed(days: float = 90, **kwargs) -> ManagedCertificate:
    return ManagedCertificate(name="shop", names=("shop.example.com",), serial_hex="01", not_before=START,
                              not_after=START + dt.timedelta(days=days), order_url="", directory_url="https://ca/dir",
                              key_type="ec256", version_dir=Path("/nonexistent"), **kwargs)


def info(start_day: float, end_day: float, *, fetched: dt.datetime = START) -> RenewalInfo:
    return RenewalInfo("aki.serial", START + dt.timedelta(days=start_day), START + dt.timedelta(days=end_day),
                       None, 21600.0, fetched)


def test_every_decision_says_why():
    policy = RenewalPolicy()
    assert policy.decide(None).reason == "no certificate yet"
    certificate = managed()
    assert policy.decide(certificate, START, force=True).reason == "forced"
    assert policy.decide(certificate, START, directory_url="https://other/dir").due
    assert "no longer trusts" in policy.decide(certificate, START, chain_trusted=False).reason
    assert "names changed" in policy.decide(certificate, START, names=("a.example.com",)).reason
    assert "key type changed" in policy.decide(certificate, START, key_type="rsa2048").reason
    assert "revoked" == policy.decide(managed(revoked=True), START).reason
    not_due = policy.decide(certificate, START + dt.timedelta(days=30))
    assert not not_due.due and not_due.reason.startswith("not due: 60.0 days left")
    assert not_due.renew_at == START + dt.timedelta(days=60) and "(no ARI)" in not_due.reason


def test_profile_change_is_due_only_when_both_are_known():
    assert RenewalPolicy().decide(managed(profile="classic"), START, profile="shortlived").reason == \
        "profile changed (classic -> shortlived)"
    assert not RenewalPolicy().decide(managed(profile=None), START, profile="shortlived").due


def test_ari_window_decides_before_the_lifetime_rule():
    window = info(10, 12)
    ari = AriState(window, START + dt.timedelta(days=11), None, START + dt.timedelta(hours=6))
    policy = RenewalPolicy()
    early = policy.decide(managed(), START + dt.timedelta(days=10, hours=23), ari=ari)
    assert not early.due and early.window == (window.start, window.end) and "(ARI)" in early.reason
    assert early.renew_at == START + dt.timedelta(days=11)
    late = policy.decide(managed(), START + dt.timedelta(days=11, seconds=1), ari=ari)
    assert late.due and "inside the CA's renewal window" in late.reason
    past = policy.decide(managed(), START + dt.timedelta(days=12, seconds=1), ari=ari)
    assert past.due and "past the end of the CA's renewal window" in past.reason
    # ARI off: the lifetime rule
    assert not RenewalPolicy(use_ari=False).decide(managed(), START + dt.timedelta(days=11, seconds=1), ari=ari).due


def test_a_window_in_the_past_is_due_now():
    ari = AriState(info(-3, -2), START - dt.timedelta(days=2.5), None, START + dt.timedelta(hours=6))
    assert RenewalPolicy().decide(managed(), START, ari=ari).due


def test_refresh_honours_retry_after_and_keeps_the_random_moment():
    calls = []

    def fetch(pem):
        calls.append(pem)
        return info(50, 52, fetched=now)

    now = START
    first = refresh_ari("PEM", None, fetch, now=now, rng=random.Random(1))
    assert len(calls) == 1 and first.info.start <= first.renew_at < first.info.end
    assert first.next_check == now + dt.timedelta(hours=6)
    assert refresh_ari("PEM", first, fetch, now=now + dt.timedelta(hours=5)) is first  # not asked again
    now = START + dt.timedelta(hours=7)
    second = refresh_ari("PEM", first, fetch, now=now, rng=random.Random(2))
    assert len(calls) == 2 and second.renew_at == first.renew_at  # same window, same moment
    assert AriState.from_dict(second.to_dict()) == second


def test_a_malformed_answer_falls_back_to_the_lifetime_rule(caplog):
    def fetch(pem):
        raise ProtocolError("renewalInfo for x has no suggestedWindow object")

    state = refresh_ari("PEM", None, fetch, now=START)
    assert state.info is None and "suggestedWindow" in state.error
    assert state.next_check == START + dt.timedelta(hours=1)
    assert "deciding by the certificate's lifetime" in caplog.text
    decision = RenewalPolicy().decide(managed(), START + dt.timedelta(days=61), ari=state)
    assert decision.due and "ARI unusable" in decision.reason


@pytest.mark.parametrize("data", [None, {}, {"next_check": "soon"}, {"info": {"x": 1}, "next_check": "2030-01-01T00:00:00Z"}])
def test_unreadable_stored_state_is_asked_anew(data):
    assert AriState.from_dict(data) is None


def test_ari_outranks_the_lifetime_rule_both_ways():
    # day 70 of 90: the lifetime rule says due, the CA's window (days 80-82) says not yet
    later = AriState(info(80, 82), START + dt.timedelta(days=81), None, START + dt.timedelta(days=71))
    decision = RenewalPolicy().decide(managed(), START + dt.timedelta(days=70), ari=later)
    assert not decision.due and decision.renew_at == START + dt.timedelta(days=81)
    # day 20: the lifetime rule says not due, the CA moved the window to now
    earlier = AriState(info(19, 21), START + dt.timedelta(days=19.5), None, START + dt.timedelta(days=21))
    assert RenewalPolicy().decide(managed(), START + dt.timedelta(days=20), ari=earlier).due
    assert RenewalPolicy().changed(managed()) is None


def test_an_explicit_threshold_also_applies_next_to_ari():
    later = AriState(info(80, 82), START + dt.timedelta(days=81), None, START + dt.timedelta(days=71))
    at_day_70 = START + dt.timedelta(days=70)
    assert not RenewalPolicy(RenewalThreshold(None, 30)).decide(managed(), at_day_70, ari=later).due
    explicit = RenewalPolicy(RenewalThreshold(None, 30), threshold_always=True).decide(managed(), at_day_70, ari=later)
    assert explicit.due and "under the threshold 30 days" in explicit.reason
