"""Interchange with accounting software: payments, charges, invoices, balances for a period.

Every export reads the ledger (and the invoices issued from it) for
``[start, end)`` by ``created_at``; amounts are integers in minor units
formatted with billing.money, so the CSV and the XML of one export carry the
same numbers, and they add up to the ledger to the minor unit (the tests and
the randomized money test check both). The XML schema is in docs/money.md.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.classify import method_column, service_column
from billing.models import BillingAccount, EntryKind, LedgerEntry
from billing.money import format_amount
from core.db.models import Plan, Subscriber
from core.errors import InvalidInput

KINDS = ("payments", "charges", "invoices", "balances")

DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "payments": ("entry_id", "created_at", "login", "kind", "method", "amount", "currency",
                 "reference"),
    "charges": ("login", "plan", "service", "entries", "amount", "currency"),
    "invoices": ("number", "issuer", "issued_at", "due_date", "login", "period", "net", "tax",
                 "total", "currency", "document_id"),
    "balances": ("login", "plan", "balance", "currency"),
}
ITEMS = {"payments": "payment", "charges": "charge", "invoices": "invoice",
         "balances": "account"}
AMOUNT_COLUMNS = {"amount", "balance", "net", "tax", "total"}


@dataclass(frozen=True)
class Export:
    kind: str
    start: datetime
    end: datetime
    rows: tuple[dict[str, Any], ...]  # amounts as int minor units
    totals: dict[str, int]


def _payments(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    e = LedgerEntry
    rows = session.execute(
        select(e.id, e.created_at, Subscriber.login, e.kind, method_column(), e.amount,
               BillingAccount.currency, e.reference)
        .join(BillingAccount, BillingAccount.id == e.account_id)
        .join(Subscriber, Subscriber.id == BillingAccount.subscriber_id)
        .where(e.kind.in_([EntryKind.PAYMENT.value, EntryKind.REFUND.value]),
               e.created_at >= start, e.created_at < end)
        .order_by(e.id)).all()
    return [dict(zip(DEFAULT_COLUMNS["payments"], r, strict=True)) for r in rows]


def _charges(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    e = LedgerEntry
    service = service_column().label("service")
    rows = session.execute(
        select(Subscriber.login, Plan.name, service, func.count(), -func.sum(e.amount),
               BillingAccount.currency)
        .join(BillingAccount, BillingAccount.id == e.account_id)
        .join(Subscriber, Subscriber.id == BillingAccount.subscriber_id)
        .outerjoin(Plan, Plan.id == Subscriber.plan_id)
        .where(e.kind.in_([EntryKind.CHARGE.value, EntryKind.FEE.value]),
               e.created_at >= start, e.created_at < end)
        .group_by(Subscriber.login, Plan.name, service, BillingAccount.currency)
        .order_by(Subscriber.login, service)).all()
    return [dict(zip(DEFAULT_COLUMNS["charges"], (r[0], r[1], r[2], int(r[3]), int(r[4]), r[5]),
                     strict=True)) for r in rows]


def _balances(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    e = LedgerEntry
    sums = (select(e.account_id, func.sum(e.amount).label("total"))
            .where(e.created_at < end).group_by(e.account_id).subquery())
    rows = session.execute(
        select(Subscriber.login, Plan.name, func.coalesce(sums.c.total, 0),
               BillingAccount.currency)
        .join(Subscriber, Subscriber.id == BillingAccount.subscriber_id)
        .outerjoin(Plan, Plan.id == Subscriber.plan_id)
        .outerjoin(sums, sums.c.account_id == BillingAccount.id)
        .where(BillingAccount.created_at < end)
        .order_by(Subscriber.login)).all()
    return [dict(zip(DEFAULT_COLUMNS["balances"], (r[0], r[1], int(r[2]), r[3]), strict=True))
            for r in rows]


def _invoices(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    from billing.statement_models import Invoice

    rows = session.execute(
        select(Invoice.number_text, Invoice.issuer, Invoice.issued_at, Invoice.due_date,
               Subscriber.login, Invoice.period, Invoice.net, Invoice.tax, Invoice.total,
               Invoice.currency, Invoice.document_id)
        .join(BillingAccount, BillingAccount.id == Invoice.account_id)
        .join(Subscriber, Subscriber.id == BillingAccount.subscriber_id)
        .where(Invoice.issued_at >= start, Invoice.issued_at < end)
        .order_by(Invoice.issuer, Invoice.number)).all()
    return [dict(zip(DEFAULT_COLUMNS["invoices"], r, strict=True)) for r in rows]


READERS = {"payments": _payments, "charges": _charges, "balances": _balances,
           "invoices": _invoices}


def thd_export(session: Session, kind: str, start: datetime, end: datetime) -> Export:
    if kind not in READERS:
        raise InvalidInput(f"export kind must be one of {', '.join(KINDS)}")
    if end <= start:
        raise InvalidInput("--to must be after --from")
    rows = READERS[kind](session, start, end)
    totals = {c: sum(int(r[c]) for r in rows)
              for c in DEFAULT_COLUMNS[kind] if c in AMOUNT_COLUMNS}
    return Export(kind=kind, start=start, end=end, rows=tuple(rows), totals=totals)


def _cell(column: str, value: Any, currency: str) -> str:
    if value is None:
        return ""
    if column in AMOUNT_COLUMNS:
        return format_amount(int(value), currency)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def check_columns(kind: str, columns: Sequence[str]) -> tuple[str, ...]:
    allowed = DEFAULT_COLUMNS[kind]
    bad = [c for c in columns if c not in allowed]
    if bad:
        raise InvalidInput(f"export {kind}: unknown column {bad[0]!r} "
                           f"(known: {', '.join(allowed)})")
    return tuple(columns) or allowed


def to_csv(export: Export, currency: str, columns: Sequence[str] = (),
           delimiter: str = ",") -> str:
    cols = check_columns(export.kind, columns)
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    w.writerow(cols)
    for r in export.rows:
        w.writerow([_cell(c, r.get(c), r.get("currency") or currency) for c in cols])
    return buf.getvalue()


def to_xml(export: Export, currency: str) -> str:
    """<radbill-export kind= from= to= currency=><row .../>...<totals .../></radbill-export>."""
    top = ET.Element("radbill-export", {"kind": export.kind, "from": export.start.isoformat(),
                                        "to": export.end.isoformat(), "currency": currency,
                                        "rows": str(len(export.rows))})
    item = ITEMS[export.kind]
    for r in export.rows:
        el = ET.SubElement(top, item)
        for c in DEFAULT_COLUMNS[export.kind]:
            value = r.get(c)
            if value is not None:
                ET.SubElement(el, c).text = _cell(c, value, r.get("currency") or currency)
    totals = ET.SubElement(top, "totals")
    for c, v in export.totals.items():
        ET.SubElement(totals, c).text = format_amount(v, currency)
    return ET.tostring(top, encoding="unicode", xml_declaration=True) + "\n"
