"""The billing loop as a Twisted Service on APScheduler 3's TwistedScheduler.

The job runs every ``billing.loop_interval`` seconds with ``max_instances=1``
and ``coalesce=True``: a slow pass is never overlapped by the next and missed
runs collapse into one. APScheduler runs jobs in the reactor's thread pool;
the job hands the pass back to the reactor (``callFromThread``, then waits) so
all database work still goes through the DBPool and disconnects through the
reactor. ``kick()`` runs a pass soon after accounting stored usage (wired
through :func:`notifying_sink`), so an Interim-Update is charged and its
next slice held within about a second instead of at the next interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.schedulers.twisted import TwistedScheduler
from sqlalchemy import event, false, select
from sqlalchemy.orm import Session
from twisted.application import service
from twisted.internet import defer, task
from twisted.python.failure import Failure

from billing.loop import BillingLoop
from billing.usage import UsageDelta, UsageDeltaRow, UsageSink, thd_record_usage

log = logging.getLogger(__name__)

JOB_ID = "billing-loop"
JOB_POLL_SECONDS = 0.2  # how often a waiting job thread checks for a stop
SKIPPED_MESSAGE = "maximum number of running instances reached"


class _NoSkipWarnings(logging.Filter):
    """Drops APScheduler's per-tick "skipped: maximum number of running instances" WARNING.

    With max_instances=1 a long pass made it log that on every tick (9,035
    times in 27 minutes, issue 12); BillingService reports an overrun itself,
    once, with how long the passes take.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return SKIPPED_MESSAGE not in str(record.msg)


SCHEDULER_LOG = logging.getLogger("apscheduler.scheduler.billing")
SCHEDULER_LOG.addFilter(_NoSkipWarnings())


@dataclass(frozen=True)
class LastPass:
    """The latest finished pass, for the admin dashboard (this process only)."""

    started_at: datetime
    seconds: float
    rated: int
    entries: int
    error: str  # "" when the pass succeeded
    passes: int  # passes since this process started


