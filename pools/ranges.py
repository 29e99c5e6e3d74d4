"""What an operator types for a pool, turned into blocks of identifiers and their canonical text.

A pool is declared as ranges (a CIDR, ``A-B``, a single value, or a file of
those) minus exclusions. Each range becomes a :class:`Block`: the declared
space (used for overlap checks against other pools) and the items handed out
(for an IPv4 CIDR of /30 or wider, the network and broadcast addresses are
left out; IPv6 prefixes are carved at the pool's prefix length). Values get
one canonical text (the one ``ipaddress`` and pyrad print) so a
Framed-IP-Address from accounting finds the row the allocator wrote.
"""

from __future__ import annotations

import bisect
import ipaddress
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import netaddr

from pools.errors import BadRange, PoolTooLarge
from pools.models import PoolKind

# 2^20 rows: a /12 of IPv4 or a /44 of /64s; seconds to insert, a few tens of MB.
MAX_POOL_ITEMS = 1 << 20
E164 = re.compile(r"^\+?([1-9][0-9]{0,14})$")
FAMILY = {PoolKind.IPV4: "ip4", PoolKind.IPV6: "ip6", PoolKind.PD: "ip6",
          PoolKind.PHONE: "phone"}


@dataclass(frozen=True)
class Block:
    """One declared range: its space [space_first, space_last], and ``count`` items from ``first``.

    Item i is the integer ``first + i * step``; for prefixes it covers
    ``step`` addresses.
    """

    source: str
    space_first: int
    space_last: int
    first: int
    step: int
    count: int


@dataclass(frozen=True)
class ParsedPool:
    kind: PoolKind
    prefix_length: int | None
    blocks: tuple[Block, ...]
    exclusions: tuple[tuple[int, int], ...]  # merged, sorted [lo, hi] intervals
    sources: tuple[str, ...]
    excluded_sources: tuple[str, ...]

    @property
    def family(self) -> str:
        return FAMILY[self.kind]

    @property
    def upper_bound(self) -> int:
        return sum(b.count for b in self.blocks)

    def values(self) -> Iterator[str]:
        """Every identifier in the pool, in range order, exclusions removed."""
        fmt = formatter(self.kind, self.prefix_length)
        lows = [lo for lo, _ in self.exclusions]
        for block in self.blocks:
            for i in range(block.count):
                v = block.first + i * block.step
                if lows and _excluded(v, v + block.step - 1, self.exclusions, lows):
                    continue
                yield fmt(v)

    def count(self) -> int:
        return sum(1 for _ in self.values()) if self.exclusions else self.upper_bound


def _excluded(lo: int, hi: int, exclusions: Sequence[tuple[int, int]], lows: list[int]) -> bool:
    # the last exclusion starting at or before hi is the only one that can overlap [lo, hi]
    i = bisect.bisect_right(lows, hi) - 1
    return i >= 0 and exclusions[i][1] >= lo


def key(value: int) -> str:
    """Fixed-width hex that sorts like the integer (pool_range.first_key/last_key)."""
    return format(value, "032x")


def formatter(kind: PoolKind, prefix_length: int | None) -> Callable[[int], str]:
    if kind is PoolKind.IPV4:
        return lambda v: str(ipaddress.IPv4Address(v))
    if kind in (PoolKind.IPV6, PoolKind.PD):
        suffix = f"/{prefix_length}"
        return lambda v: ipaddress.IPv6Address(v).compressed + suffix
    if kind is PoolKind.PHONE:
        return lambda v: f"+{v}"
    raise BadRange(f"{kind} pools are not made of ranges")


# -- parsing one token ------------------------------------------------------------------

