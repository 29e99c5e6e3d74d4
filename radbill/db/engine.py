"""Engines for SQLite (embedded) and MariaDB (production), set up the way each needs."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from radbill.errors import ConfigError


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, *, pool_size: int = 8, pool_recycle: int = 3600,
                connect_timeout: int = 5, echo: bool = False) -> Engine:
    """Build the engine: WAL and foreign keys on SQLite, InnoDB and READ COMMITTED on MariaDB.

    READ COMMITTED on MariaDB keeps InnoDB from taking gap locks on the pool
    and ledger range scans, the deadlock source that sinks FreeRADIUS's stock
    sqlippool under REPEATABLE READ.
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
        "pool_pre_ping": True,
        "pool_recycle": pool_recycle,
        "isolation_level": "READ COMMITTED",
        "connect_args": {"connect_timeout": connect_timeout, "charset": "utf8mb4"},
        "echo": echo,
    }
    return create_engine(url, **kwargs)


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
