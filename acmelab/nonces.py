"""The anti-replay nonces in hand (RFC 8555 §6.5, §7.2).

Every JWS the client sends carries a nonce the server handed out, and the
server accepts each nonce once.  Every answer brings a new one in its
``Replay-Nonce`` header, so a client that keeps them rarely has to ask
``newNonce``.  When requests go out concurrently, "the nonce of the last
answer" is no longer one value: :class:`NoncePool` keeps every nonce the
answers brought, and hands each out to exactly one request.
"""

from __future__ import annotations

import threading
from collections import deque

__all__ = ["NONCE_POOL_SIZE", "NoncePool"]

#: nonces kept in hand at the most; past it the oldest go (they are the
#: likeliest to have expired at the CA).
NONCE_POOL_SIZE = 32


class NoncePool:
    """The anti-replay nonces in hand (RFC 8555 §6.5), thread-safe.

    Every nonce is handed out once: :meth:`take` removes it.  The newest
    is taken first; past ``size`` nonces the oldest are dropped.

    Args:
        size: how many nonces are kept at the most.
    """

    def __init__(self, size: int = NONCE_POOL_SIZE) -> None:
        self._nonces: deque[str] = deque(maxlen=size)
        self._lock = threading.Lock()

    def put(self, nonce: str | None) -> None:
        """Keep ``nonce`` (None: nothing to keep)."""
        if nonce:
            with self._lock:
                self._nonces.append(nonce)

    def take(self) -> str | None:
        """The newest nonce, removed from the pool; None if it is empty."""
        with self._lock:
            return self._nonces.pop() if self._nonces else None

    def peek(self) -> str | None:
        """The nonce :meth:`take` would hand out next, left in the pool."""
        with self._lock:
            return self._nonces[-1] if self._nonces else None

    def clear(self) -> None:
        with self._lock:
            self._nonces.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._nonces)
