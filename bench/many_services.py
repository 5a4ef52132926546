"""Benchmark: ``acmelab apply`` on many services, one at a time vs concurrently.

Starts its own lab (Pebble with PEBBLE_VA_NOSLEEP=1, NONCEREJECT=0,
AUTHZREUSE=0 so no run profits from the other's authorizations; free
ports, temporary run dir), adds ``--services`` CDN accelerated domains per
run through the lab's Alibaba Cloud API (AddCdnDomain), writes a services
file (names under the lab's seeded zones ``shopNN.example``, dns-01 through
Alibaba Cloud DNS, install on CDN), and times the whole command

    acmelab apply services.toml --concurrency N --json

once with ``--concurrency 1`` and once with the default
(:data:`acmelab.services.DEFAULT_CONCURRENCY`), each with a fresh state
directory and fresh names.  Each timing covers the account lookup, every
order, the DNS records (added and removed), the installs and the TLS
handshake check of every service.  The last line is one JSON object:
``{"services", "concurrency", "seconds_sequential", "seconds_concurrent", "speedup"}``,
with a ``"latency"`` object holding the same for the latency run:

**The latency run** (#12) does the same in a second lab whose DNS takes
``--propagation-delay`` seconds (default 2) to show a record written through
the Alibaba endpoint, and whose Alibaba API answers ``--api-latency``
seconds (default 0.2) late -- what a real account feels -- with
``--latency-services`` services (default 100; 0 skips the run).  There the
work is waiting, not computing, and the speed-up is what concurrency buys
(target: at least 5x).

Run: ``make bench`` or ``.venv/bin/python bench/many_services.py [--services N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

from acmelab import cli
from acmelab.deploy import lab_client
from acmelab.deploy.cdn import add_cdn_domain
from acmelab.lab import Lab, LabPorts
from acmelab.engine import DEFAULT_CONCURRENCY

PEBBLE_ENV = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
ZONES = [f"shop{n:02d}.example" for n in range(1, 20)]


def services_file(path: Path, info, count: int, label: str) -> Path:
    """Write a services file of ``count`` fresh CDN services and create their domains."""
    client = lab_client(info)
    run = uuid.uuid4().hex[:6]
    lines = ['[defaults]', 'dns = "alidns"', '']
    for number in range(count):
        domain = f"{label}{number:03d}-{run}.{ZONES[number % len(ZONES)]}"
        add_cdn_domain(client, domain)
        lines += ['[[service]]', f'domains = ["{domain}"]', f'cdn = "{domain}"', '']
    path.write_text("\n".join(lines))
    return path


def timed_apply(info, work: Path, count: int, concurrency: int, label: str) -> float:
    """Seconds for one ``acmelab apply`` of ``count`` new services."""
    path = services_file(work / f"{label}.toml", info, count, label)
    argv = ["apply", str(path), "--lab-dir", str(info.run_dir), "--state-dir", str(work / f"state-{label}"),
            "--concurrency", str(concurrency), "--json"]
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = cli.main(argv)
    seconds = time.perf_counter() - started
    result = json.loads(out.getvalue())
    if code != 0 or result["counts"] != {"issued": count}:
        failed = [s for s in result["services"] if s["status"] != "issued"][:3]
        raise SystemExit(f"{label}: apply failed (exit {code}): {result['counts']} {failed}")
    if not all(s["verified"] for s in result["services"]):
        raise SystemExit(f"{label}: not every install was verified by a handshake")
    return seconds


def compare(info, work: Path, services: int, concurrency: int, label: str) -> dict:
    """One run at concurrency 1 and one at ``concurrency``, in the lab ``info``
    (``label``: a prefix of the domain names, "" or letters)."""
    # warm-up: the account, the lab's first handshakes, imports
    timed_apply(info, work, 2, 1, f"{label}warm")
    sequential = timed_apply(info, work, services, 1, f"{label}seq")
    print(f"{label or 'plain'}: {services} services, concurrency 1: {sequential:.2f} s "
          f"({sequential / services * 1000:.0f} ms per service)", flush=True)
    concurrent = timed_apply(info, work, services, concurrency, f"{label}con")
    print(f"{label or 'plain'}: {services} services, concurrency {concurrency}: {concurrent:.2f} s "
          f"({concurrent / services * 1000:.0f} ms per service)", flush=True)
    speedup = sequential / concurrent
    print(f"{label or 'plain'}: speed-up {speedup:.2f}x on {os.cpu_count()} CPUs", flush=True)
    return {"services": services, "concurrency": concurrency, "seconds_sequential": round(sequential, 3),
            "seconds_concurrent": round(concurrent, 3), "speedup": round(speedup, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=100, help="services per run (default 100)")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                        help=f"the concurrent run's --concurrency (default {DEFAULT_CONCURRENCY})")
    parser.add_argument("--latency-services", type=int, default=100,
                        help="services of the latency run (default 100; 0: no latency run)")
    parser.add_argument("--propagation-delay", type=float, default=2.0, help="latency run: DNS seconds (2)")
    parser.add_argument("--api-latency", type=float, default=0.2, help="latency run: Alibaba API seconds (0.2)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="acmelab-bench-") as temp:
        work = Path(temp)
        result = {}
        if args.services:
            with Lab(work / "lab", ports=LabPorts.free(), pebble_env=PEBBLE_ENV) as info:
                result = compare(info, work, args.services, args.concurrency, "")
        if args.latency_services:
            with Lab(work / "lab-latency", ports=LabPorts.free(), pebble_env=PEBBLE_ENV,
                     dns_propagation_delay=args.propagation_delay, aliyun_latency=args.api_latency) as info:
                latency = compare(info, work, args.latency_services, args.concurrency, "latency")
            result["latency"] = {"propagation_delay": args.propagation_delay, "api_latency": args.api_latency,
                                 **latency}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
