"""The pipeline's pieces without a CA: the nonce pool, polling many
resources on their own schedules, the bounded concurrency."""

from __future__ import annotations

import threading
import time

import pytest

from acmelab import keys
from acmelab.client import AcmeClient
from acmelab.errors import InputError
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
    together = threading.Barrier(4)          # each call waits until four run at once

    def work(number):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        together.wait(timeout=10)            # BrokenBarrierError if fewer than four ever run together
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
