"""Benchmark: one certificate for 1, 10, 50 and 100 names, acmelab vs lego,
with a 2 s DNS propagation delay.

Starts one lab (free ports, temporary run dir) with
``dns_propagation_delay=2`` -- a record written through the lab's Alibaba
Cloud DNS endpoint is seen by the lab DNS, which Pebble validates against,
2 s later -- and Pebble with PEBBLE_VA_NOSLEEP=1, NONCEREJECT=0,
AUTHZREUSE=0 (no run profits from another's authorizations).  In that same
lab, for each size, it times one certificate with

* acmelab: :func:`acmelab.issue.issue_certificate` with
  :class:`acmelab.dns.alidns.AlidnsProvider` on the lab endpoint;
* lego (Debian's ``lego`` package, ``apt-get install -y lego``): ``lego run``
  with its ``exec`` DNS provider running ``bench/lego_exec.py``, which
  publishes through the same endpoint; lego trusts the lab's CA through
  ``LEGO_CA_CERTIFICATES``.  Each lego run has a time cap (``--lego-cap``);
  a capped run is stopped, reported as ``">=<cap>"`` with ``capped: true``,
  and the records it left are removed.

Each tool has an account made by an untimed 1-name warm-up.  ``requests`` is
what reached the CA (Pebble's log, one line per request), the same count for
both.  Prints a table, then one JSON line::

    {"propagation_delay": 2, "acmelab": {"1": {"seconds": s, "requests": n}, ...},
     "lego": {...}, "ratio_100_to_1": t100/t1 (acmelab), "lego_over_acmelab_100": ...}

Targets (#12): ``ratio_100_to_1 <= 1.5``, ``lego_over_acmelab_100 >= 1``.

Run: ``make bench`` or ``.venv/bin/python bench/scale.py [--sizes 1,10] [--lego-cap 300]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from acmelab import keys  # noqa: E402
from acmelab.client import AcmeClient  # noqa: E402
from acmelab.dns.alidns import AlidnsProvider  # noqa: E402
from acmelab.issue import issue_certificate  # noqa: E402
from acmelab.lab import Lab, LabPorts  # noqa: E402

PEBBLE_ENV = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
PROPAGATION_DELAY = 2.0
#: the lab's seeded Alibaba DNS zone the names go under
ZONE = "example.com"


def _names(count: int) -> list[str]:
    run = uuid.uuid4().hex[:8]
    return [f"n{number:03d}.s{count}-{run}.{ZONE}" for number in range(count)]


def _ca_requests(info) -> int:
    """Requests Pebble has handled so far: its log has one line per request."""
    log = Path(info.run_dir) / "logs" / "pebble.log"
    with log.open(errors="replace") as file:
        return sum(1 for line in file if line.rstrip().endswith("-> calling handler()"))


class Acmelab:
    def __init__(self, info) -> None:
        self.info = info
        self.client = AcmeClient(info.directory_url, keys.generate_key("ec256"), verify=info.ca_bundle)
        self.client.new_account()
        self.dns = AlidnsProvider.for_lab(info)

    def run(self, names: list[str]) -> dict:
        before = _ca_requests(self.info)
        started = time.perf_counter()
        issued = issue_certificate(names, client=self.client, dns=self.dns)
        seconds = time.perf_counter() - started
        assert sorted(issued.names) == sorted(names) and not issued.cleanup_failures
        return {"seconds": round(seconds, 2), "requests": _ca_requests(self.info) - before}


class Lego:
    def __init__(self, info, work: Path, cap: float) -> None:
        self.info, self.work, self.cap = info, work, cap
        self.binary = shutil.which("lego")
        self.ledger = work / "lego-ledger.txt"
        hook = work / "lego-exec.sh"
        hook.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "bench" / "lego_exec.py"}" "$@"\n')
        hook.chmod(0o755)
        self.env = {**os.environ, "LEGO_CA_CERTIFICATES": str(info.ca_bundle), "EXEC_PATH": str(hook),
                    "EXEC_SEQUENCE_INTERVAL": "0", "EXEC_PROPAGATION_TIMEOUT": "120",
                    "ACMELAB_LAB_DIR": str(info.run_dir), "BENCH_LEGO_LEDGER": str(self.ledger),
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}

    def run(self, names: list[str]) -> dict:
        argv = [self.binary, "--server", self.info.directory_url, "--accept-tos", "--email", "bench@example.com",
                "--path", str(self.work / "lego"), "--key-type", "ec256", "--dns", "exec", "--dns.disable-cp",
                "--dns.resolvers", f"{self.info.dns_server[0]}:{self.info.dns_server[1]}",
                "--cert.timeout", "600"]
        for name in names:
            argv += ["--domains", name]
        argv.append("run")
        before = _ca_requests(self.info)
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   start_new_session=True)
        try:
            _, stderr = process.communicate(timeout=self.cap)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            process.communicate()
            self._remove_leftovers()
            return {"seconds": f">={self.cap:g}", "requests": _ca_requests(self.info) - before, "capped": True}
        seconds = time.perf_counter() - started
        if process.returncode != 0:
            raise SystemExit(f"lego failed for {len(names)} names:\n{stderr.decode(errors='replace')[-2000:]}")
        return {"seconds": round(seconds, 2), "requests": _ca_requests(self.info) - before}

    def _remove_leftovers(self) -> None:
        """Delete the records a stopped lego run published and did not clean up."""
        left: set[tuple[str, str]] = set()
        for line in self.ledger.read_text().splitlines() if self.ledger.exists() else []:
            command, name, value = line.split(" ", 2)
            (left.add if command == "present" else left.discard)((name, value))
        provider = AlidnsProvider.for_lab(self.info)
        for name, value in left:
            provider.cleanup(name, value)
        self.ledger.write_text("")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,50,100", help="names per certificate (default 1,10,50,100)")
    parser.add_argument("--lego-cap", type=float, default=300.0, help="seconds per lego run (default 300)")
    parser.add_argument("--no-lego", action="store_true", help="acmelab only")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    if not args.no_lego and shutil.which("lego") is None:
        raise SystemExit("lego is not installed: apt-get install -y lego (or --no-lego)")

    results: dict[str, dict[str, dict]] = {"acmelab": {}, "lego": {}}
    with tempfile.TemporaryDirectory(prefix="acmelab-bench-") as temp:
        work = Path(temp)
        with Lab(work / "lab", ports=LabPorts.free(), pebble_env=PEBBLE_ENV,
                 dns_propagation_delay=PROPAGATION_DELAY) as info:
            print(f"lab up: {info.directory_url}, DNS propagation delay {PROPAGATION_DELAY:g} s", flush=True)
            tools = {"acmelab": Acmelab(info)}
            if not args.no_lego:
                tools["lego"] = Lego(info, work, args.lego_cap)
            for tool in tools.values():
                tool.run(_names(1))  # warm-up: the account, the first connections
            for size in sizes:
                for name, tool in tools.items():
                    results[name][str(size)] = result = tool.run(_names(size))
                    print(f"{name:8} {size:4} names: {result['seconds']} s, {result['requests']} requests"
                          f"{' (capped)' if result.get('capped') else ''}", flush=True)

    print()
    print(f"{'names':>6} | {'acmelab s':>10} {'requests':>9} | {'lego s':>10} {'requests':>9}")
    for size in sizes:
        ours, theirs = results["acmelab"][str(size)], results["lego"].get(str(size), {})
        print(f"{size:>6} | {ours['seconds']:>10} {ours['requests']:>9} | "
              f"{theirs.get('seconds', '-'):>10} {theirs.get('requests', '-'):>9}")
    summary: dict = {"propagation_delay": PROPAGATION_DELAY, **results}
    ours = results["acmelab"]
    if "1" in ours and "100" in ours:
        summary["ratio_100_to_1"] = round(ours["100"]["seconds"] / ours["1"]["seconds"], 2)
    lego_100 = results["lego"].get("100")
    if lego_100 and "100" in ours:
        if lego_100.get("capped"):
            summary["lego_over_acmelab_100"] = f">={args.lego_cap / ours['100']['seconds']:.1f}"
            summary["lego_over_acmelab_100_capped"] = True
        else:
            summary["lego_over_acmelab_100"] = round(lego_100["seconds"] / ours["100"]["seconds"], 2)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
