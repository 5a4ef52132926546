"""Lost answers, nonce storms, Retry-After and outages, against the real Pebble.

Every fault is made by :class:`acmelab.lab.faultproxy.FaultProxy` between the
client and Pebble (no mock of the ACME server), and every test asserts the
final state *at the CA*: what reached Pebble (the proxy's log, with
Pebble's own status for each request), the account's orders, and Pebble's
management API (``info.cert_status``).
"""

from __future__ import annotations

import time
import uuid
from email.utils import parsedate_to_datetime

import pytest

from acmelab import keys
from acmelab.client import AcmeClient
from acmelab.csr import make_csr
from acmelab.dns.challtestsrv import ChallTestSrvProvider
from acmelab.errors import AccountDoesNotExist, NetworkError, RateLimited, ServiceUnavailable
from acmelab.issue import authorize_order, issue_certificate
from acmelab.lab.faultproxy import http_date

pytestmark = pytest.mark.lab

#: the same lab as tests/integration/test_client.py's plain_lab (shared)
PLAIN = dict(aliyun=False, pebble_env={"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0",
                                       "PEBBLE_WFE_ORDERS_PER_PAGE": "2"})


@pytest.fixture(scope="module")
def info(lab_factory):
    return lab_factory(**PLAIN)


@pytest.fixture
def proxy(info, fault_proxy):
    return fault_proxy(info)


@pytest.fixture
def client(proxy):
    """An AcmeClient with an account, talking to Pebble through the proxy."""
    client = AcmeClient(proxy.directory_url, keys.generate_key("ec256"), verify=proxy.ca_bundle)
    client.new_account()
    yield client
    client.close()


@pytest.fixture
def dns(info):
    return ChallTestSrvProvider.for_lab(info)


def _names() -> list[str]:
    return [f"www.{uuid.uuid4().hex[:12]}.example.com"]


def _reached_pebble(proxy, path: str) -> list:
    """The requests to ``path`` that Pebble received (forwarded ones)."""
    return [e for e in proxy.requests("POST", path) if e.upstream_status is not None]


def _orders_for(client: AcmeClient, names: list[str]) -> list:
    """The account's orders (any status but invalid) for exactly ``names``."""
    orders = [client.fetch_order(url) for url in client.list_orders()]
    return [o for o in orders if sorted(o.names) == sorted(names)]


# -- the proxy itself ---------------------------------------------------------

def test_proxy_rewrites_urls_and_tls_stays_verified(info, proxy):
    """Pebble's URLs come back as the proxy's; a client that does not trust
    the proxy's CA is refused (verification is never off)."""
    client = AcmeClient(proxy.directory_url, keys.generate_key(), verify=proxy.ca_bundle)
    assert client.directory.newOrder.startswith(proxy.origin + "/")
    account = client.new_account()
    assert account.url.startswith(proxy.origin + "/")
    stranger = AcmeClient(proxy.directory_url, keys.generate_key(), verify=info.ca_bundle)
    with pytest.raises(NetworkError, match="TLS certificate does not verify"):
        stranger.directory


def test_slow_answer_past_the_read_timeout_is_asked_again(proxy, dns):
    """An answer slower than the read timeout is a lost answer; a POST-as-GET
    is safe to repeat, so the transport repeats it."""
    client = AcmeClient(proxy.directory_url, keys.generate_key(), verify=proxy.ca_bundle, timeout=(5, 0.5))
    client.new_account()
    order = client.new_order(_names())
    proxy.delay("POST", "/my-order/", 1.0)
    assert client.fetch_order(order.url).status == "pending"
    time.sleep(1.0)  # the slow answer is logged when the proxy gives up waiting
    slow, repeated = sorted(_reached_pebble(proxy, "/my-order/"), key=lambda e: e.at)
    assert slow.at < repeated.at and slow.answered_at > repeated.answered_at


