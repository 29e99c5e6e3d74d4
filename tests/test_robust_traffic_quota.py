"""Traffic-priced sessions are bounded at the NAS (issue 12 point 2, docs/billing.md)."""

from __future__ import annotations

import pytest_twisted
from sqlalchemy import Engine

from aaa.billing_hook import BillingAccessHook
from aaa.vendors import octet_quota_attributes
from billing.money import parse_price
from billing.rating import octets_affordable
from core.config import parse_config
from core.db.models import Vendor
from core.db.pool import DBPool
from tests.test_billing_cutoff import context, setup

CONFIG = parse_config({"billing": {"currency": "USD", "traffic_interim_interval": 45}})
TRAFFIC = {"price_per_mb_in": parse_price("0.01"), "price_per_mb_out": parse_price("0.02")}


def test_octets_affordable_prices_the_dearer_direction_and_rounds_down() -> None:
    """0.30 at 0.02/MB buys 15 MB (never a byte more); a tariff without traffic prices: None."""
    from billing.tariffs import Tariff

    tariff = Tariff(plan_id=1, plan_name="t", **TRAFFIC)  # type: ignore[arg-type]
    assert octets_affordable(tariff, 30, 0, "USD") == 15_000_000
    assert octets_affordable(tariff, 1, 0, "USD") == 500_000
    assert octets_affordable(tariff, 0, 0, "USD") == 0
    assert octets_affordable(Tariff(plan_id=1, plan_name="t"), 30, 0, "USD") is None


def test_mikrotik_quota_splits_into_gigawords() -> None:
    """Above 4 GiB the high 32 bits go to Mikrotik-Total-Limit-Gigawords; others get none."""
    assert octet_quota_attributes(Vendor.MIKROTIK, 5 * 2**32 + 7) == [
        ("Mikrotik-Total-Limit", 7), ("Mikrotik-Total-Limit-Gigawords", 5)]
    assert octet_quota_attributes(Vendor.MIKROTIK, 1000) == [("Mikrotik-Total-Limit", 1000)]
    assert octet_quota_attributes(Vendor.CISCO, 1000) == []


@pytest_twisted.inlineCallbacks
def test_traffic_plan_gets_the_quota_on_mikrotik_and_a_short_interim_elsewhere(
        engine: Engine, dbpool: DBPool):  # type: ignore[no-untyped-def]
    """A 0.30 prepaid traffic account: MikroTik is told 15 MB; a Cisco NAS, interims of 45 s."""
    plan, sub = setup(engine, 30, **TRAFFIC)
    hook = BillingAccessHook(dbpool, CONFIG)
    ctx = context(sub, plan, Acct_Session_Id="T1")
    assert (yield hook(ctx)) is None
    assert ("Mikrotik-Total-Limit", 15_000_000) in ctx.reply
    # The same session re-authorised through a Cisco NAS (the first hold is its own).
    other = context(sub, plan, vendor=Vendor.CISCO, Acct_Session_Id="T1")
    other.reply.append(("Acct-Interim-Interval", 300))
    assert (yield hook(other)) is None
    assert [v for k, v in other.reply if k == "Acct-Interim-Interval"] == [45]
    assert not [k for k, _ in other.reply if k.startswith("Mikrotik")]


@pytest_twisted.inlineCallbacks
def test_time_only_plan_gets_no_quota(engine: Engine, dbpool: DBPool):  # type: ignore[no-untyped-def]
    """Plans priced by time alone keep their interim interval and get no octet limit."""
    plan, sub = setup(engine, 100)
    ctx = context(sub, plan, Acct_Session_Id="T3")
    ctx.reply.append(("Acct-Interim-Interval", 300))
    assert (yield BillingAccessHook(dbpool, CONFIG)(ctx)) is None
    assert ("Acct-Interim-Interval", 300) in ctx.reply
    assert not [k for k, _ in ctx.reply if k == "Mikrotik-Total-Limit"]
