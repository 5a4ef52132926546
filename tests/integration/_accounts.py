"""Giving up what a state directory's account has validated, for the tests
whose next issuance must validate again."""

from __future__ import annotations

from pathlib import Path

from acmelab.backends import LabBackend
from acmelab.state import StateDir


def forget_authorizations(lab, state: Path, names: list[str]) -> list[str]:
    """Deactivate (RFC 8555 §7.5.2) the valid authorizations the account of
    ``state`` (for ``lab``'s Pebble) holds for ``names``, so that the next
    issuance for them publishes and validates afresh: Pebble reuses a valid
    one about 1 time in 100 even at ``PEBBLE_AUTHZREUSE=0``, and half the
    time at its default.  Returns the URLs given up."""
    record = StateDir(state).account(lab.directory_url)
    with LabBackend(lab).acme_client(record.load_key(), record.account_url) as client:
        return client.deactivate_valid_authorizations(names)
