"""Prices as data: the Tariff a plan carries, and its TOML and CSV import formats.

A Tariff is a frozen value the rater works on; it is loaded from the
``tariff``, ``tariff_band`` and ``voice_rate`` tables (billing.tariff_store)
and written there from ``radbill plan set``, ``radbill plan import FILE.toml``
and ``radbill rates import PLAN FILE.csv``. Prices are integers in
micro-units of the major currency unit (see billing.money); durations in
seconds; traffic in octets, with a "MB" of :data:`MB_BYTES` octets.

The TOML format (documented with an example in docs/billing.md)::

    [plan.NAME]                       # one table per plan; the plan is created if missing
    timezone = "UTC"                  # bands and fee periods are in this zone
    credit_limit = "0"                # 0 = prepaid; > 0 = postpaid, may owe this much
    monthly_fee = "10.00"
    daily_fee = "0"
    time = { price = "0.02", unit = "minute", increment = 60 }
    traffic = { price_per_mb_in = "0.001", price_per_mb_out = "0.002" }
    [plan.NAME.allowance]             # included per period; after = charge|throttle|cutoff
    period = "month"; traffic_mb = 10000; minutes = 0
    after = "throttle"; throttle_rate_limit = "1M/1M"
    [[plan.NAME.band]]                # time-of-day / weekday bands override the base prices
    name = "night"; days = "mon-sun"; from = "22:00"; to = "06:00"
    time_price = "0.01"; price_per_mb_in = "0"; price_per_mb_out = "0"
    [[plan.NAME.voice_rate]]
    prefix = "44"; price_per_minute = "0.05"; connect_fee = "0.10"; minimum = 60; increment = 60

CSV voice rates: ``prefix,rate,connect_fee,minimum,increment[,description]``
with an optional header line; ``rate`` is per minute.
"""

from __future__ import annotations

import csv
import enum
import io
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from billing.errors import InvalidAmount, InvalidTariff
from billing.money import check_currency, parse_amount, parse_price

MB_BYTES = 1_000_000
MAX_INCREMENT = 3600
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_PREFIX = 32


class AfterAllowance(enum.StrEnum):
    CHARGE = "charge"      # usage past the allowance is charged at the normal prices
    THROTTLE = "throttle"  # not charged; live sessions are slowed down by a CoA
    CUTOFF = "cutoff"      # not charged; live sessions are disconnected, new ones refused


class Period(enum.StrEnum):
    DAY = "day"
    MONTH = "month"


@dataclass(frozen=True)
class Band:
    """Prices in force on ``days`` from ``start`` to ``end`` minute of the day (local time).

    ``end <= start`` wraps past midnight: a band from 22:00 to 06:00 listed for
    Friday covers Friday 22:00 to Saturday 06:00. ``None`` prices fall back to
    the tariff's base prices.
    """

    name: str
    days: frozenset[int]
    start: int
    end: int
    time_price: int | None = None
    price_per_mb_in: int | None = None
    price_per_mb_out: int | None = None

    def covers(self, weekday: int, minute: int) -> bool:
        if self.start < self.end:
            return weekday in self.days and self.start <= minute < self.end
        return ((weekday in self.days and minute >= self.start)
                or ((weekday - 1) % 7 in self.days and minute < self.end))


@dataclass(frozen=True)
class Allowance:
    period: Period
    seconds: int = 0
    octets: int = 0
    after: AfterAllowance = AfterAllowance.CHARGE
    throttle_rate_limit: str | None = None


@dataclass(frozen=True)
class VoiceRate:
    prefix: str
    price_per_minute: int
    connect_fee: int = 0
    minimum: int = 0
    increment: int = 1
    description: str = ""


@dataclass(frozen=True)
class Tariff:
    plan_id: int
    plan_name: str
    timezone: str = "UTC"
    time_price: int = 0          # micro-units per time_unit
    time_unit: int = 60          # 1 = price per second, 60 = per minute
    time_increment: int = 1      # seconds; billed time is rounded up to a multiple of this
    price_per_mb_in: int = 0
    price_per_mb_out: int = 0
    monthly_fee: int = 0         # micro-units, charged at the start of each month
    daily_fee: int = 0
    credit_limit: int = 0        # minor units of the account's currency
    allowance: Allowance | None = None
    bands: tuple[Band, ...] = ()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def charges_time(self) -> bool:
        return self.time_price > 0 or any(b.time_price for b in self.bands)

    @property
    def charges_traffic(self) -> bool:
        return bool(self.price_per_mb_in or self.price_per_mb_out or any(
            b.price_per_mb_in or b.price_per_mb_out for b in self.bands))


