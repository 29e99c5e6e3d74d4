"""A seeded randomized money test: 100,000+ operations over six simulated months.

Usage on sessions (rated by the real charging path), payments, refunds,
adjustments, replayed payment references, prepaid card activations (right and
wrong PINs, used cards), monthly fee runs and monthly statements, with a
"restart" (a fresh engine and session factory, nothing kept in memory) at
every month. Afterwards, to the minor unit: every account's cached balance
equals the sum of its ledger entries; every statement's closing is the next
statement's opening and equals the ledger's sum at the period's end; the
exports (CSV and XML) equal the ledger; the invoices equal the statements'
charges. ``RADBILL_MONEY_OPS`` changes the count (CI uses the default).
"""

from __future__ import annotations

import os
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from billing.cards import thd_activate, thd_create_batch
from billing.charging import thd_charge_pending
from billing.exports import thd_export, to_csv, to_xml
from billing.fees import thd_charge_fees
from billing.ledger import thd_check
from billing.models import BillingAccount, EntryKind, LedgerEntry
from billing.money import format_amount, parse_price
from billing.payments import thd_add_payment
from billing.reseller_models import ResellerEntry
from billing.resellers import thd_reseller_check, thd_set_wholesale, thd_topup
from billing.statement_models import Invoice, Statement
from billing.statements import StatementSettings, thd_issue_statements
from billing.usage import UsageDelta, thd_record_usage
from core.db.engine import make_engine
from core.db.models import Reseller, Subscriber
from core.db.pool import run_in_session
from tests.billing_support import make_plan, make_subscriber

OPS = int(os.environ.get("RADBILL_MONEY_OPS", "100000"))
MONTHS = 6
SUBSCRIBERS = 300
CHUNK = 2500
START = datetime(2024, 1, 1, tzinfo=UTC)
SETTINGS = StatementSettings(zone=ZoneInfo("UTC"), delay=timedelta(hours=1), batch=500,
                             issuer="rnd", number_format="R{number}", vat_rate=Decimal("20"),
                             due_days=14)


def month_start(m: int) -> datetime:
    y, mo = divmod(m, 12)
    return START.replace(year=START.year + y, month=mo + 1)


