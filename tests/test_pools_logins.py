"""Login generation from patterns, checked against subscribers and earlier batches."""

from __future__ import annotations

import random

import pytest

from core.db.pool import DBPool
from core.errors import InvalidInput
from pools.errors import BadRange, LoginSpaceExhausted
from pools.logins import RANDOM_ALPHABET, parse_pattern, thd_generate_logins
from pools.manage import thd_list_pools
from pools.models import PoolKind
from tests.pools_support import add_pool, thd_demo_rows


def test_pattern_parsing() -> None:
    """Placeholders give mode, width and capacity; malformed patterns are refused."""
    seq = parse_pattern("user{00000}")
    assert (seq.prefix, seq.mode, seq.width, seq.capacity) == ("user", "seq", 5, 99_999)
    assert seq.sequential(42) == "user00042"
    pin = parse_pattern("pin{####}@isp")
    assert (pin.mode, pin.suffix, pin.capacity) == ("digits", "@isp", 10_000)
    alnum = parse_pattern("vpn-{???}")
    assert alnum.capacity == len(RANDOM_ALPHABET) ** 3
    for bad in ("user", "u{00}{00}", "u{0#0}", "u{}", "us er{000}", "u{0000000000000}",
                "x" * 120 + "{000000000}"):
        with pytest.raises(BadRange):
            parse_pattern(bad)


def test_sequence_skips_existing_logins_and_never_repeats(dbpool: DBPool) -> None:
    """Sequential logins skip subscribers' logins and continue after the last batch."""
    dbpool.run_sync(thd_demo_rows, ("user002", "user004"))
    add_pool(dbpool, "u", PoolKind.LOGIN, pattern="user{000}")
    first = dbpool.run_sync(thd_generate_logins, "u", 3)
    assert first == ["user001", "user003", "user005"]
    second = dbpool.run_sync(thd_generate_logins, "u", 2)
    assert second == ["user006", "user007"]
    (usage,) = dbpool.run_sync(thd_list_pools)
    assert (usage.size, usage.used, usage.issued) == (999, 5, 5)


def test_sequence_runs_out_cleanly(dbpool: DBPool) -> None:
    """A pattern with no unused logins left raises and issues nothing."""
    add_pool(dbpool, "tiny", PoolKind.LOGIN, pattern="t{0}")
    assert len(dbpool.run_sync(thd_generate_logins, "tiny", 7)) == 7
    with pytest.raises(LoginSpaceExhausted):
        dbpool.run_sync(thd_generate_logins, "tiny", 3)
    assert dbpool.run_sync(thd_generate_logins, "tiny", 2) == ["t8", "t9"]
    with pytest.raises(InvalidInput):
        dbpool.run_sync(thd_generate_logins, "tiny", 0)


def test_random_logins_are_unique_and_avoid_taken_ones(dbpool: DBPool) -> None:
    """Random logins never collide with subscribers, each other, or earlier batches."""
    taken = [f"p{n:02d}" for n in range(0, 100, 2)]  # half of the 100 logins p{##} makes
    dbpool.run_sync(thd_demo_rows, taken)
    add_pool(dbpool, "pins", PoolKind.LOGIN, pattern="p{##}")
    got = dbpool.run_sync(thd_generate_logins, "pins", 30, random.Random(7))
    assert len(set(got)) == 30
    assert not set(got) & set(taken)
    more = dbpool.run_sync(thd_generate_logins, "pins", 15, random.Random(7))
    assert not set(more) & set(got)
    assert all(len(x) == 3 and x[1:].isdigit() for x in got + more)
    with pytest.raises(LoginSpaceExhausted):
        dbpool.run_sync(thd_generate_logins, "pins", 60, random.Random(1))


def test_generate_refuses_non_login_pools(dbpool: DBPool) -> None:
    """Only login pools generate logins."""
    add_pool(dbpool, "p", PoolKind.IPV4, "10.0.0.1")
    with pytest.raises(InvalidInput, match="not a login pool"):
        dbpool.run_sync(thd_generate_logins, "p", 1)
