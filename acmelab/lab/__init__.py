"""The lab: Pebble (ACME test server), pebble-challtestsrv (mock DNS) and a
local Alibaba Cloud API endpoint on loopback -- offline, up with one call.

Public API::

    from acmelab.lab import Lab, LabPorts, LabInfo

    with Lab(run_dir, ports=LabPorts.free()) as info:   # stops what it started
        requests.get(info.directory_url, verify=info.ca_bundle)

    info = ensure_running()   # detached lab (``acmelab lab up``), Pebble run
                              # with COURSE_PEBBLE_ENV unless told otherwise
    status()                  # LabInfo or None (``acmelab lab status``)
    stop()                    # ``acmelab lab down``

See :mod:`acmelab.lab.core` for how it works, :mod:`acmelab.lab.pebble` for
Pebble's knobs and :mod:`acmelab.lab.challtestsrv` for the mock DNS.
"""

from acmelab.lab.core import (
    Lab,
    LabInfo,
    LabPorts,
    default_run_dir,
    ensure_running,
    run_dir_lock,
    status,
    stop,
)
from acmelab.lab.pebble import COURSE_PEBBLE_ENV

__all__ = ["COURSE_PEBBLE_ENV", "Lab", "LabInfo", "LabPorts", "default_run_dir", "ensure_running",
           "run_dir_lock", "status", "stop"]
