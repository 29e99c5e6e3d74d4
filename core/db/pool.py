"""Where the reactor meets the database: a thread pool that runs ``thd_*`` functions.

Modelled on Buildbot's ``master/buildbot/db/pool.py``. Each call opens one
Session in a transaction, hands it to the function, commits on return and
rolls back on error. Functions return plain frozen dataclasses, never ORM
objects, so nothing lazy crosses back into the reactor thread.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet import defer
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from core.db.outage import OutageTracker
from core.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# MySQL/MariaDB error codes worth one more try: deadlock, lock wait timeout,
# server gone away, lost connection, can't connect, and a Galera node that is not
# part of the primary component (1047, "WSREP has not yet prepared node").
TRANSIENT_MYSQL = {1047, 1205, 1213, 2003, 2006, 2013}
UNREACHABLE_MYSQL = {1047, 2003, 2006, 2013}
# Deadlock, which is also how Galera reports a transaction that lost certification
# against a write committed on another node: retried up to CONFLICT_RETRIES times,
# with a backoff that doubles from CONFLICT_BACKOFF up to CONFLICT_BACKOFF_MAX,
# jittered so two nodes that conflicted do not collide again in step.
DEADLOCK = 1213
CONFLICT_RETRIES = 6
CONFLICT_BACKOFF = 0.005
CONFLICT_BACKOFF_MAX = 0.2


def mysql_errno(exc: BaseException) -> int | None:
    args = getattr(getattr(exc, "orig", None), "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def conflict_delay(attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...) of a deadlocked transaction."""
    base = min(CONFLICT_BACKOFF_MAX, CONFLICT_BACKOFF * 2 ** (attempt - 1))
    return base * random.uniform(0.5, 1.0)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError):
        orig = exc.orig
        args = getattr(orig, "args", ())
        if args and isinstance(args[0], int):
            return args[0] in TRANSIENT_MYSQL
        return "database is locked" in str(orig)
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def is_unreachable(exc: BaseException) -> bool:
    """The database is not there at all (as opposed to a conflict between transactions)."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        args = getattr(exc.orig, "args", ())
        if args and isinstance(args[0], int):
            return args[0] in UNREACHABLE_MYSQL
    return False


def run_in_session(factory: sessionmaker[Session], fn: Callable[..., T], *args: Any,
                   retries: int = 1, **kwargs: Any) -> T:
    """Run ``fn(session, ...)`` in one transaction, retrying transient errors.

    Other transient errors get ``retries`` more tries; a deadlock (or a Galera
    certification conflict) up to CONFLICT_RETRIES with a bounded backoff,
    unless ``retries`` is 0.
    """
    attempt = 0
    while True:
        try:
            with factory.begin() as session:
                return fn(session, *args, **kwargs)
        except (OperationalError, DBAPIError) as exc:
            deadlock = mysql_errno(exc) == DEADLOCK
            limit = max(retries, CONFLICT_RETRIES) if deadlock and retries > 0 else retries
            if attempt >= limit or not is_transient(exc):
                if is_unreachable(exc):
                    raise DatabaseUnavailable(f"database unreachable: {exc.orig}") from exc
                raise
            attempt += 1
            if deadlock:
                log.info("deadlock or certification conflict, retry %d of %d: %s", attempt,
                         limit, exc.orig)
                time.sleep(conflict_delay(attempt))
            elif is_unreachable(exc):
                # core.db.outage logs the outage once; a line per retry would flood the log.
                log.debug("database unreachable, retry %d: %s", attempt, exc.orig)
                time.sleep(0.01 * attempt)
            else:
                log.warning("transient database error, retry %d: %s", attempt, exc.orig)
                time.sleep(0.01 * attempt)


_Job = tuple[Callable[..., Any], tuple[Any, ...], int, dict[str, Any], "defer.Deferred[Any]"]


class AuthLane:
    """The DBPool seen from the login path: its jobs go first and have a thread of their own.

    Under heavy accounting every DB thread was busy committing, and Access-Requests waited
    behind the queue until the NAS gave up (issue 12: 222 of 319 timed out). Jobs run
    through this lane are started before any waiting job of the other lane, and with two
    or more threads the other lane never takes the last free one. Same interface as DBPool
    for what the login path uses (``run``, ``run_sync``, ``engine``).
    """

    def __init__(self, pool: DBPool) -> None:
        self.pool = pool
        self.engine = pool.engine

    def run(self, fn: Callable[..., T], *args: Any, retries: int = 1,
            **kwargs: Any) -> defer.Deferred[T]:
        return self.pool._submit(True, fn, args, retries, kwargs)

    def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self.pool.run_sync(fn, *args, **kwargs)


class DBPool:
    """One thread pool sized to the engine's connections; SQLite gets one writer.

    Jobs are handed to the threads by this class, not queued in the ThreadPool, so that
    the login path's jobs (``DBPool.auth``) can go first (AuthLane), and so that, during an
    outage (core.db.outage), jobs fail at once instead of each waiting for a connect
    timeout.
    """

    def __init__(self, engine: Engine, reactor: IReactorThreads | None = None,
                 threads: int | None = None, outage: OutageTracker | None = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor
            reactor = default_reactor  # type: ignore[assignment]
        self.engine = engine
        self.reactor = reactor
        self.session_factory = sessionmaker(engine, expire_on_commit=False)
        if threads is None:
            threads = 1 if engine.dialect.name == "sqlite" else engine.pool.size()  # type: ignore[attr-defined]
        self.threads = threads
        self.threadpool = ThreadPool(minthreads=1, maxthreads=threads, name="radbill-db")
        self.outage = outage if outage is not None else OutageTracker(reactor)  # type: ignore[arg-type]
        self.auth = AuthLane(self)
        self._busy = 0
        self._waiting: tuple[deque[_Job], deque[_Job]] = (deque(), deque())  # (other, auth)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self.threadpool.start()
            self._started = True

    def stop(self) -> None:
        if self._started:
            self._started = False
            for queue in self._waiting:
                while queue:
                    queue.popleft()[4].errback(Failure(DatabaseUnavailable(
                        "the database thread pool is stopped")))
            self.threadpool.stop()
        self.engine.dispose()

    def run(self, fn: Callable[..., T], *args: Any, retries: int = 1,
            **kwargs: Any) -> defer.Deferred[T]:
        """Run ``fn(session, *args)`` in a DB thread; fire with its result.

        After stop() this fails at once: work queued on a stopped ThreadPool
        would never run, and whoever waits for it (a billing pass, a shutdown)
        would wait forever.
        """
        return self._submit(False, fn, args, retries, kwargs)

    def _submit(self, auth: bool, fn: Callable[..., Any], args: tuple[Any, ...], retries: int,
                kwargs: dict[str, Any]) -> defer.Deferred[Any]:
        if not self._started:
            return defer.fail(DatabaseUnavailable("the database thread pool is stopped"))
        if not self.outage.should_try():
            self.outage.failed("still unreachable")
            return defer.fail(DatabaseUnavailable(
                "database unreachable (an outage is under way; retrying)"))
        d: defer.Deferred[Any] = defer.Deferred()
        job = (fn, args, retries, kwargs, d)
        if self._busy < self._limit(auth) and not self._waiting[1] and \
                (auth or not self._waiting[0]):
            self._start(job)
        else:
            self._waiting[auth].append(job)
        return d

    def _limit(self, auth: bool) -> int:
        """Threads a lane may fill: the other lane leaves one for auth when there are two."""
        return self.threads if auth or self.threads < 2 else self.threads - 1

    def _start(self, job: _Job) -> None:
        fn, args, retries, kwargs, d = job
        self._busy += 1
        work = deferToThreadPool(self.reactor, self.threadpool, run_in_session,  # type: ignore[arg-type]
                                 self.session_factory, fn, *args, retries=retries, **kwargs)
        work.addBoth(self._finished, d)

    def _finished(self, result: Any, d: defer.Deferred[Any]) -> None:
        self._busy -= 1
        if isinstance(result, Failure):
            if result.check(DatabaseUnavailable):
                self.outage.failed(result.getErrorMessage())
            else:
                self.outage.succeeded()  # the database answered, if only with an error
        else:
            self.outage.succeeded()
        self._next()
        if isinstance(result, Failure):
            d.errback(result)
        else:
            d.callback(result)

    def _next(self) -> None:
        other, auth = self._waiting
        while auth and self._busy < self._limit(True):
            self._start(auth.popleft())
        while other and not auth and self._busy < self._limit(False):
            self._start(other.popleft())

    def probe(self) -> defer.Deferred[None] | None:
        """During an outage, try the database once (DBPoolService calls this periodically)."""
        if not self.outage.down or not self._started:
            return None
        from sqlalchemy import text

        def ping(session: Session) -> None:
            session.execute(text("SELECT 1"))

        return self.run(ping, retries=0).addErrback(lambda _: None)

    def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """The same transaction discipline, for the CLI and tests (no reactor)."""
        return run_in_session(self.session_factory, fn, *args, **kwargs)
