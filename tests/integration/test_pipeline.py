"""The shape of the issuance pipeline (#12), against the real Pebble.

Not timed: each test records what happened, in what order, and asserts the
order -- every TXT record published before the first look and the first
challenge answer, one propagation wait whose looks cover every record
from its first round, no nonce signed twice while requests are in flight
together, and every record gone after a failure halfway through.  The DNS
is the lab's pebble-challtestsrv behind a provider that makes each record
visible only ``delay`` seconds after it was published (like a real DNS
provider's propagation); the CA is Pebble, seen through
:class:`acmelab.lab.faultproxy.FaultProxy` where the test needs its log.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from acmelab import jws, keys
from acmelab.client import AcmeClient
from acmelab.dns.challtestsrv import ChallTestSrvProvider
from acmelab.errors import DnsError, ServiceUnavailable
from acmelab.issue import issue_certificate

pytestmark = pytest.mark.lab

PLAIN = dict(aliyun=False, pebble_env={"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"})


class LateDns(ChallTestSrvProvider):
    """The challtestsrv provider whose records become visible ``delay``
    seconds after ``present`` and not before their ``unseen_looks``-th look
    is over (``wait_until_visible`` says "not yet" before then), noting every
    call as ``(kind, name, value, time)`` in ``events``."""

    def __init__(self, info, delay: float = 0.0, fail_on: str | None = None, unseen_looks: int = 0) -> None:
        super().__init__(info.challtestsrv_url, tuple(info.dns_server))
        self.delay = delay
        self.fail_on = fail_on
        self.unseen_looks = unseen_looks
        self._looks: dict[tuple[str, str], int] = {}
        self.events: list[tuple[str, str, str, float]] = []
        self._visible_at: dict[tuple[str, str], float] = {}
        self._events_lock = threading.Lock()

    def _note(self, kind: str, name: str, value: str) -> None:
        with self._events_lock:
            self.events.append((kind, name, value, time.monotonic()))

    def present(self, name, value):
        self._note("present", name, value)
        if self.fail_on is not None and self.fail_on in name:
            raise DnsError(f"test: the provider refuses {name}")
        super().present(name, value)
        self._visible_at[(name, value)] = time.monotonic() + self.delay

    def cleanup(self, name, value):
        self._note("cleanup", name, value)
        super().cleanup(name, value)

    def wait_until_visible(self, name, value, timeout=10.0):
        with self._events_lock:
            looks = self._looks[(name, value)] = self._looks.get((name, value), 0) + 1
        visible = (time.monotonic() >= self._visible_at.get((name, value), float("inf"))
                   and looks > self.unseen_looks)
        self._note("seen" if visible else "unseen", name, value)
        if not visible:
            raise DnsError(f"TXT {value!r} at {name} is not visible yet")
        super().wait_until_visible(name, value, timeout)

    def kinds(self, *kinds: str) -> list[tuple[str, str, str, float]]:
        return [event for event in self.events if event[0] in kinds]


@pytest.fixture(scope="module")
def info(lab_factory):
    return lab_factory(**PLAIN)


def _client(url: str, bundle, **kwargs) -> AcmeClient:
    client = AcmeClient(url, keys.generate_key("ec256"), verify=bundle, **kwargs)
    client.new_account()
    return client


def _names(count: int) -> list[str]:
    domain = f"{uuid.uuid4().hex[:10]}.example.com"
    return [f"n{number}.{domain}" for number in range(count)]


def _answers(client: AcmeClient) -> list[float]:
    """Wrap the client's answer_challenge, noting when each answer is sent."""
    sent: list[float] = []
    answer = client.answer_challenge

    def noting(challenge, **options):
        sent.append(time.monotonic())
        return answer(challenge, **options)

    client.answer_challenge = noting
    return sent