def test_headers_stripped_or_doubled(proxy, client):
    """A success without Replay-Nonce breaks RFC 8555 §6.5: ProtocolError.
    A doubled Replay-Nonce (read as "n, n", not a nonce) is answered
    badNonce, and the retry with the error's nonce goes through."""
    from acmelab.errors import ProtocolError
    order = client.new_order(_names())
    proxy.strip_headers("POST", "/my-order/", "Replay-Nonce")
    with pytest.raises(ProtocolError, match="Replay-Nonce"):
        client.fetch_order(order.url)
    proxy.duplicate_headers("POST", "/my-order/", "Replay-Nonce")
    client.fetch_order(order.url)
    assert client.fetch_order(order.url).status == "pending"
    assert [e.upstream_status for e in proxy.requests("POST", "/my-order/")][-3:] == [200, 400, 200]


# -- lost answers: the CA acted, the client did not hear --------------------

def test_lost_new_account_answer(info, proxy):
    """newAccount is asked again: the same key finds the same account."""
    key = keys.generate_key()
    client = AcmeClient(proxy.directory_url, key, verify=proxy.ca_bundle)
    proxy.lose_answer("POST", "/sign-me-up")
    account = client.new_account(["mailto:ops@example.com"])
    assert account.status == "valid"
    assert [e.upstream_status for e in _reached_pebble(proxy, "/sign-me-up")] == [201, 200]  # one account
    direct = AcmeClient(info.directory_url, key, verify=info.ca_bundle)
    assert direct.find_account().url.rsplit("/", 1)[1] == account.url.rsplit("/", 1)[1]


def test_lost_new_order_answer_finds_the_order_instead_of_making_another(proxy, client, dns, info):
    proxy.lose_answer("POST", "/order-plz")
    names = _names()
    issued = issue_certificate(names, client=client, dns=dns)
    assert len(_reached_pebble(proxy, "/order-plz")) == 1  # never ordered twice
    orders = _orders_for(client, names)
    assert [o.url for o in orders] == [issued.order_url]
    assert orders[0].status == "valid"
    assert info.cert_status(issued.serial_hex)["Status"] == "Valid"


def test_new_order_dropped_before_the_ca_is_sent_again(proxy, client, dns):
    """The request never reached the CA: the lookup finds nothing, so
    newOrder is sent again -- still one order in the end."""
    proxy.drop_request("POST", "/order-plz")
    names = _names()
    issued = issue_certificate(names, client=client, dns=dns)
    assert len(_reached_pebble(proxy, "/order-plz")) == 1
    assert [o.url for o in _orders_for(client, names)] == [issued.order_url]


def test_lost_challenge_answer(proxy, client, dns, info):
    """The repeated answer finds the challenge already processing (Pebble:
    malformed): that is success."""
    proxy.lose_answer("POST", "/chalZ/")
    issued = issue_certificate(_names(), client=client, dns=dns)
    answers = _reached_pebble(proxy, "/chalZ/")
    assert answers[0].status is None and answers[0].upstream_status == 200  # the CA took the answer
    assert answers[1].upstream_status == 400  # "Challenge in processing status cannot be updated"
    assert info.cert_status(issued.serial_hex)["Status"] == "Valid"


@pytest.mark.parametrize("fault", ["lose_answer", "drop_request"])
def test_lost_finalize_continues_with_the_same_order(proxy, client, dns, info, fault):
    """After a lost finalize the same order is fetched (processing or
    valid: polled; still ready: finalized again) -- never a new order."""
    getattr(proxy, fault)("POST", "/finalize-order/")
    names = _names()
    issued = issue_certificate(names, client=client, dns=dns)
    assert len(_reached_pebble(proxy, "/order-plz")) == 1
    assert len(_reached_pebble(proxy, "/finalize-order/")) == 1  # the CSR reached the CA once
    assert [o.url for o in _orders_for(client, names)] == [issued.order_url]
    assert info.cert_status(issued.serial_hex)["Status"] == "Valid"


def test_lost_certificate_download(proxy, client, dns):
    proxy.lose_answer("POST", "/certZ/")
    issued = issue_certificate(_names(), client=client, dns=dns)
    assert len(_reached_pebble(proxy, "/certZ/")) == 2
    assert issued.chain_pem.startswith(issued.certificate_pem)