def _setup(engine: Engine) -> tuple[list[str], list[tuple[str, str]]]:
    with Session(engine) as s, s.begin():
        plans = [make_plan(s, "metered", time_price=parse_price("0.013"), time_unit=60,
                           time_increment=1, monthly_fee=parse_price("5.00")),
                 make_plan(s, "prepaid", time_price=parse_price("0.02"), time_unit=60,
                           time_increment=60),
                 make_plan(s, "postpaid", time_price=parse_price("0.0101"), time_unit=60,
                           time_increment=1, credit_limit=10_000,
                           monthly_fee=parse_price("12.99"))]
        partner = Reseller(name="partner")
        s.add(partner)
        s.flush()
        thd_set_wholesale(s, "metered", "70")
        thd_topup(s, "partner", 10**12, "USD", "seed")
        logins = []
        for i in range(SUBSCRIBERS):
            login = f"u{i:04d}"
            sid = make_subscriber(s, login, plans[i % 3])
            if i % 10 == 0:  # every tenth subscriber is the reseller's
                s.get(Subscriber, sid).reseller_id = partner.id  # type: ignore[union-attr]
            logins.append(login)
            thd_add_payment(s, login, 2_000, "USD", f"open-{login}",
                            now=START - timedelta(days=1))
        created = thd_create_batch(s, "RND", max(OPS // 40, 10), 300, "USD",
                                   now=START - timedelta(days=1))
        s.execute(BillingAccount.__table__.update().values(
            created_at=START - timedelta(days=2)))
    return logins, [(c.serial, c.pin) for c in created.cards]


@pytest.mark.slow
@pytest.mark.timeout(1200)  # ~2 min per backend on a quiet 2-core machine; CI shares it
def test_randomized_money_operations(engine: Engine, db_url: str) -> None:
    """100,000 seeded random money operations with restarts: 0 minor units of drift."""
    rng = random.Random(20241203)
    logins, cards = _setup(engine)
    sub_ids = {}
    with Session(engine) as s:
        sub_ids = dict(s.execute(select(Subscriber.login, Subscriber.id)).all())
    refs: dict[str, tuple[str, int, EntryKind]] = {}
    open_sessions: dict[str, tuple[str, int]] = {}
    unused = list(cards)
    used: list[tuple[str, str]] = []
    counts: dict[str, int] = defaultdict(int)
    per_month = OPS // MONTHS + 1
    seq = 0
    for m in range(MONTHS):
        # A restart: a new engine and session factory; nothing survives in memory but the
        # test's own bookkeeping.
        eng = make_engine(db_url, pool_size=2)
        factory = sessionmaker(eng, expire_on_commit=False)
        first, last = month_start(m), month_start(m + 1)
        span = (last - first).total_seconds() - 7200
        if m > 0:
            cursor = 0
            while True:
                r = run_in_session(factory, thd_issue_statements, SETTINGS,
                                   month_start(m - 1).strftime("%Y-%m"), cursor,
                                   first + timedelta(hours=2))
                cursor = r.last_account_id
                counts["statements"] += r.statements
                if r.done:
                    break
            counts["statement_runs"] += 1
        run_in_session(factory, thd_charge_fees, "USD", first + timedelta(hours=3))
        counts["fee_runs"] += 1
        done = 0
        while done < per_month:
            n = min(CHUNK, per_month - done)
            when = first + timedelta(seconds=3 * 3600 + span * (done + n) / per_month)
            deltas: list[UsageDelta] = []
            money: list[tuple[str, str, int, str, EntryKind]] = []
            acts: list[tuple[str, str, str]] = []
            for _ in range(n):
                seq += 1
                r = rng.random()
                login = rng.choice(logins)
                if r < 0.80:
                    sid, total = open_sessions.get(login, (f"s{seq}", 0))
                    secs = rng.randint(1, 900)
                    final = rng.random() < 0.2
                    deltas.append(UsageDelta(
                        subscriber_id=sub_ids[login], source="session", source_id=sid,
                        seconds=secs, octets_in=rng.randint(0, 10**7),
                        octets_out=rng.randint(0, 10**6), period_start=when - timedelta(
                            seconds=secs), period_end=when, idempotency_key=f"k{seq}",
                        total_seconds=total + secs, final=final))
                    if final:
                        open_sessions.pop(login, None)
                    else:
                        open_sessions[login] = (sid, total + secs)
                    counts["usage"] += 1
                elif r < 0.89:
                    ref = f"p{seq}"
                    amount = rng.randint(1, 5_000)
                    refs[ref] = (login, amount, EntryKind.PAYMENT)
                    money.append(("pay", login, amount, ref, EntryKind.PAYMENT))
                    counts["payments"] += 1
                elif r < 0.91:
                    ref = f"r{seq}"
                    amount = rng.randint(1, 800)
                    refs[ref] = (login, amount, EntryKind.REFUND)
                    money.append(("pay", login, amount, ref, EntryKind.REFUND))
                    counts["refunds"] += 1
                elif r < 0.93:
                    amount = rng.randint(-500, 500) or 1
                    money.append(("pay", login, amount, f"a{seq}", EntryKind.ADJUSTMENT))
                    counts["adjustments"] += 1
                elif r < 0.96 and refs:
                    ref = rng.choice(list(refs))  # a gateway retry / a re-imported file
                    who, amount, kind = refs[ref]
                    money.append(("pay", who, amount, ref, kind))
                    counts["replays"] += 1
                elif r < 0.99 and unused:
                    serial, pin = unused.pop()
                    used.append((serial, pin))
                    acts.append((login, serial, pin))
                    counts["cards"] += 1
                elif used:
                    serial, pin = rng.choice(used)  # used already, or a wrong PIN
                    acts.append((login, serial, pin if rng.random() < 0.5 else "0" * 12))
                    counts["card_refusals"] += 1
                else:
                    counts["noop"] += 1

            def apply(s: Session, deltas=deltas, money=money, acts=acts, when=when) -> None:
                thd_record_usage(s, deltas)
                for _, login, amount, ref, kind in money:
                    thd_add_payment(s, login, amount, "USD", reference=ref, kind=kind,
                                    now=when)
                for login, serial, pin in acts:
                    thd_activate(s, serial, pin, login, "USD", address=f"a-{login}", now=when)

            run_in_session(factory, apply)
            while True:
                pr = run_in_session(factory, thd_charge_pending, "USD", 300, 50_000_000, 5000,
                                    when)
                if pr.rated < 5000:
                    break
            done += n
        eng.dispose()
    total_ops = sum(v for k, v in counts.items() if k not in ("statements", "noop"))
    assert total_ops >= OPS, counts
    with Session(engine) as s, s.begin():
        cursor = 0
        while True:
            r = thd_issue_statements(s, SETTINGS, month_start(MONTHS - 1).strftime("%Y-%m"),
                                     cursor, month_start(MONTHS) + timedelta(hours=2))
            cursor = r.last_account_id
            if r.done:
                break
    with Session(engine) as s:
        check = thd_check(s)
        assert check.mismatches == () and check.accounts == SUBSCRIBERS
        statements = s.execute(select(Statement.account_id, Statement.period,
                                      Statement.opening, Statement.closing,
                                      Statement.period_end, Statement.lines)
                               .order_by(Statement.account_id, Statement.period)).all()
        assert len(statements) == SUBSCRIBERS * MONTHS
        sums = defaultdict(int)
        for aid, created, amount in s.execute(select(LedgerEntry.account_id,
                                                     LedgerEntry.created_at,
                                                     LedgerEntry.amount)):
            for m in range(1, MONTHS + 1):
                if created < month_start(m):
                    sums[(aid, m)] += amount
        prev: dict[int, int] = {}
        for aid, period, opening, closing, _end, lines in statements:
            m = int(period[5:7])
            assert closing == sums[(aid, m)], (aid, period)
            assert closing == opening + sum(v[1] for v in lines.values())
            if aid in prev:
                assert opening == prev[aid], (aid, period)
            prev[aid] = closing
        invoices = s.execute(select(Invoice.statement_id, Invoice.total, Invoice.net,
                                    Invoice.tax, Invoice.number)).all()
        assert invoices and all(t == n + x for _, t, n, x, _ in invoices)
        assert sorted(i[4] for i in invoices) == list(range(1, len(invoices) + 1))
        charged = {sid: -sum(v[1] for k, v in lines.items()
                             if k in ("sessions", "calls", "fees", "other_charges"))
                   for sid, lines in s.execute(select(Statement.id, Statement.lines))}
        assert all(charged[sid] == total for sid, total, *_ in invoices)
        start, end = START, month_start(MONTHS)
        for kind, column, kinds in (("charges", "amount", ("charge", "fee")),
                                    ("payments", "amount", ("payment", "refund"))):
            e = thd_export(s, kind, start, end)
            ledger = s.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
                LedgerEntry.kind.in_(kinds), LedgerEntry.created_at >= start,
                LedgerEntry.created_at < end))
            want = -ledger if kind == "charges" else ledger
            assert e.totals[column] == want, kind
            csv_sum = sum(int(line.rsplit(",", 3 if kind == "payments" else 2)[1]
                              .replace(".", "")) for line in to_csv(e, "USD").splitlines()[1:])
            assert csv_sum == want, kind
            assert f"<{column}>{format_amount(want, 'USD')}</{column}></totals>" in \
                to_xml(e, "USD"), kind
        assert thd_reseller_check(s) == []
        draws = s.scalar(select(func.count()).select_from(ResellerEntry)
                         .where(ResellerEntry.kind == "draw"))
        reseller_payments = s.scalar(
            select(func.count()).select_from(LedgerEntry)
            .join(BillingAccount, BillingAccount.id == LedgerEntry.account_id)
            .join(Subscriber, Subscriber.id == BillingAccount.subscriber_id)
            .where(Subscriber.reseller_id.is_not(None), LedgerEntry.kind == "payment"))
        assert draws == reseller_payments > 0
        bal = thd_export(s, "balances", start, end + timedelta(days=1))
        assert bal.totals["balance"] == s.scalar(select(func.sum(BillingAccount.balance)))
