"""What every ACME request of :class:`acmelab.client.AcmeClient` shares.

:class:`ClientBase` holds the directory URL, the account key and the
:class:`~acmelab.transport.AcmeTransport`; it signs requests with the
account's ``kid`` (RFC 8555 §6.2), fetches the directory once (§7.1.1),
polls a resource until it reaches a final status (§7.5.1, §7.4), honouring
``Retry-After``, and runs independent requests concurrently, at most
``concurrency`` at a time (:meth:`ClientBase.each`).  The resource modules
beside it (:mod:`.account`, :mod:`.order`, :mod:`.authorization`,
:mod:`.certificate`, :mod:`.renewal_info`) add one group of RFC actions each.
"""

from __future__ import annotations

import time
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar
from urllib.parse import urlsplit

from acmelab import USER_AGENT, keys
from acmelab.errors import AnswerLost, InputError, NetworkError, PollTimeout
from acmelab.resources import Directory
from acmelab.transport import DEFAULT_TIMEOUT, NETWORK_TRIES, AcmeResponse, AcmeTransport, is_loopback

__all__ = ["ClientBase", "DEFAULT_CONCURRENCY", "POLL_FIRST_DELAY", "POLL_MAX_DELAY", "POLL_TIMEOUT",
           "ask_before_repeating", "doing"]

#: seconds: the first wait of a polling loop when the server sends no
#: ``Retry-After``; it doubles each round up to POLL_MAX_DELAY (5, 10, 20,
#: 40 ms ... 2 s).  Pebble validates in 1-3 ms in the lab, so one poll
#: usually finds the final status; Let's Encrypt takes about a second, which
#: this back-off reaches in 8 polls.
POLL_FIRST_DELAY = 0.005
POLL_MAX_DELAY = 2.0
#: seconds: default overall deadline of a polling loop.
POLL_TIMEOUT = 90.0
#: independent requests in flight at once (authorizations fetched,
#: challenges answered, polls); also the connections kept alive.
DEFAULT_CONCURRENCY = 10

T = TypeVar("T")
R = TypeVar("R")


@contextmanager
def doing(step: str) -> Iterator[None]:
    """Name the step in a NetworkError raised inside (the innermost step
    wins): ``finalizing the order for www.example.com: https://...:
    connection refused (after 4 tries)``."""
    try:
        yield
    except NetworkError as error:
        if error.step is None:
            error.step = step
        raise


def ask_before_repeating(send: Callable[[], Any], acted: Callable[[], Any]) -> Any:
    """Send a request the CA must not act on twice.  After a lost answer
    (:class:`~acmelab.errors.AnswerLost`) ask the CA whether it acted --
    ``acted()`` returns the result it would have given, or None -- and send
    again only if it did not; NETWORK_TRIES sends at the most."""
    for attempt in range(1, NETWORK_TRIES + 1):
        try:
            return send()
        except AnswerLost:
            if attempt == NETWORK_TRIES:
                raise
            result = acted()
            if result is not None:
                return result
    raise AssertionError("unreachable")  # pragma: no cover