def test_every_record_is_published_before_the_wait_and_before_the_first_answer(info):
    names = _names(12) + ["*.wild-" + _names(1)[0]]
    names.append(names[-1][2:])  # a wildcard and its base name: two values on one record name
    dns = LateDns(info, delay=0.3)
    client = _client(info.directory_url, info.ca_bundle)
    answered = _answers(client)
    issued = issue_certificate(names, client=client, dns=dns)

    presents, looks = dns.kinds("present"), dns.kinds("seen", "unseen")
    assert len(presents) == len(names) == len({(e[1], e[2]) for e in presents})
    assert len(answered) == len(names)
    last_present = max(e[3] for e in presents)
    assert last_present < min(e[3] for e in looks)           # published, then the wait
    assert max(e[3] for e in looks) < min(answered)          # the wait, then the answers
    # the CA issued for every name, and every record is gone
    assert sorted(issued.names) == sorted(names)
    assert {(e[1], e[2]) for e in dns.kinds("cleanup")} == {(e[1], e[2]) for e in presents}
    assert dns.published == {}
    client.close()


def test_one_propagation_wait_for_all_records(info):
    """The records are checked together in rounds: every record is looked
    at (and found missing) before the first one turns visible, and no
    record is looked at again once it was seen -- unlike a wait per record,
    where the second record's first look comes after the first is visible."""
    names = _names(10)
    dns = LateDns(info, unseen_looks=2)      # not a race with the clock: every record is missing twice
    client = _client(info.directory_url, info.ca_bundle)
    answered = _answers(client)
    issue_certificate(names, client=client, dns=dns)

    records = {(e[1], e[2]) for e in dns.kinds("present")}
    seen = dns.kinds("seen")
    unseen = dns.kinds("unseen")
    first_seen = min(e[3] for e in seen)
    assert {(e[1], e[2]) for e in unseen if e[3] < first_seen} == records
    assert sorted((e[1], e[2]) for e in seen) == sorted(records)   # each seen exactly once
    # rounds: every record was looked at the same number of times (give or take the round it turned visible)
    looks = [sum(1 for e in dns.kinds("seen", "unseen") if (e[1], e[2]) == record) for record in records]
    assert max(looks) - min(looks) <= 1 and min(looks) >= 2
    assert max(e[3] for e in seen) < min(answered)
    client.close()


def test_concurrent_requests_never_share_a_nonce(info, fault_proxy, monkeypatch):
    """20 names with concurrency 10: the signed requests overlap in time at
    the CA, yet every JWS carries a nonce of its own, and Pebble (which
    rejects a reused nonce) answered no badNonce."""
    proxy = fault_proxy(info)
    signed: list[str] = []
    sign = jws.sign

    def noting(payload, key, *, url, nonce, kid=None):
        signed.append(nonce)
        return sign(payload, key, url=url, nonce=nonce, kid=kid)

    monkeypatch.setattr(jws, "sign", noting)
    client = _client(proxy.directory_url, proxy.ca_bundle, concurrency=10)
    before = len(proxy.log)
    issued = issue_certificate(_names(20), client=client, dns=LateDns(info))
    exchanges = proxy.log[before:]

    assert len(issued.names) == 20
    assert len(signed) == len(set(signed)) > 42           # newOrder, 20 authorizations, 20 answers, finalize, ...
    assert not [e for e in exchanges if e.status == 400]   # no badNonce (nor any other refusal)
    posts = [e for e in exchanges if e.method == "POST"]
    overlapping = sum(1 for a, b in zip(posts, posts[1:]) if b.at < a.answered_at)
    assert overlapping >= 5, "the requests did not go out together"
    client.close()


