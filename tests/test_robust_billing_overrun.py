"""A billing pass that outlasts its interval is reported once, not on every tick (issue 12)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from billing.service import BillingService


class SlowLoop:
    """A BillingLoop stand-in whose first pass ends only when the test says so."""

    def __init__(self) -> None:
        self.config = type("C", (), {"billing": type("B", (), {"loop_interval": 1})()})()
        self.passes: list[defer.Deferred[Any]] = []

    def run_once(self) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        if self.passes:  # every pass after the first is quick
            reactor.callLater(0.01, d.callback, None)  # type: ignore[attr-defined]
        self.passes.append(d)
        return d


@pytest_twisted.inlineCallbacks
def test_long_pass_logs_one_overrun_line_not_one_per_tick(caplog: pytest.LogCaptureFixture):
    """Over 3.5 one-second ticks a stuck pass yields one WARNING (with its running time) and
    no APScheduler "maximum number of running instances" lines; when passes fit again one
    INFO line says so with the duration."""
    loop = SlowLoop()
    svc = BillingService(loop, reactor)  # type: ignore[arg-type]
    caplog.set_level(logging.INFO)
    svc.startService()
    try:
        yield task.deferLater(reactor, 3.5, lambda: None)
        assert len(loop.passes) == 1 and svc.skipped_ticks >= 2
        skip_lines = [r for r in caplog.records if "maximum number" in r.getMessage()]
        overrun = [r for r in caplog.records if "overrun" in r.getMessage()]
        assert skip_lines == []
        assert len(overrun) == 1 and overrun[0].levelno == logging.WARNING
        assert "1 s interval" in overrun[0].getMessage()
        loop.passes[0].callback(None)
        for _ in range(60):
            if any("fit the" in r.getMessage() for r in caplog.records):
                break
            yield task.deferLater(reactor, 0.1, lambda: None)
        fit = [r for r in caplog.records if "fit the" in r.getMessage()]
        assert len(fit) == 1 and "ticks were skipped" in fit[0].getMessage()
    finally:
        if not loop.passes[0].called:
            loop.passes[0].callback(None)  # stopService waits for the running pass
        yield defer.maybeDeferred(svc.stopService)
