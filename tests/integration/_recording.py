"""A DNS provider for tests that notes what it publishes."""

from __future__ import annotations

from acmelab.dns.challtestsrv import ChallTestSrvProvider


class RecordingProvider(ChallTestSrvProvider):
    """The challtestsrv provider, noting every record it presents."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.presented: list[tuple[str, str]] = []

    def present(self, name, value):
        super().present(name, value)
        self.presented.append((name, value))
