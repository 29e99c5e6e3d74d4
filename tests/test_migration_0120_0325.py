"""Migrations 0120 (stale-call index), 0324 (pool alerts), 0325 (reseller foreign keys)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing.reseller_models import ResellerAccount, ResellerEntry
from core.db import schema
from core.db.models import Reseller

TABLES = {"acct_call", "pool_alert_state", "reseller_account", "reseller_entry", "card_batch",
          "charging_session"}


def _diff(engine: Engine) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import accounting.models  # noqa: F401
    import billing.card_models
    import billing.notify_models
    import billing.reseller_models  # noqa: F401
    from core.db.base import Base

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    out = []
    for d in diff:
        entry = d[0] if isinstance(d, list) else d
        name = entry[2] if entry[0] in ("add_column", "remove_column") or \
            entry[0].startswith("modify_") else getattr(getattr(entry[1], "table", None),
                                                          "name", getattr(entry[1], "name",
                                                                          None))
        if name in TABLES:
            out.append(d)
    return out


def _fk_targets(engine: Engine, table: str) -> list[tuple[str, str]]:
    # MariaDB reports its default (RESTRICT) as no option at all.
    return [(fk["referred_table"], (fk.get("options") or {}).get("ondelete") or "RESTRICT")
            for fk in inspect(engine).get_foreign_keys(table)]


def test_migrations_match_the_models_and_go_down_and_up(engine: Engine) -> None:
    """The three revisions create exactly the models' schema, downgrade cleanly and re-apply."""
    assert _diff(engine) == []
    assert ("reseller", "RESTRICT") in _fk_targets(engine, "reseller_entry")
    assert ("reseller", "CASCADE") in _fk_targets(engine, "reseller_account")
    assert ("reseller", "RESTRICT") in _fk_targets(engine, "card_batch")
    schema.downgrade(engine, "0323_billing_resellers")
    assert _fk_targets(engine, "reseller_entry") == []
    assert not inspect(engine).has_table("pool_alert_state")
    schema.downgrade(engine, "0110_acct_session_key")
    assert "ix_acct_call_stopped_at_last_seen_at" not in {
        i["name"] for i in inspect(engine).get_indexes("acct_call")}
    schema.upgrade(engine)
    schema.check_current(engine)
    assert _diff(engine) == []


def test_reseller_with_money_history_cannot_be_removed(engine: Engine) -> None:
    """The foreign key keeps a reseller's ledger from pointing at nothing."""
    with Session(engine) as s, s.begin():
        r = Reseller(name="north")
        s.add(r)
        s.flush()
        s.add(ResellerAccount(reseller_id=r.id, currency="USD", balance=100, credit_limit=0))
        s.add(ResellerEntry(reseller_id=r.id, kind="topup", amount=100,
                            idempotency_key="t1", description=""))
        rid = r.id
    with pytest.raises(IntegrityError), Session(engine) as s, s.begin():
        s.execute(text("DELETE FROM reseller WHERE id = :i"), {"i": rid})
    with pytest.raises(IntegrityError), Session(engine) as s, s.begin():
        s.add(ResellerEntry(reseller_id=rid + 1000, kind="topup", amount=1,
                            idempotency_key="t2", description=""))


def test_upgrade_refuses_orphan_reseller_rows(engine: Engine) -> None:
    """Rows naming a reseller that does not exist stop 0325 with their ids, nothing deleted."""
    schema.downgrade(engine, "0324_billing_pool_alert")
    with engine.begin() as c:
        c.execute(text("INSERT INTO reseller_entry (reseller_id, kind, amount, "
                       "idempotency_key, description, created_at) VALUES "
                       "(4242, 'topup', 5, 'orphan', '', '2024-01-01 00:00:00')"))
    with pytest.raises(Exception, match="reseller_entry: reseller id\\(s\\) 4242"):
        schema.upgrade(engine)
    with engine.begin() as c:
        assert c.execute(text("SELECT count(*) FROM reseller_entry")).scalar() == 1
        c.execute(text("DELETE FROM reseller_entry"))
    schema.upgrade(engine)
    schema.check_current(engine)
