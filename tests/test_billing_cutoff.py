"""The Access-Request hook and the loop's cut-off bookkeeping, with a recording Disconnector."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest_twisted
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from twisted.internet import defer

from aaa.access import AccessContext
from aaa.billing_hook import BillingAccessHook, called_number
from aaa.clients import NasClient
from aaa.credentials import PlanService, SubscriberAuth
from aaa.outcome import Outcome
from billing.cutoff import CutAction, CutOutcome, CutResult, LiveSession
from billing.loop import BillingLoop
from billing.models import ChargingSession
from billing.money import parse_price
from billing.payments import thd_add_payment
from billing.tariff_store import thd_apply_spec, thd_import_rates
from billing.tariffs import AfterAllowance, Allowance, Period, TariffSpec, parse_rates_csv
from core.config import parse_config
from core.db.models import SubscriberStatus, Vendor
from core.db.pool import DBPool
from tests.billing_support import delta, make_plan, make_subscriber, record

CONFIG = parse_config({"billing": {"currency": "USD", "reserve_seconds": 300}})


class FakePacket(dict):  # type: ignore[type-arg]
    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name, default)


def context(sub_id: int, plan_id: int, vendor: Vendor = Vendor.MIKROTIK,
            rate_limit: str | None = None, **attrs: Any) -> AccessContext:
    plan = PlanService(id=plan_id, name="p", rate_limit=rate_limit, session_timeout=None,
                       idle_timeout=None, interim_interval=None, simultaneous_use=None,
                       framed_protocol="PPP", extra_reply=())
    sub = SubscriberAuth(id=sub_id, login="alice", status=SubscriberStatus.ACTIVE,
                         password_hash=None, nt_hash=None, chap_enabled=False, cleartext=None,
                         static_ip=None, plan=plan)
    client = NasClient(id=1, name="nas", address="127.0.0.1", secret=b"s", vendor=vendor,
                       require_message_authenticator=False, coa_port=3799)
    pkt = FakePacket({k.replace("_", "-"): [v] for k, v in attrs.items()})
    reply: list[tuple[str, object]] = []
    if rate_limit:
        from aaa.vendors import rate_limit_attributes
        reply = rate_limit_attributes(vendor, rate_limit)
    return AccessContext(client=client, packet=pkt, user_name="alice",  # type: ignore[arg-type]
                         subscriber=sub, method="pap", reply=reply)


def setup(engine: Engine, money: int, **prices: Any) -> tuple[int, int]:
    with Session(engine) as s, s.begin():
        plan = make_plan(s, "p", **(prices or {"time_price": parse_price("0.60"),
                                               "time_unit": 60, "time_increment": 60}))
        sub = make_subscriber(s, "alice", plan)
        if money:
            thd_add_payment(s, "alice", money, "USD", "p0")
    return plan, sub


def test_called_number_only_for_calls() -> None:
    """A phone number from a PBX is a call; a PPPoE service name or Framed-User is not."""
    assert called_number(context(1, 1, Called_Station_Id="+44 20 7946 0000")) == "442079460000"
    assert called_number(context(1, 1, Called_Station_Id="pppoe-svc")) is None
    assert called_number(context(1, 1, Called_Station_Id="4420", Service_Type="Framed-User")
                         ) is None


@pytest_twisted.inlineCallbacks
def test_hook_grants_timeout_and_rejects_without_money(dbpool: DBPool, engine: Engine):
    """Money: Session-Timeout is what it buys; none: NO_BALANCE with the reason."""
    plan, sub = setup(engine, 90)
    hook = BillingAccessHook(dbpool, CONFIG)
    ctx = context(sub, plan, Acct_Session_Id="A1")
    verdict = yield hook(ctx)
    assert verdict is None and ("Session-Timeout", 60) in ctx.reply
    second = yield hook(context(sub, plan, Acct_Session_Id="A2"))
    assert second.outcome is Outcome.NO_BALANCE and second.message == "Insufficient balance"


@pytest_twisted.inlineCallbacks
def test_hook_answers_pbx_with_credit_time(dbpool: DBPool, engine: Engine):
    """A Cisco gateway's call gets Session-Timeout and h323-credit-time for the destination."""
    plan, sub = setup(engine, 100)
    with Session(engine) as s, s.begin():
        thd_import_rates(s, "p", parse_rates_csv("44,0.10,0.05,60,60\n"))
    hook = BillingAccessHook(dbpool, CONFIG)
    ctx = context(sub, plan, Vendor.CISCO, Called_Station_Id="441632960000")
    assert (yield hook(ctx)) is None
    assert ("Session-Timeout", 540) in ctx.reply
    assert ("h323-credit-time", "h323-credit-time=540") in ctx.reply
    nowhere = yield hook(context(sub, plan, Vendor.CISCO, Called_Station_Id="331234"))
    assert nowhere.message == "No rate for this destination"


@pytest_twisted.inlineCallbacks
def test_hook_throttles_past_allowance(dbpool: DBPool, engine: Engine):
    """After a used-up throttle allowance the Accept carries the slow rate, not the plan's."""
    plan, sub = setup(engine, 1000, price_per_mb_in=parse_price("0.01"))
    with Session(engine) as s, s.begin():
        thd_apply_spec(s, TariffSpec(plan_name="p", allowance=Allowance(
            Period.MONTH, octets=1000, after=AfterAllowance.THROTTLE,
            throttle_rate_limit="1M/1M")))
        record(s, delta(sub, "x", seconds=10, octets_in=5000, end=datetime.now(UTC)))
    yield BillingLoop(CONFIG, dbpool).run_once()
    ctx = context(sub, plan, rate_limit="10M/10M")
    assert (yield hook_call(dbpool, ctx)) is None
    assert ("Mikrotik-Rate-Limit", "1M/1M") in ctx.reply
    assert ("Mikrotik-Rate-Limit", "10M/10M") not in ctx.reply


