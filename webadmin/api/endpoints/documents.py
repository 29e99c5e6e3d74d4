"""Prepaid cards, statements, issued documents and accounting exports (issue 13's money).

Document files and exports are downloads (their own formats: HTML/PDF, CSV/XML),
not data: ``?out=`` does not apply to them. Reading a document file checks it
against its stored SHA-256 (``billing.documents.DocumentRenderer.read``), in a
thread, not on the reactor.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from billing.money import format_amount, parse_amount
from core.errors import InvalidInput
from webadmin.api import models as m
from webadmin.api.declare import API, Body, Page, Query, Raw
from webadmin.service import cards, documents


class Batch(m.Out):
    name: str
    count: int
    value: m.Amount
    currency: str
    plan: str | None
    used: int
    blocked: int


class NewCard(m.Out):
    serial: str
    pin: str


class NewBatch(Batch):
    cards: list[NewCard] = Field(description="serials and PINs: shown only in this answer")


class Card(m.Out):
    serial: str
    batch: str
    value: m.Amount
    currency: str
    status: str
    login: str | None


class Activation(m.Out):
    serial: str
    login: str
    credited: m.Amount
    currency: str
    balance: m.Amount
    status: str
    unblocked: bool


class BatchAdd(Body):
    name: str
    count: int = Field(ge=1, le=100_000)
    value: str = Field(pattern=m.AMOUNT, description="credit per card, e.g. 10.00")
    expires: str | None = Field(None, description="last day of use, YYYY-MM-DD (UTC)")
    plan: str | None = None
    validity: int | None = Field(None, ge=1, le=3650, description="days after activation")
    reseller: str | None = None


class CardQuery(Page):
    batch: str | None = None
    status: Literal["active", "blocked", "used"] | None = None


class Block(Body):
    serials: list[str] = Field([], max_length=10_000)
    batch: str | None = Field(None, description="every unused card of this batch")
    reason: str = Field("", max_length=255)


class Activate(Body):
    login: str
    pin: str = Field(min_length=1, max_length=64)


def _expires(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise InvalidInput(f"expires {text!r} is not a date like 2025-12-31",
                           field="expires") from None
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


@API.endpoint("GET", "/cards/batches", "card.read", "card batches", query=Page, paged=True,
              response=Batch, item="batch", tag="cards")
async def list_batches(ctx: Any, query: Page) -> Any:
    rows = await ctx.run(cards.thd_list_batches)
    return [cards.batch_dict(b) for b in rows[query.offset:query.offset + query.limit + 1]]


@API.endpoint("POST", "/cards/batches", "card.write",
              "create a batch of cards; the PINs are in this answer only", body=BatchAdd,
              response=NewBatch, status=201, item="batch", tag="cards")
async def add_batch(ctx: Any, body: BatchAdd) -> Any:
    value = parse_amount(body.value, ctx.currency, what="value")
    created = await ctx.run(cards.thd_create_batch, body.name, body.count, value, ctx.currency,
                            expires_at=_expires(body.expires), plan=body.plan,
                            validity_days=body.validity, reseller=body.reseller,
                            pin_digits=ctx.config.cards.pin_digits)
    return {**cards.batch_dict(created.batch),
            "cards": [{"serial": c.serial, "pin": c.pin} for c in created.cards]}


@API.endpoint("GET", "/cards", "card.read", "cards, by batch and status", query=CardQuery,
              paged=True, response=Card, item="card", tag="cards")
async def list_cards(ctx: Any, query: CardQuery) -> Any:
    rows = await ctx.run(cards.thd_list_cards, query.batch, query.status,
                         query.offset + query.limit + 1)
    return [cards.card_dict(c) for c in rows[query.offset:]]


@API.endpoint("GET", "/cards/{serial}", "card.read", "one card", response=Card, item="card",
              tag="cards")
async def show_card(ctx: Any, serial: str) -> Any:
    return cards.card_dict(await ctx.run(cards.thd_show_card, serial))


async def _block(ctx: Any, body: Block, blocked: bool) -> Any:
    if bool(body.serials) == bool(body.batch):
        raise InvalidInput("give serials or batch, not both and not neither", field="serials")
    if body.batch:
        n = await ctx.run(cards.thd_block_batch, body.batch, blocked, body.reason)
        return {"batch": body.batch, "cards": n}
    done = await ctx.run(cards.thd_set_blocked, body.serials, blocked, body.reason)
    return {"cards": len(done), "serials": [c.serial for c in done]}


@API.endpoint("POST", "/cards/block", "card.write", "block unused cards (by serial or batch)",
              body=Block, response=m.Obj, item="cards", tag="cards")
async def block_cards(ctx: Any, body: Block) -> Any:
    return await _block(ctx, body, True)


@API.endpoint("POST", "/cards/unblock", "card.write", "unblock cards (by serial or batch)",
              body=Block, response=m.Obj, item="cards", tag="cards")
async def unblock_cards(ctx: Any, body: Block) -> Any:
    return await _block(ctx, body, False)


@API.endpoint("POST", "/cards/{serial}/activate", "card.activate",
              "credit a card to a subscriber (a card credits once; wrong PINs lock out)",
              body=Activate, response=Activation, idempotent=True, item="card_activation",
              tag="cards")
async def activate_card(ctx: Any, serial: str, body: Activate) -> Any:
    if ctx.idempotency_key is not None:
        from webadmin.api.idempotent import once_refusable

        return await once_refusable(ctx, body, _activation, cards.thd_activate, serial,
                                    body.pin, body.login, ctx.currency, ctx.api.card_policy)
    return _activation(await ctx.run(cards.thd_activate, serial, body.pin, body.login,
                                     ctx.currency, ctx.api.card_policy))


def _activation(result: Any) -> Any:
    result.raise_if_refused()
    currency = result.payment.account.currency
    acct = result.payment.account
    return {"serial": result.serial, "login": result.login,
            "credited": format_amount(result.payment.entry.amount, currency),
            "currency": currency, "balance": format_amount(acct.balance, currency),
            "status": acct.status, "unblocked": result.payment.unblocked}


# -- statements and documents ---------------------------------------------------------------


class Statement(m.Out):
    id: int
    login: str
    period: str
    currency: str
    opening: m.Amount
    closing: m.Amount
    invoice: str | None


class Document(m.Out):
    id: int
    kind: str
    login: str | None
    title: str
    statement_id: int | None
    invoice: str | None


class StatementQuery(Page):
    login: str | None = None
    period: str | None = Field(None, description="YYYY-MM")


class DocumentQuery(Page):
    login: str | None = None


class FileQuery(Query):
    format: Literal["html", "pdf"] = "html"


class Issue(Body):
    period: str | None = Field(None, description="YYYY-MM (default: the last closed month)")
    login: str | None = Field(None, description="only this subscriber")


@API.endpoint("GET", "/statements", "document.read", "issued statements, newest first",
              query=StatementQuery, paged=True, response=Statement, item="statement",
              tag="statements")
async def list_statements(ctx: Any, query: StatementQuery) -> Any:
    rows = await ctx.run(documents.thd_list_statements, query.login, query.period,
                         query.offset + query.limit + 1)
    return [documents.statement_dict(s) for s in rows[query.offset:]]


@API.endpoint("GET", "/statements/{id}", "document.read", "one statement with its lines",
              response=Statement, item="statement", tag="statements")
async def show_statement(ctx: Any, id: str) -> Any:
    return documents.statement_dict(await ctx.run(documents.thd_get_statement, _int(id)))


@API.endpoint("POST", "/statements/issue", "statement.issue",
              "issue a closed month's statements now (those not yet issued)", body=Issue,
              response=m.Obj, item="statement_issue", tag="statements")
async def issue_statements(ctx: Any, body: Issue) -> Any:
    from billing.statements import StatementSettings, check_period, closed_period

    settings = StatementSettings.from_config(ctx.config)
    period = check_period(body.period) if body.period else closed_period(datetime.now(UTC),
                                                                        settings)
    only = await ctx.run(documents.thd_accounts_of, body.login) if body.login else None
    cursor = issued = invoices = 0
    while True:
        r = await ctx.run(documents.thd_issue_batch, settings, period, cursor, only)
        issued += r.statements
        invoices += r.invoices
        cursor = r.last_account_id
        if r.done:
            break
    return {"period": period, "statements": issued, "invoices": invoices}


@API.endpoint("GET", "/documents", "document.read", "issued documents, newest first",
              query=DocumentQuery, paged=True, response=Document, item="document",
              tag="documents")
async def list_documents(ctx: Any, query: DocumentQuery) -> Any:
    rows = await ctx.run(documents.thd_list_documents, query.login,
                         query.offset + query.limit + 1)
    return [documents.document_dict(d) for d in rows[query.offset:]]


def _int(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise InvalidInput(f"id {text!r} is not a number", field="id")
    return int(text)


@API.endpoint("GET", "/documents/{id}", "document.read",
              "a document's record, its files checked against their hashes",
              response=Document, item="document", tag="documents")
async def show_document(ctx: Any, id: str) -> Any:
    from billing.documents import DocumentRenderer

    d = await ctx.run(documents.thd_get_document, _int(id))
    renderer = DocumentRenderer(ctx.config)
    problems = []
    for fmt in ("html", "pdf") if d.pdf_path else ("html",):
        try:
            await ctx.in_thread(renderer.read, d, fmt)
        except Exception as exc:
            problems.append(str(exc))
    return {**documents.document_dict(d), "verified": not problems,
            "problems": problems or None}


@API.endpoint("GET", "/documents/{id}/file", "document.read",
              "the stored document file (html or pdf), verified", query=FileQuery, raw=True,
              tag="documents")
async def document_file(ctx: Any, id: str, query: FileQuery) -> Any:
    from billing.documents import DocumentRenderer

    d = await ctx.run(documents.thd_get_document, _int(id))
    if query.format == "pdf" and not d.pdf_path:
        raise InvalidInput(f"document {d.id} has no PDF", field="format")
    content = await ctx.in_thread(DocumentRenderer(ctx.config).read, d, query.format)
    ctype = "application/pdf" if query.format == "pdf" else "text/html; charset=utf-8"
    return Raw(content, ctype, f"document-{d.id}.{query.format}")


# -- exports --------------------------------------------------------------------------------


class ExportQuery(Query):
    start: str = Field(alias="from", description="first day, e.g. 2024-05-01 "
                                                 "([statements] time_zone unless an offset)")
    end: str = Field(alias="to", description="day after the last (exclusive)")
    format: Literal["csv", "xml"] = "csv"
    columns: str | None = Field(None, description="CSV columns in order, comma-separated")
    delimiter: str | None = Field(None, min_length=1, max_length=1)


def _when(text: str, zone: ZoneInfo, what: str) -> datetime:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a date like 2024-05-01", field=what) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=zone)


@API.endpoint("GET", "/exports/{kind}", "export.read",
              "payments, charges, invoices or balances of a period, as CSV or XML",
              query=ExportQuery, raw=True, tag="exports")
async def export(ctx: Any, kind: str, query: ExportQuery) -> Any:
    from billing.exports import KINDS, to_csv, to_xml

    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
    cfg = ctx.config
    zone = ZoneInfo(cfg.statements.time_zone)
    start, end = _when(query.start, zone, "from"), _when(query.end, zone, "to")
    data = await ctx.run(documents.thd_export, kind, start, end)
    if query.format == "xml":
        return Raw(to_xml(data, ctx.currency).encode(), "application/xml; charset=utf-8",
                   f"{kind}.xml")
    columns = [c.strip() for c in query.columns.split(",")] if query.columns \
        else list(getattr(cfg.export, kind))
    delimiter = query.delimiter if query.delimiter is not None else cfg.export.delimiter
    return Raw(to_csv(data, ctx.currency, columns, delimiter).encode(),
               "text/csv; charset=utf-8", f"{kind}.csv")

