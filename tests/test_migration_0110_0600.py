"""Migrations of issue 14: subscriber.legacy_hash (0600) and acct_session.session_key (0110)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session

from accounting.models import AcctSession
from accounting.records import AcctStatus, session_unique_id
from accounting.store import AcctPolicy, thd_apply_records
from core.db import schema
from tests.test_accounting_support import T0, all_sessions, rec, seed


def _diff(engine: Engine, tables: set[str]) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import accounting.models  # noqa: F401  (registers the tables)
    from core.db.base import Base

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    out = []
    for d in diff:
        entry = d[0] if isinstance(d, list) else d
        name = entry[2] if entry[0] in ("add_column", "remove_column") or \
            entry[0].startswith("modify_") else getattr(getattr(entry[1], "table", None),
                                                          "name", None)
        if name in tables:
            out.append(d)
    return out


def test_migrations_match_the_models_and_downgrade(engine: Engine) -> None:
    """subscriber and acct_session are exactly the models; both revisions go down and up."""
    assert _diff(engine, {"subscriber", "acct_session"}) == []
    schema.downgrade(engine, "legacy@0001")
    schema.downgrade(engine, "0100_accounting")
    assert "legacy_hash" not in {c["name"] for c in inspect(engine).get_columns("subscriber")}
    assert "session_key" not in {c["name"] for c in inspect(engine).get_columns("acct_session")}
    schema.upgrade(engine)
    assert _diff(engine, {"subscriber", "acct_session"}) == []


def test_session_open_during_the_upgrade_goes_on_in_its_row(engine: Engine) -> None:
    """An open session stored before 0110 gets its key, and its next Interim updates it."""
    schema.downgrade(engine, "0100_accounting")
    with Session(engine) as s, s.begin():
        nas = seed(s)["nas1"]
    start = rec(AcctStatus.START, nas_id=nas, sid="up-1", t=0, nas_port=3)
    row = {"unique_id": "f" * 32, "nas_id": nas, "nas_identity": start.nas_identity,
           "subscriber_id": None, "user_name": "alice", "session_id": "up-1",
           "started_at": T0, "updated_at": T0, "last_seen_at": T0,
           "stale_deadline": T0 + timedelta(hours=1), "interim_interval": 300,
           "start_seen": True, "session_time": 0, "input_octets": 0, "output_octets": 0,
           "input_packets": 0, "output_packets": 0, "nas_port": 3, "created_at": T0}
    old_table = sa.table("acct_session", *[sa.column(name) for name in row])
    with engine.begin() as conn:  # the table as 0100 left it: no session_key column yet
        conn.execute(old_table.insert(), [{k: _plain(v) for k, v in row.items()}])
    schema.upgrade(engine)
    key = session_unique_id(nas, start.nas_identity, "up-1", "alice", None, 3)
    with Session(engine) as s:
        assert s.scalars(select(AcctSession.session_key)).one() == key
    interim = rec(AcctStatus.INTERIM, nas_id=nas, sid="up-1", t=300, session_time=300,
                  octets_in=10, nas_port=3)
    with Session(engine) as s, s.begin():
        thd_apply_records(s, [replace(interim, unique_id=key)], AcctPolicy())
    with Session(engine) as s:
        rows = all_sessions(s)
    assert len(rows) == 1 and rows[0]["unique_id"] == "f" * 32
    assert (rows[0]["session_time"], rows[0]["input_octets"]) == (300, 10)


def _plain(value: Any) -> Any:
    """A value as the UTCDateTime column stores it (naive UTC) for a raw INSERT."""
    if hasattr(value, "tzinfo") and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    return value