@pytest.mark.parametrize("signer", ["account", "certificate key"])
def test_lost_revocation_answer(proxy, client, dns, info, signer):
    """The revocation is sent again; alreadyRevoked then means done."""
    issued = issue_certificate(_names(), client=client, dns=dns)
    proxy.lose_answer("POST", "/revoke-cert")
    certificate_key = issued.private_key if signer == "certificate key" else None
    client.revoke_certificate(issued.certificate_pem, certificate_key=certificate_key)
    assert [e.upstream_status for e in _reached_pebble(proxy, "/revoke-cert")] == [200, 400]
    assert info.cert_status(issued.serial_hex)["Status"] == "Revoked"


@pytest.mark.parametrize("fault", ["lose_answer", "drop_request"])
def test_lost_key_change(proxy, client, info, fault):
    """The CA is asked whether the new key has the account before the
    rollover is sent again; either way the account ends on the new key."""
    old_key, new_key = client.account_key, keys.generate_key()
    getattr(proxy, fault)("POST", "/rollover-account-key")
    account = client.change_key(new_key)
    assert account.status == "valid"
    assert client.account_key is new_key
    assert len(_reached_pebble(proxy, "/rollover-account-key")) == 1
    direct_new = AcmeClient(info.directory_url, new_key, verify=info.ca_bundle)
    assert direct_new.find_account().url.rsplit("/", 1)[1] == client.account_url.rsplit("/", 1)[1]
    with pytest.raises(AccountDoesNotExist):
        AcmeClient(info.directory_url, old_key, verify=info.ca_bundle).find_account()


# -- Retry-After ---------------------------------------------------------------

def _when(value: str, answered_at: float) -> float:
    """The time a Retry-After value (seconds or HTTP-date) points to."""
    return answered_at + float(value) if value.isdigit() else parsedate_to_datetime(value).timestamp()


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_first_poll_after_finalize_waits_its_retry_after(proxy, client, dns, form):
    """RFC 8555 §7.4: the order is polled no sooner than the finalize
    answer's Retry-After says."""
    retry_after = "2" if form == "seconds" else http_date(2)
    proxy.set_headers("POST", "/finalize-order/", {"Retry-After": retry_after})
    issue_certificate(_names(), client=client, dns=dns)
    finalize = proxy.requests("POST", "/finalize-order/")[0]
    first_poll = next(e for e in proxy.requests("POST", "/my-order/") if e.at > finalize.at)
    assert first_poll.at >= _when(retry_after, finalize.answered_at)


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_short_retry_after_is_waited_then_the_request_is_sent_again(proxy, client, status, form):
    retry_after = "1" if form == "seconds" else http_date(1)
    proxy.refuse("POST", "/order-plz", status=status, retry_after=retry_after)
    names = _names()
    order = client.new_order(names)
    refused, sent = proxy.requests("POST", "/order-plz")
    assert refused.status == status and refused.upstream_status is None
    assert sent.at >= _when(retry_after, refused.answered_at)
    assert [o.url for o in _orders_for(client, names)] == [order.url]


def test_retry_after_on_a_poll_and_on_the_directory(proxy, client):
    """503 with Retry-After on a POST-as-GET and on the directory GET."""
    order = client.new_order(_names())
    proxy.refuse("POST", "/my-order/", status=503, retry_after="1")
    start = time.monotonic()
    assert client.fetch_order(order.url).status == "pending"
    assert time.monotonic() - start >= 1
    proxy.refuse("GET", "/dir", status=503, retry_after="1")
    fresh = AcmeClient(proxy.directory_url, keys.generate_key(), verify=proxy.ca_bundle)
    assert fresh.directory.newOrder.startswith(proxy.origin)
    assert len(proxy.requests("GET", "/dir")) >= 2


