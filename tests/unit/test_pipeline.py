"""The pipeline's pieces without a CA: the nonce pool, polling many
resources on their own schedules, the bounded concurrency."""

from __future__ import annotations

import threading
import time

import pytest

from acmelab import keys
from acmelab.client import AcmeClient, AcmeResponse, Authorization
from acmelab.errors import InputError, PollTimeout
from acmelab.nonces import NoncePool


def test_nonce_pool_hands_each_nonce_out_once():
    pool = NoncePool(size=3)
    for nonce in ("a", "b", "c", "d"):
        pool.put(nonce)
    pool.put(None)
    assert len(pool) == 3                   # the oldest ("a") went
    assert pool.peek() == "d"
    assert [pool.take(), pool.take(), pool.take(), pool.take()] == ["d", "c", "b", None]


def test_nonce_pool_under_threads_never_hands_a_nonce_twice():
    pool = NoncePool(size=10_000)
    for number in range(5000):
        pool.put(f"n{number}")
    taken: list[str] = []
    lock = threading.Lock()

    def take_all():
        while (nonce := pool.take()) is not None:
            with lock:
                taken.append(nonce)

    threads = [threading.Thread(target=take_all) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == sorted(f"n{number}" for number in range(5000))


@pytest.fixture
def client():
    return AcmeClient("https://localhost:14000/dir", keys.generate_key("ec256"), concurrency=4)


@pytest.mark.parametrize("concurrency", [0, -1, 1.5, True, "4"])
def test_concurrency_must_be_a_whole_number_of_at_least_one(concurrency):
    with pytest.raises(InputError, match="concurrency"):
        AcmeClient("https://localhost:14000/dir", keys.generate_key("ec256"), concurrency=concurrency)


def test_each_runs_at_most_concurrency_at_once_and_keeps_the_order(client):
    running, peak = [0], [0]
    lock = threading.Lock()

    def work(number):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return number * 2

    assert client.each(work, range(12)) == [n * 2 for n in range(12)]
    assert peak[0] == 4


def test_each_finishes_every_call_then_raises_the_first_error(client):
    done = []

    def work(number):
        time.sleep(0.01 * (6 - number))
        done.append(number)
        if number in (2, 4):
            raise ValueError(f"bad {number}")
        return number

    with pytest.raises(ValueError, match="bad 2") as raised:
        client.each(work, range(6))
    assert sorted(done) == list(range(6))
    assert any("bad 4" in note for note in raised.value.__notes__)


def _answer(retry_after: str | None) -> AcmeResponse:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return AcmeResponse("u", 200, headers, b"{}")


def test_poll_each_follows_each_resources_own_retry_after(monkeypatch, client):
    """A asks for 1 s between polls, B sends none: B is polled on the
    back-off, A no sooner than its Retry-After; both under one deadline."""
    import acmelab.acme.base as base
    clock = [0.0]
    monkeypatch.setattr(base.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(base.time, "sleep", lambda seconds: clock.__setitem__(0, clock[0] + seconds))
    fetched: dict[str, list[float]] = {"a": [], "b": []}

    def fetch(url):
        fetched[url].append(clock[0])
        if url == "a":
            status = "valid" if len(fetched["a"]) == 3 else "pending"
            return Authorization(url, status, {}), _answer("1")
        status = "valid" if len(fetched["b"]) == 6 else "pending"
        return Authorization(url, status, {}), _answer(None)

    start = [Authorization("a", "pending", {}), Authorization("b", "pending", {})]
    final = client._poll_each(fetch, start, {"valid", "invalid"}, timeout=60)
    assert [f.status for f in final] == ["valid", "valid"]
    a = fetched["a"]
    assert len(a) == 3 and all(later - earlier >= 0.999 for earlier, later in zip(a, a[1:]))
    b = fetched["b"]
    gaps = [later - earlier for earlier, later in zip(b, b[1:])]
    assert gaps == sorted(gaps) and gaps[0] < 0.02      # the back-off grows from a few ms


def test_poll_each_stops_when_one_fails_and_times_out_at_the_deadline(monkeypatch, client):
    import acmelab.acme.base as base
    clock = [0.0]
    monkeypatch.setattr(base.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(base.time, "sleep", lambda seconds: clock.__setitem__(0, clock[0] + seconds))
    calls = []

    def failing(url):
        calls.append(url)
        return Authorization(url, "invalid" if url == "b" else "pending", {}), _answer(None)

    start = [Authorization(url, "pending", {}) for url in "abc"]
    final = client._poll_each(failing, start, {"valid", "invalid"}, timeout=60, stop={"invalid"})
    assert [f.status for f in final] == ["pending", "invalid", "pending"] and len(calls) == 3

    def pending(url):
        return Authorization(url, "pending", {}), _answer("30")

    with pytest.raises(PollTimeout, match=r"3 of 3 .* still pending after 10\.0 s"):
        client._poll_each(pending, start, {"valid"}, timeout=10)
