"""Pure rating and money tests: bands, increments, minimums, zero length, Gigawords, rounding."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.errors import InvalidAmount, InvalidTariff
from billing.money import (
    format_amount,
    format_price,
    parse_amount,
    parse_price,
    round_to_minor,
)
from billing.rating import (
    BASE,
    AllowanceLeft,
    SessionRating,
    billed_seconds,
    call_cost_micro,
    call_seconds_affordable,
    longest_prefix,
    octets64,
    rate_call_delta,
    rate_delta,
    rate_delta_charge,
    seconds_affordable,
    slice_cost,
    split_by_bands,
)
from billing.tariffs import (
    AfterAllowance,
    Allowance,
    Band,
    Period,
    Tariff,
    VoiceRate,
    parse_days,
    parse_rates_csv,
    parse_tariff_toml,
)

USD = "USD"


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def per_minute(price: str, increment: int = 60, **kw: object) -> Tariff:
    return Tariff(plan_id=1, plan_name="p", time_price=parse_price(price), time_unit=60,
                  time_increment=increment, **kw)  # type: ignore[arg-type]


NIGHT = Band(name="night", days=frozenset(range(7)), start=22 * 60, end=6 * 60,
             time_price=parse_price("0.01"))


# --- money ---------------------------------------------------------------------------

def test_parse_amount_uses_currency_exponent() -> None:
    """Amounts become integer minor units with the currency's own number of decimals."""
    assert parse_amount("12.5", "USD") == 1250
    assert parse_amount("12", "JPY") == 12
    assert parse_amount("1.234", "KWD") == 1234
    assert format_amount(1250, "USD") == "12.50"
    assert format_amount(-5, "USD") == "-0.05"
    assert format_amount(1234, "KWD") == "1.234"


@pytest.mark.parametrize("bad", ["12.345", "abc", "", "NaN", "inf", "-1", "1e30"])
def test_parse_amount_refuses_bad_input(bad: str) -> None:
    """More decimals than the minor unit, non-numbers, negatives and huge values are refused."""
    with pytest.raises(InvalidAmount):
        parse_amount(bad, "USD")


def test_prices_are_micro_units() -> None:
    """Prices keep six decimals exactly and format back without float noise."""
    assert parse_price("0.0125") == 12_500
    assert format_price(12_500) == "0.0125"
    assert format_price(10_000_000) == "10.00"
    with pytest.raises(InvalidAmount):
        parse_price("0.0000001")


def test_round_half_up_once() -> None:
    """The one rounding rule: half up to the minor unit; never negative."""
    assert round_to_minor(Decimal("0.005"), USD) == 1
    assert round_to_minor(Decimal("0.00499"), USD) == 0
    assert round_to_minor(Decimal("-3"), USD) == 0
    assert round_to_minor(Decimal("0.5"), "JPY") == 1


# --- increments and minimums -----------------------------------------------------------

@pytest.mark.parametrize("seconds,increment,minimum,billed", [
    (0, 60, 60, 0), (1, 60, 60, 60), (60, 60, 60, 60), (61, 60, 60, 120),
    (1, 6, 30, 30), (30, 6, 30, 30), (31, 6, 30, 36), (36, 6, 30, 36), (37, 6, 30, 42),
    (1, 1, 1, 1), (59, 1, 1, 59), (5, 60, 0, 60), (125, 60, 0, 180),
])
def test_billed_seconds_increment_and_minimum(seconds: int, increment: int, minimum: int,
                                              billed: int) -> None:
    """60/60, 30/6 and 1/1 billing: minimum first, then whole increments; zero stays zero."""
    assert billed_seconds(seconds, increment, minimum) == billed


def test_per_minute_rate_rounds_time_up_to_increment() -> None:
    """At 0.60/min with a 60 s increment, 61 s costs two minutes."""
    t = per_minute("0.60")
    r = rate_delta(t, SessionRating(), ts("2024-05-01T10:00:00"), 61, 0, 0, USD)
    assert r.charge == 120


def test_increment_applies_to_session_total_not_each_update() -> None:
    """Two Interim-Updates of 30 s at a 60 s increment cost one minute, not two."""
    t = per_minute("0.60")
    start = ts("2024-05-01T10:00:00")
    first = rate_delta(t, SessionRating(), start, 30, 0, 0, USD)
    second = rate_delta(t, first.state, start + 30, 30, 0, 0, USD)
    assert first.charge == 60
    assert second.charge == 0
    assert second.state.charged == 60