@dataclass(frozen=True)
class TariffSpec:
    """What an import or ``plan set`` says about one plan's prices (None = leave as is)."""

    plan_name: str
    values: Mapping[str, Any] = field(default_factory=dict)
    bands: tuple[Band, ...] | None = None
    allowance: Allowance | None = None
    clear_allowance: bool = False
    voice_rates: tuple[VoiceRate, ...] | None = None


# --- parsing helpers -----------------------------------------------------------------

def parse_clock(text: str, what: str) -> int:
    """'06:30' -> 390; '24:00' -> 1440."""
    try:
        hh, mm = str(text).strip().split(":")
        h, m = int(hh), int(mm)
    except ValueError:
        raise InvalidTariff(f"{what} {text!r} is not a time like 06:30") from None
    if not (0 <= h <= 24 and 0 <= m < 60) or h * 60 + m > 1440:
        raise InvalidTariff(f"{what} {text!r} is not a time of day")
    return h * 60 + m


def format_clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_days(text: str, what: str = "days") -> frozenset[int]:
    """'mon-fri,sun' -> {0,1,2,3,4,6}; 'all' or 'mon-sun' -> every day."""
    text = str(text).strip().lower()
    if text in ("all", "*", "daily"):
        return frozenset(range(7))
    days: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            a = DAY_NAMES.index(lo[:3]) if lo else -1
            b = DAY_NAMES.index(hi[:3]) if sep else a
        except ValueError:
            raise InvalidTariff(f"{what} {text!r}: use day names like mon-fri,sun") from None
        if a < 0:
            raise InvalidTariff(f"{what} {text!r}: use day names like mon-fri,sun")
        i = a
        while True:
            days.add(i)
            if i == b:
                break
            i = (i + 1) % 7
    return frozenset(days)


def format_days(days: Iterable[int]) -> str:
    return ",".join(DAY_NAMES[d] for d in sorted(days))


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidTariff(f"timezone {name!r} is not an IANA zone like Europe/Berlin") from None
    return name


