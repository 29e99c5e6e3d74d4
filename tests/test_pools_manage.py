"""Pool administration on SQLite and MariaDB: add, list, remove, static, plans, migration."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, inspect

from core.db import schema
from core.db.pool import DBPool
from core.errors import AlreadyExists, InvalidInput, NotFound
from pools.errors import BadRange, ItemUnavailable, PoolInUse, PoolOverlap
from pools.lease import thd_allocate, thd_lease_on_accounting
from pools.manage import (
    NewPool,
    thd_add_pool,
    thd_assign_static,
    thd_attach,
    thd_detach,
    thd_list_leases,
    thd_list_pools,
    thd_plan_pools,
    thd_release_static,
    thd_remove_pool,
    thd_replace_plan_pools,
    thd_show_pool,
)
from pools.models import ItemState, PoolKind
from tests.pools_support import T0, add_pool, thd_demo_rows, thd_states


@pytest.fixture
def ids(dbpool: DBPool) -> dict[str, int]:
    """Demo plan 'home', NASes and subscribers alice/bob/carol."""
    return dbpool.run_sync(thd_demo_rows)


def _names(dbpool: DBPool) -> list[str]:
    return [u.name for u in dbpool.run_sync(thd_list_pools)]


def test_list_shows_size_used_free_percent_and_warning(dbpool: DBPool,
                                                        ids: dict[str, int]) -> None:
    """Utilization counts offers, leases and statics; the warning flag follows the threshold."""
    add_pool(dbpool, "p", PoolKind.IPV4, "10.0.0.0/29")  # 6 hosts
    dbpool.run_sync(thd_allocate, "p", "alice")
    dbpool.run_sync(thd_assign_static, "p", "bob")
    lease = dbpool.run_sync(thd_allocate, "p", "carol")
    dbpool.run_sync(thd_lease_on_accounting, None, "Start", lease.value, None, None, "carol",
                    "s")
    (usage,) = dbpool.run_sync(thd_list_pools, 50)
    assert (usage.size, usage.used, usage.free) == (6, 3, 3)
    assert (usage.offered, usage.leased, usage.static) == (1, 1, 1)
    assert usage.percent == 50.0 and usage.warning
    assert not dbpool.run_sync(thd_list_pools, 51)[0].warning


def test_overlapping_pools_are_refused_and_nothing_changes(dbpool: DBPool,
                                                          ids: dict[str, int]) -> None:
    """A range overlapping another pool of the same family is refused whole."""
    add_pool(dbpool, "a", PoolKind.IPV4, "10.0.0.0/24")
    add_pool(dbpool, "v6", PoolKind.IPV6, "2001:db8::/56", prefix_length=64)
    with pytest.raises(PoolOverlap, match="overlaps pool a"):
        add_pool(dbpool, "b", PoolKind.IPV4, "10.1.0.0/24", "10.0.0.200-10.0.1.5")
    with pytest.raises(PoolOverlap, match="overlaps pool v6"):
        add_pool(dbpool, "pd", PoolKind.PD, "2001:db8::/48", prefix_length=60)
    assert _names(dbpool) == ["a", "v6"]
    assert len(dbpool.run_sync(thd_states)) == 254 + 256
    add_pool(dbpool, "b", PoolKind.IPV4, "10.0.1.0/24")  # adjacent is fine
    with pytest.raises(AlreadyExists):
        add_pool(dbpool, "b", PoolKind.IPV4, "10.0.2.0/24")


def test_bad_input_is_refused_with_a_clear_message(dbpool: DBPool, ids: dict[str, int]) -> None:
    """Unparsable ranges, wrong options per kind and empty pools are refused; nothing stored."""
    cases = [
        (NewPool("x", PoolKind.IPV4, ranges=("10.0.0.300",)), "not an IP address"),
        (NewPool("x", PoolKind.IPV4, ranges=("10.0.0.0/24",), prefix_length=64),
         "applies to ipv6 and pd"),
        (NewPool("x", PoolKind.PD, ranges=("2001:db8::/48",)), "--prefix-length"),
        (NewPool("x", PoolKind.PD, ranges=("2001:db8::/48",), prefix_length=40), "shorter"),
        (NewPool("x", PoolKind.IPV4, ranges=("10.0.0.1",), exclude=("10.0.0.1",)), "empty"),
        (NewPool("x", PoolKind.LOGIN), "--pattern"),
        (NewPool("bad name", PoolKind.IPV4, ranges=("10.0.0.1",)), "pool name"),
    ]
    for new, message in cases:
        with pytest.raises((BadRange, InvalidInput), match=message):
            dbpool.run_sync(thd_add_pool, new)
    assert _names(dbpool) == []
    assert dbpool.run_sync(thd_states) == {}


def test_remove_refuses_live_leases_and_statics(dbpool: DBPool, ids: dict[str, int]) -> None:
    """A pool with a live lease or a static assignment stays; once free it is removed."""
    add_pool(dbpool, "p", PoolKind.IPV4, "10.0.0.0/28")
    dbpool.run_sync(thd_attach, "home", "p")
    lease = dbpool.run_sync(thd_allocate, "p", "alice")
    with pytest.raises(PoolInUse, match="1 live lease"):
        dbpool.run_sync(thd_remove_pool, "p")
    assert len(dbpool.run_sync(thd_states, "p")) == 14
    dbpool.run_sync(thd_lease_on_accounting, None, "Stop", lease.value, None, None, "alice", None)
    dbpool.run_sync(thd_assign_static, "p", "bob", "10.0.0.9")
    with pytest.raises(PoolInUse, match="static"):
        dbpool.run_sync(thd_remove_pool, "p")
    dbpool.run_sync(thd_release_static, "p", "bob")
    assert dbpool.run_sync(thd_remove_pool, "p") == 14
    assert _names(dbpool) == []
    assert dbpool.run_sync(thd_plan_pools, "home") == []
    with pytest.raises(NotFound):
        dbpool.run_sync(thd_remove_pool, "p")


def test_static_assign_and_release(dbpool: DBPool, ids: dict[str, int]) -> None:
    """Static assignment by value or LRU, idempotent; refused when taken; released by either."""
    add_pool(dbpool, "did", PoolKind.PHONE, "+15551230000-+15551230009")
    a = dbpool.run_sync(thd_assign_static, "did", "alice", "15551230005")
    assert (a.value, a.state, a.holder) == ("+15551230005", ItemState.STATIC, "alice")
    assert dbpool.run_sync(thd_assign_static, "did", "alice", "+15551230005").value == a.value
    with pytest.raises(ItemUnavailable, match="static to alice"):
        dbpool.run_sync(thd_assign_static, "did", "bob", "+15551230005")
    with pytest.raises(ItemUnavailable, match="not in pool"):
        dbpool.run_sync(thd_assign_static, "did", "bob", "+15559999999")
    with pytest.raises(NotFound, match="subscriber"):
        dbpool.run_sync(thd_assign_static, "did", "nobody")
    b = dbpool.run_sync(thd_assign_static, "did", "bob")
    assert b.value == "+15551230000"
    assert dbpool.run_sync(thd_assign_static, "did", "bob").value == b.value
    leases = dbpool.run_sync(thd_list_leases, "did")
    assert [(i.value, i.holder) for i in leases] == [(b.value, "bob"), (a.value, "alice")]
    freed = dbpool.run_sync(thd_release_static, "did", "+15551230005")
    assert [i.holder for i in freed] == ["alice"]
    assert [i.value for i in dbpool.run_sync(thd_release_static, "did", "bob")] == [b.value]
    with pytest.raises(NotFound):
        dbpool.run_sync(thd_release_static, "did", "bob")
    assert dbpool.run_sync(thd_list_leases, "did") == []


def test_static_release_refuses_a_live_lease(dbpool: DBPool, ids: dict[str, int]) -> None:
    """'pool release' of an address a session holds is refused; the lease stays."""
    add_pool(dbpool, "p", PoolKind.IPV4, "10.0.0.1-10.0.0.2")
    lease = dbpool.run_sync(thd_allocate, "p", "alice", now=T0)
    with pytest.raises(ItemUnavailable, match="offered"):
        dbpool.run_sync(thd_release_static, "p", lease.value)
    with pytest.raises(ItemUnavailable, match="offered to alice"):
        dbpool.run_sync(thd_assign_static, "p", "bob", lease.value)
    assert dbpool.run_sync(thd_states, "p")[lease.value] == ("offered", "alice")


def test_attach_detach_and_replace(dbpool: DBPool, ids: dict[str, int]) -> None:
    """Plans draw from ipv4/ipv6/pd pools in priority order; phone pools cannot be attached."""
    add_pool(dbpool, "a", PoolKind.IPV4, "10.0.0.0/30")
    add_pool(dbpool, "b", PoolKind.IPV4, "10.0.1.0/30")
    add_pool(dbpool, "did", PoolKind.PHONE, "+15551230000")
    dbpool.run_sync(thd_attach, "home", "b", priority=5)
    dbpool.run_sync(thd_attach, "home", "a", priority=1)
    assert [p.pool for p in dbpool.run_sync(thd_plan_pools, "home")] == ["a", "b"]
    with pytest.raises(InvalidInput, match="phone"):
        dbpool.run_sync(thd_attach, "home", "did")
    with pytest.raises(NotFound, match="plan"):
        dbpool.run_sync(thd_attach, "nope", "a")
    dbpool.run_sync(thd_detach, "home", "a")
    with pytest.raises(NotFound):
        dbpool.run_sync(thd_detach, "home", "a")
    dbpool.run_sync(thd_replace_plan_pools, "home", ["b", "a"])
    assert [p.pool for p in dbpool.run_sync(thd_plan_pools, "home")] == ["b", "a"]
    with pytest.raises(NotFound):
        dbpool.run_sync(thd_replace_plan_pools, "home", ["a", "zzz"])
    assert [p.pool for p in dbpool.run_sync(thd_plan_pools, "home")] == ["b", "a"]
    show = dbpool.run_sync(thd_show_pool, "a")
    assert [p.plan for p in show.plans] == ["home"]


def _table_of(diff: Any) -> str | None:
    """The table an alembic compare_metadata entry is about."""
    entry = diff[0] if isinstance(diff, list) else diff
    op, obj = entry[0], entry[1]
    if op.endswith("_table"):
        return str(obj.name)
    if op in ("add_column", "remove_column") or op.startswith("modify_"):
        return str(entry[2])
    table = getattr(obj, "table", None)
    return None if table is None else str(table.name)


def test_migration_matches_models_and_downgrades(engine: Engine) -> None:
    """The 0200_pools revision creates exactly the models' schema and drops it again."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import pools.models  # noqa: F401  (registers the tables)
    from core.db.base import Base

    pool_tables = {"pool", "pool_range", "pool_item", "plan_pool", "nas_pool_group"}
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    ours = [d for d in diff if _table_of(d) in pool_tables]
    assert ours == []
    schema.downgrade(engine, "pools@0001")
    assert not pool_tables & set(inspect(engine).get_table_names())
    schema.upgrade(engine)
    assert pool_tables <= set(inspect(engine).get_table_names())