def test_zero_length_session_costs_nothing() -> None:
    """A session of 0 s and 0 octets is free, even with a time increment."""
    t = per_minute("1.00", price_per_mb_in=parse_price("1"))
    r = rate_delta(t, SessionRating(), ts("2024-05-01T10:00:00"), 0, 0, 0, USD)
    assert r.charge == 0
    assert r.state.cost_micro == 0


def test_zero_length_session_still_pays_for_traffic() -> None:
    """Octets in an update with no elapsed time are still charged."""
    t = per_minute("1.00", price_per_mb_in=parse_price("0.10"))
    r = rate_delta(t, SessionRating(), ts("2024-05-01T10:00:00"), 0, 5_000_000, 0, USD)
    assert r.charge == 50


def test_per_second_price() -> None:
    """A per-second price of 0.001 for 1000 s is 1.00."""
    t = Tariff(plan_id=1, plan_name="p", time_price=parse_price("0.001"), time_unit=1)
    r = rate_delta(t, SessionRating(), ts("2024-05-01T10:00:00"), 1000, 0, 0, USD)
    assert r.charge == 100


# --- bands -----------------------------------------------------------------------------

def test_session_crossing_band_boundary_is_split() -> None:
    """21:50-22:10 at 0.06/min day and 0.01/min night: 10 min each side."""
    t = per_minute("0.06", bands=(NIGHT,))
    start = ts("2024-05-01T21:50:00")
    segs = split_by_bands(t, start, 1200)
    assert [(s.band, s.seconds) for s in segs] == [(BASE, 600), ("night", 600)]
    r = rate_delta(t, SessionRating(), start, 1200, 0, 0, USD)
    assert r.charge == 60 + 10


def test_band_boundary_exact_second() -> None:
    """A session ending exactly at 22:00 is all day rate; one starting then is all night rate."""
    t = per_minute("0.06", bands=(NIGHT,))
    before = rate_delta(t, SessionRating(), ts("2024-05-01T21:59:00"), 60, 0, 0, USD)
    after = rate_delta(t, SessionRating(), ts("2024-05-01T22:00:00"), 60, 0, 0, USD)
    assert before.charge == 6
    assert after.charge == 1
    assert [ln.band for ln in before.lines] == [BASE]
    assert [ln.band for ln in after.lines] == ["night"]


def test_each_band_part_has_its_own_increment() -> None:
    """30 s either side of 22:00 at a 60 s increment: each part rounds up to a minute."""
    t = per_minute("0.06", bands=(NIGHT,))
    r = rate_delta(t, SessionRating(), ts("2024-05-01T21:59:30"), 60, 0, 0, USD)
    assert [(ln.band, ln.billed_seconds) for ln in r.lines] == [(BASE, 60), ("night", 60)]
    assert r.charge == 6 + 1


def test_session_crossing_midnight_and_two_bands() -> None:
    """A 10-hour session 20:00-06:00 crosses night start, midnight and night end correctly."""
    t = per_minute("0.06", bands=(NIGHT,))
    segs = split_by_bands(t, ts("2024-05-01T20:00:00"), 11 * 3600)
    assert [(s.band, s.seconds) for s in segs] == [(BASE, 7200), ("night", 8 * 3600),
                                                   (BASE, 3600)]


def test_weekday_band_respects_days_and_timezone() -> None:
    """A weekend band in Europe/Berlin applies on Saturday local time, not UTC."""
    weekend = Band(name="weekend", days=parse_days("sat-sun"), start=0, end=0,
                   time_price=0)
    t = per_minute("0.06", bands=(weekend,), timezone="Europe/Berlin")
    # Friday 22:30 UTC is Saturday 00:30 in Berlin (CEST, +2).
    r = rate_delta(t, SessionRating(), ts("2024-05-03T22:30:00"), 600, 0, 0, USD)
    assert [ln.band for ln in r.lines] == ["weekend"]
    assert r.charge == 0
    r2 = rate_delta(t, SessionRating(), ts("2024-05-03T21:30:00"), 600, 0, 0, USD)
    assert r2.charge == 60


