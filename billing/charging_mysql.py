"""The charging pass's MariaDB I/O: few rows in, few bound values out.

PyMySQL is pure Python: decoding a result row costs about 1 µs per column and
binding a value through its escaping about 1.5 µs, which at one delta, one
account and one session per record was most of the charging pass's CPU. So,
on MariaDB only (SQLite keeps the plain SQLAlchemy statements in
billing.charging):

* **Reads come back as one packed string per statement.** The server joins each
  row's columns with ``CONCAT_WS(',')`` and the rows with ``GROUP_CONCAT(';')``;
  Python splits them (C speed). Every free-text column is sent as ``HEX()``, so
  no value can contain a separator; NULL is spelled out (``N``/``-``) because
  ``CONCAT_WS`` would drop it. Each statement also returns ``COUNT(*)``, and a
  result whose row count differs (a truncated ``GROUP_CONCAT``) raises instead
  of charging half a batch. The locking is the plain statements' own: the deltas
  ``FOR UPDATE SKIP LOCKED`` in a derived table, the accounts ``FOR UPDATE``
  through the unique index on ``subscriber_id``, the sessions read after that.
* **Writes are rendered once, by type.** Integers are formatted by Python (they
  cannot need escaping); strings go through :func:`sql_str`, which returns the
  driver's own literal unless the string has none of the characters the driver
  escapes, in which case quoting it is the driver's literal too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy.engine import Connection

from billing.errors import PackedResultTruncated

#: Largest batch read in one packed statement (its result stays far below max_allowed_packet).
MAX_PACKED_BATCH = 20_000
_GROUP_CONCAT_MAX = 1 << 30
#: billing_account's UNIQUE (subscriber_id), named by core.db.base's naming convention.
ACCOUNT_SUBSCRIBER_INDEX = "uq_billing_account_subscriber_id"

# The characters PyMySQL's escape_string rewrites (converters._escape_table).
_ESCAPED = re.compile("[\x00\n\r\x1a\"'\\\\]")
# Inside a single-quoted literal only ' and \ are special (and NUL, CR, LF, ^Z are kept
# out to stay printable): a string free of them means the same value when just quoted.
_QUOTE_ONLY = re.compile("[\x00\n\r\x1a'\\\\]")


class Delta(NamedTuple):
    id: int
    subscriber_id: int
    source: str
    source_id: str
    seconds: int
    octets_in: int
    octets_out: int
    destination: str | None
    final: bool
    period_end: datetime
    period_end_sql: str  # the stored DATETIME(6) as the server printed it


class AccountRow(NamedTuple):
    id: int
    subscriber_id: int
    currency: str
    balance: int
    credit_limit: int | None
    status: str
    plan_id: int | None
    held: int


class SessionRow(NamedTuple):
    id: int
    account_id: int
    subscriber_id: int
    source: str
    source_id: str
    state: str
    reserved: int
    charged: int
    throttled: bool
    destination: str | None
    rating: dict[str, Any] | None


def _cursor(conn: Connection) -> Any:
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    return dbapi.cursor()


# For the packed reads only (SET STATEMENT: nothing leaks into the pooled connection):
# GROUP_CONCAT's limit raised, and in_predicate_conversion_threshold = 0, because MariaDB
# turns an IN list of 1000+ ids into a join with a value table, planned as a full index
# scan, which under FOR UPDATE locks every account (and makes two passes queue).
_PACKED = (f"SET STATEMENT group_concat_max_len = {_GROUP_CONCAT_MAX}, "
           "in_predicate_conversion_threshold = 0 FOR ")


def _fetch_packed(conn: Connection, sql: str) -> list[str]:
    cursor = _cursor(conn)
    try:
        cursor.execute(_PACKED + sql)
        count, blob = cursor.fetchone()
    finally:
        cursor.close()
    if not count:
        return []
    rows = blob.split(";") if blob else []
    if len(rows) != int(count):
        raise PackedResultTruncated(f"packed result has {len(rows)} of {count} rows")
    return rows


_HEX_CACHE: dict[str, str] = {}
_json = json.JSONDecoder().decode


def _unhex(h: str) -> str:
    return bytes.fromhex(h).decode("utf-8")


def _unhex_small(h: str) -> str:
    """Short repeated values (source, state, currency): decoded once."""
    v = _HEX_CACHE.get(h)
    if v is None:
        v = _unhex(h)
        if len(_HEX_CACHE) < 1024:
            _HEX_CACHE[h] = v
    return v


def _ints(ids: Iterable[int]) -> str:
    return ",".join([str(int(i)) for i in ids])


def select_deltas(conn: Connection, batch: int) -> list[Delta]:
    """The oldest ``batch`` unrated deltas, row-locked, skipping rows another pass holds."""
    rows = _fetch_packed(
        conn,
        "SELECT COUNT(*), GROUP_CONCAT(CONCAT_WS(',', id, subscriber_id, seconds, octets_in, "
        "octets_out, final, period_end, HEX(source), HEX(source_id), "
        "IFNULL(HEX(destination), '-')) ORDER BY id SEPARATOR ';') FROM "
        "(SELECT id, subscriber_id, seconds, octets_in, octets_out, final, period_end, source, "
        "source_id, destination FROM usage_delta WHERE rated = 0 ORDER BY id "
        f"LIMIT {int(batch)} FOR UPDATE SKIP LOCKED) d")
    out = []
    parse_time = datetime.fromisoformat
    for row in rows:
        f = row.split(",")
        dest = f[9]
        out.append(Delta(int(f[0]), int(f[1]), _unhex_small(f[7]), _unhex(f[8]), int(f[2]),
                         int(f[3]), int(f[4]), None if dest == "-" else _unhex(dest),
                         f[5] == "1", parse_time(f[6]).replace(tzinfo=UTC), f[6]))
    return out


def lock_accounts(conn: Connection, sub_ids: list[int], holding_states: Iterable[str],
                  chunk: int = 5000) -> list[AccountRow]:
    """The subscribers' accounts, locked through the unique index on subscriber_id (sorted)."""
    states = ",".join(sql_str(s, None) for s in holding_states)
    out = []
    ids = sorted(sub_ids)
    for lo in range(0, len(ids), chunk):
        rows = _fetch_packed(
            conn,
            "SELECT COUNT(*), GROUP_CONCAT(CONCAT_WS(',', a.id, a.subscriber_id, HEX(a.currency), "
            "a.balance, IFNULL(a.credit_limit, 'N'), HEX(a.status), "
            "IFNULL((SELECT s.plan_id FROM subscriber s WHERE s.id = a.subscriber_id), 'N'), "
            "(SELECT COALESCE(SUM(c.reserved), 0) FROM charging_session c "
            f"WHERE c.account_id = a.id AND c.state IN ({states}))) SEPARATOR ';') "
            # FORCE INDEX: with thousands of ids the optimiser may prefer a scan of the
            # primary key, which FOR UPDATE turns into a lock on every account.
            f"FROM billing_account a FORCE INDEX ({ACCOUNT_SUBSCRIBER_INDEX}) "
            f"WHERE a.subscriber_id IN ({_ints(ids[lo:lo + chunk])}) FOR UPDATE")
        for row in rows:
            f = row.split(",")
            out.append(AccountRow(int(f[0]), int(f[1]), _unhex_small(f[2]), int(f[3]),
                                  None if f[4] == "N" else int(f[4]), _unhex_small(f[5]),
                                  None if f[6] == "N" else int(f[6]), int(f[7])))
    return out


