"""lego's ``exec`` DNS provider for bench/scale.py: publishes through the lab's
Alibaba Cloud DNS endpoint, as acmelab does.

lego runs it as ``lego_exec.py present|cleanup <fqdn.> <value>`` (EXEC_PATH).
``present`` adds the TXT record (AddDomainRecord) and returns once the lab
DNS answers it -- lego 4.9.1 checks propagation only on the authoritative
name servers at port 53 (or, with ``--dns.disable-cp``, not at all), which
the lab's DNS on its own port cannot be, so the script waits in its place,
as lego's own check would (lego's exec provider solves one name after the
other: present, wait, validate, clean up).  ``cleanup`` deletes exactly that
record (DescribeSubDomainRecords, DeleteDomainRecord).

Environment: ``ACMELAB_LAB_DIR`` (the lab's run directory) and
``BENCH_LEGO_LEDGER`` (a file the script appends ``present|cleanup name
value`` lines to, so the bench removes what a capped lego run left behind).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from acmelab.dns.alidns import AlidnsProvider
from acmelab.lab import status


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("present", "cleanup"):
        print("usage: lego_exec.py present|cleanup FQDN VALUE", file=sys.stderr)
        return 2
    command, fqdn, value = argv
    name = fqdn.rstrip(".")
    info = status(Path(os.environ["ACMELAB_LAB_DIR"]))
    if info is None:
        print("the lab is not running", file=sys.stderr)
        return 1
    provider = AlidnsProvider.for_lab(info, propagation_interval=0.05)
    ledger = Path(os.environ["BENCH_LEGO_LEDGER"])
    if command == "present":
        with ledger.open("a") as file:
            file.write(f"present {name} {value}\n")
        provider.present(name, value)
        provider.wait_until_visible(name, value, timeout=120)
    else:
        provider.cleanup(name, value)
        with ledger.open("a") as file:
            file.write(f"cleanup {name} {value}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