def hook_call(dbpool: DBPool, ctx: AccessContext) -> Any:
    return BillingAccessHook(dbpool, CONFIG)(ctx)


class RecordingDisconnector:
    """Answers every request with a chosen result and remembers what it was asked."""

    def __init__(self, result: CutResult) -> None:
        self.result = result
        self.asked: list[tuple[str, LiveSession]] = []

    def disconnect(self, session: LiveSession) -> defer.Deferred[CutResult]:
        self.asked.append(("disconnect", session))
        return defer.succeed(self.result)

    def change(self, session: LiveSession, action: CutAction,
               rate_limit: str | None = None) -> defer.Deferred[CutResult]:
        self.asked.append((action.value, session))
        return defer.succeed(self.result)


def live_source(sessions: list[LiveSession]) -> Any:
    def source(session: Session, ids: Any) -> list[LiveSession]:
        return [s for s in sessions if s.subscriber_id in set(ids)]
    return source


@pytest_twisted.inlineCallbacks
def test_loop_cuts_off_blocked_account_once_and_logs(dbpool: DBPool, engine: Engine):
    """Out of money: one Disconnect per live session, ACK closes it, events say so."""
    _plan, sub = setup(engine, 50)
    with Session(engine) as s, s.begin():
        record(s, delta(sub, "uid-1", seconds=120, end=datetime.now(UTC)))
    live = [LiveSession(sub, "alice", 1, "A1", "10.0.0.9", source_id="uid-1")]
    nas = RecordingDisconnector(CutResult(CutOutcome.ACK))
    loop = BillingLoop(CONFIG, dbpool, nas, live_sessions=live_source(live))
    report = yield loop.run_once()
    assert [a for a, _ in nas.asked] == ["disconnect"]
    assert report.cuts == [("disconnect", "alice", "ack")]
    yield loop.run_once()
    assert len(nas.asked) == 1  # closed by the ACK: not asked again
    with Session(engine) as s:
        from billing.accounts import thd_account, thd_events
        kinds = [e.kind for e in thd_events(s, thd_account(s, "alice", "USD").id)]
        state = s.scalars(select(ChargingSession.state)).one()
    assert {"blocked", "disconnect-sent", "disconnect-ack"} <= set(kinds)
    assert state == "closed"


@pytest_twisted.inlineCallbacks
def test_session_gone_closes_and_calls_back(dbpool: DBPool, engine: Engine):
    """NAK with Error-Cause 503: billing closes its record and tells accounting."""
    _plan, sub = setup(engine, 50)
    with Session(engine) as s, s.begin():
        record(s, delta(sub, "uid-1", seconds=120, end=datetime.now(UTC)))
    gone: list[tuple[Any, Any]] = []
    nas = RecordingDisconnector(CutResult(CutOutcome.GONE, error_cause=503))
    loop = BillingLoop(CONFIG, dbpool, nas,
                       live_sessions=live_source([LiveSession(sub, "alice", 4, "A1",
                                                              source_id="uid-1")]),
                       on_session_gone=lambda nas_id, asid: gone.append((nas_id, asid)))
    yield loop.run_once()
    assert gone == [(4, "A1")]


@pytest_twisted.inlineCallbacks
def test_unanswered_disconnect_is_retried_later_not_every_pass(dbpool: DBPool,
                                                               engine: Engine):
    """A timed-out Disconnect is not resent on the very next pass (resend after 60 s)."""
    _plan, sub = setup(engine, 50)
    with Session(engine) as s, s.begin():
        record(s, delta(sub, "uid-1", seconds=120, end=datetime.now(UTC)))
    nas = RecordingDisconnector(CutResult(CutOutcome.TIMEOUT))
    loop = BillingLoop(CONFIG, dbpool, nas, live_sessions=live_source(
        [LiveSession(sub, "alice", 1, "A1", source_id="uid-1")]))
    yield loop.run_once()
    yield loop.run_once()
    assert len(nas.asked) == 1
    with Session(engine) as s, s.begin():
        cs = s.scalars(select(ChargingSession)).one()
        cs.cut_requested_at = datetime.now(UTC) - timedelta(seconds=120)
    yield loop.run_once()
    assert len(nas.asked) == 2


@pytest_twisted.inlineCallbacks
def test_loop_throttles_with_coa(dbpool: DBPool, engine: Engine):
    """A used-up throttle allowance makes the loop send a CoA with the throttle rate."""
    _plan, sub = setup(engine, 1000, price_per_mb_in=parse_price("0.01"))
    with Session(engine) as s, s.begin():
        thd_apply_spec(s, TariffSpec(plan_name="p", allowance=Allowance(
            Period.MONTH, octets=1000, after=AfterAllowance.THROTTLE,
            throttle_rate_limit="1M/1M")))
        record(s, delta(sub, "uid-1", seconds=10, octets_in=5000, end=datetime.now(UTC)))
    nas = RecordingDisconnector(CutResult(CutOutcome.ACK))
    loop = BillingLoop(CONFIG, dbpool, nas, live_sessions=live_source(
        [LiveSession(sub, "alice", 1, "A1", source_id="uid-1")]))
    yield loop.run_once()
    assert [a for a, _ in nas.asked] == ["throttle"]
    yield loop.run_once()
    assert len(nas.asked) == 1