def _ipv4_block(token: str) -> Block:
    try:
        if "/" in token:
            net = netaddr.IPNetwork(token)
            if net.version != 4:
                raise BadRange(f"{token!r} is not an IPv4 network")
            if net.ip != net.network:
                raise BadRange(f"{token!r} has host bits set; did you mean {net.cidr}?")
            lo, hi = int(net.first), int(net.last)
            if net.prefixlen <= 30:  # network and broadcast are not host addresses
                return Block(token, lo, hi, lo + 1, 1, hi - lo - 1)
            return Block(token, lo, hi, lo, 1, hi - lo + 1)
        if "-" in token:
            a, b = (p.strip() for p in token.split("-", 1))
            r = netaddr.IPRange(_ip(a, 4, token), _ip(b, 4, token))
            return Block(token, r.first, r.last, r.first, 1, r.last - r.first + 1)
        v = int(_ip(token, 4, token))
        return Block(token, v, v, v, 1, 1)
    except netaddr.AddrFormatError:
        raise BadRange(f"{token!r} is not an IPv4 address, CIDR or A-B range") from None


def _ip(text: str, version: int, token: str) -> netaddr.IPAddress:
    try:
        ip = netaddr.IPAddress(text)
    except (netaddr.AddrFormatError, ValueError):
        raise BadRange(f"{_where(text, token)} is not an IP address") from None
    if ip.version != version:
        raise BadRange(f"{_where(text, token)} is not an IPv{version} address")
    return ip


def _where(text: str, token: str) -> str:
    return repr(text) if text.strip() == token.strip() else f"{text!r} in {token!r}"


def _ipv6_block(token: str, prefix_length: int) -> Block:
    if "-" in token:
        raise BadRange(f"{token!r}: IPv6 pools take a prefix such as 2001:db8::/48, "
                       "carved at --prefix-length")
    try:
        net = netaddr.IPNetwork(token if "/" in token else f"{token}/128")
    except (netaddr.AddrFormatError, ValueError):
        raise BadRange(f"{token!r} is not an IPv6 prefix") from None
    if net.version != 6:
        raise BadRange(f"{token!r} is not an IPv6 prefix")
    if net.ip != net.network:
        raise BadRange(f"{token!r} has host bits set; did you mean {net.cidr}?")
    if prefix_length < net.prefixlen:
        raise BadRange(f"--prefix-length {prefix_length} is shorter than {token!r}")
    step = 1 << (128 - prefix_length)
    count = 1 << (prefix_length - net.prefixlen)
    return Block(token, int(net.network), int(net.last), int(net.network), step, count)


def _phone(text: str, token: str) -> tuple[int, int]:
    m = E164.match(text.strip())
    if not m:
        raise BadRange(f"{_where(text, token)} is not an E.164 number (+ and up to 15 digits)")
    return int(m.group(1)), len(m.group(1))


def _phone_block(token: str) -> Block:
    if "-" in token:
        a, _, b = token.partition("-")
        (lo, ld), (hi, hd) = _phone(a, token), _phone(b, token)
        if ld != hd:
            raise BadRange(f"{token!r}: both ends of a number range need as many digits")
        if lo > hi:
            raise BadRange(f"{token!r}: the range ends before it starts")
        return Block(token, lo, hi, lo, 1, hi - lo + 1)
    v, _ = _phone(token, token)
    return Block(token, v, v, v, 1, 1)


def parse_token(kind: PoolKind, token: str, prefix_length: int | None) -> Block:
    token = token.strip()
    if not token:
        raise BadRange("empty range")
    if kind is PoolKind.IPV4:
        return _ipv4_block(token)
    if kind in (PoolKind.IPV6, PoolKind.PD):
        assert prefix_length is not None
        return _ipv6_block(token, prefix_length)
    if kind is PoolKind.PHONE:
        return _phone_block(token)
    raise BadRange(f"{kind} pools take --pattern, not ranges")


def _exclusion(kind: PoolKind, token: str) -> tuple[int, int]:
    token = token.strip()
    if kind is PoolKind.IPV4:
        b = _ipv4_block(token)
        return b.space_first, b.space_last
    if kind in (PoolKind.IPV6, PoolKind.PD):
        if "-" in token:
            raise BadRange(f"exclusion {token!r}: give an IPv6 address or prefix")
        try:
            net = netaddr.IPNetwork(token if "/" in token else f"{token}/128")
        except (netaddr.AddrFormatError, ValueError):
            raise BadRange(f"exclusion {token!r} is not an IPv6 address or prefix") from None
        if net.version != 6:
            raise BadRange(f"exclusion {token!r} is not an IPv6 address or prefix")
        return int(net.network), int(net.last)
    b = _phone_block(token)
    return b.space_first, b.space_last


