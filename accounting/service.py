"""accounting's long-running parts as a Twisted Service: spool replay and the stale sweeper.

Add it to the root MultiService after the DB pool and before the RADIUS
listeners: it opens (and, after a crash, recovers) the spool before the first
Accounting-Request arrives, and on shutdown it is stopped after the
listeners, so every request already received is committed or spooled first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from twisted.application import service
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime

from accounting.commit import GroupCommitter, Mode, is_outage
from accounting.hygiene import DEFAULT_CALL_AFTER, thd_close_stale
from accounting.spool import AsyncSpool, thd_replay_chunk, thd_skip_entry, thd_spool_position
from accounting.store import AcctPolicy
from billing.usage import UsageSink
from core.db.base import utcnow
from core.db.pool import DBPool

log = logging.getLogger(__name__)


class SpoolReplayer:
    """Puts the spool into the database, in order, exactly once, then rotates it."""

    def __init__(self, committer: GroupCommitter, spool: AsyncSpool, dbpool: DBPool,
                 policy: AcctPolicy, usage_sink: UsageSink | None, chunk: int = 500) -> None:
        self.committer = committer
        self.spool = spool
        self.dbpool = dbpool
        self.policy = policy
        self.usage_sink = usage_sink
        self.chunk = chunk
        self.replayed = 0
        self._running: defer.Deferred[None] | None = None

    @property
    def in_progress(self) -> defer.Deferred[None] | None:
        return self._running

    def pending(self) -> bool:
        return self.committer.mode is Mode.SPOOL or self.spool.appended_seq > 0

    def run_once(self) -> defer.Deferred[None]:
        if self._running is not None:
            return self._running
        if not self.pending():
            return defer.succeed(None)
        d = self._replay()

        def done(result: Any) -> Any:
            self._running = None
            return result

        d.addBoth(done)
        if not d.called:
            self._running = d
        return d

    @defer.inlineCallbacks
    def _replay(self):
        spool_id = self.spool.spool_id
        try:
            # Doubles as the probe: is the database back?
            position = yield self.dbpool.run(thd_spool_position, spool_id)
        except Exception as exc:
            if not is_outage(exc):
                log.error("accounting spool replay: %s", exc)
            return
        while True:
            entries = yield self.spool.read_after(position, self.chunk)
            if not entries:
                break
            try:
                progress = yield self.dbpool.run(thd_replay_chunk, spool_id, entries,
                                                 self.policy, self.usage_sink)
            except Exception as exc:
                if is_outage(exc):
                    log.info("accounting spool replay paused, database still unavailable: %s",
                             exc)
                    return
                position = yield self._replay_one_by_one(spool_id, entries, position)
                if position is None:
                    return
                continue
            self.replayed += progress.applied
            position = progress.last_seq
            if progress.applied:
                log.info("accounting spool: replayed up to line %d of %d", position,
                         self.spool.appended_seq)
        if position >= self.spool.appended_seq and self.spool.appends_in_flight == 0:
            self.committer.leave_spool_mode()
            if self.spool.appended_seq > 0:
                new_id = yield self.spool.rotate()
                log.info("accounting spool fully replayed; started spool %s", new_id)

    @defer.inlineCallbacks
    def _replay_one_by_one(self, spool_id: str, entries: list[Any], position: int):
        """A chunk failed for a reason other than an outage: find and set aside the culprit."""
        for seq, record in entries:
            try:
                progress = yield self.dbpool.run(thd_replay_chunk, spool_id, [(seq, record)],
                                                 self.policy, self.usage_sink)
                self.replayed += progress.applied
                position = progress.last_seq
            except Exception as exc:
                if is_outage(exc):
                    return None
                log.error("accounting spool: line %d (%s of %s) refused by the database, set "
                          "aside in %s: %s", seq, record.unique_id or record.conflict_key,
                          record.user_name, self.spool.file.rejected_path, exc)
                yield self.spool.reject(seq, record, str(exc))
                progress = yield self.dbpool.run(thd_skip_entry, spool_id, seq)
                position = progress.last_seq
        return position


class StaleSweeper:
    """Closes sessions that missed their Interim-Updates, unless the spool may hold news."""

    def __init__(self, committer: GroupCommitter, replayer: SpoolReplayer, dbpool: DBPool,
                 now: Callable[[], datetime] = utcnow,
                 call_after: timedelta | None = DEFAULT_CALL_AFTER) -> None:
        """``call_after``: an open call silent this long is closed (None: calls are left)."""
        self.call_after = call_after
        self.committer = committer
        self.replayer = replayer
        self.dbpool = dbpool
        self.now = now
        self.closed = 0

    @defer.inlineCallbacks
    def run_once(self):
        if self.replayer.pending():
            return 0
        try:
            count = yield self.dbpool.run(thd_close_stale, self.now(), self.call_after)
        except Exception as exc:
            log.warning("accounting: stale session sweep failed: %s", exc)
            return 0
        if count:
            self.closed += count
            log.info("accounting: closed %d stale sessions and calls (not heard of in time)",
                     count)
        return count


class StaleSweepService(service.Service):
    """The stale sweep on its own, for a process that runs it as a cluster singleton.

    Every node and worker keeps its own AccountingService (its spool is its
    own); the sweep reads and closes sessions of every node, so one process in
    the cluster runs it (core.cluster.leadership).
    """

    def __init__(self, sweeper: StaleSweeper, clock: IReactorTime,
                 interval: float = 60.0) -> None:
        self.sweeper = sweeper
        self.clock = clock
        self.interval = interval
        self._loop: task.LoopingCall | None = None

    def startService(self) -> None:
        super().startService()
        self._loop = task.LoopingCall(self.sweeper.run_once)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=True).addErrback(
            lambda f: log.error("accounting sweep loop failed: %s", f.getErrorMessage()))

    def stopService(self) -> None:  # type: ignore[override]
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None


class AccountingService(service.Service):
    def __init__(self, committer: GroupCommitter, spool: AsyncSpool, replayer: SpoolReplayer,
                 sweeper: StaleSweeper, clock: IReactorTime, replay_interval: float = 1.0,
                 sweep_interval: float | None = 60.0, shutdown_timeout: float = 10.0) -> None:
        """``sweep_interval=None``: the stale sweep runs elsewhere (StaleSweepService)."""
        self.committer = committer
        self.spool = spool
        self.replayer = replayer
        self.sweeper = sweeper
        self.clock = clock
        self.replay_interval = replay_interval
        self.sweep_interval = sweep_interval
        self.shutdown_timeout = shutdown_timeout
        self._loops: list[task.LoopingCall] = []

    def startService(self) -> None:
        self.spool.open()
        if self.spool.appended_seq > 0:
            log.warning("accounting spool %s holds %d records not known to be in the database; "
                        "replaying them before writing new ones", self.spool.path,
                        self.spool.appended_seq)
            self.committer.enter_spool_mode("spool not yet replayed")
        super().startService()
        loops = [(self.replayer.run_once, self.replay_interval)]
        if self.sweep_interval is not None:
            loops.append((self.sweeper.run_once, self.sweep_interval))
        for fn, interval in loops:
            loop = task.LoopingCall(fn)
            loop.clock = self.clock
            loop.start(interval, now=True).addErrback(
                lambda f: log.error("accounting loop failed: %s", f.getErrorMessage()))
            self._loops.append(loop)

    @defer.inlineCallbacks
    def stopService(self):
        super().stopService()
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops = []
        idle = self.committer.wait_idle()
        idle.addTimeout(self.shutdown_timeout, self.clock)
        try:
            yield idle
        except defer.TimeoutError:
            log.error("accounting: %d records still queued at shutdown (not acknowledged)",
                      self.committer.queued)
        if self.replayer.in_progress is not None:
            yield self.replayer.in_progress
        self.spool.close()