class BillingService(service.Service):
    name: str = "billing"  # type: ignore[assignment]

    def __init__(self, loop: BillingLoop, reactor: Any, interval: int | None = None,
                 closers: Sequence[Callable[[], Any]] = (), pending_poll: float = 0.0,
                 periodic: Sequence[tuple[str, float, Callable[[], Any]]] = ()) -> None:
        """``pending_poll``: seconds between checks for unrated usage (0 = none).

        ``periodic``: (name, seconds, fn) jobs that belong with the billing
        leader, e.g. accounting's retention (it asks billing what to keep);
        each runs on this scheduler, one at a time, never overlapping itself.

        Usage committed by this process kicks a pass directly; usage that other
        workers or nodes commit cannot, so the process that runs the billing
        loop (the cluster's leader for it) looks for it this often.
        """
        self.loop = loop
        self.periodic = list(periodic)
        self.pending_poll = pending_poll
        self._poller: task.LoopingCall | None = None
        self.closers = list(closers)  # e.g. the CoA sender's socket, closed on stop
        self.reactor = reactor
        self.interval = interval or loop.config.billing.loop_interval
        self.scheduler: TwistedScheduler | None = None
        self.passes = 0
        self._in_flight: defer.Deferred[Any] | None = None
        self._again = False  # a kick came during a pass: run another right after it
        self._pass_started = 0.0
        self.last_pass: LastPass | None = None
        self.skipped_ticks = 0  # ticks dropped because a pass was still running
        self.overrunning = False  # passes take longer than the interval (logged once)

    def _periodic_job(self, name: str, fn: Callable[[], Any]) -> None:
        """Like :meth:`_job`, for one ``periodic`` job: wait for its Deferred on the reactor."""
        if not self.running:
            return
        finished = threading.Event()

        def start() -> None:
            if not self.running:
                finished.set()
                return
            d = defer.maybeDeferred(fn)
            d.addErrback(lambda f: log.error("billing job %s failed; it runs again at its "
                                             "next interval: %s", name, f.getErrorMessage()))
            d.addBoth(lambda _: finished.set())

        self.reactor.callFromThread(start)
        while not finished.wait(JOB_POLL_SECONDS):
            if not self.running or not getattr(self.reactor, "running", True):
                return

    def _job(self) -> None:
        """Runs in a scheduler thread: wait for one whole pass on the reactor.

        Not ``blockingCallFromThread``: that waits forever when the reactor
        stops before it runs the call, and the reactor's shutdown then joins
        this thread forever (a process that never exits). Here the thread
        gives up waiting once the service or the reactor has stopped;
        ``stopService`` itself waits for a pass already running.
        """
        if not self.running:
            return  # dispatched just before stopService: the pool it needs may be gone
        finished = threading.Event()

        def start() -> None:
            if not self.running:
                finished.set()
                return
            d = defer.maybeDeferred(self.run_pass)
            d.addErrback(self._failed)
            d.addBoth(lambda _: finished.set())

        self.reactor.callFromThread(start)
        while not finished.wait(JOB_POLL_SECONDS):
            if not self.running or not getattr(self.reactor, "running", True):
                return

    def _failed(self, failure: Any) -> Any:
        """Log it, and tell the admins through the outbox (if the database takes it)."""
        from billing.notify import thd_enqueue_admin

        log.error("billing pass failed; the next pass retries: %s", failure.getTraceback())
        d = self.loop.dbpool.run(thd_enqueue_admin, "loop_error",
                                 {"error": failure.getErrorMessage()[:500]})
        d.addErrback(lambda f: log.warning("loop error not queued for the admins: %s",
                                           f.getErrorMessage()))
        return d

    def run_pass(self) -> defer.Deferred[Any]:
        self._pass_started = time.monotonic()
        started_at = datetime.now(UTC)
        d: defer.Deferred[Any] = defer.maybeDeferred(self.loop.run_once)
        self._in_flight = d

        def done(result: Any) -> Any:
            self.passes += 1
            self._in_flight = None
            seconds = time.monotonic() - self._pass_started
            failed = isinstance(result, Failure)
            self.last_pass = LastPass(
                started_at, seconds, 0 if failed else int(getattr(result, "rated", 0)),
                0 if failed else int(getattr(result, "entries", 0))
                + int(getattr(result, "fees", 0)),
                result.getErrorMessage()[:300] if failed else "", self.passes)
            self._pass_ended(seconds)
            if self._again:
                self._again = False
                self._kick()
            return result

        return d.addBoth(done)

    def _tick_skipped(self, event: JobSubmissionEvent) -> None:
        """A tick found the previous pass still running: say so once, not per tick."""
        self.skipped_ticks += 1
        if self.overrunning:
            return
        self.overrunning = True
        running = time.monotonic() - self._pass_started if self._in_flight is not None else 0.0
        log.warning("billing passes overrun the %d s interval: the current pass has run "
                    "%.0f s; ticks are skipped until passes fit again (only this line is "
                    "logged)", self.interval, running)

    def _pass_ended(self, seconds: float) -> None:
        if seconds > self.interval and not self.overrunning:
            self.overrunning = True
            log.warning("billing passes overrun the %d s interval: a pass took %.1f s",
                        self.interval, seconds)
        elif self.overrunning and seconds <= self.interval:
            log.info("billing passes fit the %d s interval again (last took %.1f s; %d ticks "
                     "were skipped meanwhile)", self.interval, seconds, self.skipped_ticks)
            self.overrunning = False
            self.skipped_ticks = 0
        else:
            log.debug("billing pass took %.2f s", seconds)

    def startService(self) -> None:
        super().startService()
        self.scheduler = TwistedScheduler(reactor=self.reactor, timezone=UTC,
                                          logger=SCHEDULER_LOG)
        self.scheduler.add_listener(self._tick_skipped, EVENT_JOB_MAX_INSTANCES)
        self.scheduler.add_job(self._job, "interval", seconds=self.interval, id=JOB_ID,
                               max_instances=1, coalesce=True, misfire_grace_time=None,
                               next_run_time=datetime.now(UTC))
        for name, seconds, fn in self.periodic:
            self.scheduler.add_job(self._periodic_job, "interval", args=(name, fn),
                                   seconds=seconds, id=name, max_instances=1, coalesce=True,
                                   misfire_grace_time=None)
        self.scheduler.start()
        if self.pending_poll > 0:
            self._poller = task.LoopingCall(self._poll_pending)
            self._poller.clock = self.reactor
            self._poller.start(self.pending_poll, now=False)

    def _poll_pending(self) -> Any:
        if self._in_flight is not None or not self.running:
            return None

        def found(pending: bool) -> None:
            if pending and self.running:
                self._kick()

        return self.loop.dbpool.run(thd_unrated_usage).addCallbacks(
            found, lambda f: log.debug("pending-usage check failed: %s", f.getErrorMessage()))

    def kick(self) -> None:
        """Run a pass as soon as possible (thread-safe; coalesces with one already queued)."""
        if self.scheduler is None or not self.running:
            return
        self.reactor.callFromThread(self._kick)

    def _kick(self) -> None:
        if self._in_flight is not None:
            # max_instances=1 would drop a run asked for now; ask again when this one ends.
            self._again = True
            return
        if self.scheduler is not None and self.scheduler.running:
            try:
                self.scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC))
            except Exception:
                log.exception("cannot schedule a billing pass")

    def stopService(self) -> Any:
        super().stopService()
        if self._poller is not None and self._poller.running:
            self._poller.stop()
        self._poller = None
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.scheduler = None
        d: defer.Deferred[Any] = defer.succeed(None)
        if self._in_flight is not None:
            d = defer.Deferred()
            self._in_flight.addBoth(lambda r: d.callback(None))

        def close(_: Any) -> Any:
            return defer.gatherResults([defer.maybeDeferred(c) for c in self.closers],
                                       consumeErrors=True)

        return d.addCallback(close)


def thd_unrated_usage(session: Session) -> bool:
    """Whether any usage delta waits to be rated (one index probe on (rated, id))."""
    return session.scalar(select(UsageDeltaRow.id).where(UsageDeltaRow.rated == false())
                          .limit(1)) is not None


def notifying_sink(notify: Callable[[], None]) -> UsageSink:
    """Accounting's usage sink that also calls ``notify`` once the deltas are committed.

    Wire ``notify`` to :meth:`BillingService.kick`; the charge then follows
    the Interim-Update within about a second.
    """

    def sink(session: Session, deltas: Sequence[UsageDelta]) -> None:
        thd_record_usage(session, deltas)
        if deltas:
            event.listen(session, "after_commit", lambda _s: notify(), once=True)

    return sink
