"""Rating: usage -> cost, as pure functions of a Tariff (no database, no clock).

Everything here is deterministic and exhaustively unit-tested; the loop, the
reservation code and the dry-run rater all go through it. Costs are exact
Decimals in micro-units until the one rounding rule of billing.money turns a
running total into minor units.

A data session is rated *cumulatively*: its state keeps the chargeable
seconds and octets per band and the exact cost so far; each delta adds its
marginal cost (cost of the new band totals minus cost of the old ones), so
billing increments apply to a session's total time in a band, not to each
Interim-Update, and splitting a session into many updates never changes
what it costs. A delta that crosses a band boundary is split at the
boundary; its octets are shared among the parts in proportion to their
seconds. Calls are rated the same way on their total duration.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_CEILING, Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from billing.money import MICRO, exponent, floor_int, micro_to_major, round_to_minor
from billing.tariffs import MB_BYTES, AfterAllowance, Band, Tariff, VoiceRate

BASE = ""  # the band key of "no band in force": the tariff's base prices
MAX_GRANT_SECONDS = 86_400
OCTETS_64 = (1 << 64) - 1


# --- time bands ----------------------------------------------------------------------

@lru_cache(maxsize=65_536)
def _utc_offset(zone: str, quarter: int) -> int:
    """The zone's UTC offset in the quarter hour ``quarter`` (zones change at quarter hours)."""
    off = datetime.fromtimestamp(quarter * 900, ZoneInfo(zone)).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


