"""The billing job thread never outlives a stopped reactor (a process that could not exit)."""

from __future__ import annotations

import threading
from typing import Any

from twisted.internet import defer

from billing.service import BillingService


class DeafReactor:
    """A reactor that has stopped: calls handed to it from threads never run."""

    def __init__(self) -> None:
        self.running = True
        self.calls: list[Any] = []

    def callFromThread(self, fn: Any, *args: Any) -> None:
        self.calls.append(fn)


class FakeLoop:
    """Just enough of BillingLoop for the service: a pass that never ends by itself."""

    def __init__(self) -> None:
        self.config = type("C", (), {"billing": type("B", (), {"loop_interval": 30})()})()
        self.pending: defer.Deferred[Any] = defer.Deferred()

    def run_once(self) -> defer.Deferred[Any]:
        return self.pending


def run_job_in_thread(svc: BillingService) -> threading.Thread:
    t = threading.Thread(target=svc._job, daemon=True)
    t.start()
    return t


def test_job_gives_up_when_the_reactor_stops_before_running_the_pass() -> None:
    """A job queued to a reactor that then stops returns instead of waiting forever."""
    reactor = DeafReactor()
    svc = BillingService(FakeLoop(), reactor)  # type: ignore[arg-type]
    svc.running = True
    t = run_job_in_thread(svc)
    t.join(0.5)
    assert t.is_alive(), "the job must wait while the reactor runs"
    assert len(reactor.calls) == 1
    reactor.running = False
    t.join(5)
    assert not t.is_alive()


def test_job_gives_up_when_the_service_stops() -> None:
    """stopService while a job waits: the thread ends (stopService waits for the pass)."""
    reactor = DeafReactor()
    svc = BillingService(FakeLoop(), reactor)  # type: ignore[arg-type]
    svc.running = True
    t = run_job_in_thread(svc)
    t.join(0.3)
    svc.running = False
    t.join(5)
    assert not t.is_alive()


def test_job_waits_for_the_whole_pass() -> None:
    """With a live reactor the job returns only once the pass has finished."""
    reactor = DeafReactor()
    loop = FakeLoop()
    svc = BillingService(loop, reactor)  # type: ignore[arg-type]
    svc.running = True
    t = run_job_in_thread(svc)
    t.join(0.3)
    reactor.calls[0]()  # the reactor runs the call: the pass starts
    t.join(0.5)
    assert t.is_alive()
    loop.pending.callback(None)
    t.join(5)
    assert not t.is_alive() and svc.passes == 1
