"""The accounting service's loops: the stale sweeper, and self-start when not wired."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest_twisted
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from twisted.internet import reactor

from aaa.acct import make_accounting_handler
from accounting.commit import Mode
from accounting.records import AcctStatus
from accounting.store import AcctPolicy, thd_apply_records
from core.db.pool import DBPool
from tests.test_accounting_support import T0, all_sessions, make_config, rec, seed


@pytest_twisted.inlineCallbacks
def test_sweeper_closes_stale_unless_spool_pending(engine: Engine, db_url: str,
                                                   tmp_path: Path) -> None:
    """The sweeper closes overdue sessions, but not while the spool may hold their news."""
    with Session(engine) as s, s.begin():
        ids = seed(s)
        thd_apply_records(s, [rec(AcctStatus.START, nas_id=ids["nas1"], t=0)], AcctPolicy())
    pool = DBPool(engine)
    pool.start()
    now = {"t": T0 + timedelta(seconds=10)}
    handler = make_accounting_handler(make_config(tmp_path, db_url), pool, reactor,
                                      now=lambda: now["t"])
    assert handler.service is not None
    sweeper = handler.service.sweeper
    try:
        closed = yield sweeper.run_once()
        assert closed == 0
        now["t"] = T0 + timedelta(hours=1)
        handler.committer.mode = Mode.SPOOL
        closed = yield sweeper.run_once()
        assert closed == 0
        handler.committer.mode = Mode.DATABASE
        closed = yield sweeper.run_once()
        assert closed == 1
        with Session(engine) as s:
            (row,) = all_sessions(s)
        assert row["closed_by"] == "stale" and row["stopped_at"] == T0
    finally:
        handler.committer.spool.close()
        pool.threadpool.stop()


@pytest_twisted.inlineCallbacks
def test_handler_starts_an_unwired_service(engine: Engine, db_url: str,
                                           tmp_path: Path) -> None:
    """A handler whose service nobody started starts it on the first request (spool, loops)."""
    from pyrad.packet import AcctPacket

    from aaa.clients import NasClient
    from aaa.dictionary import load_dictionary
    from core.db.models import Vendor
    from tests.test_accounting_support import SECRET, session_packet

    with Session(engine) as s, s.begin():
        ids = seed(s)
    pool = DBPool(engine)
    pool.start()
    handler = make_accounting_handler(make_config(tmp_path, db_url), pool, reactor)
    assert handler.service is not None and not handler.service.running
    client = NasClient(id=ids["nas1"], name="nas1", address="127.0.0.1",
                       secret=SECRET.encode(), vendor=Vendor.MIKROTIK,
                       require_message_authenticator=False, coa_port=3799)
    pkt = AcctPacket(packet=session_packet(1, 1, "alice", "wire"), dict=load_dictionary(),
                     secret=SECRET.encode())
    try:
        decision = yield handler.handle(client, pkt)
        assert decision.outcome.value == "accounting-stored"
        assert handler.service.running
        assert (tmp_path / "accounting.spool").exists()
    finally:
        yield handler.service.stopService()
        pool.threadpool.stop()
