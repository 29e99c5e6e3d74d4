"""Tariffs in the database: load a plan's prices as a Tariff, apply a TariffSpec, voice rates."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from billing.errors import InvalidTariff, NoTariff
from billing.models import TariffBand, TariffRow, VoiceRateRow
from billing.rating import normalize_number
from billing.tariffs import (
    AfterAllowance,
    Allowance,
    Band,
    Period,
    Tariff,
    TariffSpec,
    VoiceRate,
    check_bands,
    format_days,
)
from core.db.models import Plan
from core.errors import NotFound

TARIFF_FIELDS = ("timezone", "time_price", "time_unit", "time_increment", "price_per_mb_in",
                 "price_per_mb_out", "monthly_fee", "daily_fee", "credit_limit")


NEW_TARIFF: dict[str, object] = {
    "timezone": "UTC", "time_price": 0, "time_unit": 60, "time_increment": 1,
    "price_per_mb_in": 0, "price_per_mb_out": 0, "monthly_fee": 0, "daily_fee": 0,
    "credit_limit": 0, "allowance_period": None, "allowance_seconds": 0, "allowance_octets": 0,
    "allowance_after": "charge", "throttle_rate_limit": None}


def _tariff(row: TariffRow, plan_name: str, bands: Iterable[TariffBand]) -> Tariff:
    allowance = None
    if row.allowance_period and (row.allowance_seconds or row.allowance_octets):
        allowance = Allowance(period=Period(row.allowance_period),
                              seconds=row.allowance_seconds, octets=row.allowance_octets,
                              after=AfterAllowance(row.allowance_after),
                              throttle_rate_limit=row.throttle_rate_limit)
    return Tariff(
        plan_id=row.plan_id, plan_name=plan_name, timezone=row.timezone,
        time_price=row.time_price, time_unit=row.time_unit, time_increment=row.time_increment,
        price_per_mb_in=row.price_per_mb_in, price_per_mb_out=row.price_per_mb_out,
        monthly_fee=row.monthly_fee, daily_fee=row.daily_fee, credit_limit=row.credit_limit,
        allowance=allowance,
        bands=tuple(Band(name=b.name, days=frozenset(int(d) for d in b.days.split(",") if d),
                         start=b.start_minute, end=b.end_minute, time_price=b.time_price,
                         price_per_mb_in=b.price_per_mb_in, price_per_mb_out=b.price_per_mb_out)
                    for b in sorted(bands, key=lambda b: b.id)))


def thd_load_tariffs(session: Session, plan_ids: Iterable[int]) -> dict[int, Tariff]:
    """Tariffs of the given plans (plans without prices are absent), in two queries."""
    ids = sorted(set(plan_ids))
    if not ids:
        return {}
    rows = session.execute(select(TariffRow, Plan.name).join(Plan, Plan.id == TariffRow.plan_id)
                           .where(TariffRow.plan_id.in_(ids))).all()
    bands: dict[int, list[TariffBand]] = {}
    for band in session.scalars(select(TariffBand).where(TariffBand.plan_id.in_(ids))):
        bands.setdefault(band.plan_id, []).append(band)
    return {row.plan_id: _tariff(row, name, bands.get(row.plan_id, [])) for row, name in rows}


def thd_priced_plan_ids(session: Session) -> frozenset[int]:
    """Plans that have prices: the only ones whose logins need a reservation."""
    return frozenset(session.scalars(select(TariffRow.plan_id)).all())


def thd_load_tariff(session: Session, plan_id: int) -> Tariff | None:
    return thd_load_tariffs(session, [plan_id]).get(plan_id)


def thd_plan_tariff(session: Session, plan_name: str) -> Tariff:
    plan = session.scalars(select(Plan).where(Plan.name == plan_name)).one_or_none()
    if plan is None:
        raise NotFound(f"no plan named {plan_name!r}")
    tariff = thd_load_tariff(session, plan.id)
    if tariff is None:
        raise NoTariff(f"plan {plan_name!r} has no prices (set them with 'radbill plan set')")
    return tariff


def thd_voice_rate(session: Session, plan_id: int, number: str) -> VoiceRate | None:
    """Longest matching prefix, in one indexed query over the number's own prefixes."""
    digits = normalize_number(number)[:32]
    if not digits:
        return None
    prefixes = [digits[:n] for n in range(1, len(digits) + 1)]
    rows = session.scalars(select(VoiceRateRow).where(VoiceRateRow.plan_id == plan_id,
                                                      VoiceRateRow.prefix.in_(prefixes))).all()
    if not rows:
        return None
    best = max(rows, key=lambda r: len(r.prefix))
    return VoiceRate(prefix=best.prefix, price_per_minute=best.price_per_minute,
                     connect_fee=best.connect_fee, minimum=best.minimum,
                     increment=best.increment, description=best.description)


