"""Group commit: Accounting-Requests that arrive within a few milliseconds share one
transaction, and each is answered only after that transaction committed.

RFC 2866 wants a record stored before it is acknowledged; a commit per packet
would make the database's log flush the bottleneck. The committer queues
records, and every ``window`` seconds (or when ``max_batch`` are waiting, or as
soon as the previous commit finished) hands a batch to one ``DBPool.run``.

Records that touch the same row (same unique id) are never in two
transactions at once, and stay in arrival order; an Accounting-On/Off runs
alone, after everything that arrived before it. So concurrent batches
(``max_in_flight`` > 1, for MariaDB) cannot deadlock on each other's rows.

When the database is unreachable, a commit times out, or it fails with an
operational error, the batch goes to the spool (fsync'ed) and is acknowledged
from there; the committer then stays in spool mode, sending everything to the
spool in order, until the replayer has put the whole spool into the database.
A record the database refuses on its own (not an outage) is retried alone;
if it still fails it gets no answer, so the NAS resends, and it is logged.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc as sa_exc
from twisted.internet import defer
from twisted.python.failure import Failure

from accounting.errors import CommitTimeout, RecordRejected
from accounting.records import AcctRecord
from accounting.spool import AsyncSpool
from accounting.store import AcctPolicy, ApplyResult, thd_apply_records
from billing.usage import UsageSink
from core.db.pool import DBPool
from core.errors import DatabaseUnavailable

log = logging.getLogger(__name__)


SLOW_COMMIT = 1.0  # seconds: worth a warning, NASes retransmit after a few


class Mode(enum.StrEnum):
    DATABASE = "database"
    SPOOL = "spool"


@dataclass(frozen=True)
class CommitReceipt:
    """A record is safe: committed to the database, or fsync'ed to the spool."""

    in_database: bool
    result: ApplyResult | None = None


@dataclass
class _Pending:
    record: AcctRecord
    deferred: defer.Deferred[CommitReceipt]


def is_outage(exc: BaseException) -> bool:
    """The database (not this record) is the problem: spool and replay later."""
    if isinstance(exc, DatabaseUnavailable | CommitTimeout | defer.TimeoutError
                  | defer.CancelledError | sa_exc.TimeoutError | sa_exc.DisconnectionError
                  | OSError):
        return True
    if isinstance(exc, sa_exc.IntegrityError | sa_exc.DataError | sa_exc.ProgrammingError
                  | sa_exc.NotSupportedError):
        return False
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError
                  | sa_exc.InternalError):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


