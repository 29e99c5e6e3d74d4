"""A reactor whose thread pool runs nothing until the test says so (aaa.slowqueue tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.task import Clock


class ManualThreadPool:
    def __init__(self) -> None:
        self.jobs: list[tuple[Callable[..., Any], Callable[..., Any], tuple[Any, ...]]] = []

    def callInThreadWithCallback(self, on_result: Callable[..., Any], fn: Callable[..., Any],
                                 *args: Any, **kw: Any) -> None:
        self.jobs.append((on_result, fn, args))

    def run_one(self) -> None:
        on_result, fn, args = self.jobs.pop(0)
        try:
            result = fn(*args)
        except Exception as exc:  # handed back like Twisted's pool does
            from twisted.python.failure import Failure

            on_result(False, Failure(exc))
            return
        on_result(True, result)

    def run_all(self) -> int:
        ran = 0
        while self.jobs:
            self.run_one()
            ran += 1
        return ran


class ThreadedClock(Clock):
    """Clock + a manual thread pool; callFromThread runs at once (we are the only thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = ManualThreadPool()

    def getThreadPool(self) -> ManualThreadPool:
        return self.pool

    def callFromThread(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> None:
        fn(*args, **kw)