@dataclass(frozen=True)
class Applied:
    plan: str
    plan_created: bool
    bands: int | None
    voice_rates: int | None


def thd_apply_spec(session: Session, spec: TariffSpec, create_plan: bool = False) -> Applied:
    """Write one plan's prices; bands and voice rates given are replaced whole."""
    plan = session.scalars(select(Plan).where(Plan.name == spec.plan_name)).one_or_none()
    created = False
    if plan is None:
        if not create_plan:
            raise NotFound(f"no plan named {spec.plan_name!r}")
        if not spec.plan_name or len(spec.plan_name) > 64:
            raise InvalidTariff(f"plan name {spec.plan_name!r} must be 1..64 characters")
        plan = Plan(name=spec.plan_name)
        session.add(plan)
        session.flush()
        created = True
    row = session.get(TariffRow, plan.id)
    if row is None:
        row = TariffRow(plan_id=plan.id, **NEW_TARIFF)
        session.add(row)
    for key, value in spec.values.items():
        if key not in TARIFF_FIELDS:
            raise InvalidTariff(f"unknown tariff field {key!r}")
        setattr(row, key, value)
    if spec.clear_allowance:
        row.allowance_period, row.allowance_seconds, row.allowance_octets = None, 0, 0
        row.allowance_after, row.throttle_rate_limit = "charge", None
    if spec.allowance is not None:
        a = spec.allowance
        row.allowance_period = a.period.value
        row.allowance_seconds, row.allowance_octets = a.seconds, a.octets
        row.allowance_after, row.throttle_rate_limit = a.after.value, a.throttle_rate_limit
    if spec.bands is not None:
        check_bands(spec.bands)
        session.execute(delete(TariffBand).where(TariffBand.plan_id == plan.id))
        for b in spec.bands:
            session.add(TariffBand(plan_id=plan.id, name=b.name,
                                   days=",".join(str(d) for d in sorted(b.days)),
                                   start_minute=b.start, end_minute=b.end,
                                   time_price=b.time_price, price_per_mb_in=b.price_per_mb_in,
                                   price_per_mb_out=b.price_per_mb_out))
    rates = None
    if spec.voice_rates is not None:
        rates = thd_replace_voice_rates(session, plan.id, spec.voice_rates)
    session.flush()
    return Applied(plan=plan.name, plan_created=created,
                   bands=len(spec.bands) if spec.bands is not None else None,
                   voice_rates=rates)


def thd_replace_voice_rates(session: Session, plan_id: int, rates: Iterable[VoiceRate]) -> int:
    session.execute(delete(VoiceRateRow).where(VoiceRateRow.plan_id == plan_id))
    params = [{"plan_id": plan_id, "prefix": r.prefix, "price_per_minute": r.price_per_minute,
               "connect_fee": r.connect_fee, "minimum": r.minimum, "increment": r.increment,
               "description": r.description} for r in rates]
    if params:
        session.execute(insert(VoiceRateRow), params)
    return len(params)


def thd_import_rates(session: Session, plan_name: str, rates: list[VoiceRate]) -> int:
    plan = session.scalars(select(Plan).where(Plan.name == plan_name)).one_or_none()
    if plan is None:
        raise NotFound(f"no plan named {plan_name!r}")
    return thd_replace_voice_rates(session, plan.id, rates)


def describe_tariff(t: Tariff) -> dict[str, object]:
    """A plain dict for `--out json` and docs (prices as decimal strings)."""
    from billing.money import format_price
    from billing.tariffs import format_clock

    out: dict[str, object] = {
        "plan": t.plan_name, "timezone": t.timezone,
        "time_price": format_price(t.time_price),
        "time_unit": "second" if t.time_unit == 1 else "minute",
        "time_increment": t.time_increment,
        "price_per_mb_in": format_price(t.price_per_mb_in),
        "price_per_mb_out": format_price(t.price_per_mb_out),
        "monthly_fee": format_price(t.monthly_fee), "daily_fee": format_price(t.daily_fee),
        "credit_limit_minor": t.credit_limit,
    }
    if t.allowance:
        a = t.allowance
        out["allowance"] = {"period": a.period.value, "seconds": a.seconds, "octets": a.octets,
                            "after": a.after.value, "throttle_rate_limit": a.throttle_rate_limit}
    out["bands"] = [{"name": b.name, "days": format_days(b.days), "from": format_clock(b.start),
                     "to": format_clock(b.end),
                     "time_price": None if b.time_price is None else format_price(b.time_price)}
                    for b in t.bands]
    return out
