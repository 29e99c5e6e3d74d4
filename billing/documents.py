"""Statements and invoices as documents: Jinja2 HTML templates, PDF by WeasyPrint, a store.

Templates come from ``[documents] templates`` (a directory with
``statement.html`` and ``invoice.html``, which may extend ``base.html``),
falling back to the built-in ones; autoescape is on, so a login or an
issuer name with markup in it prints as text. Rendering runs outside any
transaction (a PDF takes tens of milliseconds of CPU); the files are
written under ``[documents] store`` with ``O_EXCL`` (never overwritten), and
then one transaction records the document with the SHA-256 of each file and
points the statement at it, only if nobody did first (another node). A
document is never changed: ``document reissue`` renders a new one that
references the old (``replaces_id``), e.g. after a template fix.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.money import format_amount
from billing.statement_models import Document, DocumentKind, Invoice, Statement
from billing.statements import (
    CHARGE_SERVICES,
    StatementView,
    thd_get_statement,
    thd_mark_rendered,
)
from core.config import Config
from core.errors import NotFound, RadbillError

BUILTIN = Path(__file__).with_name("templates")
LABELS = {"sessions": "Sessions (time and traffic)", "calls": "Calls", "fees": "Recurring fees",
          "other_charges": "Other charges", "payments": "Payments", "refunds": "Refunds",
          "adjustments": "Adjustments"}


class DocumentError(RadbillError):
    """A template that does not render, a store that cannot be written, a file changed."""


@dataclass(frozen=True)
class InvoiceView:
    id: int
    number: str
    issued_at: datetime
    due_date: datetime
    vat_rate: str
    net: int
    tax: int
    total: int


@dataclass(frozen=True)
class DocumentData:
    statement: StatementView
    account_id: int
    invoice: InvoiceView | None


@dataclass(frozen=True)
class DocumentView:
    id: int
    kind: str
    login: str
    statement_id: int | None
    invoice_number: str | None
    replaces_id: int | None
    reason: str
    title: str
    html_path: str
    html_sha256: str
    pdf_path: str | None
    pdf_sha256: str | None
    created_at: datetime


@dataclass(frozen=True)
class StoredFiles:
    html_path: str
    html_sha256: str
    pdf_path: str | None
    pdf_sha256: str | None


def thd_pending_statements(session: Session, limit: int) -> list[int]:
    return list(session.scalars(select(Statement.id).where(Statement.document_id.is_(None))
                                .order_by(Statement.id).limit(limit)))


def thd_document_data(session: Session, statement_id: int) -> DocumentData:
    view = thd_get_statement(session, statement_id)
    st = session.get(Statement, statement_id)
    assert st is not None
    inv = session.scalars(select(Invoice).where(Invoice.statement_id == statement_id)
                          ).one_or_none()
    invoice = None if inv is None else InvoiceView(
        id=inv.id, number=inv.number_text, issued_at=inv.issued_at, due_date=inv.due_date,
        vat_rate=inv.vat_rate, net=inv.net, tax=inv.tax, total=inv.total)
    return DocumentData(statement=view, account_id=st.account_id, invoice=invoice)


class DocumentRenderer:
    def __init__(self, config: Config) -> None:
        d = config.documents
        self.store = Path(d.store or Path(config.server.data_dir) / "documents")
        self.pdf = d.pdf
        self.language = d.language
        self.time_zone = config.statements.time_zone
        search = [str(BUILTIN)]
        if d.templates:
            search.insert(0, d.templates)
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(search),
                                      autoescape=True, undefined=jinja2.StrictUndefined)
        i = config.invoices
        self.issuer = {"name": i.issuer_name, "address_lines": [
            line.strip() for line in i.issuer_address.split("\n") if line.strip()],
            "tax_id": i.issuer_tax_id, "email": i.issuer_email}

    def context(self, data: DocumentData, replaces: int | None = None,
                reason: str = "") -> dict[str, Any]:
        st = data.statement
        c = st.currency

        def lines(services: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
            keys = [k for k in LABELS if k in st.lines and (services is None or k in services)]
            return [{"service": k, "label": LABELS[k], "count": st.lines[k][0],
                     "amount": format_amount(st.lines[k][1] if services is None
                                             else -st.lines[k][1], c)} for k in keys]

        inv = data.invoice
        return {
            "language": self.language, "issuer": self.issuer, "login": st.login,
            "period": st.period, "time_zone": self.time_zone,
            "period_start": st.period_start.date().isoformat(),
            "period_end": st.period_end.date().isoformat(), "currency": c,
            "opening": format_amount(st.opening, c), "closing": format_amount(st.closing, c),
            "lines": lines(), "charge_lines": lines(CHARGE_SERVICES),
            "invoice": None if inv is None else {
                "number": inv.number, "issued_at": inv.issued_at.date().isoformat(),
                "due_date": inv.due_date.date().isoformat(), "tax_rate": inv.vat_rate,
                "net": format_amount(inv.net, c), "tax": format_amount(inv.tax, c),
                "total": format_amount(inv.total, c)},
            "issued_at": st.issued_at.isoformat(timespec="seconds"),
            "replaces": replaces, "reason": reason,
            "document_ref": f"S{st.id}" + (f"/{inv.number}" if inv else ""),
            "title": self.title(data),
        }

    @staticmethod
    def kind(data: DocumentData) -> DocumentKind:
        return DocumentKind.INVOICE if data.invoice is not None else DocumentKind.STATEMENT

    def title(self, data: DocumentData) -> str:
        if data.invoice is not None:
            return f"Invoice {data.invoice.number}"
        return f"Statement {data.statement.period} {data.statement.login}"[:128]

    def render(self, data: DocumentData, replaces: int | None = None,
               reason: str = "") -> tuple[bytes, bytes | None]:
        name = f"{self.kind(data).value}.html"
        try:
            html = self.env.get_template(name).render(self.context(data, replaces, reason))
        except jinja2.TemplateError as exc:
            raise DocumentError(f"template {name}: {exc}") from exc
        pdf = None
        if self.pdf:
            from weasyprint import HTML

            pdf = HTML(string=html, base_url=str(BUILTIN)).write_pdf()
        return html.encode("utf-8"), pdf

    def write(self, data: DocumentData, html: bytes, pdf: bytes | None) -> StoredFiles:
        st = data.statement
        rel_dir = Path(st.period)
        stem = f"{self.kind(data).value}-{st.id}-{uuid.uuid4().hex[:8]}"
        (self.store / rel_dir).mkdir(parents=True, exist_ok=True)
        html_rel = str(rel_dir / f"{stem}.html")
        self._write_once(self.store / html_rel, html)
        pdf_rel = None
        if pdf is not None:
            pdf_rel = str(rel_dir / f"{stem}.pdf")
            self._write_once(self.store / pdf_rel, pdf)
        return StoredFiles(html_rel, hashlib.sha256(html).hexdigest(), pdf_rel,
                           hashlib.sha256(pdf).hexdigest() if pdf is not None else None)

    @staticmethod
    def _write_once(path: Path, content: bytes) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        except OSError as exc:
            raise DocumentError(f"cannot write {path}: {exc.strerror}") from exc
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())

    def discard(self, files: StoredFiles) -> None:
        for rel in (files.html_path, files.pdf_path):
            if rel:
                (self.store / rel).unlink(missing_ok=True)

    def read(self, doc: DocumentView, fmt: str) -> bytes:
        """A stored file, checked against the hash recorded when it was issued."""
        rel, digest = ((doc.pdf_path, doc.pdf_sha256) if fmt == "pdf"
                       else (doc.html_path, doc.html_sha256))
        if rel is None:
            raise NotFound(f"document {doc.id} has no {fmt}")
        try:
            content = (self.store / rel).read_bytes()
        except OSError as exc:
            raise DocumentError(f"document {doc.id}: {exc.strerror}: {self.store / rel}") \
                from None
        if hashlib.sha256(content).hexdigest() != digest:
            raise DocumentError(f"document {doc.id}: {rel} does not match its recorded "
                                "SHA-256 (changed after issue)")
        return content


def thd_record_document(session: Session, data: DocumentData, title: str, kind: str,
                        files: StoredFiles, replaces_id: int | None = None,
                        reason: str = "") -> int | None:
    """Record the document; None when the statement already had one (the caller discards)."""
    st = session.scalars(select(Statement).where(Statement.id == data.statement.id)
                         .with_for_update().execution_options(populate_existing=True)).one()
    if replaces_id is None and st.document_id is not None:
        return None
    doc = Document(kind=kind, account_id=data.account_id, statement_id=data.statement.id,
                   invoice_id=data.invoice.id if data.invoice else None,
                   replaces_id=replaces_id, reason=reason[:255], title=title,
                   html_path=files.html_path, html_sha256=files.html_sha256,
                   pdf_path=files.pdf_path, pdf_sha256=files.pdf_sha256)
    session.add(doc)
    session.flush()
    if replaces_id is None:
        thd_mark_rendered(session, data.statement.id, doc.id)
    return doc.id


def _doc_query():  # type: ignore[no-untyped-def]
    from billing.models import BillingAccount
    from core.db.models import Subscriber

    return (select(Document, Subscriber.login, Invoice.number_text)
            .join(BillingAccount, BillingAccount.id == Document.account_id)
            .join(Subscriber, Subscriber.id == BillingAccount.subscriber_id)
            .outerjoin(Invoice, Invoice.id == Document.invoice_id))


def _doc_view(d: Document, login: str, number: str | None) -> DocumentView:
    return DocumentView(id=d.id, kind=d.kind, login=login, statement_id=d.statement_id,
                        invoice_number=number, replaces_id=d.replaces_id, reason=d.reason,
                        title=d.title, html_path=d.html_path, html_sha256=d.html_sha256,
                        pdf_path=d.pdf_path, pdf_sha256=d.pdf_sha256, created_at=d.created_at)


def thd_list_documents(session: Session, login: str | None = None,
                       limit: int = 100) -> list[DocumentView]:
    from core.db.models import Subscriber

    q = _doc_query()
    if login is not None:
        q = q.where(Subscriber.login == login)
    return [_doc_view(*r) for r in session.execute(q.order_by(Document.id.desc()).limit(limit))]


def thd_get_document(session: Session, document_id: int,
                     login: str | None = None) -> DocumentView:
    """One document; with ``login``, only if it is that subscriber's (self-care)."""
    from core.db.models import Subscriber

    q = _doc_query().where(Document.id == document_id)
    if login is not None:
        q = q.where(Subscriber.login == login)
    row = session.execute(q).one_or_none()
    if row is None:
        raise NotFound(f"document {document_id} not found")
    return _doc_view(*row)


def render_statement(renderer: DocumentRenderer, run: Any, statement_id: int,
                     replaces_id: int | None = None, reason: str = "") -> int | None:
    """Render, store and record one statement's document (synchronous ``run``: CLI, threads)."""
    data = run(thd_document_data, statement_id)
    html, pdf = renderer.render(data, replaces_id, reason)
    files = renderer.write(data, html, pdf)
    try:
        doc_id = run(thd_record_document, data, renderer.title(data),
                     renderer.kind(data).value, files, replaces_id, reason)
    except BaseException:
        renderer.discard(files)
        raise
    if doc_id is None:
        renderer.discard(files)
    return doc_id  # type: ignore[no-any-return]
