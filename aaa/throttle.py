"""Refuse slow password checks for a login or a NAS port that keeps failing.

After ``max_failures`` wrong passwords within ``window`` seconds, a login (or a NAS port:
a flood often rotates logins behind one port) is throttled for ``lockout`` seconds: its
requests that would need argon2 are rejected at once instead. A password that matches a
verifier (aaa.verifier: the subscriber's last good password) is still accepted, so an
attacker hammering someone's login cannot lock its owner out; only new, unproven
passwords wait. Memory is bounded: the oldest keys go first.
"""

from __future__ import annotations

from collections import OrderedDict

from twisted.internet.interfaces import IReactorTime


class FailureThrottle:
    def __init__(self, clock: IReactorTime, max_failures: int = 5, window: float = 60.0,
                 lockout: float = 60.0, max_keys: int = 100_000) -> None:
        self.clock = clock
        self.max_failures = max_failures
        self.window = window
        self.lockout = lockout
        self.max_keys = max_keys
        # key -> [first failure of the window, failures, throttled until]
        self._keys: OrderedDict[object, list[float]] = OrderedDict()

    def throttled(self, key: object) -> bool:
        entry = self._keys.get(key)
        return entry is not None and entry[2] > self.clock.seconds()

    def suspect(self, key: object) -> bool:
        """Failed lately (at least once in the window): its checks wait behind clean ones."""
        entry = self._keys.get(key)
        return entry is not None and (self.clock.seconds() - entry[0] < self.window
                                      or entry[2] > self.clock.seconds())

    def failed(self, key: object) -> None:
        now = self.clock.seconds()
        entry = self._keys.get(key)
        if entry is None or now - entry[0] >= self.window:
            until = entry[2] if entry is not None else 0.0
            entry = [now, 0.0, until]
        entry[1] += 1
        if entry[1] >= self.max_failures:
            entry[2] = now + self.lockout
        self._keys[key] = entry
        self._keys.move_to_end(key)
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)

    def succeeded(self, key: object) -> None:
        self._keys.pop(key, None)
