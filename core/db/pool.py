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
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet import defer
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

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
            else:
                log.warning("transient database error, retry %d: %s", attempt, exc.orig)
                time.sleep(0.01 * attempt)


class DBPool:
    """One thread pool sized to the engine's connections; SQLite gets one writer."""

    def __init__(self, engine: Engine, reactor: IReactorThreads | None = None,
                 threads: int | None = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor
            reactor = default_reactor  # type: ignore[assignment]
        self.engine = engine
        self.reactor = reactor
        self.session_factory = sessionmaker(engine, expire_on_commit=False)
        if threads is None:
            threads = 1 if engine.dialect.name == "sqlite" else engine.pool.size()  # type: ignore[attr-defined]
        self.threadpool = ThreadPool(minthreads=1, maxthreads=threads, name="radbill-db")
        self._started = False

    def start(self) -> None:
        if not self._started:
            self.threadpool.start()
            self._started = True

    def stop(self) -> None:
        if self._started:
            self.threadpool.stop()
            self._started = False
        self.engine.dispose()

    def run(self, fn: Callable[..., T], *args: Any, retries: int = 1,
            **kwargs: Any) -> defer.Deferred[T]:
        """Run ``fn(session, *args)`` in a DB thread; fire with its result.

        After stop() this fails at once: work queued on a stopped ThreadPool
        would never run, and whoever waits for it (a billing pass, a shutdown)
        would wait forever.
        """
        if not self._started:
            return defer.fail(DatabaseUnavailable("the database thread pool is stopped"))
        return deferToThreadPool(self.reactor, self.threadpool, run_in_session,  # type: ignore[arg-type]
                                 self.session_factory, fn, *args, retries=retries, **kwargs)

    def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """The same transaction discipline, for the CLI and tests (no reactor)."""
        return run_in_session(self.session_factory, fn, *args, **kwargs)