def test_concurrent_requests_in_a_nonce_storm(lab_factory, monkeypatch):
    """PEBBLE_WFE_NONCEREJECT=50 with 10 names at once: every badNonce is
    retried with the nonce its error carried, which no other request takes,
    so no nonce is ever signed twice, and the certificate comes."""
    storm = lab_factory(aliyun=False, pebble_env={"PEBBLE_WFE_NONCEREJECT": "50", "PEBBLE_AUTHZREUSE": "0"})
    signed: list[str] = []
    sign = jws.sign
    lock = threading.Lock()

    def noting(payload, key, *, url, nonce, kid=None):
        with lock:
            signed.append(nonce)
        return sign(payload, key, url=url, nonce=nonce, kid=kid)

    monkeypatch.setattr(jws, "sign", noting)
    client = _client(storm.directory_url, storm.ca_bundle, concurrency=10)
    issued = issue_certificate(_names(10), client=client, dns=LateDns(storm))
    assert len(issued.names) == 10
    assert len(signed) == len(set(signed))
    client.close()


def test_every_record_is_removed_when_publishing_fails_halfway(info):
    names = _names(8)
    dns = LateDns(info, fail_on=names[4])
    client = _client(info.directory_url, info.ca_bundle)
    answered = _answers(client)
    with pytest.raises(DnsError, match="refuses"):
        issue_certificate(names, client=client, dns=dns)
    published = {(e[1], e[2]) for e in dns.kinds("present") if names[4] not in e[1]}
    assert len(published) == 7
    assert published <= {(e[1], e[2]) for e in dns.kinds("cleanup")}
    assert dns.published == {}
    for name, value in published:                        # gone from the DNS the CA asks
        assert value not in dns.txt_values(name)
    assert answered == []                                # no challenge was answered
    client.close()


def test_every_record_is_removed_when_the_ca_fails_halfway(info, fault_proxy):
    """The CA refuses the 4th challenge answer (503, no Retry-After) after
    every record was published: the error goes up, every record goes."""
    proxy = fault_proxy(info)
    client = _client(proxy.directory_url, proxy.ca_bundle, concurrency=1)  # the answers in turn
    refusal = proxy.refuse("POST", "/chalZ/", status=503, times=0)
    names = _names(6)
    dns = LateDns(info)
    answer = client.answer_challenge
    answered = []

    def fourth_refused(challenge, **options):
        answered.append(challenge.url)
        if len(answered) == 4:
            refusal.times = 1   # the CA refuses this one
        return answer(challenge, **options)

    client.answer_challenge = fourth_refused
    with pytest.raises(ServiceUnavailable):
        issue_certificate(names, client=client, dns=dns)
    assert len(answered) == 4
    assert [e.status for e in proxy.requests("POST", "/chalZ/")][:4] == [200, 200, 200, 503]
    published = {(e[1], e[2]) for e in dns.kinds("present")}
    assert len(published) == 6
    assert {(e[1], e[2]) for e in dns.kinds("cleanup")} == published
    assert dns.published == {}
    for name, value in published:
        assert value not in dns.txt_values(name)
    client.close()


def test_one_failed_validation_among_many_names_and_every_record_removed(info):
    """One of 6 records carries a wrong value: Pebble fails that
    authorization, the order turns invalid, ChallengeFailed names that
    name, and every record -- the wrong one too -- is removed."""
    from acmelab.errors import ChallengeFailed

    names = _names(6)

    class OneWrong(LateDns):
        def present(self, name, value):
            super().present(name, "wrong" + value[5:] if names[2] in name else value)

        def cleanup(self, name, value):
            super().cleanup(name, "wrong" + value[5:] if names[2] in name else value)

        def wait_until_visible(self, name, value, timeout=10.0):
            super().wait_until_visible(name, "wrong" + value[5:] if names[2] in name else value, timeout)

    dns = OneWrong(info)
    client = _client(info.directory_url, info.ca_bundle)
    with pytest.raises(ChallengeFailed) as raised:
        issue_certificate(names, client=client, dns=dns)
    assert names[2] in str(raised.value)
    assert dns.published == {}
    for _kind, name, value, _at in dns.kinds("present"):
        assert value not in dns.txt_values(name)
    client.close()
