"""Every lease transition, stickiness, LRU order, expiry and exhaustion, on SQLite and MariaDB."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from core.db.pool import DBPool
from pools.errors import PoolExhausted
from pools.lease import (
    ITEM,
    AccessAllocation,
    LeaseUpdate,
    thd_allocate,
    thd_allocate_for_access,
    thd_expire_leases,
    thd_lease_on_accounting,
    thd_plan_routes,
)
from pools.manage import thd_assign_static, thd_attach, thd_set_nas_group
from pools.models import ItemState, OnExhausted, PoolKind
from tests.pools_support import T0, add_pool, thd_count, thd_demo_rows, thd_states


def _item(dbpool: DBPool, value: str, pool: str = "p") -> tuple[str, str | None]:
    return dbpool.run_sync(thd_states, pool)[value]


def _expires(dbpool: DBPool, value: str):
    from sqlalchemy import select

    def thd(session):
        return session.execute(select(ITEM.c.expires_at, ITEM.c.nas_id, ITEM.c.acct_session_id)
                               .where(ITEM.c.value == value)).one()

    return dbpool.run_sync(thd)


@pytest.fixture
def ids(dbpool: DBPool) -> dict[str, int]:
    """Demo plan/NAS/subscribers plus a 4-address IPv4 pool 'p' (10.0.0.1-10.0.0.4)."""
    found = dbpool.run_sync(thd_demo_rows)
    add_pool(dbpool, "p", PoolKind.IPV4, "10.0.0.1-10.0.0.4")
    return found


def test_offer_is_short_until_start_confirms(dbpool: DBPool, ids: dict[str, int]) -> None:
    """Access gives an offer that expires after offer_seconds; Start turns it into a lease."""
    lease = dbpool.run_sync(thd_allocate, "p", "alice", nas_id=ids["nas1"], offer_seconds=60,
                            now=T0)
    assert lease.state is ItemState.OFFERED
    assert lease.expires_at == T0 + timedelta(seconds=60)
    assert _item(dbpool, lease.value) == ("offered", "alice")
    update = dbpool.run_sync(thd_lease_on_accounting, ids["nas1"], "Start", lease.value, None,
                             None, "alice", "sess-1", lease_seconds=3600,
                             now=T0 + timedelta(seconds=5))
    assert update.confirmed == (lease.value,)
    assert _item(dbpool, lease.value) == ("leased", "alice")
    expires, nas_id, session_id = _expires(dbpool, lease.value)
    assert expires == T0 + timedelta(seconds=3605)
    assert (nas_id, session_id) == (ids["nas1"], "sess-1")


def test_interim_extends_the_lease(dbpool: DBPool, ids: dict[str, int]) -> None:
    """Interim-Update moves the expiry to now + lease_seconds."""
    lease = dbpool.run_sync(thd_allocate, "p", "alice", nas_id=ids["nas1"], now=T0)
    dbpool.run_sync(thd_lease_on_accounting, ids["nas1"], "Start", lease.value, None, None,
                    "alice", "s1", lease_seconds=600, now=T0)
    dbpool.run_sync(thd_lease_on_accounting, ids["nas1"], "Interim-Update", lease.value, None,
                    None, "alice", "s1", lease_seconds=600, now=T0 + timedelta(seconds=300))
    assert _expires(dbpool, lease.value)[0] == T0 + timedelta(seconds=900)
    assert dbpool.run_sync(thd_expire_leases, T0 + timedelta(seconds=800)) == 0
    assert _item(dbpool, lease.value) == ("leased", "alice")


def test_stop_releases_and_sticky_address_comes_back(dbpool: DBPool,
                                                     ids: dict[str, int]) -> None:
    """Stop frees the address; the same login gets it back although LRU would pick another."""
    first = dbpool.run_sync(thd_allocate, "p", "alice", nas_id=ids["nas1"], now=T0)
    dbpool.run_sync(thd_lease_on_accounting, ids["nas1"], "Start", first.value, None, None,
                    "alice", "s1", now=T0)
    update = dbpool.run_sync(thd_lease_on_accounting, ids["nas1"], "Stop", first.value, None,
                             None, "alice", "s1", now=T0 + timedelta(seconds=10))
    assert update.released == 1
    assert _item(dbpool, first.value) == ("free", "alice")
    other = dbpool.run_sync(thd_allocate, "p", "bob", now=T0 + timedelta(seconds=20))
    assert other.value != first.value  # never-used addresses are less recently used
    again = dbpool.run_sync(thd_allocate, "p", "alice", now=T0 + timedelta(seconds=30))
    assert again.value == first.value


def test_least_recently_released_is_handed_out_first(dbpool: DBPool,
                                                     ids: dict[str, int]) -> None:
    """A new login gets the free address released longest ago."""
    values = [dbpool.run_sync(thd_allocate, "p", f"u{i}", now=T0).value for i in range(4)]
    for i, seconds in ((2, 10), (0, 20), (3, 30)):
        dbpool.run_sync(thd_lease_on_accounting, None, "Stop", values[i], None, None, f"u{i}",
                        None, now=T0 + timedelta(seconds=seconds))
    got = [dbpool.run_sync(thd_allocate, "p", f"new{i}", now=T0 + timedelta(seconds=60)).value
           for i in range(3)]
    assert got == [values[2], values[0], values[3]]


def test_repeated_request_gets_the_same_offer(dbpool: DBPool, ids: dict[str, int]) -> None:
    """A second Access-Request from the same device before Start re-offers the same address."""
    a = dbpool.run_sync(thd_allocate, "p", "alice", nas_id=ids["nas1"], device="aa:bb",
                        now=T0)
    b = dbpool.run_sync(thd_allocate, "p", "alice", nas_id=ids["nas1"], device="aa:bb",
                        now=T0 + timedelta(seconds=3))
    c = dbpool.run_sync(thd_allocate, "p", "alice", nas_id=ids["nas1"], device="cc:dd",
                        now=T0 + timedelta(seconds=4))
    assert a.value == b.value
    assert b.expires_at == T0 + timedelta(seconds=63)
    assert c.value != a.value  # a second session from another device
    assert dbpool.run_sync(thd_count, ItemState.OFFERED) == 2


def test_stop_of_an_older_session_does_not_free_a_newer_lease(dbpool: DBPool,
                                                              ids: dict[str, int]) -> None:
    """A late Stop carrying another Acct-Session-Id leaves the current lease alone."""
    lease = dbpool.run_sync(thd_allocate, "p", "alice", nas_id=ids["nas1"], now=T0)
    dbpool.run_sync(thd_lease_on_accounting, ids["nas1"], "Start", lease.value, None, None,
                    "alice", "new-session", now=T0)
    update = dbpool.run_sync(thd_lease_on_accounting, ids["nas1"], "Stop", lease.value, None,
                             None, "alice", "old-session", now=T0)
    assert update.released == 0
    assert _item(dbpool, lease.value) == ("leased", "alice")


def test_accounting_on_and_off_release_one_nas(dbpool: DBPool, ids: dict[str, int]) -> None:
    """Accounting-On frees every offer and lease of that NAS and nothing of another NAS."""
    a = dbpool.run_sync(thd_allocate, "p", "alice", nas_id=ids["nas1"], now=T0)
    b = dbpool.run_sync(thd_allocate, "p", "bob", nas_id=ids["nas1"], now=T0)
    c = dbpool.run_sync(thd_allocate, "p", "carol", nas_id=ids["nas2"], now=T0)
    dbpool.run_sync(thd_lease_on_accounting, ids["nas1"], "Start", a.value, None, None, "alice",
                    "s1", now=T0)
    update = dbpool.run_sync(thd_lease_on_accounting, ids["nas1"], "Accounting-On", None, None,
                             None, None, None, now=T0)
    assert update.released == 2
    states = dbpool.run_sync(thd_states, "p")
    assert states[a.value][0] == states[b.value][0] == "free"
    assert states[c.value] == ("offered", "carol")
    off = dbpool.run_sync(thd_lease_on_accounting, ids["nas2"], "Accounting-Off", None, None,
                          None, None, None, now=T0)
    assert off.released == 1
    assert dbpool.run_sync(thd_count, ItemState.FREE) == 4


def test_unconfirmed_offer_expires(dbpool: DBPool, ids: dict[str, int]) -> None:
    """An offer never confirmed by Start returns to the pool after offer_seconds, not before."""
    lease = dbpool.run_sync(thd_allocate, "p", "alice", offer_seconds=60, now=T0)
    assert dbpool.run_sync(thd_expire_leases, T0 + timedelta(seconds=59)) == 0
    assert dbpool.run_sync(thd_expire_leases, T0 + timedelta(seconds=61)) == 1
    assert _item(dbpool, lease.value) == ("free", "alice")


def test_lease_without_interim_expires(dbpool: DBPool, ids: dict[str, int]) -> None:
    """A confirmed lease whose accounting stops coming returns after lease_seconds."""
    lease = dbpool.run_sync(thd_allocate, "p", "alice", now=T0)
    dbpool.run_sync(thd_lease_on_accounting, None, "Start", lease.value, None, None, "alice",
                    "s", lease_seconds=3600, now=T0)
    assert dbpool.run_sync(thd_expire_leases, T0 + timedelta(seconds=3599)) == 0
    assert dbpool.run_sync(thd_expire_leases, T0 + timedelta(seconds=3601)) == 1
    assert _item(dbpool, lease.value)[0] == "free"


def test_exhaustion_and_recovery(dbpool: DBPool, ids: dict[str, int]) -> None:
    """A full pool raises PoolExhausted; a Stop makes room again."""
    got = [dbpool.run_sync(thd_allocate, "p", f"u{i}", now=T0) for i in range(4)]
    assert len({g.value for g in got}) == 4
    with pytest.raises(PoolExhausted, match="pool p"):
        dbpool.run_sync(thd_allocate, "p", "late", now=T0)
    dbpool.run_sync(thd_lease_on_accounting, None, "Stop", got[1].value, None, None, "u1", None,
                    now=T0)
    assert dbpool.run_sync(thd_allocate, "p", "late", now=T0).value == got[1].value


def test_full_pool_reclaims_expired_offers_itself(dbpool: DBPool,
                                                  ids: dict[str, int]) -> None:
    """Allocation expires lapsed offers of a full pool itself, without the expiry service."""
    for i in range(4):
        dbpool.run_sync(thd_allocate, "p", f"u{i}", offer_seconds=60, now=T0)
    lease = dbpool.run_sync(thd_allocate, "p", "late", now=T0 + timedelta(seconds=61))
    assert lease.state is ItemState.OFFERED
    assert dbpool.run_sync(thd_count, ItemState.FREE) == 3


def test_start_claims_a_free_address_and_leaves_others_alone(dbpool: DBPool,
                                                              ids: dict[str, int]) -> None:
    """Start for a free address (NAS-allocated) claims it; one held by another is a conflict."""
    update = dbpool.run_sync(thd_lease_on_accounting, ids["nas1"], "Start", "10.0.0.3", None,
                             None, "alice", "s1", now=T0)
    assert update.confirmed == ("10.0.0.3",)
    assert _item(dbpool, "10.0.0.3") == ("leased", "alice")
    clash = dbpool.run_sync(thd_lease_on_accounting, ids["nas1"], "Interim-Update", "10.0.0.3",
                            None, None, "bob", "s2", now=T0)
    assert clash.conflicts == ("10.0.0.3",)
    assert _item(dbpool, "10.0.0.3") == ("leased", "alice")
    unmanaged = dbpool.run_sync(thd_lease_on_accounting, ids["nas1"], "Start", "192.0.2.1",
                                "not-an-address", None, "alice", "s1", now=T0)
    assert unmanaged.confirmed == () and unmanaged.conflicts == ()


def test_ipv6_and_pd_values_match_in_any_spelling(dbpool: DBPool, ids: dict[str, int]) -> None:
    """Framed-IPv6-Prefix / Delegated-IPv6-Prefix from accounting match the canonical rows."""
    add_pool(dbpool, "v6", PoolKind.IPV6, "2001:db8:1::/126", prefix_length=128)
    add_pool(dbpool, "pd", PoolKind.PD, "2001:db8:100::/46", prefix_length=48)
    v6 = dbpool.run_sync(thd_allocate, "v6", "alice", now=T0)
    pd = dbpool.run_sync(thd_allocate, "pd", "alice", now=T0)
    assert pd.value == "2001:db8:100::/48"
    update = dbpool.run_sync(thd_lease_on_accounting, None, "Start", None,
                             ipaddress.IPv6Network(v6.value).exploded,
                             "2001:0db8:0100:0000::/48", "alice", "s", now=T0)
    assert set(update.confirmed) == {v6.value, pd.value}
    assert _item(dbpool, pd.value, "pd") == ("leased", "alice")


def test_unique_key_refuses_a_second_row_for_an_identifier(dbpool: DBPool,
                                                          ids: dict[str, int]) -> None:
    """Even code that bypasses the allocator cannot store one address twice (any pool)."""
    add_pool(dbpool, "q", PoolKind.IPV4, "10.9.0.1")

    def thd(session, pool_name):
        from sqlalchemy import select

        from pools.models import NEVER, Pool
        pool_id = session.scalar(select(Pool.id).where(Pool.name == pool_name))
        session.execute(insert(ITEM).values(pool_id=pool_id, kind=PoolKind.IPV4,
                                            value="10.0.0.2", state=ItemState.FREE,
                                            last_released_at=NEVER))

    for pool_name in ("p", "q"):
        with pytest.raises(IntegrityError):
            dbpool.run_sync(thd, pool_name)


def test_static_assignment_wins_and_is_never_handed_out(dbpool: DBPool,
                                                       ids: dict[str, int]) -> None:
    """A static address goes to its subscriber only; others exhaust the pool instead."""
    dbpool.run_sync(thd_assign_static, "p", "alice", "10.0.0.2")
    assert dbpool.run_sync(thd_allocate, "p", "alice", now=T0).value == "10.0.0.2"
    others = {dbpool.run_sync(thd_allocate, "p", f"u{i}", now=T0).value for i in range(3)}
    assert "10.0.0.2" not in others
    with pytest.raises(PoolExhausted):
        dbpool.run_sync(thd_allocate, "p", "u9", now=T0)
    dbpool.run_sync(thd_lease_on_accounting, None, "Stop", "10.0.0.2", None, None, "alice",
                    None, now=T0)
    assert _item(dbpool, "10.0.0.2") == ("static", "alice")
    assert dbpool.run_sync(thd_expire_leases, T0 + timedelta(days=400)) == 3
    assert _item(dbpool, "10.0.0.2") == ("static", "alice")


def test_access_allocation_covers_all_kinds_or_nothing(dbpool: DBPool,
                                                       ids: dict[str, int]) -> None:
    """ipv4, ipv6 and pd are offered together; a full pd pool rolls the others back."""
    add_pool(dbpool, "v6", PoolKind.IPV6, "2001:db8:1::/63", prefix_length=64)
    add_pool(dbpool, "pd", PoolKind.PD, "2001:db8:200::/56", prefix_length=56)
    for pool in ("p", "v6", "pd"):
        dbpool.run_sync(thd_attach, "home", pool)
    routes = dbpool.run_sync(thd_plan_routes, ids["home"], ids["nas1"])
    request = AccessAllocation(routes, "alice", ids["nas1"], "aa:bb")
    grants = {g.kind: g.value for g in dbpool.run_sync(thd_allocate_for_access, request)}
    assert set(grants) == {PoolKind.IPV4, PoolKind.IPV6, PoolKind.PD}
    assert grants[PoolKind.PD] == "2001:db8:200::/56"
    before = dbpool.run_sync(thd_count, ItemState.OFFERED)
    with pytest.raises(PoolExhausted, match="pool pd"):
        dbpool.run_sync(thd_allocate_for_access,
                        AccessAllocation(routes, "bob", ids["nas1"], "cc:dd"))
    assert dbpool.run_sync(thd_count, ItemState.OFFERED) == before


def test_framed_pool_options(dbpool: DBPool, ids: dict[str, int]) -> None:
    """nas_allocates sends the pool name; on_exhausted=framed-pool falls back when full."""
    add_pool(dbpool, "tiny", PoolKind.IPV4, "10.1.0.1")
    dbpool.run_sync(thd_attach, "home", "tiny", on_exhausted=OnExhausted.FRAMED_POOL)
    routes = dbpool.run_sync(thd_plan_routes, ids["home"], ids["nas1"])
    first = dbpool.run_sync(thd_allocate_for_access, AccessAllocation(routes, "alice", None,
                                                                      None))
    assert first[0].value == "10.1.0.1" and not first[0].exhausted
    full = dbpool.run_sync(thd_allocate_for_access, AccessAllocation(routes, "bob", None, None))
    assert full[0].value is None and full[0].framed_pool == "tiny" and full[0].exhausted
    dbpool.run_sync(thd_attach, "home", "tiny", nas_allocates=True)
    routes = dbpool.run_sync(thd_plan_routes, ids["home"], ids["nas1"])
    nas = dbpool.run_sync(thd_allocate_for_access, AccessAllocation(routes, "carol", None, None))
    assert nas[0].framed_pool == "tiny" and not nas[0].exhausted


def test_nas_group_restricts_pools(dbpool: DBPool, ids: dict[str, int]) -> None:
    """A pool with a NAS group serves only NASes in that group."""
    add_pool(dbpool, "north", PoolKind.IPV4, "10.2.0.0/30", nas_group="north")
    dbpool.run_sync(thd_attach, "home", "north", priority=1)
    dbpool.run_sync(thd_attach, "home", "p", priority=2)
    dbpool.run_sync(thd_set_nas_group, "nas1", "north")
    at_nas1 = [r.pool for r in dbpool.run_sync(thd_plan_routes, ids["home"], ids["nas1"])]
    at_nas2 = [r.pool for r in dbpool.run_sync(thd_plan_routes, ids["home"], ids["nas2"])]
    assert at_nas1 == ["north", "p"]
    assert at_nas2 == ["p"]


def test_status_type_numbers_work_like_names(dbpool: DBPool, ids: dict[str, int]) -> None:
    """Acct-Status-Type as a number (1 Start, 3 Interim, 2 Stop, 7 On) acts like its name."""
    lease = dbpool.run_sync(thd_allocate, "p", "alice", nas_id=ids["nas1"], now=T0)
    dbpool.run_sync(thd_lease_on_accounting, ids["nas1"], 1, lease.value, None, None, "alice",
                    "s1", now=T0)
    assert _item(dbpool, lease.value) == ("leased", "alice")
    dbpool.run_sync(thd_lease_on_accounting, ids["nas1"], 3, lease.value, None, None, "alice",
                    "s1", lease_seconds=100, now=T0 + timedelta(seconds=10))
    assert _expires(dbpool, lease.value)[0] == T0 + timedelta(seconds=110)
    assert dbpool.run_sync(thd_lease_on_accounting, ids["nas1"], 2, lease.value, None, None,
                           "alice", "s1", now=T0).released == 1
    other = dbpool.run_sync(thd_allocate, "p", "bob", nas_id=ids["nas1"], now=T0)
    assert dbpool.run_sync(thd_lease_on_accounting, ids["nas1"], 7, None, None, None, None,
                           None, now=T0).released == 1
    assert _item(dbpool, other.value)[0] == "free"
    for unknown in (99, "Bogus"):  # other status types change nothing
        assert dbpool.run_sync(thd_lease_on_accounting, ids["nas1"], unknown, "10.0.0.1", None,
                               None, "bob", "x", now=T0) == LeaseUpdate()
    assert _item(dbpool, "10.0.0.1") == ("free", "alice")
