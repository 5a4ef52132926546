"""Issue #11: a CA that answers 429 ``rateLimited`` with a long ``Retry-After``
(RFC 8555 §6.6) schedules that service for later instead of failing the run.

The fault proxy stands in front of the lab's real Pebble and refuses the
next newOrder with 429 + Retry-After (seconds, or an HTTP-date); its log is
what reached the CA.  The engine records "not before" in the state
directory, reports when to try again, goes on with the other services, and
skips the service until that time -- after it, it orders again.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from acmelab import cli
from acmelab.config import parse_services
from acmelab.engine import apply_services
from acmelab.lab.faultproxy import http_date

pytestmark = pytest.mark.lab

RUN = uuid.uuid4().hex[:6]


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_rate_limited_service_is_scheduled_and_the_run_goes_on(lab, proxied, tmp_path, capsys, form):
    env, proxy, state = proxied
    names = {"limited": f"limited-{form}-{RUN}.example.com", "fine": f"fine-{form}-{RUN}.example.com"}
    services = parse_services({"defaults": {"dns": "challtestsrv"},
                               "service": [{"name": n, "domains": [d]} for n, d in names.items()]})

    proxy.refuse("POST", "/order-plz", status=429, retry_after="3600" if form == "seconds" else http_date(3600))
    started = dt.datetime.now(dt.timezone.utc)
    limited, fine = apply_services(services, env, state, concurrency=1)
    assert fine.status == "issued" and fine.ok
    assert limited.status == "scheduled" and not limited.ok and limited.error is None
    assert limited.reason.startswith("rate limited by the CA (") and "try again after " in limited.reason
    record = state.not_before("limited")
    until = dt.datetime.fromisoformat(record["not_before"])
    assert started + dt.timedelta(seconds=3590) <= until <= started + dt.timedelta(seconds=3700)
    assert until.strftime("%Y-%m-%dT%H:%M:%SZ") in limited.reason
    assert state.certificate("limited") is None

    # before that time: skipped without a request to the CA
    before = proxied.orders()
    limited, fine = apply_services(services, env, state, concurrency=1)
    assert limited.status == "scheduled" and f"not before {until:%Y-%m-%dT%H:%M:%SZ}" in limited.reason
    assert fine.status == "unchanged" and proxied.orders() == before

    # the command reports it, and a scheduled service does not fail the run (exit 0)
    path = tmp_path / "services.toml"
    path.write_text("".join(f'[[service]]\nname = "{n}"\ndomains = ["{d}"]\ndns = "challtestsrv"\n'
                            for n, d in names.items()))
    code = cli.main(["apply", str(path), "--lab-dir", str(lab.run_dir), "--state-dir", str(state.root), "--json"])
    out = json.loads(capsys.readouterr().out)
    statuses = {s["name"]: s for s in out["services"]}
    assert code == cli.EXIT_OK and statuses["limited"]["status"] == "scheduled"
    assert out["counts"]["scheduled"] == 1

    # after it: ordered again, issued, the record gone
    later = until + dt.timedelta(minutes=1)
    [limited] = apply_services(services[:1], env, state, concurrency=1, now=later)
    assert limited.status == "issued" and proxied.orders() == before + 1
    assert state.not_before("limited") is None and state.certificate("limited") is not None


def test_rate_limit_without_retry_after_fails_the_service(lab, proxied):
    env, proxy, state = proxied
    [service] = parse_services({"service": [{"name": "x", "domains": [f"noretry-{RUN}.example.com"],
                                             "dns": "challtestsrv"}]})
    proxy.refuse("POST", "/order-plz", status=429)
    [result] = apply_services([service], env, state, concurrency=1)
    assert result.status == "failed" and "429" in result.error
    assert state.not_before("x") is None