class ClientBase:
    """The part of :class:`acmelab.client.AcmeClient` every request uses
    (its arguments are documented there)."""

    def __init__(self, directory_url: str, account_key: keys.PrivateKey, *,
                 verify: bool | str | Path = True, account_url: str | None = None,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                 user_agent: str = USER_AGENT, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        parts = urlsplit(directory_url) if isinstance(directory_url, str) else None
        local_http = parts is not None and parts.scheme == "http" and is_loopback(parts.hostname)
        if parts is None or not (parts.scheme == "https" and parts.hostname or local_http):
            raise InputError(f"the directory URL must be an https:// URL (http:// only on loopback, for "
                             f"local stubs), not {directory_url!r}")
        keys.jws_algorithm(account_key)  # InputError for an unsupported key
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
            raise InputError(f"concurrency must be a whole number of at least 1, not {concurrency!r}")
        self.concurrency = concurrency
        self.directory_url = directory_url
        self.account_key = account_key
        self.account_url = account_url
        # http:// URLs (on loopback) are followed only when the directory itself is one
        self.transport = AcmeTransport(verify=verify, timeout=timeout, user_agent=user_agent,
                                       allow_loopback_http=local_http, pool_size=concurrency)
        self._directory: Directory | None = None

    def __repr__(self) -> str:
        return (f"AcmeClient({self.directory_url!r}, key={keys.key_type_of(self.account_key)}, "
                f"account_url={self.account_url!r})")

    def close(self) -> None:
        """Close the HTTPS connections."""
        self.transport.close()

    def __enter__(self) -> "ClientBase":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def request_count(self) -> int:
        """HTTP requests sent to the ACME server so far (all kinds)."""
        return self.transport.request_count

    # -- helpers: requests signed by the account key (kid) -------------------
    def _kid(self) -> str:
        if not self.account_url:
            raise InputError("no account yet: call new_account() or find_account() first")
        return self.account_url

    def _post(self, url: str, payload: Mapping[str, Any] | None, *, idempotent: bool = False,
              accept: str | None = None, deadline: float | None = None) -> AcmeResponse:
        """A request signed by the account key with ``kid`` (§6.2)."""
        self.directory  # the newNonce URL, should no nonce be in hand
        return self.transport.post(url, payload, self.account_key, kid=self._kid(),
                                   idempotent=idempotent, accept=accept, deadline=deadline)

    def _post_as_get(self, url: str, *, accept: str | None = None) -> AcmeResponse:
        """POST-as-GET (§6.3): a signed POST with an empty payload."""
        return self._post(url, None, idempotent=True, accept=accept)

    # ------------------------------------------------------------------
    # §7.1.1 directory
    # ------------------------------------------------------------------
    @property
    def directory(self) -> Directory:
        """The directory (RFC 8555 §7.1.1), fetched once with a plain GET."""
        if self._directory is None:
            with doing("fetching the directory"):
                self._directory = Directory.from_json(self.transport.get(self.directory_url).json())
            self.transport.new_nonce_url = self._directory.newNonce
        return self._directory

    @property
    def terms_of_service(self) -> str | None:
        """The CA's terms of service URL (directory ``meta.termsOfService``)."""
        return self.directory.meta.get("termsOfService")

    # -- independent requests, concurrently -------------------------------
    def each(self, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[function(item) for item in items]``, up to ``concurrency``
        calls at a time (threads; one item, or ``concurrency=1``: in this
        thread, in order).  Every call runs to its end; then the first
        error (in ``items`` order) is raised, the others added to it as
        notes."""
        items = list(items)
        if len(items) <= 1 or self.concurrency == 1:
            return [function(item) for item in items]
        workers = min(self.concurrency, len(items))
        with futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="acmelab-acme") as pool:
            running = [pool.submit(function, item) for item in items]
            futures.wait(running)
        errors = [f.exception() for f in running if f.exception() is not None]
        if errors:
            for other in errors[1:]:
                errors[0].add_note(f"also: {type(other).__name__}: {other}")
            raise errors[0]
        return [f.result() for f in running]

    # -- polling (§7.5.1, §7.4): wait, fetch, until a final status --------
    def _poll(self, fetch: Callable[[str], tuple[Any, AcmeResponse]], url: str, current: Any,
              done: Iterable[str], timeout: float, *, retry_after: float | None = None) -> Any:
        """Fetch ``url`` until its status is in ``done``.

        Between fetches wait the back-off (POLL_FIRST_DELAY doubling up to
        POLL_MAX_DELAY), or the server's ``Retry-After`` if that is longer
        (RFC 8555 §7.5.1, §8.2): a ``Retry-After: 0`` or a date in the past
        cannot make the loop spin.  ``retry_after`` is the ``Retry-After``
        of the answer that gave ``current`` (e.g. finalize's, §7.4): the
        first fetch waits for it too.  No wait goes past the deadline: a
        wait longer than the time left is cut short and one last fetch is
        made at the deadline.

        Raises PollTimeout (its message gives the real elapsed seconds)."""
        done = set(done)
        start = time.monotonic()
        deadline = start + timeout
        delay = POLL_FIRST_DELAY
        wait = delay if retry_after is None else max(retry_after, delay)
        last = False
        while current is None or current.status not in done:
            remaining = deadline - time.monotonic()
            if last or remaining <= 0:
                status = current.status if current is not None else "unknown"
                raise PollTimeout(f"{url} is still {status!r} after {time.monotonic() - start:.1f} s "
                                  f"(timeout {timeout:g} s)")
            last = wait >= remaining  # this fetch is the one at the deadline
            time.sleep(min(wait, remaining))
            current, response = fetch(url)
            delay = min(delay * 2, POLL_MAX_DELAY)
            retry_after = response.retry_after
            wait = delay if retry_after is None else max(retry_after, delay)
        return current
