"""The acct port end to end over UDP on 127.0.0.1: group commit, durability, retransmissions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

from tests.test_accounting_support import (
    Server,
    UdpClient,
    all_sessions,
    make_config,
    seed,
    session_packet,
)

ACCOUNTING_RESPONSE = 5


@pytest.fixture
def ids(engine: Engine) -> dict[str, int]:
    """Seeded plan (simultaneous_use 1), subscribers and NASes."""
    with Session(engine) as s, s.begin():
        return seed(s)


def new_server(db_url: str, tmp_path: Path, **accounting: Any) -> Server:
    return Server(make_config(tmp_path, db_url, **accounting), reactor, replay_interval=0.1)


@pytest.fixture
def server(engine: Engine, db_url: str, tmp_path: Path, ids: dict[str, int]) -> Iterator[Server]:
    """A started radbill with a 20 ms group-commit window."""
    srv = new_server(db_url, tmp_path, group_commit_ms=20.0)
    pytest_twisted.blockon(srv.start())
    yield srv
    pytest_twisted.blockon(srv.stop())


@pytest.fixture
def client(server: Server) -> Iterator[UdpClient]:
    """A UDP socket on 127.0.0.1 talking to the acct port."""
    c = UdpClient(reactor, server.acct_port())
    yield c
    pytest_twisted.blockon(c.close())


def count_sessions(engine: Engine) -> int:
    with Session(engine) as s:
        return len(all_sessions(s))


@pytest_twisted.inlineCallbacks
def test_group_commit_answers_after_commit(server: Server, client: UdpClient,
                                          engine: Engine) -> None:
    """200 concurrent Starts share few transactions; each answer comes after its row is stored."""
    seen_before_reply: list[int] = []

    def on_reply(reply: bytes | None) -> bytes | None:
        # Runs the moment the Accounting-Response arrives: the row must already be there.
        seen_before_reply.append(count_sessions(engine))
        return reply

    requests = [client.request(session_packet(i, 1, "alice", f"gc-{i}"), timeout=10)
                .addCallback(on_reply) for i in range(200)]
    replies = yield defer.gatherResults(requests)
    assert all(r is not None and r[0] == ACCOUNTING_RESPONSE for r in replies)
    assert count_sessions(engine) == 200
    assert server.committer.batches < 50
    # The k-th answer can only have been sent once at least k rows were committed.
    assert all(seen >= k + 1 for k, seen in enumerate(sorted(seen_before_reply)))


@pytest_twisted.inlineCallbacks
def test_retransmission_gets_the_same_answer_once(server: Server, client: UdpClient,
                                                  engine: Engine) -> None:
    """The same datagram twice (a NAS retransmission) is stored once and answered alike."""
    packet = session_packet(7, 3, "alice", "rt-1", session_time=60, octets_in=10, octets_out=20)
    first = yield client.request(packet)
    batches = server.committer.batches
    second = yield client.request(packet)
    assert first is not None and first == second
    assert server.committer.batches == batches
    assert count_sessions(engine) == 1


@pytest_twisted.inlineCallbacks
def test_out_of_order_over_the_wire(server: Server, client: UdpClient, engine: Engine) -> None:
    """Stop, then a late Interim, then the Start: one record with the Stop's final counters."""
    stop = session_packet(1, 2, "bob", "ooo", session_time=300, octets_in=900, octets_out=800)
    interim = session_packet(2, 3, "bob", "ooo", session_time=100, octets_in=100, octets_out=90)
    start = session_packet(3, 1, "bob", "ooo")
    for p in (stop, interim, start):
        reply = yield client.request(p)
        assert reply is not None
    with Session(engine) as s:
        (row,) = all_sessions(s)
    assert (row["input_octets"], row["output_octets"], row["session_time"]) == (900, 800, 300)
    assert row["closed_by"] == "stop" and row["start_seen"]


