"""An allocation's two MariaDB statements as text, run with ``exec_driver_sql``.

On the RADIUS path every new login runs these (pools.lease.allocate). A
py-spy profile of radbill under bench/pool_bench.py e2e (``--gil``) showed
SQLAlchemy's layers around each execution (compiled-cache lookup, bind
processors, the UTCDateTime TypeDecorator, result processors) costing about
as much CPU as PyMySQL itself; written out once, the statements skip them.
They go through ``Connection.exec_driver_sql``, so errors are still wrapped
as SQLAlchemy exceptions (DBPool's retry and outage rules read those) and a
dropped connection still invalidates the pool. Values are bound by PyMySQL
(``%(name)s``), never formatted into the text. SQLite keeps the SQLAlchemy
statements in pools.lease (its driver binds in C, and it is in-process).

``OWN_OR_SPARE`` is pools.lease's ``_OWN`` for one pool and ``_LRU`` in one
round trip: each arm is its own locking read with SKIP LOCKED (MariaDB needs
the parentheses around a locking arm of a UNION; inside a UNION its EXPLAIN
showed a full scan and filesort although it ran as one index seek, so the
free-row index is forced rather than left to the planner). When the login's own row
wins, the spare free row stays locked until the commit a moment later; other
allocators skip it as they skip any row being allocated.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from pools.models import ItemState

_COLUMNS = "id, pool_id, value, state, device, nas_id, last_released_at"

OWN_OR_SPARE = (
    f"(SELECT {_COLUMNS}, 0 AS spare FROM pool_item"
    " WHERE holder = %(login)s AND pool_id = %(pool_id)s"
    " ORDER BY id FOR UPDATE SKIP LOCKED)"
    " UNION ALL "
    f"(SELECT {_COLUMNS}, 1 AS spare FROM pool_item FORCE INDEX (ix_pool_item_free)"
    f" WHERE pool_id = %(pool_id)s AND state = '{ItemState.FREE.value}'"
    " ORDER BY last_released_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)")

_TAKE = ("UPDATE pool_item SET state = '" + ItemState.OFFERED.value + "',"
         " holder = %(holder)s, device = %(device)s, nas_id = %(nas_id)s,"
         " assigned_at = %(now)s, expires_at = %(expires_at)s{session}"
         " WHERE id = %(item_id)s AND state = %(observed)s")
TAKE_KEEP_SESSION = _TAKE.format(session="")
TAKE_NEW_SESSION = _TAKE.format(session=", acct_session_id = NULL")


def naive_utc(value: datetime) -> datetime:
    """What core.db.base.UTCDateTime stores: the UTC time without tzinfo."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC).replace(tzinfo=None)


def own_or_spare(conn: Connection, login: str, pool_id: int) -> tuple[list[Any], Any]:
    """This login's rows in one pool, and the pool's least recently used free row (or None)."""
    own: list[Any] = []
    spare = None
    for r in conn.exec_driver_sql(OWN_OR_SPARE, {"login": login, "pool_id": pool_id}):
        if r.spare:
            spare = r
        else:
            own.append(r)
    return own, spare


def take(conn: Connection, item_id: int, observed: ItemState, *, login: str,
         nas_id: int | None, device: str | None, now: datetime, expires_at: datetime,
         keep_session: bool) -> bool:
    """Offer one row if it is still in the state it was read in; ``device`` already clipped."""
    result = conn.exec_driver_sql(
        TAKE_KEEP_SESSION if keep_session else TAKE_NEW_SESSION,
        {"item_id": item_id, "observed": observed.value, "holder": login, "device": device,
         "nas_id": nas_id, "now": naive_utc(now), "expires_at": naive_utc(expires_at)})
    return bool(result.rowcount == 1)