def test_octets_shared_across_band_parts_by_time() -> None:
    """Traffic in a delta crossing a boundary is shared by seconds, none lost."""
    night = Band(name="night", days=frozenset(range(7)), start=22 * 60, end=6 * 60,
                 price_per_mb_in=0)
    t = Tariff(plan_id=1, plan_name="p", price_per_mb_in=parse_price("0.10"), bands=(night,))
    r = rate_delta(t, SessionRating(), ts("2024-05-01T21:50:00"), 1200, 10_000_001, 0, USD)
    assert sum(ln.octets_in for ln in r.lines) == 10_000_001
    assert r.charge == 50


# --- traffic and Gigawords --------------------------------------------------------------

def test_gigawords_make_64_bit_totals() -> None:
    """Acct-Input-Gigawords=2, Octets=5 means 2*2**32+5 octets."""
    assert octets64(5, 2) == 2 * 2**32 + 5
    with pytest.raises(ValueError):
        octets64(-1, 0)


def test_traffic_beyond_32_bits_is_charged_in_full() -> None:
    """6 GB in at 0.001/MB is 6.00, not what a wrapped 32-bit counter would say."""
    t = Tariff(plan_id=1, plan_name="p", price_per_mb_in=parse_price("0.001"))
    octets = octets64(6_000_000_000 - 2**32, 1)
    r = rate_delta(t, SessionRating(), ts("2024-05-01T10:00:00"), 60, octets, 0, USD)
    assert r.charge == 600


def test_in_and_out_priced_separately() -> None:
    """Download and upload have their own price per MB."""
    t = Tariff(plan_id=1, plan_name="p", price_per_mb_in=parse_price("0.01"),
               price_per_mb_out=parse_price("0.02"))
    r = rate_delta(t, SessionRating(), 0, 0, 100_000_000, 50_000_000, USD)
    assert r.charge == 100 + 100


# --- allowances ------------------------------------------------------------------------

def test_allowance_is_free_then_charged() -> None:
    """With 10 free minutes left and after=charge, 15 minutes bill 5."""
    t = per_minute("0.10", allowance=Allowance(Period.MONTH, seconds=600))
    r = rate_delta(t, SessionRating(), 0, 900, 0, 0, USD,
                   AllowanceLeft(seconds=600, has_seconds=True))
    assert r.charge == 50
    assert r.allowance_seconds_used == 600
    assert r.allowance_exhausted


def test_allowance_throttle_does_not_charge_past_it() -> None:
    """after=throttle: traffic past the allowance is not charged but flagged."""
    t = Tariff(plan_id=1, plan_name="p", price_per_mb_in=parse_price("0.10"),
               allowance=Allowance(Period.MONTH, octets=1_000_000,
                                   after=AfterAllowance.THROTTLE, throttle_rate_limit="1M/1M"))
    r = rate_delta(t, SessionRating(), 0, 10, 3_000_000, 0, USD,
                   AllowanceLeft(octets=1_000_000, has_octets=True))
    assert r.charge == 0
    assert r.past_allowance and r.allowance_exhausted
    assert r.allowance_octets_used == 1_000_000


# --- splitting never changes the total --------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 3 * 10**9),
                          st.integers(0, 10**9)), min_size=1, max_size=8),
       st.integers(ts("2024-05-01T00:00:00"), ts("2024-05-08T00:00:00")))
def test_split_updates_sum_to_single_rating(parts: list[tuple[int, int, int]], start: int
                                            ) -> None:
    """However a session is cut into updates, the charges add up to rating it whole."""
    t = per_minute("0.07", increment=30, bands=(NIGHT,), price_per_mb_in=parse_price("0.0013"),
                   price_per_mb_out=parse_price("0.0021"))
    state = SessionRating()
    total_charge = 0
    at = start
    for seconds, oin, oout in parts:
        r = rate_delta(t, state, at, seconds, oin, oout, USD)
        state = r.state
        total_charge += r.charge
        at += seconds
    assert total_charge == state.charged
    assert total_charge == round_to_minor(state.cost_micro / 10**6, USD)
    assert total_charge >= 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 3 * 10**9),
                          st.integers(0, 10**9)), min_size=1, max_size=6),
       st.integers(ts("2024-05-01T00:00:00"), ts("2024-05-08T00:00:00")),
       st.sampled_from([1, 7, 30, 60]), st.sampled_from([1, 60]), st.booleans(),
       st.sampled_from(["USD", "JPY", "KWD"]))
