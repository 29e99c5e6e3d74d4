"""Allocations on pooled MariaDB connections: a dropped connection, a failed COMMIT.

The engine runs without ``pool_pre_ping`` and without SQLAlchemy's
rollback-on-return after a successful COMMIT (core.db.engine): two round
trips fewer per transaction. These tests pin down what that must not cost:
a connection the server dropped is retried on a fresh one, and a COMMIT that
fails leaves nothing on the connection for the next transaction to commit.
"""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pytest
from sqlalchemy import Engine, event, text

from core.db.pool import DBPool
from pools.lease import thd_allocate
from pools.models import ItemState, PoolKind
from tests.pools_support import T0, add_pool, thd_count, thd_demo_rows, thd_states


@pytest.fixture
def mariadb(engine: Engine) -> Engine:
    if engine.dialect.name != "mysql":
        pytest.skip("connection handling of the MariaDB engine")
    return engine


@pytest.fixture
def thread_ids(mariadb: Engine) -> Iterator[list[int]]:
    """The server-side ids of every connection this engine opens from now on."""
    ids: list[int] = []

    def connected(dbapi_conn: pymysql.connections.Connection, _record: object) -> None:
        ids.append(dbapi_conn.thread_id())

    mariadb.dispose()  # connections opened by the fixtures count too: start afresh
    event.listen(mariadb, "connect", connected)
    yield ids
    event.remove(mariadb, "connect", connected)


def _kill(engine: Engine, ids: list[int]) -> None:
    url = engine.url
    conn = pymysql.connect(host=url.host, port=url.port or 3306, user=url.username,
                           password=url.password or "", autocommit=True)
    try:
        with conn.cursor() as cur:
            for thread_id in ids:
                cur.execute(f"KILL CONNECTION {int(thread_id)}")
    finally:
        conn.close()


def test_allocation_survives_a_dropped_connection(dbpool: DBPool, thread_ids: list[int]) -> None:
    """With no pre-ping, an allocation on a connection the server killed is retried and succeeds."""
    dbpool.run_sync(thd_demo_rows)
    add_pool(dbpool, "p", PoolKind.IPV4, "10.0.0.1-10.0.0.4")
    first = dbpool.run_sync(thd_allocate, "p", "alice", now=T0)
    assert thread_ids, "the engine opened no connection"
    _kill(dbpool.engine, thread_ids)
    again = dbpool.run_sync(thd_allocate, "p", "bob", now=T0)
    assert again.value != first.value
    assert dbpool.run_sync(thd_count, ItemState.OFFERED) == 2
    assert len(thread_ids) >= 2  # the retry ran on a new connection


def test_failed_commit_leaves_no_offer_on_the_connection(dbpool: DBPool,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed COMMIT is rolled back on return: the next transaction cannot commit its offer."""
    if dbpool.engine.dialect.name != "mysql":
        pytest.skip("connection handling of the MariaDB engine")
    dbpool.run_sync(thd_demo_rows)
    add_pool(dbpool, "p", PoolKind.IPV4, "10.0.0.1-10.0.0.4")
    real_commit = pymysql.connections.Connection.commit
    failures = []

    def failing_commit(self: pymysql.connections.Connection) -> None:
        if not failures:  # the allocation's COMMIT: fail it without sending it
            failures.append(self.thread_id())
            raise pymysql.err.OperationalError(1180, "Got error during COMMIT")
        real_commit(self)

    monkeypatch.setattr(pymysql.connections.Connection, "commit", failing_commit)
    with pytest.raises(Exception, match="1180"):
        dbpool.run_sync(thd_allocate, "p", "alice", now=T0)

    def thd_same_connection(session: object) -> tuple[int, dict[str, tuple[str, str | None]]]:
        thread_id = session.execute(text("SELECT CONNECTION_ID()")).scalar_one()  # type: ignore[attr-defined]
        return thread_id, thd_states(session, "p")  # type: ignore[arg-type]

    thread_id, states = dbpool.run_sync(thd_same_connection)
    assert thread_id == failures[0]  # the connection of the failed COMMIT, reused
    assert all(state == "free" for state, _ in states.values())
    assert dbpool.run_sync(thd_count, ItemState.OFFERED) == 0
