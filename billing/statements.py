"""Monthly statements and invoices, issued exactly once per account and period.

A statement covers one calendar month in ``[statements] time_zone``: the
opening balance (the previous statement's closing, or the ledger's sum
before the month for an account's first one), every entry of the month
grouped by service (billing.classify), and the closing balance = opening +
the month's entries, so one statement's closing is always the next one's
opening. Postpaid accounts (a credit limit above 0) also get an invoice for
the month's charges, numbered per issuer without gaps: the issuer's
``invoice_sequence`` row is locked, the numbers taken and the invoices
inserted in one transaction, so a rolled-back batch gives its numbers back.

The billing loop issues a month once it has been over for ``delay_minutes``
(late Interim-Updates of its last minutes are rated first), in batches of
``batch`` accounts, each batch one transaction. ``uq(account_id, period)``
makes "exactly once" hold with restarts and several nodes: a batch that
collides with one another node committed fails whole and is retried from the
database's state, which now skips those accounts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing.classify import SERVICES, service_column
from billing.models import BillingAccount, LedgerEntry, TariffRow
from billing.money import minor_to_major, round_to_minor
from billing.statement_models import Invoice, InvoiceSequence, Statement
from core.config import Config
from core.db.base import utcnow
from core.db.models import Subscriber
from core.errors import InvalidInput

CHARGE_SERVICES = ("sessions", "calls", "fees", "other_charges")
IN_CHUNK = 1000


@dataclass(frozen=True)
class StatementSettings:
    zone: ZoneInfo
    delay: timedelta
    batch: int
    issuer: str
    number_format: str
    vat_rate: Decimal
    due_days: int

    @classmethod
    def from_config(cls, config: Config) -> StatementSettings:
        s, i = config.statements, config.invoices
        return cls(zone=ZoneInfo(s.time_zone), delay=timedelta(minutes=s.delay_minutes),
                   batch=s.batch, issuer=i.issuer, number_format=i.number_format,
                   vat_rate=Decimal(i.vat_rate), due_days=i.due_days)


@dataclass(frozen=True)
class IssueResult:
    period: str
    statements: int
    invoices: int
    last_account_id: int
    done: bool  # no account of the period is left without a statement (after this cursor)


def check_period(period: str) -> str:
    try:
        datetime.strptime(period, "%Y-%m")
    except ValueError:
        raise InvalidInput(f"period {period!r} is not a month like 2024-05") from None
    return period


def month_bounds(period: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the month in ``zone``, as aware datetimes."""
    first = datetime.strptime(check_period(period), "%Y-%m").date()
    nxt = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return (datetime.combine(first, time(0), tzinfo=zone),
            datetime.combine(nxt, time(0), tzinfo=zone))


def previous_period(period: str) -> str:
    first = datetime.strptime(period, "%Y-%m").date()
    return (first - timedelta(days=1)).strftime("%Y-%m")


def next_period(period: str) -> str:
    first = datetime.strptime(period, "%Y-%m").date()
    return (first.replace(day=28) + timedelta(days=4)).strftime("%Y-%m")


def closed_period(now: datetime, settings: StatementSettings) -> str:
    """The latest month that ended at least ``delay`` ago."""
    current = (now - settings.delay).astimezone(settings.zone).strftime("%Y-%m")
    return previous_period(current)


def _chunks(ids: Sequence[int]) -> list[list[int]]:
    return [list(ids[i:i + IN_CHUNK]) for i in range(0, len(ids), IN_CHUNK)]


def _invoice_numbers(session: Session, issuer: str, count: int) -> int:
    """Reserve ``count`` numbers for ``issuer`` under its row lock; returns the first."""
    q = select(InvoiceSequence).where(InvoiceSequence.issuer == issuer).with_for_update()
    seq = session.scalars(q.execution_options(populate_existing=True)).one_or_none()
    if seq is None:
        try:
            with session.begin_nested():
                session.add(InvoiceSequence(issuer=issuer, last_number=0))
        except IntegrityError:
            pass
        seq = session.scalars(q.execution_options(populate_existing=True)).one()
    first = seq.last_number + 1
    seq.last_number += count
    session.flush()
    return first


