"""Duplicate detection (RFC 5080 section 2.2.2): answer retransmissions from a cache.

Key: client address, source port, Identifier and Request Authenticator. A
request still in flight is not processed twice (its retransmission is
dropped); a finished one gets its cached reply resent for ``window`` seconds,
like FreeRADIUS's ``cleanup_delay``. Entries expire on a Clock so tests drive
time; the cache is bounded so a flood of distinct requests cannot grow it
without limit.
"""

from __future__ import annotations

import struct
from collections.abc import Hashable
from typing import Final

from twisted.internet.interfaces import IReactorTime

Key = Hashable
IN_FLIGHT: Final = b""
# Expired entries are swept out at most this often (seconds): every lookup checks its own
# entry's expiry anyway, so the sweep only bounds memory, and sweeping on every request was
# a tenth of the listener's CPU (bench/auth_bench.py).
SWEEP_INTERVAL: Final = 0.1
_PORT = struct.Struct("!H").pack


def request_key(host: str, port: int, datagram: bytes) -> bytes:
    """Client address, source port, Identifier and Request Authenticator, as one bytes object.

    Not a tuple: the cache holds tens of thousands of keys for seconds, and tuples
    stay tracked by the garbage collector until a full collection, which they made
    both larger and more frequent (bench/auth_bench.py, gc.get_objects()).
    """
    return datagram[1:2] + datagram[4:20] + _PORT(port) + host.encode()


class DuplicateCache:
    """Keys are any hashable (the listener uses :func:`request_key`); values are plain.

    Expiry times and replies live in two dicts rather than one dict of
    (expiry, reply) tuples, for the same reason as the bytes keys.
    """

    def __init__(self, clock: IReactorTime, window: float = 5.0,
                 max_entries: int = 100_000, max_processing: float = 30.0) -> None:
        self.clock = clock
        self.window = window
        self.max_entries = max_entries
        self.max_processing = max_processing
        self._expiry: dict[Key, float] = {}  # every entry; insertion order is age order
        self._replies: dict[Key, bytes] = {}  # the answered ones
        self._next_sweep = float("-inf")

    def __len__(self) -> int:
        return len(self._expiry)

    def lookup(self, key: Key) -> tuple[bool, bytes | None]:
        """(seen, reply): seen is False for a new request, which is now marked in flight."""
        now = self.clock.seconds()
        if now >= self._next_sweep:
            self._expire(now)
        expiry = self._expiry.get(key)
        if expiry is not None and expiry <= now:
            # The sweep stops at the first live entry in insertion order, and a long in-flight
            # entry can sit ahead of shorter-lived replies: check this entry's own expiry.
            self._forget(key)
            expiry = None
        if expiry is None:
            self._make_room()
            self._expiry[key] = now + self.max_processing
            return False, None
        return True, self._replies.get(key)

    def done(self, key: Key, reply: bytes | None) -> None:
        """Remember the reply; ``None`` forgets the request so a resend is processed again.

        Forgetting matters for accounting: no reply means the record was not
        stored, and the NAS's retransmission must get a fresh try.
        """
        self._forget(key)
        if reply is not None and reply != IN_FLIGHT:
            # The in-flight mark may have been evicted meanwhile: stay within max_entries.
            self._make_room()
            self._expiry[key] = self.clock.seconds() + self.window
            self._replies[key] = reply

    def _forget(self, key: Key) -> None:
        if self._expiry.pop(key, None) is not None:
            self._replies.pop(key, None)

    def _make_room(self) -> None:
        if len(self._expiry) >= self.max_entries:
            self._forget(next(iter(self._expiry)))

    def _expire(self, now: float) -> None:
        self._next_sweep = now + SWEEP_INTERVAL
        stale = []
        for key, expiry in self._expiry.items():
            if expiry > now:
                break
            stale.append(key)
        for key in stale:
            self._forget(key)
