"""A dry run of the rater: what a session or a call would cost, and why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.accounts import find_subscriber, thd_account
from billing.errors import NoTariff
from billing.money import format_amount, format_price
from billing.rating import (
    SessionRating,
    call_seconds_affordable,
    rate_call_delta,
    rate_delta,
    utc_ts,
)
from billing.tariff_store import thd_load_tariff, thd_voice_rate
from core.db.models import Plan
from core.errors import InvalidInput


def thd_quote(session: Session, login: str | None, plan_name: str | None, duration: int,
              octets_in: int, octets_out: int, called: str | None, at: datetime,
              currency: str) -> dict[str, Any]:
    """A dry run of the rater: the matched tariff, bands or prefix, and the cost breakdown."""




    if login is not None:
        sub = find_subscriber(session, login)
        if sub.plan_id is None:
            raise NoTariff(f"{login} has no plan")
        plan_id = sub.plan_id
    else:
        found = session.scalars(select(Plan.id).where(Plan.name == plan_name)).one_or_none()
        if found is None:
            raise InvalidInput(f"no plan named {plan_name!r}", field="plan")
        plan_id = found
    plan = session.get(Plan, plan_id)
    assert plan is not None
    out: dict[str, Any] = {"plan": plan.name, "currency": currency, "at": at,
                           "duration": duration}
    if called:
        rate = thd_voice_rate(session, plan_id, called)
        if rate is None:
            raise NoTariff(f"plan {plan.name!r} has no voice rate for {called!r}")
        r = rate_call_delta(rate, SessionRating(), duration, currency)
        out.update(called=called, prefix=rate.prefix, description=rate.description or None,
                   price_per_minute=format_price(rate.price_per_minute),
                   connect_fee=format_price(rate.connect_fee),
                   minimum=rate.minimum, increment=rate.increment,
                   billed_seconds=r.lines[0].billed_seconds,
                   total=format_amount(r.charge, currency))
        if login is not None:
            acct = thd_account(session, login, currency)
            out["max_call_seconds_now"] = call_seconds_affordable(rate, acct.available, currency)
        return out
    tariff = thd_load_tariff(session, plan_id)
    if tariff is None:
        raise NoTariff(f"plan {plan.name!r} has no prices (set them with 'radbill plan set')")
    r = rate_delta(tariff, SessionRating(), utc_ts(at), duration, octets_in, octets_out,
                   currency)
    out.update(octets_in=octets_in, octets_out=octets_out, timezone=tariff.timezone,
               lines=[{"band": ln.band or "base", "seconds": ln.seconds,
                       "billed_seconds": ln.billed_seconds, "octets_in": ln.octets_in,
                       "octets_out": ln.octets_out,
                       "cost": format_price(int(ln.cost_micro.to_integral_value()))}
                      for ln in r.lines],
               total=format_amount(r.charge, currency),
               note="before included allowances and fees")
    return out