class GroupCommitter:
    def __init__(self, dbpool: DBPool, clock: Any, spool: AsyncSpool,
                 policy: AcctPolicy, usage_sink: UsageSink | None = None, *,
                 window: float = 0.005, max_batch: int = 512, max_in_flight: int = 1,
                 commit_timeout: float = 5.0) -> None:
        self.dbpool = dbpool
        self.clock = clock
        self.spool = spool
        self.policy = policy
        self.usage_sink = usage_sink
        self.window = max(window, 0.0)
        self.max_batch = max(max_batch, 1)
        self.max_in_flight = max(max_in_flight, 1)
        self.commit_timeout = commit_timeout
        self.mode = Mode.DATABASE
        self.batches = 0  # transactions (or spool writes) done, for tests and the bench
        self._queue: deque[_Pending] = deque()
        self._busy: Counter[str] = Counter()
        self._in_flight = 0
        self._timer: Any = None
        self._idle_waiters: list[defer.Deferred[None]] = []

    # -- public --------------------------------------------------------------------------

    def submit(self, record: AcctRecord) -> defer.Deferred[CommitReceipt]:
        """Queue a record; fires once it is committed or spooled, errbacks if neither."""
        d: defer.Deferred[CommitReceipt] = defer.Deferred()
        self._queue.append(_Pending(record, d))
        if len(self._queue) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = self.clock.callLater(self.window, self._on_timer)
        return d

    @property
    def idle(self) -> bool:
        return not self._queue and self._in_flight == 0

    @property
    def queued(self) -> int:
        return len(self._queue)

    def enter_spool_mode(self, reason: str) -> None:
        if self.mode is not Mode.SPOOL:
            log.warning("accounting: database unavailable (%s); writing accounting to the spool "
                        "%s until it is back", reason, self.spool.path)
            self.mode = Mode.SPOOL

    def leave_spool_mode(self) -> None:
        if self.mode is not Mode.DATABASE:
            log.info("accounting: spool replayed, writing to the database again")
            self.mode = Mode.DATABASE
            self._flush()

    def wait_idle(self) -> defer.Deferred[None]:
        """Fires when nothing is queued or in flight (shutdown, tests)."""
        if self.idle:
            return defer.succeed(None)
        self._flush()
        d: defer.Deferred[None] = defer.Deferred()
        self._idle_waiters.append(d)
        return d

    # -- scheduling -------------------------------------------------------------------------

    def _on_timer(self) -> None:
        self._timer = None
        self._flush()

    def _flush(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        while self._queue and self._in_flight < self.max_in_flight:
            batch = self._take_batch()
            if not batch:
                break
            self._dispatch(batch)

    def _take_batch(self) -> list[_Pending]:
        """The next batch: in order, no key already in flight, On/Off alone."""
        batch: list[_Pending] = []
        if self._busy[NAS_EVENT]:
            return batch  # an Accounting-On/Off in flight: everything after it waits
        keep: deque[_Pending] = deque()
        blocked: set[str] = set()
        while self._queue:
            item = self._queue.popleft()
            rec = item.record
            if rec.is_nas_event:
                if not batch and not keep and self._in_flight == 0:
                    batch.append(item)
                else:
                    keep.append(item)
                break
            key = rec.conflict_key
            if len(batch) >= self.max_batch or key in blocked or self._busy[key]:
                blocked.add(key)
                keep.append(item)
                continue
            batch.append(item)
        keep.extend(self._queue)
        self._queue = keep
        return batch

    def _dispatch(self, batch: list[_Pending]) -> None:
        self._in_flight += 1
        for item in batch:
            self._busy[_key(item.record)] += 1
        if self.mode is Mode.SPOOL:
            d = self._to_spool(batch)
        else:
            d = self._to_database(batch)
        d.addBoth(self._finished, batch)

    def _finished(self, result: Any, batch: list[_Pending]) -> None:
        if isinstance(result, Failure):
            log.error("accounting: internal error in a group commit: %s",
                      result.getErrorMessage(), exc_info=result.value)
            for item in batch:
                if not item.deferred.called:
                    item.deferred.errback(result)
        self._in_flight -= 1
        self.batches += 1
        for item in batch:
            key = _key(item.record)
            self._busy[key] -= 1
            if self._busy[key] <= 0:
                del self._busy[key]
        if self._queue:
            self._flush()
        if self.idle:
            waiters, self._idle_waiters = self._idle_waiters, []
            for w in waiters:
                w.callback(None)

    # -- the two destinations ---------------------------------------------------------------

    def _run_transaction(self, records: Sequence[AcctRecord]) -> defer.Deferred[list[ApplyResult]]:
        d = self.dbpool.run(thd_apply_records, list(records), self.policy, self.usage_sink)
        if self.commit_timeout > 0:
            d.addTimeout(self.commit_timeout, self.clock)
        return d

    @defer.inlineCallbacks
    def _to_database(self, batch: list[_Pending]):
        started = self.clock.seconds()
        try:
            results = yield self._run_transaction([p.record for p in batch])
            took = self.clock.seconds() - started
            if took > SLOW_COMMIT:
                log.warning("accounting: a group commit of %d records took %.1f s",
                            len(batch), took)
        except Exception as exc:
            if is_outage(exc):
                self.enter_spool_mode(_describe(exc))
                yield self._to_spool(batch)
                return
            if len(batch) > 1:
                log.warning("accounting: a group commit of %d records failed (%s); "
                            "retrying them one by one", len(batch), _describe(exc))
                for item in batch:
                    if self.mode is Mode.SPOOL:
                        yield self._to_spool([item])
                    else:
                        yield self._to_database([item])
                return
            item = batch[0]
            log.error("accounting: record %s (%s from NAS %s) refused by the database: %s; "
                      "not acknowledged", item.record.unique_id or item.record.conflict_key,
                      item.record.user_name, item.record.nas_identity, _describe(exc))
            item.deferred.errback(Failure(RecordRejected(_describe(exc))))
            return
        for item, result in zip(batch, results, strict=True):
            item.deferred.callback(CommitReceipt(True, result))

    def _to_spool(self, batch: list[_Pending]) -> defer.Deferred[None]:
        d = self.spool.append([p.record for p in batch])

        def spooled(_: list[int]) -> None:
            for item in batch:
                item.deferred.callback(CommitReceipt(False, None))

        def failed(f: Failure) -> None:
            log.error("accounting: %d records could be stored neither in the database nor in "
                      "the spool (%s); not acknowledged, the NAS will resend",
                      len(batch), f.getErrorMessage())
            for item in batch:
                item.deferred.errback(f)

        return d.addCallbacks(spooled, failed)


NAS_EVENT = "nas-event"


def _key(record: AcctRecord) -> str:
    return NAS_EVENT if record.is_nas_event else record.conflict_key


def _describe(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    if orig is not None:
        return f"{type(exc).__name__}: {orig}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
