"""Real-world latency for the lab's Alibaba endpoint, on demand (issue #12).

Two knobs, both 0 by default so the course stays fast:

* **DNS propagation delay** (``--dns-propagation-delay S``): a record written
  or removed through Alidns (``AddDomainRecord``, ``DeleteDomainRecord``) is
  visible to the Alidns API at once, but reaches the lab's DNS
  (pebble-challtestsrv, where Pebble validates) only ``S`` seconds later --
  as a TXT record written through Alibaba Cloud DNS takes seconds to reach
  the authoritative servers.  :class:`DelayedDns` stands in front of
  :class:`acmelab.lab.challtestsrv.ChallTestSrv`: each call is queued with
  its arguments as they are *now* and made when its time comes, in the
  order the calls were made, so what the lab DNS answers at time ``t`` is
  what the zone held at ``t - S``.
* **API latency** (``--api-latency S``): every answer of the endpoint (also
  errors) is sent ``S`` seconds later than it is ready
  (:class:`acmelab.lab.aliyun.server.LabApiHandler`); requests in parallel
  wait in parallel (one thread each), as over a real network.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
import time
from typing import Any

logger = logging.getLogger(__name__)


def check_seconds(value: Any, name: str) -> float:
    """``value`` as a float number of seconds >= 0 (an int or float, not bool).

    Raises:
        ValueError: negative, not finite, or not a number.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a number of seconds >= 0 (got {value!r})")
    return float(value)


class DelayedDns:
    """Forward calls to a DNS backend (``ChallTestSrv``) ``delay`` seconds late.

    ``DelayedDns(srv, 2.0).replace_txt(host, values)`` returns at once; two
    seconds later ``srv.replace_txt(host, values)`` runs (on one worker
    thread, calls in the order they were made).  A call that fails is logged
    and dropped, as a failed push to a DNS server would be.  ``delay`` 0
    forwards at once, on the caller's thread.

    Args:
        backend: the object whose methods are called (any attribute).
        delay: seconds, >= 0.
    """

    def __init__(self, backend: Any, delay: float) -> None:
        self.backend = backend
        self.delay = check_seconds(delay, "delay")
        self._queue: list[tuple[float, int, str, tuple[Any, ...]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._worker: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"DelayedDns({self.backend!r}, delay={self.delay})"

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.backend, name)
        if not callable(method) or self.delay == 0:
            return method

        def later(*args: Any) -> None:
            # snapshot the arguments now (a list of values may change later)
            frozen = tuple(list(a) if isinstance(a, (list, tuple, set)) else a for a in args)
            self._schedule(name, frozen)
        return later

    def _schedule(self, name: str, args: tuple[Any, ...]) -> None:
        with self._wake:
            heapq.heappush(self._queue, (time.monotonic() + self.delay, next(self._order), name, args))
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="dns-propagation", daemon=True)
                self._worker.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue or self._queue[0][0] > time.monotonic():
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._wake.wait(timeout)
                _, _, name, args = heapq.heappop(self._queue)
            try:
                getattr(self.backend, name)(*args)
            except Exception:  # a lost push: logged, the next change corrects it
                logger.exception("delayed DNS update %s%r failed", name, args)