# -- sources: command line tokens and files ----------------------------------------------

def split_tokens(values: Iterable[str]) -> list[str]:
    """``--range a,b --range c`` -> [a, b, c]."""
    out: list[str] = []
    for value in values:
        out.extend(t.strip() for t in re.split(r"[,\s]+", value) if t.strip())
    return out


def read_range_file(path: str) -> list[tuple[str, str]]:
    """One or more ranges per line ('#' starts a comment), each with its file:line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadRange(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadRange(f"{path}: cannot read: {exc}") from None
    tokens: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0]
        for token in split_tokens([line]):
            tokens.append((token, f"{path}:{number}"))
    return tokens


def parse_pool(kind: PoolKind, ranges: Sequence[str | tuple[str, str]],
               exclude: Sequence[str] = (),
               prefix_length: int | None = None) -> ParsedPool:
    """Parse and check a pool's ranges and exclusions; raise BadRange naming the bad token."""
    if kind is PoolKind.LOGIN:
        raise BadRange("login pools take --pattern, not --range")
    if kind in (PoolKind.IPV6, PoolKind.PD):
        if prefix_length is None:
            raise BadRange(f"{kind} pools need --prefix-length (e.g. 64 for ipv6, 56 for pd)")
        if not 1 <= prefix_length <= 128:
            raise BadRange(f"--prefix-length {prefix_length} must be 1..128")
    elif prefix_length is not None:
        raise BadRange(f"--prefix-length applies to ipv6 and pd pools, not {kind}")
    if not ranges:
        raise BadRange("give at least one --range or --file")
    blocks: list[Block] = []
    sources: list[str] = []
    for raw in ranges:
        token, origin = (raw, "") if isinstance(raw, str) else raw
        sources.append(token)
        try:
            blocks.append(parse_token(kind, token, prefix_length))
        except BadRange as exc:
            raise BadRange(f"{origin}: {exc}" if origin else str(exc)) from None
    blocks.sort(key=lambda b: b.space_first)
    for before, after in itertools.pairwise(blocks):
        if after.space_first <= before.space_last:
            raise BadRange(f"ranges {before.source!r} and {after.source!r} overlap")
    total = sum(b.count for b in blocks)
    if total > MAX_POOL_ITEMS:
        raise PoolTooLarge(f"the ranges hold {total:,} identifiers; a pool may hold at most "
                           f"{MAX_POOL_ITEMS:,} (split it, or use a longer --prefix-length)")
    intervals = sorted(_exclusion(kind, t) for t in exclude)
    merged: list[tuple[int, int]] = []
    for lo, hi in intervals:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return ParsedPool(kind=kind, prefix_length=prefix_length, blocks=tuple(blocks),
                      exclusions=tuple(merged),
                      sources=tuple(sources),
                      excluded_sources=tuple(t.strip() for t in exclude))


# -- single values, as they come from accounting or the CLI -------------------------------

def normalize_value(kind: PoolKind, text: str, prefix_length: int | None = None) -> str:
    """The canonical text of one identifier; raise BadRange if it is not one."""
    text = text.strip()
    try:
        if kind is PoolKind.IPV4:
            return str(ipaddress.IPv4Address(text))
        if kind in (PoolKind.IPV6, PoolKind.PD):
            if "/" not in text:
                if prefix_length is None:
                    raise ValueError("no prefix length")
                text = f"{text}/{prefix_length}"
            return str(ipaddress.IPv6Network(text, strict=False))
        if kind is PoolKind.PHONE:
            m = E164.match(text)
            if not m:
                raise ValueError("not E.164")
            return f"+{m.group(1)}"
    except ValueError:
        raise BadRange(f"{text!r} is not a valid {kind} identifier") from None
    if not text:
        raise BadRange("empty login")
    return text