def tax_included(total: int, rate: Decimal, currency: str) -> int:
    """The VAT contained in a VAT-inclusive ``total`` (the one rounding rule, half up)."""
    if rate <= 0 or total <= 0:
        return 0
    return round_to_minor(minor_to_major(total, currency) * rate / (100 + rate), currency)


def _notify_issued(session: Session, period: str, rows: list[dict[str, object]],
                   now: datetime) -> None:
    from billing.money import format_amount
    from billing.notify import _endpoints, accounts_with_contacts, enqueue_accounts

    ids = [int(r["account_id"]) for r in rows]  # type: ignore[call-overload]
    wanted = set(ids) if _endpoints(session, "statement_issued") else set(
        accounts_with_contacts(session, ids))
    enqueue_accounts(session, "statement_issued", [
        (int(r["account_id"]), {"period": period,  # type: ignore[call-overload]
                                "opening": format_amount(r["opening"], r["currency"]),  # type: ignore[arg-type]
                                "closing": format_amount(r["closing"], r["currency"]),  # type: ignore[arg-type]
                                "currency": r["currency"]})
        for r in rows if r["account_id"] in wanted], now)


def thd_issue_statements(session: Session, settings: StatementSettings, period: str,
                         after_id: int = 0, now: datetime | None = None,
                         account_ids: Sequence[int] | None = None) -> IssueResult:
    """Issue the period's statements (and invoices) for the next batch of accounts."""
    now = now or utcnow()
    start, end = month_bounds(period, settings.zone)
    if end > now:
        raise InvalidInput(f"period {period} has not ended yet")
    has = select(Statement.id).where(Statement.account_id == BillingAccount.id,
                                     Statement.period == period).exists()
    q = (select(BillingAccount.id, BillingAccount.currency,
                func.coalesce(BillingAccount.credit_limit, TariffRow.credit_limit, 0))
         .join(Subscriber, Subscriber.id == BillingAccount.subscriber_id)
         .outerjoin(TariffRow, TariffRow.plan_id == Subscriber.plan_id)
         .where(BillingAccount.id > after_id, BillingAccount.created_at < end, ~has)
         .order_by(BillingAccount.id).limit(settings.batch))
    if account_ids is not None:
        q = q.where(BillingAccount.id.in_(list(account_ids)))
    accounts = session.execute(q).all()
    if not accounts:
        return IssueResult(period, 0, 0, after_id, True)
    ids = [a[0] for a in accounts]
    opening: dict[int, int] = {}
    prev = previous_period(period)
    for chunk in _chunks(ids):
        opening.update(session.execute(
            select(Statement.account_id, Statement.closing)
            .where(Statement.period == prev, Statement.account_id.in_(chunk))).all())
    first_ids = [i for i in ids if i not in opening]
    for chunk in _chunks(first_ids):
        opening.update({aid: int(total) for aid, total in session.execute(
            select(LedgerEntry.account_id, func.sum(LedgerEntry.amount))
            .where(LedgerEntry.account_id.in_(chunk), LedgerEntry.created_at < start)
            .group_by(LedgerEntry.account_id)).all()})
    lines: dict[int, dict[str, list[int]]] = defaultdict(dict)
    service = service_column().label("service")
    for chunk in _chunks(ids):
        for aid, svc, n, total in session.execute(
                select(LedgerEntry.account_id, service, func.count(),
                       func.sum(LedgerEntry.amount))
                .where(LedgerEntry.account_id.in_(chunk), LedgerEntry.created_at >= start,
                       LedgerEntry.created_at < end)
                .group_by(LedgerEntry.account_id, service)).all():
            lines[aid][svc] = [int(n), int(total)]
    rows = []
    for aid, currency, _limit in accounts:
        acc_lines = {svc: lines[aid][svc] for svc in SERVICES if svc in lines[aid]}
        open_ = opening.get(aid, 0)
        rows.append({"account_id": aid, "period": period, "period_start": start,
                     "period_end": end, "currency": currency, "opening": open_,
                     "closing": open_ + sum(v[1] for v in acc_lines.values()),
                     "lines": acc_lines, "issued_at": now, "document_id": None})
    session.execute(insert(Statement), rows)
    _notify_issued(session, period, rows, now)
    postpaid = {aid: currency for aid, currency, limit in accounts if int(limit) > 0}
    due = [(aid, -sum(lines[aid].get(s, [0, 0])[1] for s in CHARGE_SERVICES))
           for aid in ids if aid in postpaid]
    due = [(aid, total) for aid, total in due if total > 0]
    invoices = 0
    if due:
        statement_ids = dict(session.execute(
            select(Statement.account_id, Statement.id)
            .where(Statement.period == period,
                   Statement.account_id.in_([aid for aid, _ in due]))).all())
        number = _invoice_numbers(session, settings.issuer, len(due))
        local = end.astimezone(settings.zone) - timedelta(days=1)
        inv_rows = []
        for offset, (aid, total) in enumerate(due):
            currency = postpaid[aid]
            n = number + offset
            tax = tax_included(total, settings.vat_rate, currency)
            inv_rows.append({
                "issuer": settings.issuer, "number": n,
                "number_text": settings.number_format.format(
                    issuer=settings.issuer, year=local.year, month=local.month, number=n)[:64],
                "account_id": aid, "statement_id": statement_ids[aid], "period": period,
                "issued_at": now, "due_date": now + timedelta(days=settings.due_days),
                "currency": currency, "vat_rate": str(settings.vat_rate), "net": total - tax,
                "tax": tax, "total": total, "document_id": None})
        session.execute(insert(Invoice), inv_rows)
        invoices = len(inv_rows)
    return IssueResult(period, len(rows), invoices, ids[-1], len(accounts) < settings.batch)


