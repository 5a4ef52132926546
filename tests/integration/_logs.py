"""Capturing every log line at DEBUG, and what tests print and raise, for the tests that scan them for secrets."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import IO, Iterator

import pytest

#: the loggers that may see a request: ours, the classic Alibaba SDK's (its
#: vendored requests/urllib3 sit at CRITICAL unless lowered), urllib3's
LOGGERS = ("acmelab", "aliyunsdkcore", "aliyunsdkcore.vendored.requests", "urllib3")


@contextlib.contextmanager
def debug_logs_into(stream: IO[str], fmt: str | None = None) -> Iterator[None]:
    """Everything logged at DEBUG (the root and :data:`LOGGERS`) goes to
    ``stream`` while inside, with the classic SDK's HTTP dump on
    (``DEBUG=sdk``: every request's full URL and headers, from
    ``aliyunsdkcore.http.http_response``); the levels, handlers and the
    environment are put back after."""
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    if fmt:
        handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    old_levels = {name: logging.getLogger(name).level for name in LOGGERS}
    old_root = root.level
    old_debug = os.environ.get("DEBUG")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    os.environ["DEBUG"] = "sdk"
    try:
        yield
    finally:
        if old_debug is None:
            os.environ.pop("DEBUG", None)
        else:
            os.environ["DEBUG"] = old_debug
        root.removeHandler(handler)
        root.setLevel(old_root)
        for name, level in old_levels.items():
            logging.getLogger(name).setLevel(level)


def remember(transcript: list[str], error: BaseException) -> BaseException:
    """Note what a user would see of ``error`` (its text, repr and notes) in ``transcript``."""
    transcript.extend([str(error), repr(error), *getattr(error, "__notes__", [])])
    return error


def output_into(transcript: list[str]):
    """An autouse fixture for a module that scans for secrets at its end:
    each test's stdout and stderr (file descriptors, so the SDK's own
    prints too) go into ``transcript``.  In the module: ``_output = output_into(TRANSCRIPT)``."""
    @pytest.fixture(autouse=True)
    def _output(capfd):
        yield
        transcript.extend(capfd.readouterr())
    return _output