def band_at(tariff: Tariff, ts: int) -> Band | None:
    if not tariff.bands:
        return None
    local = ts + _utc_offset(tariff.timezone, ts // 900)
    minute = (local // 60) % 1440
    weekday = (local // 86400 + 3) % 7  # 1970-01-01 was a Thursday
    for band in tariff.bands:
        if band.covers(weekday, minute):
            return band
    return None


def _next_boundary(tariff: Tariff, ts: int) -> int:
    """The first instant after ``ts`` at which the band in force may change."""
    off = _utc_offset(tariff.timezone, ts // 900)
    local = ts + off
    day0 = local - local % 86400
    minutes = sorted({0} | {b.start for b in tariff.bands} | {b.end for b in tariff.bands})
    for day in (0, 1, 2):
        for m in minutes:
            cand = day0 + day * 86400 + m * 60 - off
            if cand > ts:
                if _utc_offset(tariff.timezone, cand // 900) == off:
                    return cand
                return _next_boundary_dst(tariff, ts)
    return ts + 60


def _next_boundary_dst(tariff: Tariff, ts: int) -> int:
    """The same, by wall-clock arithmetic, for the rare case of a DST change in between."""
    zone = tariff.zone
    local = datetime.fromtimestamp(ts, zone)
    minutes = sorted({0} | {b.start for b in tariff.bands} | {b.end for b in tariff.bands})
    best: int | None = None
    for day in (0, 1, 2):
        midnight = datetime.combine(local.date() + timedelta(days=day), time(0), tzinfo=zone)
        for m in minutes:
            cand = int((midnight + timedelta(minutes=m)).timestamp())
            if cand > ts and (best is None or cand < best):
                best = cand
        if best is not None:
            break
    return best if best is not None else ts + 60


@dataclass(frozen=True)
class Segment:
    band: str
    start: int
    seconds: int
    octets_in: int = 0
    octets_out: int = 0


def split_by_bands(tariff: Tariff, start: int, seconds: int) -> list[Segment]:
    """[start, start+seconds) cut at every band boundary, each part named by its band."""
    if seconds <= 0 or not tariff.bands:
        band = band_at(tariff, start + max(seconds, 0) - (1 if seconds > 0 else 0))
        return [Segment(band.name if band else BASE, start, max(seconds, 0))]
    out: list[Segment] = []
    t, end = start, start + seconds
    while t < end:
        band = band_at(tariff, t)
        nxt = min(_next_boundary(tariff, t), end)
        name = band.name if band else BASE
        if out and out[-1].band == name:
            last = out[-1]
            out[-1] = replace(last, seconds=last.seconds + (nxt - t))
        else:
            out.append(Segment(name, t, nxt - t))
        t = nxt
    return out


def share_octets(segments: list[Segment], octets_in: int, octets_out: int) -> list[Segment]:
    """Give each segment its share of the octets by seconds; remainders go to the last one."""
    total = sum(s.seconds for s in segments)
    if len(segments) == 1 or total == 0:
        first = segments[-1]
        return [*segments[:-1], replace(first, octets_in=octets_in, octets_out=octets_out)]
    out: list[Segment] = []
    left_in, left_out = octets_in, octets_out
    for i, seg in enumerate(segments):
        if i == len(segments) - 1:
            out.append(replace(seg, octets_in=left_in, octets_out=left_out))
        else:
            part_in = octets_in * seg.seconds // total
            part_out = octets_out * seg.seconds // total
            left_in -= part_in
            left_out -= part_out
            out.append(replace(seg, octets_in=part_in, octets_out=part_out))
    return out


def octets64(octets: int, gigawords: int) -> int:
    """RFC 2869 section 5.1/5.2: Gigawords counts the 2**32 wraps of the 32-bit octet counter."""
    if octets < 0 or gigawords < 0:
        raise ValueError("octet counters are never negative")
    return (gigawords << 32) + octets


# --- prices ----------------------------------------------------------------------------

def band_prices(tariff: Tariff, band_name: str) -> tuple[int, int, int]:
    """(time price, in price, out price) in micro-units for a band key, base as fallback."""
    for band in tariff.bands:
        if band.name == band_name:
            return (band.time_price if band.time_price is not None else tariff.time_price,
                    band.price_per_mb_in if band.price_per_mb_in is not None
                    else tariff.price_per_mb_in,
                    band.price_per_mb_out if band.price_per_mb_out is not None
                    else tariff.price_per_mb_out)
    return tariff.time_price, tariff.price_per_mb_in, tariff.price_per_mb_out


def billed_seconds(seconds: int, increment: int, minimum: int = 0) -> int:
    """Seconds charged for: 0 stays 0; else at least ``minimum``, then whole increments."""
    if seconds <= 0:
        return 0
    if seconds <= minimum:
        return minimum
    over = seconds - minimum
    return minimum + -(-over // increment) * increment


def band_cost_micro(tariff: Tariff, band_name: str, seconds: int, octets_in: int,
                    octets_out: int) -> Decimal:
    time_price, in_price, out_price = band_prices(tariff, band_name)
    billed = billed_seconds(seconds, tariff.time_increment)
    cost = Decimal(time_price * billed) / tariff.time_unit
    cost += Decimal(in_price * octets_in) / MB_BYTES
    cost += Decimal(out_price * octets_out) / MB_BYTES
    return cost


# --- session state and delta rating ---------------------------------------------------

@dataclass(frozen=True)
class BandUsage:
    seconds: int = 0
    octets_in: int = 0
    octets_out: int = 0


@dataclass(frozen=True)
class SessionRating:
    """What a session has been charged for so far: chargeable usage per band, exact cost."""

    bands: dict[str, BandUsage] = field(default_factory=dict)
    cost_micro: Decimal = Decimal(0)
    charged: int = 0  # minor units already in the ledger

    def to_json(self) -> dict[str, object]:
        return {"b": {k: [v.seconds, v.octets_in, v.octets_out] for k, v in self.bands.items()},
                "c": str(self.cost_micro), "q": self.charged}

    @classmethod
    def from_json(cls, data: dict[str, object] | None) -> SessionRating:
        if not data:
            return cls()
        bands_raw = data.get("b") or {}
        assert isinstance(bands_raw, dict)
        bands = {str(k): BandUsage(int(v[0]), int(v[1]), int(v[2])) for k, v in bands_raw.items()}
        return cls(bands=bands, cost_micro=Decimal(str(data.get("c", "0"))),
                   charged=int(data.get("q", 0)))  # type: ignore[call-overload]


@dataclass(frozen=True)
class AllowanceLeft:
    """What is left of the period's included allowance (0 where the plan includes none)."""

    seconds: int = 0
    octets: int = 0
    has_seconds: bool = False
    has_octets: bool = False


@dataclass(frozen=True)
class Line:
    """One line of a cost breakdown: a band's share of a delta and what it costs."""

    band: str
    seconds: int
    billed_seconds: int
    octets_in: int
    octets_out: int
    free_seconds: int
    free_octets: int
    cost_micro: Decimal


@dataclass(frozen=True)
class DeltaRating:
    state: SessionRating
    charge: int                    # minor units to put in the ledger now (>= 0)
    lines: tuple[Line, ...]
    allowance_seconds_used: int
    allowance_octets_used: int
    allowance_exhausted: bool      # an included allowance ran out with this delta
    past_allowance: bool           # usage beyond an allowance whose after-action is not charge


def rate_delta(tariff: Tariff, state: SessionRating, start: int, seconds: int,
               octets_in: int, octets_out: int, currency: str,
               allowance: AllowanceLeft | None = None) -> DeltaRating:
    """Rate one usage delta [start, start+seconds) of a session whose state is ``state``."""
    if seconds < 0 or octets_in < 0 or octets_out < 0:
        raise ValueError("usage is never negative")
    left = allowance or AllowanceLeft()
    after = tariff.allowance.after if tariff.allowance else AfterAllowance.CHARGE
    segments = share_octets(split_by_bands(tariff, start, seconds), octets_in, octets_out)
    left_sec, left_oct = left.seconds, left.octets
    used_sec = used_oct = 0
    past = False
    bands = dict(state.bands)
    marginal = Decimal(0)
    lines: list[Line] = []
    for seg in segments:
        free_sec = min(seg.seconds, left_sec) if left.has_seconds else 0
        left_sec -= free_sec
        free_in = min(seg.octets_in, left_oct) if left.has_octets else 0
        left_oct -= free_in
        free_out = min(seg.octets_out, left_oct) if left.has_octets else 0
        left_oct -= free_out
        used_sec += free_sec
        used_oct += free_in + free_out
        charge_sec = seg.seconds - free_sec
        charge_in = seg.octets_in - free_in
        charge_out = seg.octets_out - free_out
        if after is not AfterAllowance.CHARGE:
            over_time = left.has_seconds and charge_sec > 0
            over_traffic = left.has_octets and (charge_in + charge_out) > 0
            past = past or over_time or over_traffic
            if over_time:
                charge_sec = 0
            if over_traffic:
                charge_in = charge_out = 0
        old = bands.get(seg.band, BandUsage())
        new = BandUsage(old.seconds + charge_sec, old.octets_in + charge_in,
                        old.octets_out + charge_out)
        bands[seg.band] = new
        cost = (band_cost_micro(tariff, seg.band, new.seconds, new.octets_in, new.octets_out)
                - band_cost_micro(tariff, seg.band, old.seconds, old.octets_in, old.octets_out))
        marginal += cost
        lines.append(Line(seg.band, seg.seconds,
                          billed_seconds(new.seconds, tariff.time_increment)
                          - billed_seconds(old.seconds, tariff.time_increment),
                          seg.octets_in, seg.octets_out, free_sec, free_in + free_out, cost))
    exhausted = ((left.has_seconds and left.seconds > 0 and left_sec == 0)
                 or (left.has_octets and left.octets > 0 and left_oct == 0))
    return _settle(state, bands, marginal, currency, tuple(lines), used_sec, used_oct,
                   exhausted, past)


_NO_USAGE = BandUsage()


def rate_delta_charge(tariff: Tariff, state: SessionRating, start: int, seconds: int,
                      octets_in: int, octets_out: int, currency: str
                      ) -> tuple[SessionRating, int]:
    """``rate_delta``'s (state, charge) for a tariff without an allowance, minus the breakdown.

    The charging pass rates every delta and needs neither the cost lines nor the
    allowance bookkeeping, whose objects were most of the rating time. The Decimal
    operations are rate_delta's, in its order, so states and charges are identical
    (test_billing_rating checks this on random usage).
    """
    if tariff.allowance is not None:
        r = rate_delta(tariff, state, start, seconds, octets_in, octets_out, currency)
        return r.state, r.charge
    if seconds < 0 or octets_in < 0 or octets_out < 0:
        raise ValueError("usage is never negative")
    bands = dict(state.bands)
    marginal = Decimal(0)
    if not tariff.bands:
        parts = [(BASE, seconds, octets_in, octets_out)]
    elif _next_boundary(tariff, start) >= start + seconds:
        # Inside one band (split_by_bands would return this one segment with all octets).
        band = band_at(tariff, start)
        parts = [(band.name if band else BASE, seconds, octets_in, octets_out)]
    else:
        parts = [(s.band, s.seconds, s.octets_in, s.octets_out) for s in
                 share_octets(split_by_bands(tariff, start, seconds), octets_in, octets_out)]
    for name, sec, oin, oout in parts:
        old = bands.get(name, _NO_USAGE)
        new = BandUsage(old.seconds + sec, old.octets_in + oin, old.octets_out + oout)
        bands[name] = new
        marginal += (band_cost_micro(tariff, name, new.seconds, new.octets_in, new.octets_out)
                     - band_cost_micro(tariff, name, old.seconds, old.octets_in,
                                       old.octets_out))
    cost = state.cost_micro + max(marginal, Decimal(0))
    charge = max(0, round_to_minor(micro_to_major(cost), currency) - state.charged)
    return SessionRating(bands=bands, cost_micro=cost, charged=state.charged + charge), charge


def _settle(state: SessionRating, bands: dict[str, BandUsage], marginal: Decimal,
            currency: str, lines: tuple[Line, ...], used_sec: int, used_oct: int,
            exhausted: bool, past: bool) -> DeltaRating:
    cost = state.cost_micro + max(marginal, Decimal(0))
    total = round_to_minor(micro_to_major(cost), currency)
    charge = max(0, total - state.charged)
    new_state = SessionRating(bands=bands, cost_micro=cost, charged=state.charged + charge)
    return DeltaRating(new_state, charge, lines, used_sec, used_oct, exhausted, past)


# --- calls -----------------------------------------------------------------------------

def call_cost_micro(rate: VoiceRate, seconds: int) -> Decimal:
    """Connect fee plus the per-minute price on the billed duration; unanswered calls are free."""
    if seconds <= 0:
        return Decimal(0)
    billed = billed_seconds(seconds, rate.increment, rate.minimum)
    return Decimal(rate.connect_fee) + Decimal(rate.price_per_minute * billed) / 60


def rate_call_delta(rate: VoiceRate, state: SessionRating, seconds: int,
                    currency: str) -> DeltaRating:
    """Rate ``seconds`` more of a call whose duration so far is in ``state``."""
    if seconds < 0:
        raise ValueError("usage is never negative")
    old = state.bands.get(BASE, BandUsage())
    new = BandUsage(old.seconds + seconds)
    marginal = call_cost_micro(rate, new.seconds) - call_cost_micro(rate, old.seconds)
    line = Line(BASE, seconds,
                billed_seconds(new.seconds, rate.increment, rate.minimum)
                - billed_seconds(old.seconds, rate.increment, rate.minimum),
                0, 0, 0, 0, marginal)
    return _settle(state, {**state.bands, BASE: new}, marginal, currency, (line,), 0, 0,
                   False, False)


def longest_prefix(rates: dict[str, VoiceRate], number: str) -> VoiceRate | None:
    """A2Billing-style: the longest rate prefix the dialled digits start with."""
    digits = normalize_number(number)
    for n in range(len(digits), 0, -1):
        rate = rates.get(digits[:n])
        if rate is not None:
            return rate
    return None


def normalize_number(number: str) -> str:
    """'+44 20 7946-0000' -> '442079460000'; SIP URIs keep their user part's digits."""
    text = number.strip()
    if text.lower().startswith(("sip:", "sips:", "tel:")):
        text = text.split(":", 1)[1].split("@", 1)[0]
    if text.startswith("00"):
        text = text[2:]
    return "".join(ch for ch in text if ch.isdigit())


# --- what money buys ---------------------------------------------------------------------

def money_micro(minor: int, currency: str) -> int:
    return minor * MICRO // (10 ** exponent(currency))


def seconds_affordable(tariff: Tariff, money_minor: int, at: int, currency: str,
                       horizon: int = MAX_GRANT_SECONDS) -> int | None:
    """How long a session starting at ``at`` may run on ``money_minor``; None = time is free.

    Walks the bands forward from ``at``; the answer is rounded down to the
    tariff's increment so the grant is never worth more than the money.
    """
    if not tariff.charges_time:
        return None
    money = Decimal(money_micro(max(money_minor, 0), currency))
    segments = split_by_bands(tariff, at, horizon)
    granted = 0
    for seg in segments:
        price, _, _ = band_prices(tariff, seg.band)
        if price == 0:
            granted += seg.seconds
            continue
        per_second = Decimal(price) / tariff.time_unit
        can = floor_int(money / per_second)
        if can >= seg.seconds:
            granted += seg.seconds
            money -= per_second * seg.seconds
        else:
            granted += can
            break
    else:
        return horizon
    return granted - granted % tariff.time_increment


def octets_affordable(tariff: Tariff, money_minor: int, at: int, currency: str) -> int | None:
    """Octets (either direction) ``money_minor`` buys at the band of ``at``; None = free.

    Priced at the dearer of the in and out price, like slice_cost, so the quota given to
    the NAS is never worth more than the money in whichever direction it is used.
    """
    if not tariff.charges_traffic:
        return None
    band = band_at(tariff, at)
    _, pin, pout = band_prices(tariff, band.name if band else BASE)
    price = max(pin, pout)
    if price <= 0:
        return None
    money = Decimal(money_micro(max(money_minor, 0), currency))
    return floor_int(money * MB_BYTES / price)


def call_seconds_affordable(rate: VoiceRate, money_minor: int, currency: str,
                            horizon: int = MAX_GRANT_SECONDS) -> int:
    """The longest call the money pays for at this rate (0: not even the connect fee)."""
    money = Decimal(money_micro(max(money_minor, 0), currency))
    first = rate.minimum if rate.minimum > 0 else rate.increment
    if call_cost_micro(rate, first) > money:
        return 0
    if rate.price_per_minute == 0:
        return horizon
    steps = floor_int((money - call_cost_micro(rate, first)) * 60
                      / (rate.price_per_minute * rate.increment))
    return min(horizon, first + steps * rate.increment)


def slice_cost(tariff: Tariff, at: int, seconds: int, octets: int, currency: str) -> int:
    """Minor units to hold for a slice of ``seconds`` and ``octets`` starting at ``at``.

    Octets are priced at the dearer of the in and out price, so the hold covers
    either direction; rounded up to a whole minor unit.
    """
    cost = Decimal(0)
    if tariff.charges_time and seconds > 0:
        for seg in split_by_bands(tariff, at, seconds):
            cost += band_cost_micro(tariff, seg.band, seg.seconds, 0, 0)
    if tariff.charges_traffic and octets > 0:
        band = band_at(tariff, at)
        _, pin, pout = band_prices(tariff, band.name if band else BASE)
        cost += Decimal(max(pin, pout) * octets) / MB_BYTES
    if cost <= 0:
        return 0
    scaled = micro_to_major(cost).scaleb(exponent(currency))
    return int(scaled.to_integral_value(rounding=ROUND_CEILING))


def utc_ts(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())
