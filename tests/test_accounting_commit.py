"""The group committer on a task.Clock with a recording DB pool: batching, ordering, fallbacks."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import DataError, OperationalError
from twisted.internet import defer, task
from twisted.python.failure import Failure

from accounting.commit import CommitReceipt, GroupCommitter, Mode
from accounting.errors import RecordRejected
from accounting.records import AcctRecord, AcctStatus
from accounting.store import AcctPolicy, ApplyResult
from core.errors import DatabaseUnavailable
from tests.test_accounting_support import rec

START, INTERIM = AcctStatus.START, AcctStatus.INTERIM


class RecordingPool:
    """Stands in for DBPool: each run() is a transaction the test completes by hand."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[AcctRecord], defer.Deferred[Any]]] = []

    def run(self, fn: Any, records: list[AcctRecord], *args: Any, **kw: Any) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        self.calls.append((records, d))
        return d

    def commit(self, index: int = 0) -> None:
        records, d = self.calls.pop(index)
        d.callback([ApplyResult(r.unique_id, "created") for r in records])

    def fail(self, exc: Exception, index: int = 0) -> None:
        _, d = self.calls.pop(index)
        d.errback(Failure(exc))


class RecordingSpool:
    path = "/test/accounting.spool"

    def __init__(self) -> None:
        self.lines: list[AcctRecord] = []

    def append(self, records: list[AcctRecord]) -> defer.Deferred[list[int]]:
        start = len(self.lines)
        self.lines.extend(records)
        return defer.succeed(list(range(start + 1, len(self.lines) + 1)))


def make(window: float = 0.005, **kw: Any) -> tuple[GroupCommitter, RecordingPool,
                                                     RecordingSpool, task.Clock]:
    clock = task.Clock()
    pool, spool = RecordingPool(), RecordingSpool()
    committer = GroupCommitter(pool, clock, spool, AcctPolicy(), None,  # type: ignore[arg-type]
                               window=window, **kw)
    return committer, pool, spool, clock


def outcomes(ds: list[defer.Deferred[Any]]) -> list[Any]:
    out: list[Any] = []
    for d in ds:
        d.addBoth(out.append)
    return out


def test_requests_in_one_window_share_a_transaction() -> None:
    """Records arriving within the window go in one transaction; none is answered before it."""
    committer, pool, _, clock = make(window=0.005)
    ds = [committer.submit(rec(START, sid=f"s{i}")) for i in range(3)]
    clock.advance(0.004)
    ds.append(committer.submit(rec(START, sid="s3")))
    assert pool.calls == []
    clock.advance(0.001)
    assert [len(c[0]) for c in pool.calls] == [4]
    results = outcomes(ds)
    assert results == []
    pool.commit()
    assert all(isinstance(r, CommitReceipt) and r.in_database for r in results)
    assert len(results) == 4


def test_full_batch_goes_at_once_and_waiters_form_the_next() -> None:
    """max_batch records flush without waiting; records arriving meanwhile form the next batch."""
    committer, pool, _, _ = make(window=10.0, max_batch=3)
    for i in range(3):
        committer.submit(rec(START, sid=f"a{i}"))
    assert [len(c[0]) for c in pool.calls] == [3]
    committer.submit(rec(START, sid="b0"))
    committer.submit(rec(START, sid="b1"))
    pool.commit()
    assert [len(c[0]) for c in pool.calls] == [2]


def test_same_session_never_in_two_transactions() -> None:
    """With two transactions in flight, a session's next record waits for its previous one."""
    committer, pool, _, clock = make(window=0.0, max_in_flight=2)
    committer.submit(rec(START, sid="x"))
    clock.advance(0)
    committer.submit(rec(INTERIM, sid="x", t=60, session_time=60))
    committer.submit(rec(START, sid="y"))
    clock.advance(0)
    assert [[r.session_id for r in c[0]] for c in pool.calls] == [["x"], ["y"]]
    pool.commit(0)
    assert [[r.session_id for r in c[0]] for c in pool.calls] == [["y"], ["x"]]
    assert pool.calls[1][0][0].status == INTERIM


def test_accounting_on_runs_alone_after_earlier_records() -> None:
    """An Accounting-On waits for what came before it and runs in a transaction of its own."""
    committer, pool, _, clock = make(window=0.0, max_in_flight=2)
    committer.submit(rec(START, sid="a"))
    clock.advance(0)
    committer.submit(rec(AcctStatus.ON))
    committer.submit(rec(START, sid="b"))
    clock.advance(0)
    assert [[r.status for r in c[0]] for c in pool.calls] == [[START]]
    pool.commit()
    assert [[r.status for r in c[0]] for c in pool.calls] == [[AcctStatus.ON]]
    pool.commit()
    assert [[r.session_id for r in c[0]] for c in pool.calls] == [["b"]]


@pytest.mark.parametrize("error", [
    DatabaseUnavailable("database unreachable"),
    OperationalError("SELECT", {}, Exception("2013 lost connection")),
])
def test_outage_spools_and_stays_in_spool_mode(error: Exception) -> None:
    """A failed commit for an outage spools the batch, answers it, and spools what follows."""
    committer, pool, spool, clock = make()
    ds = [committer.submit(rec(START, sid=f"o{i}")) for i in range(2)]
    clock.advance(0.005)
    results = outcomes(ds)
    pool.fail(error)
    assert [r.in_database for r in results] == [False, False]
    assert committer.mode is Mode.SPOOL and len(spool.lines) == 2
    later = outcomes([committer.submit(rec(START, sid="o2"))])
    clock.advance(0.005)
    assert pool.calls == [] and len(spool.lines) == 3 and later[0].in_database is False
    committer.leave_spool_mode()
    committer.submit(rec(START, sid="o3"))
    clock.advance(0.005)
    assert len(pool.calls) == 1


def test_commit_timeout_spools() -> None:
    """A transaction that does not finish within commit_timeout is spooled and answered."""
    committer, _, spool, clock = make(commit_timeout=2.0)
    results = outcomes([committer.submit(rec(START, sid="slow"))])
    clock.advance(0.005)
    clock.advance(1.9)
    assert results == []
    clock.advance(0.2)
    assert results[0].in_database is False and committer.mode is Mode.SPOOL
    assert [r.session_id for r in spool.lines] == ["slow"]


def test_refused_record_is_isolated() -> None:
    """A data error fails the group; each record is retried alone and only the culprit fails."""
    committer, pool, spool, clock = make()
    ds = [committer.submit(rec(START, sid=s)) for s in ("ok1", "bad", "ok2")]
    clock.advance(0.005)
    results = outcomes(ds)
    pool.fail(DataError("INSERT", {}, Exception("Out of range value")))
    pool.commit()
    pool.fail(DataError("INSERT", {}, Exception("Out of range value")))
    pool.commit()
    assert results[0].in_database and results[2].in_database
    assert isinstance(results[1], Failure) and results[1].check(RecordRejected)
    assert committer.mode is Mode.DATABASE and spool.lines == []
    assert committer.idle


def test_wait_idle_fires_when_drained() -> None:
    """wait_idle fires only once nothing is queued or in flight."""
    committer, pool, _, _ = make()
    committer.submit(rec(START, sid="w"))
    fired = outcomes([committer.wait_idle()])
    assert fired == [] and len(pool.calls) == 1
    pool.commit()
    assert fired == [None]