@dataclass(frozen=True)
class StatementView:
    id: int
    login: str
    period: str
    period_start: datetime
    period_end: datetime
    currency: str
    opening: int
    closing: int
    lines: dict[str, list[int]]
    issued_at: datetime
    document_id: int | None
    invoice_number: str | None
    invoice_total: int | None


def _view_q():  # type: ignore[no-untyped-def]
    return (select(Statement, Subscriber.login, Invoice.number_text, Invoice.total)
            .join(BillingAccount, BillingAccount.id == Statement.account_id)
            .join(Subscriber, Subscriber.id == BillingAccount.subscriber_id)
            .outerjoin(Invoice, Invoice.statement_id == Statement.id))


def _view(st: Statement, login: str, number: str | None, total: int | None) -> StatementView:
    return StatementView(id=st.id, login=login, period=st.period,
                         period_start=st.period_start, period_end=st.period_end,
                         currency=st.currency, opening=st.opening, closing=st.closing,
                         lines=dict(st.lines), issued_at=st.issued_at,
                         document_id=st.document_id, invoice_number=number,
                         invoice_total=total)


def thd_list_statements(session: Session, login: str | None = None, period: str | None = None,
                        limit: int = 100) -> list[StatementView]:
    q = _view_q()
    if login is not None:
        q = q.where(Subscriber.login == login)
    if period is not None:
        q = q.where(Statement.period == check_period(period))
    rows = session.execute(q.order_by(Statement.id.desc()).limit(limit)).all()
    return [_view(*r) for r in rows]


def thd_get_statement(session: Session, statement_id: int) -> StatementView:
    row = session.execute(_view_q().where(Statement.id == statement_id)).one_or_none()
    if row is None:
        from core.errors import NotFound

        raise NotFound(f"statement {statement_id} not found")
    return _view(*row)


def thd_mark_rendered(session: Session, statement_id: int, document_id: int) -> bool:
    """Point the statement (and its invoice) at its document, unless another node did first."""
    done = session.execute(update(Statement).where(and_(Statement.id == statement_id,
                                                        Statement.document_id.is_(None)))
                           .values(document_id=document_id))
    session.execute(update(Invoice).where(Invoice.statement_id == statement_id,
                                          Invoice.document_id.is_(None))
                    .values(document_id=document_id))
    return bool(done.rowcount)  # type: ignore[attr-defined]
