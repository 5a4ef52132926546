"""Rate limits (RFC 8555 §6.6): "not before" per service.

When the CA answers 429 ``rateLimited`` with a ``Retry-After``, the engine
records the time it named (:func:`schedule`, ``not-before.json`` in the
state directory) and goes on with the other services; until then
:func:`scheduled_until` gives the reason to skip the service (status
``"scheduled"``).
"""

from __future__ import annotations

import datetime as dt
import logging

from acmelab.errors import RateLimited
from acmelab.renewal import utc_text
from acmelab.state import StateDir

__all__ = ["schedule", "scheduled_until"]

logger = logging.getLogger(__name__)


def schedule(state: StateDir, name: str, error: RateLimited) -> str:
    """Record that the CA refused ``name`` until ``error.retry_after``
    seconds from now (``not-before.json``); returns the reason to report."""
    until = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=float(error.retry_after or 0))
    until = until.replace(microsecond=0) + dt.timedelta(seconds=1)
    detail = str(error).splitlines()[0] if str(error) else "rateLimited"
    state.set_not_before(name, {"not_before": until.isoformat(), "reason": detail})
    logger.warning("%s: rate limited by the CA; scheduled for %s", name, utc_text(until))
    return f"rate limited by the CA ({detail}): try again after {utc_text(until)}"


def scheduled_until(state: StateDir, name: str, now: dt.datetime | None = None) -> str | None:
    """The reason to skip ``name`` when the CA's "not before" time for it
    has not come yet at ``now`` (default: now; ``--now`` moves it, as it
    moves the renewal decisions), else None."""
    record = state.not_before(name)
    if not record:
        return None
    try:
        until = dt.datetime.fromisoformat(str(record["not_before"]))
    except (KeyError, ValueError):
        return None
    if (now or dt.datetime.now(dt.timezone.utc)) >= until:
        return None
    return f"rate limited by the CA ({record.get('reason') or 'rateLimited'}): not before {utc_text(until)}"
