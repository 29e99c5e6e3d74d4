"""A per-key budget of log lines per minute, so a flood is counted, not written out.

A flood of wrong passwords or malformed packets would otherwise write one
line per packet (the issue 12 runs wrote hundreds of MB); the counters in
aaa.metrics keep every one, the log keeps the first ``per_minute`` of each
reason and says how many it left out.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime

WINDOW = 60.0


class LineBudget:
    def __init__(self, clock: IReactorTime, per_minute: int = 60, max_keys: int = 1024) -> None:
        self.clock = clock
        self.per_minute = per_minute
        self.max_keys = max_keys
        self._windows: dict[str, tuple[float, int, int]] = {}  # key -> (start, used, left out)

    def allow(self, key: str) -> tuple[bool, int]:
        """Whether to log a line for ``key`` now, and how many were left out before it."""
        if self.per_minute <= 0:
            return True, 0
        now = self.clock.seconds()
        start, used, left_out = self._windows.get(key, (now, 0, 0))
        carried = 0
        if now - start >= WINDOW:
            start, used, carried, left_out = now, 0, left_out, 0
        if used < self.per_minute:
            self._store(key, (start, used + 1, left_out))
            return True, carried
        self._store(key, (start, used, left_out + 1 + carried))
        return False, 0

    def _store(self, key: str, value: tuple[float, int, int]) -> None:
        if key not in self._windows and len(self._windows) >= self.max_keys:
            self._windows.pop(next(iter(self._windows)))
        self._windows[key] = value


def suffix(left_out: int) -> str:
    return f" ({left_out} similar lines left out in the last minute)" if left_out else ""