def load_sessions(conn: Connection, delta_ids: list[int], chunk: int = 5000
                  ) -> list[SessionRow]:
    """The charging sessions of these deltas, found through the (source, source_id) index."""
    out = []
    for lo in range(0, len(delta_ids), chunk):
        rows = _fetch_packed(
            conn,
            "SELECT COUNT(*), GROUP_CONCAT(CONCAT_WS(',', c.id, c.account_id, c.subscriber_id, "
            "HEX(c.source), HEX(c.source_id), HEX(c.state), c.reserved, c.charged, c.throttled, "
            "IFNULL(HEX(c.destination), '-'), HEX(c.rating)) SEPARATOR ';') FROM "
            "(SELECT DISTINCT source, source_id FROM usage_delta "
            f"WHERE id IN ({_ints(delta_ids[lo:lo + chunk])})) d "
            "STRAIGHT_JOIN charging_session c ON c.source = d.source AND c.source_id = d.source_id")
        for row in rows:
            f = row.split(",")
            dest = f[9]
            out.append(SessionRow(int(f[0]), int(f[1]), int(f[2]), _unhex_small(f[3]),
                                  _unhex(f[4]), _unhex_small(f[5]), int(f[6]), int(f[7]),
                                  f[8] != "0", None if dest == "-" else _unhex(dest),
                                  _json(_unhex(f[10])) if f[10] else None))
    return out


# --- writing ---------------------------------------------------------------------------

def sql_str(value: str | None, escape: Any) -> str:
    """A string literal: the driver's own (``escape``) unless it would only add quotes."""
    if value is None:
        return "NULL"
    if _ESCAPED.search(value) is None:
        return "'" + value + "'"
    if escape is None:
        raise ValueError(f"{value!r} needs the driver's escaping")
    return str(escape(value))


def sql_json(value: str, escape: Any) -> str:
    """JSON text as a literal: a double quote means itself inside single quotes in any mode."""
    if _QUOTE_ONLY.search(value) is None:
        return "'" + value + "'"
    return str(escape(value))


def sql_time(value: datetime | None) -> str:
    """An aware datetime as a naive-UTC DATETIME(6) literal."""
    if value is None:
        return "NULL"
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return "'" + value.replace(tzinfo=None).isoformat(" ") + "'"


def escaper(conn: Connection) -> Any:
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    return dbapi.escape


def execute_values(conn: Connection, head: str, values: list[str], chunk: int = 5000) -> None:
    """Multi-row statements from rendered literals (no parameters: no %-formatting)."""
    cursor = _cursor(conn)
    try:
        for i in range(0, len(values), chunk):
            cursor.execute(head + ",".join(values[i:i + chunk]))
    finally:
        cursor.close()


def update_join(conn: Connection, target: str, tmp: str, columns: list[tuple[str, str]],
                values: list[str], assignments: str) -> None:
    """Many row updates in three statements: PyMySQL sends an UPDATE executemany row by row,
    but a multi-row INSERT into a temporary table and one UPDATE ... JOIN go at once.

    ``values`` are rendered rows ``(id, col, ...)``, sorted by id.
    """
    cols = ", ".join(f"{name} {kind}" for name, kind in columns)
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {tmp} "
                         f"(id BIGINT PRIMARY KEY, {cols}) ENGINE=InnoDB")
    conn.exec_driver_sql(f"DELETE FROM {tmp}")
    names = ", ".join(["id"] + [name for name, _ in columns])
    execute_values(conn, f"INSERT INTO {tmp} ({names}) VALUES ", values)
    # STRAIGHT_JOIN: drive from the temporary table, so only the rows named are read and
    # locked (in id order), never a scan of the target that would lock its other rows.
    conn.exec_driver_sql(f"UPDATE {tmp} u STRAIGHT_JOIN {target} t ON t.id = u.id "
                         f"SET {assignments}")