@pytest_twisted.inlineCallbacks
def test_bad_requests_are_dropped_or_acknowledged(server: Server, client: UdpClient,
                                                  engine: Engine) -> None:
    """A wrong secret gets no answer; a request without Acct-Session-Id is acknowledged, unused."""
    from tests.test_accounting_support import accounting_request, text, u32

    wrong = accounting_request(9, [u32(40, 1), text(44, "x")], secret="wrong")
    reply = yield client.request(wrong, timeout=0.5)
    assert reply is None
    no_sid = accounting_request(10, [u32(40, 1), text(1, "alice")])
    reply = yield client.request(no_sid)
    assert reply is not None and reply[0] == ACCOUNTING_RESPONSE
    assert count_sessions(engine) == 0


@pytest_twisted.inlineCallbacks
def test_no_answer_when_neither_database_nor_spool(engine: Engine, db_url: str, tmp_path: Path,
                                                   ids: dict[str, int]) -> None:
    """Database failing and the spool disk full: no Accounting-Response, so the NAS resends."""
    from accounting.errors import SpoolError

    srv = new_server(db_url, tmp_path)
    yield srv.start()
    c = UdpClient(reactor, srv.acct_port())
    failing = {"on": True}

    def fail(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if failing["on"] and "acct_session" in statement:
            raise _operational_error(srv)

    def disk_full(records: Any) -> list[int]:
        raise SpoolError("cannot write accounting spool: No space left on device")

    spool_file = srv.committer.spool.file
    real_append = spool_file.append
    spool_file.append = disk_full
    event.listen(srv.dbpool.engine, "before_cursor_execute", fail)
    try:
        reply = yield c.request(session_packet(1, 1, "alice", "lost"), timeout=1.5)
        assert reply is None
        failing["on"] = False
        spool_file.append = real_append
        # The NAS resends (new Identifier); the database is back: stored and answered.
        reply = yield c.request(session_packet(2, 1, "alice", "lost"), timeout=5)
        assert reply is not None and reply[0] == ACCOUNTING_RESPONSE
        # Within the outage's probe interval (core.db.outage) the resend may be spooled
        # rather than committed; then it is replayed as soon as the probe succeeds.
        for _ in range(100):
            if count_sessions(engine) == 1:
                break
            yield deferLater(reactor, 0.1, lambda: None)
        assert count_sessions(engine) == 1
    finally:
        event.remove(srv.dbpool.engine, "before_cursor_execute", fail)
        yield c.close()
        yield srv.stop()


def _operational_error(srv: Server) -> Exception:
    """The driver's own 'server gone' error, as the database would raise it."""
    if srv.dbpool.engine.dialect.name == "mysql":
        import pymysql

        return pymysql.err.OperationalError(2013, "Lost connection to MySQL server")
    import sqlite3

    return sqlite3.OperationalError("disk I/O error")


@pytest_twisted.inlineCallbacks
def test_simultaneous_use_counts_live_sessions(server: Server, client: UdpClient,
                                               engine: Engine, ids: dict[str, int]) -> None:
    """The hook rejects a second login while one session is live, and allows it after Stop."""
    from aaa.credentials import thd_load_subscriber
    from aaa.simultaneous import make_simultaneous_use_hook

    hook = make_simultaneous_use_hook(server.dbpool)
    sub = server.dbpool.run_sync(thd_load_subscriber, "alice")
    ctx = _context(sub)
    verdict = yield hook(ctx)
    assert verdict is None
    yield client.request(session_packet(1, 1, "alice", "su-1"))
    verdict = yield hook(ctx)
    assert verdict is not None and verdict.outcome.value == "too-many-sessions"
    yield client.request(session_packet(2, 2, "alice", "su-1", session_time=5))
    verdict = yield hook(ctx)
    assert verdict is None


def _context(sub: Any) -> Any:
    from aaa.access import AccessContext

    return AccessContext(client=None, packet=None, user_name=sub.login,  # type: ignore[arg-type]
                         subscriber=sub, method="pap")
