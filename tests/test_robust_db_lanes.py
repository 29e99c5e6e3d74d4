"""core.db.pool: auth's own lane (issue 12 point 2) and outages noticed once (core.db.outage)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
import pytest_twisted
from sqlalchemy import Engine
from twisted.internet import defer, reactor, threads
from twisted.internet.task import Clock

from core.db.engine import make_engine
from core.db.outage import OutageTracker
from core.db.pool import DBPool
from core.errors import DatabaseUnavailable


@pytest_twisted.inlineCallbacks
def test_auth_jobs_go_first_and_keep_a_thread_while_accounting_fills_the_rest(
        engine: Engine):  # type: ignore[no-untyped-def]
    """Busy threads and a queue of other jobs: an auth job starts next (and at once if N>1)."""
    pool = DBPool(engine)
    pool.start()
    release = threading.Event()
    order: list[str] = []

    def blocker(session: Any, name: str) -> None:
        release.wait(10)
        order.append(name)

    def quick(session: Any, name: str) -> None:
        order.append(name)

    try:
        busy = [pool.run(blocker, f"acct-busy-{i}") for i in range(pool.threads)]
        queued = [pool.run(quick, f"acct-queued-{i}") for i in range(5)]
        auth = pool.auth.run(quick, "auth")
        if pool.threads >= 2:
            # Accounting may fill all threads but one: that one answers auth at once.
            yield auth
            assert order == ["auth"]
        release.set()
        yield defer.gatherResults([*busy, *queued, auth])
        first_quick = next(n for n in order if not n.startswith("acct-busy"))
        assert first_quick == "auth"
    finally:
        release.set()
        yield threads.deferToThread(lambda: None)
        pool.stop()


def test_outage_is_logged_once_at_start_and_once_at_end(caplog: pytest.LogCaptureFixture) -> None:
    """Many failures, one WARNING; the first success, one more; jobs in between are counted."""
    clock = Clock()
    tracker = OutageTracker(clock, retry_interval=2.0)
    seen: list[bool] = []
    tracker.listen(seen.append)
    with caplog.at_level(logging.WARNING, logger="core.db.outage"):
        tracker.failed("(2003, refused)")
        assert not tracker.should_try()  # fail fast between probes
        for _ in range(100):
            tracker.failed("still unreachable")
        clock.advance(2.5)
        assert tracker.should_try() and not tracker.should_try()  # one probe per interval
        clock.advance(10)
        tracker.succeeded()
        tracker.succeeded()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "unreachable ((2003, refused))" in lines[0]
    assert "reachable again after 12.5 s (101 database jobs failed" in lines[1]
    assert seen == [True, False] and tracker.outages == 1 and not tracker.down


def ping(session: Any) -> int:
    from sqlalchemy import text

    return int(session.execute(text("SELECT 1")).scalar_one())


@pytest_twisted.inlineCallbacks
def test_jobs_fail_at_once_during_an_outage_without_tracebacks(
        caplog: pytest.LogCaptureFixture):  # type: ignore[no-untyped-def]
    """A database on a closed port: one real attempt, then immediate DatabaseUnavailable."""
    engine = make_engine("mysql+pymysql://radbill@127.0.0.1:1/none", connect_timeout=1)
    pool = DBPool(engine, reactor, threads=2)  # type: ignore[arg-type]
    pool.start()
    try:
        with caplog.at_level(logging.DEBUG):
            for _ in range(2):
                with pytest.raises(DatabaseUnavailable):
                    yield pool.run(ping)
            assert pool.outage.down and pool.outage.failures == 2
            ran: list[int] = []
            d = pool.run(lambda s: ran.append(ping(s)))
            assert d.called and not ran  # failed before reaching a thread
            d.addErrback(lambda f: f.trap(DatabaseUnavailable))
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "database unreachable" in warnings[0].getMessage()
        assert not any(r.exc_info for r in caplog.records)
    finally:
        pool.stop()


def test_a_hung_database_is_an_outage_after_read_timeout() -> None:
    """MariaDB that stops answering (SIGSTOP, faked by a frozen proxy) fails within read_timeout."""
    import time

    from sqlalchemy.engine import make_url

    from core.db.pool import run_in_session
    from tests.conftest import MARIADB_URL
    from tests.tcp_proxy import CuttableProxy

    if not MARIADB_URL:
        pytest.skip("RADBILL_TEST_DATABASE_URL not set")
    real = make_url(MARIADB_URL)
    proxy = CuttableProxy((real.host or "127.0.0.1", real.port or 3306))
    proxy.resume()
    url = MARIADB_URL.replace(f"{real.host}:{real.port or 3306}", f"127.0.0.1:{proxy.port}")
    engine = make_engine(url, pool_size=1, connect_timeout=2, read_timeout=2)
    try:
        from sqlalchemy.orm import sessionmaker

        factory = sessionmaker(engine)
        assert run_in_session(factory, ping) == 1
        proxy.freeze()
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable):
            run_in_session(factory, ping)
        assert time.monotonic() - started < 15  # read_timeout (and one retry), not forever
    finally:
        proxy.cut()
        engine.dispose()
