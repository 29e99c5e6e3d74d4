"""Parsing pool ranges: CIDRs, A-B ranges, IPv6 carving, E.164 numbers, files, exclusions."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrad import tools

from pools.errors import BadRange, PoolTooLarge
from pools.models import PoolKind
from pools.ranges import MAX_POOL_ITEMS, normalize_value, parse_pool, read_range_file


def test_ipv4_cidr_leaves_out_network_and_broadcast() -> None:
    """A /29 gives its six hosts; a /31 and a /32 keep every address."""
    assert list(parse_pool(PoolKind.IPV4, ["192.0.2.8/29"]).values()) == [
        f"192.0.2.{i}" for i in range(9, 15)]
    assert list(parse_pool(PoolKind.IPV4, ["192.0.2.0/31", "192.0.2.9/32"]).values()) == [
        "192.0.2.0", "192.0.2.1", "192.0.2.9"]


def test_ranges_and_exclusions() -> None:
    """A-B ranges keep both ends; exclusions take single addresses, ranges and CIDRs out."""
    pool = parse_pool(PoolKind.IPV4, ["10.0.0.1-10.0.0.20"],
                      exclude=["10.0.0.1", "10.0.0.5-10.0.0.6", "10.0.0.16/30"])
    values = list(pool.values())
    assert values[0] == "10.0.0.2" and values[-1] == "10.0.0.20"
    assert not {"10.0.0.1", "10.0.0.5", "10.0.0.6", "10.0.0.16", "10.0.0.19"} & set(values)
    assert pool.count() == len(values) == 20 - 1 - 2 - 4


def test_ipv6_prefixes_are_carved_at_the_prefix_length() -> None:
    """A /56 at /60 gives 16 prefixes in canonical form; an excluded /60 is left out."""
    pool = parse_pool(PoolKind.PD, ["2001:db8:0:100::/56"], exclude=["2001:db8:0:110::/60"],
                      prefix_length=60)
    values = list(pool.values())
    assert len(values) == 15
    assert values[0] == "2001:db8:0:100::/60" and values[-1] == "2001:db8:0:1f0::/60"
    assert "2001:db8:0:110::/60" not in values
    # excluding one address removes the prefix that contains it
    pool = parse_pool(PoolKind.IPV6, ["2001:db8::/62"], exclude=["2001:db8:0:2::1"],
                      prefix_length=64)
    assert list(pool.values()) == ["2001:db8::/64", "2001:db8:0:1::/64", "2001:db8:0:3::/64"]


def test_canonical_text_matches_what_pyrad_decodes() -> None:
    """The stored prefix text equals pyrad's decoding of the attribute the NAS sends back."""
    for value in parse_pool(PoolKind.PD, ["2001:db8:ab00::/40"], prefix_length=56).values():
        if value.endswith("ff00::/56"):
            break
        wire = tools.EncodeIPv6Prefix(value)
        assert tools.DecodeIPv6Prefix(wire) == value


def test_phone_ranges_and_lists() -> None:
    """E.164 ranges (with or without +) and single numbers; malformed ones are refused."""
    pool = parse_pool(PoolKind.PHONE, ["+4930123400-+4930123403", "4930999"])
    assert list(pool.values()) == ["+4930999", "+4930123400", "+4930123401", "+4930123402",
                                   "+4930123403"]  # in numeric order
    for bad, message in (("+0301", "E.164"), ("+49301-+493012", "as many digits"),
                         ("+4930-+4920", "ends before"), ("+1234567890123456", "E.164")):
        with pytest.raises(BadRange, match=message):
            parse_pool(PoolKind.PHONE, [bad])


def test_bad_ranges_name_the_token() -> None:
    """Each refusal names what was wrong, including host bits and self-overlap."""
    cases = [
        (PoolKind.IPV4, ["10.0.0.7/24"], "did you mean 10.0.0.0/24"),
        (PoolKind.IPV4, ["10.0.0.0/24", "10.0.0.128/25"], "overlap"),
        (PoolKind.IPV4, ["10.0.0.9-10.0.0.1"], "10.0.0.9-10.0.0.1"),
        (PoolKind.IPV4, ["2001:db8::/64"], "not an IPv4"),
        (PoolKind.IPV4, ["banana"], "banana"),
        (PoolKind.IPV6, ["2001:db8::1-2001:db8::9"], "prefix"),
        (PoolKind.IPV4, [], "at least one"),
    ]
    for kind, ranges, message in cases:
        with pytest.raises(BadRange, match=message):
            parse_pool(kind, ranges, prefix_length=64 if kind is PoolKind.IPV6 else None)
    with pytest.raises(PoolTooLarge, match=f"{MAX_POOL_ITEMS:,}"):
        parse_pool(PoolKind.IPV6, ["2001:db8::/32"], prefix_length=64)


def test_range_file_reports_file_and_line(tmp_path: Path) -> None:
    """Files hold ranges with comments; a bad line is reported as file:line."""
    good = tmp_path / "ranges.txt"
    good.write_text("# office\n10.0.0.0/30, 10.0.1.1\n\n10.0.2.1-10.0.2.2  # lab\n")
    assert list(parse_pool(PoolKind.IPV4, read_range_file(str(good))).values()) == [
        "10.0.0.1", "10.0.0.2", "10.0.1.1", "10.0.2.1", "10.0.2.2"]
    bad = tmp_path / "bad.txt"
    bad.write_text("10.0.0.1\n10.0.0.999\n")
    with pytest.raises(BadRange, match=r"bad.txt:2: '10.0.0.999'"):
        parse_pool(PoolKind.IPV4, read_range_file(str(bad)))
    with pytest.raises(BadRange, match="not found"):
        read_range_file(str(tmp_path / "missing.txt"))


def test_normalize_value() -> None:
    """Accounting and CLI values become the canonical stored text, or are refused."""
    assert normalize_value(PoolKind.IPV4, " 10.0.0.1 ") == "10.0.0.1"
    assert normalize_value(PoolKind.IPV6, "2001:0DB8:0:1:0:0:0:0/64") == "2001:db8:0:1::/64"
    assert normalize_value(PoolKind.PD, "2001:db8:0:100::", 56) == "2001:db8:0:100::/56"
    assert normalize_value(PoolKind.PHONE, "15551230000") == "+15551230000"
    for kind, bad in ((PoolKind.IPV4, "10.0.0"), (PoolKind.IPV6, "2001:db8::"),
                      (PoolKind.PHONE, "call me")):
        with pytest.raises(BadRange):
            normalize_value(kind, bad)


@given(st.integers(0, 2**32 - 1), st.integers(24, 32),
       st.lists(st.integers(0, 255), max_size=8))
def test_every_value_is_inside_and_not_excluded(base: int, prefixlen: int,
                                                excluded: list[int]) -> None:
    """Property: values are unique, inside the CIDR, outside exclusions; count() agrees."""
    net = ipaddress.IPv4Network((base, prefixlen), strict=False)
    excl = [str(net.network_address + (e % net.num_addresses)) for e in excluded]
    pool = parse_pool(PoolKind.IPV4, [str(net)], exclude=excl)
    values = list(pool.values())
    assert len(values) == len(set(values)) == pool.count()
    assert all(ipaddress.IPv4Address(v) in net for v in values)
    assert not set(values) & set(excl)
    hosts = net.num_addresses - (2 if prefixlen <= 30 else 0)
    assert len(values) >= hosts - len(set(excl))
