"""The accounting spool file, and its exactly-once replay into SQLite and MariaDB."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from twisted.internet import reactor

from accounting.commit import GroupCommitter, Mode
from accounting.errors import SpoolCorrupt
from accounting.models import AcctSpoolPosition
from accounting.records import AcctStatus
from accounting.service import SpoolReplayer
from accounting.spool import AsyncSpool, SpoolFile, thd_replay_chunk, thd_spool_position
from accounting.store import AcctPolicy
from billing.usage import thd_record_usage
from core.db.pool import DBPool
from tests.test_accounting_support import all_deltas, all_sessions, rec, seed

START, INTERIM, STOP = AcctStatus.START, AcctStatus.INTERIM, AcctStatus.STOP
POLICY = AcctPolicy()


def records(n: int, nas_id: int = 1) -> list[Any]:
    out = []
    for k in range(n):
        out.append(rec(INTERIM, nas_id=nas_id, sid=f"sp-{k}", t=60, session_time=60,
                       octets_in=100 + k, octets_out=k))
    return out


def test_append_reopen_read(tmp_path: Path) -> None:
    """Appended records are numbered, survive reopening, and read back in order."""
    spool = SpoolFile(tmp_path / "a.spool")
    spool.open()
    first_id = spool.spool_id
    batch = records(5)
    assert spool.append(batch[:3]) == [1, 2, 3]
    assert spool.append(batch[3:]) == [4, 5]
    spool.close()
    again = SpoolFile(tmp_path / "a.spool")
    again.open()
    assert (again.spool_id, again.last_seq) == (first_id, 5)
    assert [seq for seq, _ in again.read_after(0, 10)] == [1, 2, 3, 4, 5]
    assert [r for _, r in again.read_after(0, 10)] == batch
    assert [seq for seq, _ in again.read_after(2, 2)] == [3, 4]
    assert [seq for seq, _ in again.read_after(4, 2)] == [5]
    assert [seq for seq, _ in again.read_after(1, 1)] == [2]
    assert again.read_after(5, 10) == []
    assert again.append(records(1)) == [6]


def test_torn_last_line_is_trimmed(tmp_path: Path) -> None:
    """A line cut short by a crash (never acknowledged) is removed on open; the rest stays."""
    path = tmp_path / "b.spool"
    spool = SpoolFile(path)
    spool.open()
    spool.append(records(2))
    spool.close()
    with path.open("ab") as fh:
        fh.write(b'{"seq":3,"record":{"status":3,"nas_')
    again = SpoolFile(path)
    again.open()
    assert again.last_seq == 2
    assert path.read_bytes().endswith(b"}\n")
    assert again.append(records(1)) == [3]
    assert [seq for seq, _ in again.read_after(0, 10)] == [1, 2, 3]


def test_foreign_file_is_refused(tmp_path: Path) -> None:
    """A file that is not radbill's spool is never appended to or replayed."""
    path = tmp_path / "c.spool"
    path.write_text("hello\n")
    with pytest.raises(SpoolCorrupt, match="not a radbill accounting spool"):
        SpoolFile(path).open()


def test_unreadable_line_is_set_aside(tmp_path: Path) -> None:
    """A corrupt line in the middle is copied to .rejected; the lines around it still read."""
    path = tmp_path / "d.spool"
    spool = SpoolFile(path)
    spool.open()
    spool.append(records(1))
    spool._fh.write(b'{"seq":2,"record":{"status":"bogus"}}\n')  # missing fields
    spool.last_seq = 2
    spool.append(records(1))
    entries = spool.read_after(0, 10)
    assert [seq for seq, _ in entries] == [1, 3]
    assert json.loads(spool.rejected_path.read_text())["seq"] == 2


def test_rotate_starts_empty_with_new_id(tmp_path: Path) -> None:
    """Rotation replaces the file with an empty spool under a new id."""
    spool = SpoolFile(tmp_path / "e.spool")
    spool.open()
    spool.append(records(3))
    old = spool.spool_id
    new = spool.rotate()
    assert new != old and spool.last_seq == 0 and spool.read_after(0, 10) == []
    assert spool.append(records(1)) == [1]


@pytest.fixture
def nas_id(engine: Engine) -> int:
    """A seeded database; the first NAS's id."""
    with Session(engine) as s, s.begin():
        return seed(s)["nas1"]


def run(engine: Engine, fn: Any, *args: Any) -> Any:
    with Session(engine) as s, s.begin():
        return fn(s, *args)


def test_replay_is_exactly_once(engine: Engine, nas_id: int) -> None:
    """Replaying a chunk twice, or a longer chunk after a crash, applies each line once."""
    entries = list(enumerate([rec(START, nas_id=nas_id, sid="x", t=0),
                              rec(INTERIM, nas_id=nas_id, sid="x", t=60, session_time=60,
                                  octets_in=10, octets_out=1),
                              rec(INTERIM, nas_id=nas_id, sid="x", t=120, session_time=120,
                                  octets_in=30, octets_out=2),
                              rec(STOP, nas_id=nas_id, sid="x", t=150, session_time=150,
                                  octets_in=35, octets_out=3)], start=1))
    p = run(engine, thd_replay_chunk, "sp1", entries[:2], POLICY, thd_record_usage)
    assert (p.last_seq, p.applied) == (2, 2)
    p = run(engine, thd_replay_chunk, "sp1", entries[:2], POLICY, thd_record_usage)
    assert (p.last_seq, p.applied) == (2, 0)
    p = run(engine, thd_replay_chunk, "sp1", entries, POLICY, thd_record_usage)
    assert (p.last_seq, p.applied) == (4, 2)
    assert run(engine, thd_spool_position, "sp1") == 4
    with Session(engine) as s:
        (row,) = all_sessions(s)
        deltas = all_deltas(s)
    assert row["input_octets"] == 35 and row["closed_by"] == "stop"
    assert sum(d["octets_in"] for d in deltas) == 35 and len(deltas) == 3


@pytest_twisted.inlineCallbacks
def test_replayer_sets_aside_a_refused_record(engine: Engine, db_url: str, nas_id: int,
                                             tmp_path: Path) -> None:
    """A spooled record the database refuses is set aside; the others are replayed."""
    pool = DBPool(engine)
    pool.start()
    spool = AsyncSpool(tmp_path / "f.spool", reactor)
    spool.open()
    try:
        good = records(3, nas_id)
        poison = replace(good[1], nas_port=1 << 70)  # no BIGINT holds it
        yield spool.append([good[0], poison, good[2]])
        committer = GroupCommitter(pool, reactor, spool, POLICY, thd_record_usage)
        committer.enter_spool_mode("test")
        replayer = SpoolReplayer(committer, spool, pool, POLICY, thd_record_usage)
        yield replayer.run_once()
        assert committer.mode is Mode.DATABASE
        assert spool.appended_seq == 0  # rotated
        with Session(engine) as s:
            stored = {r["session_id"] for r in all_sessions(s)}
            assert s.query(AcctSpoolPosition).count() == 1
        assert stored == {"sp-0", "sp-2"}
        rejected = [json.loads(line) for line in
                    spool.file.rejected_path.read_text().splitlines()]
        assert [r["seq"] for r in rejected] == [2]
        assert rejected[0]["record"]["session_id"] == "sp-1"
    finally:
        spool.close()
        pool.threadpool.stop()