def test_charging_fast_path_equals_rate_delta(parts: list[tuple[int, int, int]], start: int,
                                              increment: int, unit: int, bands: bool,
                                              currency: str) -> None:
    """rate_delta_charge gives rate_delta's exact state (stored JSON) and charge."""
    t = Tariff(plan_id=1, plan_name="p", time_price=parse_price("0.0701"), time_unit=unit,
               time_increment=increment, bands=(NIGHT,) if bands else (),
               price_per_mb_in=parse_price("0.0013"), price_per_mb_out=parse_price("0.0021"))
    slow = fast = SessionRating()
    at = start
    for seconds, oin, oout in parts:
        r = rate_delta(t, slow, at, seconds, oin, oout, currency)
        fast, charge = rate_delta_charge(t, fast, at, seconds, oin, oout, currency)
        assert charge == r.charge
        assert fast.to_json() == r.state.to_json()
        slow = SessionRating.from_json(r.state.to_json())
        fast = SessionRating.from_json(fast.to_json())
        at += seconds


# --- calls -----------------------------------------------------------------------------

RATES = {r.prefix: r for r in [
    VoiceRate("44", parse_price("0.10"), parse_price("0.05"), 60, 60),
    VoiceRate("4420", parse_price("0.02"), 0, 30, 6),
    VoiceRate("1", parse_price("0.60"), 0, 1, 1),
]}


def test_longest_prefix_wins() -> None:
    """London (4420) beats UK (44); unknown destinations match nothing."""
    assert longest_prefix(RATES, "+44 20 7946 0000").prefix == "4420"  # type: ignore[union-attr]
    assert longest_prefix(RATES, "00441632960000").prefix == "44"  # type: ignore[union-attr]
    assert longest_prefix(RATES, "sip:15550001@pbx").prefix == "1"  # type: ignore[union-attr]
    assert longest_prefix(RATES, "33123") is None


def test_call_connect_fee_minimum_increment() -> None:
    """60/60 with a connect fee; 30/6; 1/1; and an unanswered call is free."""
    uk = RATES["44"]
    assert rate_call_delta(uk, SessionRating(), 61, USD).charge == 5 + 20
    london = RATES["4420"]
    assert call_cost_micro(london, 31) == Decimal(20_000 * 36) / 60
    assert rate_call_delta(london, SessionRating(), 31, USD).charge == 1
    us = RATES["1"]
    assert rate_call_delta(us, SessionRating(), 10, USD).charge == 10
    assert rate_call_delta(uk, SessionRating(), 0, USD).charge == 0


def test_call_interims_add_to_the_whole_call() -> None:
    """A call rated in two parts costs the same as rated whole (minimum applies once)."""
    uk = RATES["44"]
    a = rate_call_delta(uk, SessionRating(), 20, USD)
    b = rate_call_delta(uk, a.state, 50, USD)
    assert a.charge + b.charge == rate_call_delta(uk, SessionRating(), 70, USD).charge


def test_call_seconds_affordable() -> None:
    """1.00 buys a UK call of 9 whole minutes (0.05 connect + 0.10/min)."""
    assert call_seconds_affordable(RATES["44"], 100, USD) == 540
    assert call_seconds_affordable(RATES["44"], 10, USD) == 0
    assert call_seconds_affordable(RATES["1"], 100, USD) == 100


# --- what money buys ---------------------------------------------------------------------

def test_seconds_affordable_walks_bands() -> None:
    """0.16 at 21:58 buys 2 day minutes (0.12) then 4 night minutes (0.04)."""
    t = per_minute("0.06", bands=(NIGHT,))
    assert seconds_affordable(t, 16, ts("2024-05-01T21:58:00"), USD) == 360
    assert seconds_affordable(t, 0, ts("2024-05-01T21:58:00"), USD) == 0
    free = Tariff(plan_id=1, plan_name="p", price_per_mb_in=1)
    assert seconds_affordable(free, 0, 0, USD) is None