def _int(value: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidTariff(f"{what} {value!r} is not a whole number")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise InvalidTariff(f"{what} {value!r} is not a whole number") from None
    if not lo <= number <= hi:
        raise InvalidTariff(f"{what} {value!r} must be {lo}..{hi}")
    return number


def _price(value: Any, what: str) -> int:
    if isinstance(value, float):
        # TOML floats are binary: 0.1 is not 0.1. Quote prices as strings.
        raise InvalidTariff(f"{what} = {value!r}: write prices as quoted strings, e.g. \"0.10\"")
    try:
        return parse_price(value, what)
    except InvalidAmount as exc:
        raise InvalidTariff(str(exc)) from None


def parse_prefix(text: str, what: str = "prefix") -> str:
    prefix = str(text).strip().lstrip("+")
    if not prefix or not prefix.isdigit() or len(prefix) > MAX_PREFIX:
        raise InvalidTariff(f"{what} {text!r} must be 1..{MAX_PREFIX} digits")
    return prefix


def voice_rate(prefix: Any, rate: Any, connect_fee: Any = "0", minimum: Any = 0,
               increment: Any = 1, description: str = "", where: str = "") -> VoiceRate:
    at = f"{where}: " if where else ""
    rate_obj = VoiceRate(
        prefix=parse_prefix(prefix, f"{at}prefix"),
        price_per_minute=_price(rate, f"{at}rate"),
        connect_fee=_price(connect_fee if connect_fee not in ("", None) else "0",
                           f"{at}connect fee"),
        minimum=_int(minimum if minimum not in ("", None) else 0, f"{at}minimum", 0, 86400),
        increment=_int(increment if increment not in ("", None) else 1, f"{at}increment", 1,
                       MAX_INCREMENT),
        description=str(description or "")[:128])
    return rate_obj


def check_bands(bands: Iterable[Band]) -> tuple[Band, ...]:
    """Bands may not overlap: every minute of the week has at most one band."""
    out = tuple(bands)
    names = [b.name for b in out]
    if len(set(names)) != len(names):
        raise InvalidTariff("band names must be unique within a plan")
    owner: dict[int, str] = {}
    for band in out:
        for day in range(7):
            for minute in range(0, 1440, 1):
                if band.covers(day, minute):
                    slot = day * 1440 + minute
                    if slot in owner:
                        raise InvalidTariff(
                            f"bands {owner[slot]!r} and {band.name!r} overlap on "
                            f"{DAY_NAMES[day]} at {format_clock(minute)}")
                    owner[slot] = band.name
    return out


def make_band(data: Mapping[str, Any], where: str) -> Band:
    known = {"name", "days", "from", "to", "time_price", "price_per_mb_in", "price_per_mb_out"}
    unknown = set(data) - known
    if unknown:
        raise InvalidTariff(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    name = str(data.get("name", "")).strip()
    if not name or len(name) > 32:
        raise InvalidTariff(f"{where}: a band needs a name of 1..32 characters")
    if "from" not in data or "to" not in data:
        raise InvalidTariff(f"{where}: a band needs 'from' and 'to' times")
    start = parse_clock(data["from"], f"{where}.from") % 1440
    end = parse_clock(data["to"], f"{where}.to") % 1440
    if start == end:
        end = start  # a full-day band: covers() treats end <= start as wrapping all day
    return Band(
        name=name, days=parse_days(data.get("days", "all"), f"{where}.days"),
        start=start, end=end,
        time_price=_price(data["time_price"], f"{where}.time_price")
        if "time_price" in data else None,
        price_per_mb_in=_price(data["price_per_mb_in"], f"{where}.price_per_mb_in")
        if "price_per_mb_in" in data else None,
        price_per_mb_out=_price(data["price_per_mb_out"], f"{where}.price_per_mb_out")
        if "price_per_mb_out" in data else None)


def make_allowance(data: Mapping[str, Any], where: str) -> Allowance:
    known = {"period", "minutes", "seconds", "traffic_mb", "octets", "after",
             "throttle_rate_limit"}
    unknown = set(data) - known
    if unknown:
        raise InvalidTariff(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    try:
        period = Period(str(data.get("period", "month")))
    except ValueError:
        raise InvalidTariff(f"{where}.period must be day or month") from None
    try:
        after = AfterAllowance(str(data.get("after", "charge")))
    except ValueError:
        raise InvalidTariff(f"{where}.after must be charge, throttle or cutoff") from None
    seconds = _int(data.get("seconds", 0), f"{where}.seconds", 0, 10**9) + \
        60 * _int(data.get("minutes", 0), f"{where}.minutes", 0, 10**8)
    octets = _int(data.get("octets", 0), f"{where}.octets", 0, 10**18) + \
        MB_BYTES * _int(data.get("traffic_mb", 0), f"{where}.traffic_mb", 0, 10**12)
    throttle = data.get("throttle_rate_limit")
    if after is AfterAllowance.THROTTLE and not throttle:
        raise InvalidTariff(f"{where}: after = \"throttle\" needs throttle_rate_limit, "
                            "e.g. \"1M/1M\"")
    if throttle is not None and "/" not in str(throttle):
        raise InvalidTariff(f"{where}.throttle_rate_limit {throttle!r} is not like 1M/1M")
    if not seconds and not octets:
        raise InvalidTariff(f"{where}: an allowance needs minutes/seconds or traffic_mb/octets")
    return Allowance(period=period, seconds=seconds, octets=octets, after=after,
                     throttle_rate_limit=str(throttle) if throttle else None)


TOP_KEYS = {"timezone", "credit_limit", "monthly_fee", "daily_fee", "time", "traffic",
            "allowance", "band", "voice_rate", "currency"}


def spec_from_mapping(name: str, data: Mapping[str, Any], currency: str) -> TariffSpec:
    """One ``[plan.NAME]`` table -> TariffSpec; every problem names its key."""
    where = f"plan.{name}"
    if not isinstance(data, Mapping):
        raise InvalidTariff(f"{where} must be a table")
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise InvalidTariff(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    if "currency" in data and check_currency(str(data["currency"])) != currency:
        raise InvalidTariff(f"{where}.currency {data['currency']!r} differs from billing.currency "
                            f"{currency!r}; radbill keeps one currency")
    values: dict[str, Any] = {}
    if "timezone" in data:
        values["timezone"] = check_timezone(str(data["timezone"]))
    if "credit_limit" in data:
        if isinstance(data["credit_limit"], float):
            raise InvalidTariff(f"{where}.credit_limit: write amounts as quoted strings")
        try:
            values["credit_limit"] = parse_amount(data["credit_limit"], currency,
                                                  what=f"{where}.credit_limit")
        except InvalidAmount as exc:
            raise InvalidTariff(str(exc)) from None
    for key in ("monthly_fee", "daily_fee"):
        if key in data:
            values[key] = _price(data[key], f"{where}.{key}")
    time = data.get("time")
    if time is not None:
        if not isinstance(time, Mapping) or set(time) - {"price", "unit", "increment"}:
            raise InvalidTariff(f"{where}.time takes price, unit and increment")
        if "price" in time:
            values["time_price"] = _price(time["price"], f"{where}.time.price")
        if "unit" in time:
            unit = str(time["unit"])
            if unit not in ("second", "minute"):
                raise InvalidTariff(f"{where}.time.unit must be second or minute")
            values["time_unit"] = 1 if unit == "second" else 60
        if "increment" in time:
            values["time_increment"] = _int(time["increment"], f"{where}.time.increment", 1,
                                            MAX_INCREMENT)
    traffic = data.get("traffic")
    if traffic is not None:
        if not isinstance(traffic, Mapping) or set(traffic) - {"price_per_mb_in",
                                                               "price_per_mb_out"}:
            raise InvalidTariff(f"{where}.traffic takes price_per_mb_in and price_per_mb_out")
        for key in ("price_per_mb_in", "price_per_mb_out"):
            if key in traffic:
                values[key] = _price(traffic[key], f"{where}.traffic.{key}")
    allowance = None
    if "allowance" in data:
        if not isinstance(data["allowance"], Mapping):
            raise InvalidTariff(f"{where}.allowance must be a table")
        allowance = make_allowance(data["allowance"], f"{where}.allowance")
    bands = None
    if "band" in data:
        raw = data["band"]
        if not isinstance(raw, list):
            raise InvalidTariff(f"{where}.band must be an array of tables [[plan.{name}.band]]")
        bands = check_bands(make_band(b, f"{where}.band[{i}]") for i, b in enumerate(raw))
    rates = None
    if "voice_rate" in data:
        raw = data["voice_rate"]
        if not isinstance(raw, list):
            raise InvalidTariff(f"{where}.voice_rate must be an array of tables")
        parsed: list[VoiceRate] = []
        for i, r in enumerate(raw):
            at = f"{where}.voice_rate[{i}]"
            extra = set(r) - {"prefix", "price_per_minute", "connect_fee", "minimum",
                              "increment", "description"}
            if extra or "prefix" not in r or "price_per_minute" not in r:
                raise InvalidTariff(f"{at}: needs prefix and price_per_minute "
                                    "(and optional connect_fee, minimum, increment, description)")
            parsed.append(voice_rate(r["prefix"], r["price_per_minute"],
                                    r.get("connect_fee", "0"), r.get("minimum", 0),
                                    r.get("increment", 1), r.get("description", ""), at))
        rates = tuple(check_unique_prefixes(parsed))
    return TariffSpec(plan_name=name, values=values, bands=bands, allowance=allowance,
                      voice_rates=rates)


def check_unique_prefixes(rates: Iterable[VoiceRate]) -> list[VoiceRate]:
    seen: set[str] = set()
    out = []
    for r in rates:
        if r.prefix in seen:
            raise InvalidTariff(f"prefix {r.prefix} is listed twice")
        seen.add(r.prefix)
        out.append(r)
    return out


def parse_tariff_toml(text: str | bytes, currency: str) -> list[TariffSpec]:
    """A whole import file -> one TariffSpec per ``[plan.NAME]``; nothing applied on error."""
    try:
        doc = tomllib.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidTariff(f"not valid TOML: {exc}") from None
    unknown = set(doc) - {"plan"}
    if unknown:
        raise InvalidTariff(f"unknown top-level key(s) {', '.join(sorted(unknown))}; "
                            "prices go under [plan.NAME]")
    plans = doc.get("plan")
    if not isinstance(plans, dict) or not plans:
        raise InvalidTariff("no [plan.NAME] table in the file")
    return [spec_from_mapping(name, data, currency) for name, data in plans.items()]


def parse_rates_csv(text: str) -> list[VoiceRate]:
    """prefix,rate,connect_fee,minimum,increment[,description]; a header line is skipped."""
    rates: list[VoiceRate] = []
    reader = csv.reader(io.StringIO(text))
    for lineno, row in enumerate(reader, start=1):
        cells = [c.strip() for c in row]
        if not cells or all(not c for c in cells) or cells[0].startswith("#"):
            continue
        if lineno == 1 and not cells[0].lstrip("+").isdigit():
            continue  # header
        if not 2 <= len(cells) <= 6:
            raise InvalidTariff(f"line {lineno}: expected prefix,rate,connect_fee,minimum,"
                                f"increment[,description], got {len(cells)} fields")
        cells += [""] * (6 - len(cells))
        rates.append(voice_rate(cells[0], cells[1], cells[2] or "0", cells[3] or 0,
                                cells[4] or 1, cells[5], f"line {lineno}"))
    if not rates:
        raise InvalidTariff("no rates in the file")
    return check_unique_prefixes(rates)
