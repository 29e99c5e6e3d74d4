"""The group commit's MariaDB statements, rendered per batch instead of per value.

Profiling the accounting bench (py-spy, bench/acct_bench.py) showed the DB
thread spending most of its time not in MariaDB but in layers around each
value: SQLAlchemy's ``construct_params`` and the UTCDateTime TypeDecorator
for every bind, PyMySQL's ``executemany`` re-parsing the INSERT and running
``escape_item`` -> ``escape_datetime`` (a ``str.format`` per timestamp) for
each of ~18 values per row, and on the way back SQLAlchemy's result
processors for the 33 columns of every locked row.

Here the same statements are written out once per batch: integers with
``int.__repr__``, NULL, booleans as 1/0, timestamps as microseconds since
1970-01-01 UTC added to that instant in SQL (what UTCDateTime stores: naive
UTC; plain DATETIME arithmetic, no session time zone involved; locked rows
are read back the same way, which also spares PyMySQL's slow DATETIME
parsing), and every string
through the connection's own ``escape`` (the function PyMySQL's mogrify
calls, which honours NO_BACKSLASH_ESCAPES); anything else also goes to that
``escape``. The text goes through SQLAlchemy's ``exec_driver_sql`` with
``no_parameters``, so errors are still wrapped as SQLAlchemy exceptions
(which the outage and retry rules read) and no ``%`` in a value is ever
taken for a placeholder.

Only MariaDB/MySQL uses this; SQLite keeps the SQLAlchemy statements (its
driver binds in C, so the layers cost little there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, Table
from sqlalchemy.orm import Session

from core.db.base import UTCDateTime

# PyMySQL's executemany splits a multi-row INSERT at this size; so do we.
MAX_STATEMENT = 1024000
_NO_PARAMETERS = {"no_parameters": True}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_SQL = "TIMESTAMP'1970-01-01 00:00:00'"
MICROSECOND = timedelta(microseconds=1)


def _escaper(session: Session) -> tuple[Any, Callable[[Any], str]]:
    connection = session.connection()
    dbapi = connection.connection.dbapi_connection
    return connection, dbapi.escape  # type: ignore[union-attr]


def _renderer(escape: Callable[[Any], str], width: int | None) -> Callable[[Any], str]:
    def render(value: Any) -> str:
        kind = type(value)
        if value is None:
            return "NULL"
        if kind is int:
            return int.__repr__(value)
        if kind is str:
            if width is not None and len(value) > width:
                value = value[:width]
            return escape(value)
        if kind is bool:
            return "1" if value else "0"
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTC column")
            # Microseconds since 1970 in UTC, added in SQL: exact, and a quarter of the
            # CPU of formatting the timestamp as text.
            return f"TIMESTAMPADD(MICROSECOND, {(value - EPOCH) // MICROSECOND}, {EPOCH_SQL})"
        return escape(value)

    return render


def upsert(session: Session, table: Table, rows: Sequence[dict[str, Any]],
           columns: Sequence[str], set_: dict[str, str], widths: dict[str, int]) -> None:
    """INSERT rows (only ``columns``) ... ON DUPLICATE KEY UPDATE ``set_``.

    ``set_`` maps a column to ``"new"`` (take the incoming value) or
    ``"greatest"`` (keep the larger of stored and incoming): the same SQL
    SQLAlchemy's mysql ``insert().on_duplicate_key_update`` emits for MariaDB.
    """
    if not rows or not set_:
        return
    connection, escape = _escaper(session)
    renderers = [_renderer(escape, widths.get(c)) for c in columns]
    pairs = list(zip(columns, renderers, strict=True))
    name = table.name
    head = f"INSERT INTO {name} ({', '.join(columns)}) VALUES "
    updates = ", ".join(
        f"{c} = greatest({name}.{c}, VALUES({c}))" if how == "greatest" else f"{c} = VALUES({c})"
        for c, how in set_.items())
    tail = " ON DUPLICATE KEY UPDATE " + updates
    chunk: list[str] = []
    size = len(head) + len(tail)
    for row in rows:
        values = "(" + ", ".join([render(row[c]) for c, render in pairs]) + ")"
        if chunk and size + len(values) + 2 > MAX_STATEMENT:
            connection.exec_driver_sql(head + ", ".join(chunk) + tail,
                                       execution_options=_NO_PARAMETERS)
            chunk, size = [], len(head) + len(tail)
        chunk.append(values)
        size += len(values) + 2
    connection.exec_driver_sql(head + ", ".join(chunk) + tail, execution_options=_NO_PARAMETERS)


def lock_rows(session: Session, table: Table, uids: Iterable[str], column: str = "unique_id"
              ) -> dict[str, dict[str, Any]]:
    """SELECT every column ... WHERE ``column`` IN (sorted ids) FOR UPDATE, as plain dicts
    keyed by unique_id (``column`` is unique_id for calls, session_key for sessions).

    Values come back as SQLAlchemy would return them for these columns:
    timestamps aware in UTC, booleans as bool, the rest as PyMySQL gives them.
    """
    wanted = sorted(set(uids))
    if not wanted:
        return {}
    connection, escape = _escaper(session)
    names = [c.name for c in table.columns]
    stamps = [i for i, c in enumerate(table.columns) if isinstance(c.type, UTCDateTime)]
    flags = [i for i, c in enumerate(table.columns) if isinstance(c.type, Boolean)]
    # Timestamps travel as microseconds since 1970 (plain DATETIME arithmetic, no time
    # zone involved): PyMySQL parses an integer in a fraction of its DATETIME parsing.
    selected = [f"TIMESTAMPDIFF(MICROSECOND, {EPOCH_SQL}, {table.name}.{n})" if i in stamps
                else f"{table.name}.{n}" for i, n in enumerate(names)]
    sql = (f"SELECT {', '.join(selected)} FROM {table.name} "
           f"WHERE {table.name}.{table.c[column].name} IN "
           f"({', '.join(escape(u) for u in wanted)}) FOR UPDATE")
    out: dict[str, dict[str, Any]] = {}
    for raw in connection.exec_driver_sql(sql, execution_options=_NO_PARAMETERS).fetchall():
        row = list(raw)
        for i in stamps:
            value = row[i]
            if value is not None:
                row[i] = EPOCH + timedelta(microseconds=value)
        for i in flags:
            if row[i] is not None:
                row[i] = bool(row[i])
        mapped = dict(zip(names, row, strict=True))
        out[mapped["unique_id"]] = mapped
    return out


def subscribers_by_login(session: Session, logins: Sequence[str]
                         ) -> list[tuple[int, str, int | None]]:
    """(subscriber id, login, its plan's interim interval) of the logins that exist."""
    if not logins:
        return []
    connection, escape = _escaper(session)
    sql = ("SELECT subscriber.id, subscriber.login, plan.interim_interval FROM subscriber "
           "LEFT OUTER JOIN plan ON subscriber.plan_id = plan.id "
           f"WHERE subscriber.login IN ({', '.join(escape(x) for x in logins)})")
    rows = connection.exec_driver_sql(sql, execution_options=_NO_PARAMETERS).fetchall()
    return [(row[0], row[1], row[2]) for row in rows]
