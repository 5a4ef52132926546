"""Benchmark: single-name certificates, acmelab vs certbot's ``acme`` library.

Starts its own lab (Pebble with PEBBLE_VA_NOSLEEP=1, NONCEREJECT=0,
AUTHZREUSE=0, pebble-challtestsrv; free ports, temporary run dir), then
issues ``--count`` EC P-256 certificates for fresh names by dns-01:

* with :func:`acmelab.issue.issue_certificate` and the challtestsrv provider;
* with ``acme.client.ClientV2`` (new_order, answer_challenge,
  poll_and_finalize -- which sleeps a fixed second per poll), publishing
  the TXT records through the same pebble-challtestsrv management API.

Each timing covers key generation, CSR, the whole ACME exchange and the
DNS records (set and removed).  Prints both medians (ms), the ratio and
acmelab's ACME requests per certificate; the last line is one JSON object:
``{"acmelab_median_ms", "acme_lib_median_ms", "speedup", "requests_per_cert"}``.

Run: ``make bench`` or ``.venv/bin/python bench/issuance.py [--count N]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import josepy
from acme import challenges as acme_challenges
from acme import client as acme_client
from acme import crypto_util as acme_crypto_util
from acme import messages as acme_messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from acmelab import USER_AGENT, keys
from acmelab.client import AcmeClient
from acmelab.dns.challtestsrv import ChallTestSrvProvider
from acmelab.issue import issue_certificate
from acmelab.lab import Lab, LabPorts
from acmelab.lab.challtestsrv import ChallTestSrv

PEBBLE_ENV = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}


def _name() -> str:
    return f"www.{uuid.uuid4().hex[:12]}.example.com"


def bench_acmelab(info, count: int) -> tuple[list[float], list[int]]:
    """Times (ms) and ACME requests of ``count`` issuances with acmelab."""
    client = AcmeClient(info.directory_url, keys.generate_key("ec256"), verify=info.ca_bundle)
    client.new_account()
    dns = ChallTestSrvProvider.for_lab(info)
    times, requests = [], []
    for _ in range(count):
        before = client.request_count
        start = time.perf_counter()
        issued = issue_certificate([_name()], client=client, dns=dns, key_type="ec256")
        times.append((time.perf_counter() - start) * 1000)
        requests.append(client.request_count - before)
        assert "BEGIN CERTIFICATE" in issued.chain_pem
    client.close()
    return times, requests


def bench_acme_lib(info, count: int) -> list[float]:
    """Times (ms) of ``count`` issuances with certbot's acme library."""
    account_key = josepy.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    network = acme_client.ClientNetwork(account_key, alg=josepy.ES256, verify_ssl=str(info.ca_bundle),
                                        user_agent=USER_AGENT + " bench-acme-lib")
    directory = acme_client.ClientV2.get_directory(info.directory_url, network)
    client = acme_client.ClientV2(directory, network)
    network.account = client.new_account(acme_messages.NewRegistration.from_data(terms_of_service_agreed=True))
    challtestsrv = ChallTestSrv(info.challtestsrv_url)
    times = []
    for _ in range(count):
        name = _name()
        start = time.perf_counter()
        key = ec.generate_private_key(ec.SECP256R1())
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        order = client.new_order(acme_crypto_util.make_csr(key_pem, [name]))
        published = []
        try:
            for authorization in order.authorizations:
                challenge = next(c for c in authorization.body.challenges
                                 if isinstance(c.chall, acme_challenges.DNS01))
                response, validation = challenge.response_and_validation(account_key)
                host = challenge.validation_domain_name(authorization.body.identifier.value)
                challtestsrv.set_txt(host, validation)
                published.append(host)
                client.answer_challenge(challenge, response)
            order = client.poll_and_finalize(order)
        finally:
            for host in published:
                challtestsrv.clear_txt(host)
        times.append((time.perf_counter() - start) * 1000)
        assert "BEGIN CERTIFICATE" in order.fullchain_pem
    return times


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50, help="certificates per client (default 50)")
    parser.add_argument("--acme-lib-count", type=int, default=None,
                        help="certificates with the acme library (default: --count)")
    args = parser.parse_args(argv)
    acme_lib_count = args.acme_lib_count or args.count

    with tempfile.TemporaryDirectory(prefix="acmelab-bench-") as run_dir, \
            Lab(Path(run_dir), ports=LabPorts.free(), pebble_env=PEBBLE_ENV, aliyun=False) as info:
        print(f"lab up: {info.directory_url}")
        ours, requests = bench_acmelab(info, args.count)
        print(f"acmelab:  {args.count} certificates, median {statistics.median(ours):.1f} ms "
              f"(min {min(ours):.1f}, max {max(ours):.1f}), "
              f"{statistics.mean(requests):.2f} ACME requests per certificate (max {max(requests)})")
        theirs = bench_acme_lib(info, acme_lib_count)
        print(f"acme lib: {acme_lib_count} certificates, median {statistics.median(theirs):.1f} ms "
              f"(min {min(theirs):.1f}, max {max(theirs):.1f})")

    result = {
        "acmelab_median_ms": round(statistics.median(ours), 1),
        "acme_lib_median_ms": round(statistics.median(theirs), 1),
        "speedup": round(statistics.median(theirs) / statistics.median(ours), 1),
        "requests_per_cert": round(statistics.mean(requests), 2),
    }
    print(f"speedup: {result['speedup']}x (target >= 30), requests per certificate: "
          f"{result['requests_per_cert']} (target <= 7)")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
