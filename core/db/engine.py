"""Engines for SQLite (embedded) and MariaDB (production), set up the way each needs."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import PoolResetState, StaticPool

from core.errors import ConfigError


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, *, pool_size: int = 8, pool_recycle: int = 3600,
                connect_timeout: int = 5, echo: bool = False,
                read_timeout: int | None = None) -> Engine:
    """Build the engine: WAL and foreign keys on SQLite, InnoDB and READ COMMITTED on MariaDB.

    READ COMMITTED on MariaDB keeps InnoDB from taking gap locks on the pool
    and ledger range scans, the deadlock source that sinks FreeRADIUS's stock
    sqlippool under REPEATABLE READ.

    No ``pool_pre_ping``: it cost a round trip at the start of every
    transaction (two per new login on the RADIUS path). A connection the
    server dropped fails its first statement with 2006/2013 instead;
    SQLAlchemy then invalidates it and every older pooled connection, and
    ``DBPool`` retries the transaction once on a fresh one
    (core.db.pool.is_transient; tests/test_pools_lease.py kills a
    connection to show it).
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"database.url = {url!r}: not a database URL") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, echo)
    kwargs: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": 0,
        "pool_pre_ping": False,
        "pool_reset_on_return": None,  # _roll_back_only_when_needed does it
        "pool_recycle": pool_recycle,
        "isolation_level": "READ COMMITTED",
        "connect_args": {"connect_timeout": connect_timeout, "charset": "utf8mb4"},
        "echo": echo,
    }
    if read_timeout:
        # A hung server (SIGSTOP, a full disk) otherwise blocks a DB thread forever; with a
        # timeout the statement fails as a lost connection (2013) and the outage is seen.
        kwargs["connect_args"].update(read_timeout=read_timeout, write_timeout=read_timeout)
    engine = create_engine(url, **kwargs)
    _roll_back_only_when_needed(engine)
    return engine


# PyMySQL's copy of the server status flags, refreshed by every OK packet.
SERVER_STATUS_IN_TRANS = 0x0001


def _mark_dirty(dbapi_conn: Any) -> None:
    status = getattr(dbapi_conn, "server_status", None)
    if isinstance(status, int):
        dbapi_conn.server_status = status | SERVER_STATUS_IN_TRANS


def _roll_back_only_when_needed(engine: Engine) -> None:
    """Skip the ROLLBACK on return to the pool when the transaction already ended.

    SQLAlchemy's default rolls back every connection it takes back, even
    right after a successful COMMIT: one more round trip per transaction, a
    fifth of an allocation's and a third of a credential load's. Here a
    connection is rolled back on return unless the last thing that happened
    on it was a successful COMMIT or ROLLBACK: every checkout, COMMIT and
    ROLLBACK first marks it in-transaction, and only the server's OK packet
    for a COMMIT or ROLLBACK (which PyMySQL stores in ``server_status``)
    clears the mark. A failed COMMIT leaves the mark, so it is rolled back as
    before; statements run after a COMMIT begin a SQLAlchemy transaction,
    which SQLAlchemy rolls back itself on close. A driver without
    ``server_status`` is always rolled back.
    """

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, _record: object, _proxy: object) -> None:
        _mark_dirty(dbapi_conn)

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(conn: Connection) -> None:
        if not conn.closed and not conn.invalidated:
            _mark_dirty(conn.connection.dbapi_connection)

    @event.listens_for(engine, "reset")
    def _on_reset(dbapi_conn: Any, _record: object, state: PoolResetState) -> None:
        if state.terminate_only or state.transaction_was_reset:
            return
        status = getattr(dbapi_conn, "server_status", None)
        if isinstance(status, int) and not status & SERVER_STATUS_IN_TRANS:
            return
        dbapi_conn.rollback()


def _sqlite_engine(url: str, database: str | None, echo: bool) -> Engine:
    memory = not database or database == ":memory:"
    if not memory:
        Path(database).parent.mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]
    engine = create_engine(
        url,
        echo=echo,
        connect_args={"check_same_thread": False, "timeout": 30,
                      "isolation_level": None},
        poolclass=StaticPool if memory else None,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before accounting acknowledges it.
            cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # pysqlite's own transaction handling is off (isolation_level=None);
        # BEGIN IMMEDIATE takes the write lock up front so two writers queue
        # instead of failing with "database is locked" halfway through.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
