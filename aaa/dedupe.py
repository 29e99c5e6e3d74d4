"""Duplicate detection (RFC 5080 section 2.2.2): answer retransmissions from a cache.

Key: client address, source port, Identifier and Request Authenticator. A
request still in flight is not processed twice (its retransmission is
dropped); a finished one gets its cached reply resent for ``window`` seconds,
like FreeRADIUS's ``cleanup_delay``. Entries expire on a Clock so tests drive
time; the cache is bounded so a flood of distinct requests cannot grow it
without limit.
"""

from __future__ import annotations

from typing import Final

from twisted.internet.interfaces import IReactorTime

Key = tuple[str, int, int, bytes]
IN_FLIGHT: Final = b""
# Expired entries are swept out at most this often (seconds): every lookup checks its own
# entry's expiry anyway, so the sweep only bounds memory, and sweeping on every request was
# a tenth of the listener's CPU (bench/auth_bench.py).
SWEEP_INTERVAL: Final = 0.1


class DuplicateCache:
    def __init__(self, clock: IReactorTime, window: float = 5.0,
                 max_entries: int = 100_000, max_processing: float = 30.0) -> None:
        self.clock = clock
        self.window = window
        self.max_entries = max_entries
        self.max_processing = max_processing
        # key -> (expiry, reply bytes or IN_FLIGHT); insertion order is age order
        self._entries: dict[Key, tuple[float, bytes]] = {}
        self._next_sweep = float("-inf")

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: Key) -> tuple[bool, bytes | None]:
        """(seen, reply): seen is False for a new request, which is now marked in flight."""
        now = self.clock.seconds()
        entries = self._entries
        if now >= self._next_sweep:
            self._expire(now)
        entry = entries.get(key)
        if entry is not None and entry[0] <= now:
            # The sweep stops at the first live entry in insertion order, and a long in-flight
            # entry can sit ahead of shorter-lived replies: check this entry's own expiry.
            del entries[key]
            entry = None
        if entry is None:
            if len(entries) >= self.max_entries:
                del entries[next(iter(entries))]
            entries[key] = (now + self.max_processing, IN_FLIGHT)
            return False, None
        reply = entry[1]
        return True, (None if reply == IN_FLIGHT else reply)

    def done(self, key: Key, reply: bytes | None) -> None:
        """Remember the reply; ``None`` forgets the request so a resend is processed again.

        Forgetting matters for accounting: no reply means the record was not
        stored, and the NAS's retransmission must get a fresh try.
        """
        entries = self._entries
        entries.pop(key, None)
        if reply is not None:
            # The in-flight mark may have been evicted meanwhile: stay within max_entries.
            if len(entries) >= self.max_entries:
                del entries[next(iter(entries))]
            entries[key] = (self.clock.seconds() + self.window, reply)

    def _expire(self, now: float) -> None:
        self._next_sweep = now + SWEEP_INTERVAL
        entries = self._entries
        stale = []
        for key, (expiry, _) in entries.items():
            if expiry > now:
                break
            stale.append(key)
        for key in stale:
            del entries[key]