@pytest.mark.parametrize("status, error", [(429, RateLimited), (503, ServiceUnavailable)])
@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_long_retry_after_raises_rate_limited_at_once(proxy, client, status, error, form):
    retry_after = "3600" if form == "seconds" else http_date(3600)
    proxy.refuse("POST", "/order-plz", status=status, retry_after=retry_after)
    start = time.monotonic()
    with pytest.raises(error) as raised:
        client.new_order(_names())
    assert time.monotonic() - start < 1
    assert isinstance(raised.value, RateLimited)
    assert 3590 <= raised.value.retry_after <= 3601
    assert len(proxy.requests("POST", "/order-plz")) == 1


def test_retry_after_beyond_the_callers_deadline_is_not_waited(proxy, client, dns):
    """finalize(timeout=1) with a 503 'Retry-After: 5': RateLimited now."""
    order = authorize_order(client, client.new_order(_names()), dns)
    proxy.refuse("POST", "/finalize-order/", status=503, retry_after="5")
    order, csr = client.fetch_order(order.url), make_csr(keys.generate_key(), order.names)
    start = time.monotonic()                 # only the finalize is timed
    with pytest.raises(ServiceUnavailable) as raised:
        client.finalize(order, csr, timeout=1)
    assert time.monotonic() - start < 1 and raised.value.retry_after == 5


# -- outages -----------------------------------------------------------------

def test_outage_is_one_line_naming_the_step_and_url(proxy, client, dns):
    """The CA disappears before finalize: connection refused, said plainly."""
    names = _names()
    order = authorize_order(client, client.new_order(names), dns)
    proxy.stop()
    with pytest.raises(NetworkError) as raised:
        client.finalize(order, make_csr(keys.generate_key(), names))
    assert str(raised.value) == (f"finalizing the order for {names[0]}: {order.finalize}: "
                                 f"connection refused (after 4 tries)")
    assert raised.value.url == order.finalize


# -- nonce storms ------------------------------------------------------------

#: issuances in a row of the nonce-storm test (the issue's "done when": 100)
STORM_ISSUANCES = 100


def test_nonce_storm_90_percent(lab_factory):
    """PEBBLE_WFE_NONCEREJECT=90: 100 issuances in a row all succeed; each
    badNonce is retried with the nonce the error carried (newNonce only
    once), and the POSTs per signed request stay near 1/(1-0.9) = 10.

    Tolerance: each signed request costs a geometric number of POSTs
    (success chance q = 0.1: mean 1/q = 10, standard deviation
    sqrt(1-q)/q = 9.5).  100 issuances make about 700 signed requests
    (newOrder, authorization, challenge, polls, finalize, order, certificate),
    so their mean has a standard deviation of about 9.5/sqrt(700) = 0.36;
    8.2 .. 11.8 is 5 of those either side -- a client that fetched a fresh
    nonce per retry, or retried without the error's nonce, lands far
    outside (the HEAD count catches the first), and chance almost never."""
    info = lab_factory(aliyun=False, pebble_env={"PEBBLE_WFE_NONCEREJECT": "90", "PEBBLE_AUTHZREUSE": "0"})
    client = AcmeClient(info.directory_url, keys.generate_key("ec256"), verify=info.ca_bundle)
    transport = client.transport
    counts = {"signed": 0, "POST": 0, "HEAD": 0}
    post, send = transport.post, transport._send

    def counting_post(*args, **kwargs):
        counts["signed"] += 1
        return post(*args, **kwargs)

    def counting_send(method, *args, **kwargs):
        counts[method] = counts.get(method, 0) + 1
        return send(method, *args, **kwargs)

    transport.post, transport._send = counting_post, counting_send
    client.new_account()
    dns = ChallTestSrvProvider.for_lab(info)
    started = time.monotonic()
    serials = {issue_certificate(_names(), client=client, dns=dns).serial_hex for _ in range(STORM_ISSUANCES)}
    elapsed = time.monotonic() - started
    assert len(serials) == STORM_ISSUANCES
    assert counts["HEAD"] == 1
    ratio = counts["POST"] / counts["signed"]
    assert counts["signed"] >= 6 * STORM_ISSUANCES, counts
    assert 8.2 <= ratio <= 11.8, counts
    print(f"nonce storm: {STORM_ISSUANCES} issuances in {elapsed:.1f} s, {counts}, "
          f"{ratio:.2f} POSTs per signed request")
