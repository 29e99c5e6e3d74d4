"""Statements, issued documents and accounting exports, through the service layer.

Read-only views of what billing issued (``document.read``) and the period
exports for accounting software (``export.read``); issuing a month's
statements now is ``statement.issue`` and audited. Document files are read
and verified against their stored hashes by ``billing.render`` in the face.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing import documents, exports, statements
from billing.accounts import find_subscriber
from billing.models import BillingAccount
from billing.money import format_amount
from webadmin.roles import Caller
from webadmin.service import audit


def statement_dict(s: statements.StatementView) -> dict[str, Any]:
    c = s.currency
    return {"id": s.id, "login": s.login, "period": s.period, "currency": c,
            "period_start": s.period_start, "period_end": s.period_end,
            "opening": format_amount(s.opening, c), "closing": format_amount(s.closing, c),
            "lines": {k: {"entries": v[0], "amount": format_amount(v[1], c)}
                      for k, v in s.lines.items()},
            "invoice": s.invoice_number,
            "invoice_total": None if s.invoice_total is None
            else format_amount(s.invoice_total, c),
            "issued_at": s.issued_at, "document_id": s.document_id}


def document_dict(d: documents.DocumentView) -> dict[str, Any]:
    return {"id": d.id, "kind": d.kind, "login": d.login, "title": d.title,
            "statement_id": d.statement_id, "invoice": d.invoice_number,
            "replaces_id": d.replaces_id, "reason": d.reason or None,
            "html_sha256": d.html_sha256, "pdf": bool(d.pdf_path),
            "pdf_sha256": d.pdf_sha256, "created_at": d.created_at}


def thd_list_statements(session: Session, caller: Caller, login: str | None,
                        period: str | None, limit: int) -> list[statements.StatementView]:
    caller.require("document.read")
    return statements.thd_list_statements(session, login, period, limit)


def thd_get_statement(session: Session, caller: Caller,
                      statement_id: int) -> statements.StatementView:
    caller.require("document.read")
    return statements.thd_get_statement(session, statement_id)


def thd_list_documents(session: Session, caller: Caller, login: str | None,
                       limit: int) -> list[documents.DocumentView]:
    caller.require("document.read")
    return documents.thd_list_documents(session, login, limit)


@dataclass(frozen=True)
class DocumentRow:
    """One line of the admin's document list: the record plus its statement's period and sum."""

    doc: documents.DocumentView
    period: str | None
    amount: int | None  # the invoice total, else the statement's closing balance
    currency: str | None


def thd_document_page(session: Session, caller: Caller, login: str | None,
                      period: str | None, limit: int, offset: int = 0) -> list[DocumentRow]:
    """Documents newest first, with period and amount, in one statement (the admin list)."""
    from billing.statement_models import Document, Invoice, Statement
    from core.db.models import Subscriber

    caller.require("document.read")
    q = (select(Document, Subscriber.login, Invoice.number_text, Statement.period,
                Invoice.total, Statement.closing, Statement.currency)
         .join(BillingAccount, BillingAccount.id == Document.account_id)
         .join(Subscriber, Subscriber.id == BillingAccount.subscriber_id)
         .outerjoin(Invoice, Invoice.id == Document.invoice_id)
         .outerjoin(Statement, Statement.id == Document.statement_id))
    if login:
        q = q.where(Subscriber.login == login)
    if period:
        q = q.where(Statement.period == period)
    rows = session.execute(q.order_by(Document.id.desc()).limit(limit).offset(offset))
    return [DocumentRow(documents._doc_view(d, lg, number), per,
                        total if total is not None else closing, cur)
            for d, lg, number, per, total, closing, cur in rows]


def thd_get_document(session: Session, caller: Caller,
                     document_id: int) -> documents.DocumentView:
    caller.require("document.read")
    return documents.thd_get_document(session, document_id)


def thd_export(session: Session, caller: Caller, kind: str, start: datetime,
               end: datetime) -> exports.Export:
    caller.require("export.read")
    return exports.thd_export(session, kind, start, end)


def thd_accounts_of(session: Session, caller: Caller, login: str) -> list[int]:
    caller.require("statement.issue")
    sub = find_subscriber(session, login)
    return list(session.scalars(select(BillingAccount.id)
                                .where(BillingAccount.subscriber_id == sub.id)))


def thd_issue_batch(session: Session, caller: Caller, settings: statements.StatementSettings,
                    period: str, cursor: int, only: list[int] | None) -> Any:
    """One batch of a month's statements (the face loops until done), audited per batch."""
    caller.require("statement.issue")
    r = statements.thd_issue_statements(session, settings, period, cursor, None, only)
    if r.statements or r.invoices:
        audit.record(session, caller, "statement.issue", "statement", period, None,
                     {"statements": r.statements, "invoices": r.invoices})
    return r