def test_slice_cost_rounds_up() -> None:
    """A 300 s slice at 0.01/min is 0.05; 50 MB at 0.001/MB adds 0.05; rounding is up."""
    t = per_minute("0.01", increment=1, price_per_mb_in=parse_price("0.001"))
    assert slice_cost(t, 0, 300, 50_000_000, USD) == 10
    assert slice_cost(per_minute("0.001", increment=1), 0, 30, 0, USD) == 1


# --- import formats ---------------------------------------------------------------------

TOML = """
[plan.home]
timezone = "Europe/Berlin"
credit_limit = "0"
monthly_fee = "9.99"
time = { price = "0.02", unit = "minute", increment = 60 }
traffic = { price_per_mb_in = "0.001", price_per_mb_out = "0.002" }
[plan.home.allowance]
period = "month"
traffic_mb = 1000
after = "throttle"
throttle_rate_limit = "1M/1M"
[[plan.home.band]]
name = "night"
days = "mon-sun"
from = "22:00"
to = "06:00"
time_price = "0.01"
[[plan.home.voice_rate]]
prefix = "44"
price_per_minute = "0.05"
connect_fee = "0.10"
minimum = 60
increment = 60
"""


def test_toml_import_parses_every_section() -> None:
    """The documented TOML example becomes one spec with prices in micro-units."""
    (spec,) = parse_tariff_toml(TOML, USD)
    assert spec.plan_name == "home"
    assert spec.values["time_price"] == 20_000
    assert spec.values["monthly_fee"] == 9_990_000
    assert spec.bands is not None and spec.bands[0].start == 22 * 60
    assert spec.allowance is not None and spec.allowance.octets == 1000 * 10**6
    assert spec.voice_rates is not None and spec.voice_rates[0].connect_fee == 100_000


@pytest.mark.parametrize("bad,word", [
    ("[plan.x]\nmonthly_fee = 1.5\n", "quoted"),
    ("[plan.x]\nbogus = 1\n", "bogus"),
    ("[plan.x]\ntime = { unit = \"hour\" }\n", "unit"),
    ("[plan.x]\n[[plan.x.band]]\nname='a'\nfrom='10:00'\nto='12:00'\n"
     "[[plan.x.band]]\nname='b'\nfrom='11:00'\nto='13:00'\n", "overlap"),
    ("[plan.x]\ntimezone = \"Mars/Olympus\"\n", "timezone"),
    ("not toml [", "TOML"),
])
def test_toml_import_errors_name_the_problem(bad: str, word: str) -> None:
    """A bad import file is refused whole with a message naming the key."""
    with pytest.raises(InvalidTariff, match=word):
        parse_tariff_toml(bad, USD)


def test_rates_csv_with_header_and_errors() -> None:
    """CSV rates: header skipped, defaults filled, bad rows named by line."""
    rates = parse_rates_csv("prefix,rate,connect_fee,minimum,increment\n44,0.05,0.10,60,60\n"
                            "1,0.01\n")
    assert [(r.prefix, r.minimum, r.increment) for r in rates] == [("44", 60, 60), ("1", 0, 1)]
    with pytest.raises(InvalidTariff, match="line 2"):
        parse_rates_csv("prefix,rate\n44x,0.05\n")
    with pytest.raises(InvalidTariff, match="twice"):
        parse_rates_csv("44,0.05\n44,0.06\n")


@settings(max_examples=300, deadline=None)
@given(st.integers(1_600_000_000, 1_900_000_000),
       st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC",
                        "Asia/Kathmandu"]))
def test_fast_band_lookup_matches_wall_clock(ts: int, zone: str) -> None:
    """The arithmetic band lookup agrees with zoneinfo's wall clock, DST changes included."""
    from zoneinfo import ZoneInfo

    from billing.rating import _next_boundary, _next_boundary_dst, band_at

    night = Band(name="night", days=parse_days("mon-fri"), start=22 * 60 + 30, end=6 * 60,
                 time_price=1)
    t = Tariff(plan_id=1, plan_name="p", timezone=zone, bands=(night,))
    local = datetime.fromtimestamp(ts, ZoneInfo(zone))
    expected = night if night.covers(local.weekday(), local.hour * 60 + local.minute) else None
    assert band_at(t, ts) is expected
    assert _next_boundary(t, ts) == _next_boundary_dst(t, ts)
