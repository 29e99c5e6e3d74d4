"""radbill statement|document|export: statements and invoices, their documents, interchange.

    radbill statement issue [--period YYYY-MM] [--login L]   on demand (else the loop does it)
    radbill statement list [--login L] [--period P] | show ID
    radbill document list [--login L] | show ID | render STATEMENT_ID|--pending
    radbill document get ID [--format html|pdf] [--output FILE]   (checked against its SHA-256)
    radbill document reissue ID --reason TEXT                     a new document replacing ID
    radbill export payments|charges|invoices|balances --from DATE --to DATE
                   [--out csv|xml] [--columns a,b] [--delimiter ';']
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from billing.documents import (
    DocumentRenderer,
    DocumentView,
    render_statement,
    thd_get_document,
    thd_list_documents,
    thd_pending_statements,
)
from billing.exports import KINDS, thd_export, to_csv, to_xml
from billing.money import check_currency, format_amount
from billing.statements import (
    StatementSettings,
    StatementView,
    check_period,
    closed_period,
    thd_get_statement,
    thd_issue_statements,
    thd_list_statements,
)
from core.errors import InvalidInput
from radbill.cli.context import CliContext
from radbill.cli.output import add_out_argument, emit_list, emit_object

STATEMENT_COLUMNS = ["id", "login", "period", "opening", "closing", "invoice", "document_id"]
DOCUMENT_COLUMNS = ["id", "kind", "login", "title", "statement_id", "replaces_id", "created_at"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from radbill.cli import common_parent

    cp = [common_parent()]
    st = sub.add_parser("statement", help="monthly statements and invoices", parents=cp)
    ssub = st.add_subparsers(dest="statement_command", metavar="ACTION", required=True)
    issue = ssub.add_parser("issue", help="issue a closed month's statements now", parents=cp)
    issue.add_argument("--period", help="YYYY-MM (default: the last closed month)")
    issue.add_argument("--login", help="only this subscriber")
    issue.set_defaults(func=cmd_statement_issue)
    lst = ssub.add_parser("list", help="issued statements", parents=cp)
    lst.add_argument("--login")
    lst.add_argument("--period")
    lst.add_argument("--limit", type=int, default=100)
    add_out_argument(lst)
    lst.set_defaults(func=cmd_statement_list)
    show = ssub.add_parser("show", help="one statement with its lines", parents=cp)
    show.add_argument("id", type=int)
    add_out_argument(show)
    show.set_defaults(func=cmd_statement_show)

    doc = sub.add_parser("document", help="issued documents (statements, invoices)", parents=cp)
    dsub = doc.add_subparsers(dest="document_command", metavar="ACTION", required=True)
    dl = dsub.add_parser("list", help="documents, newest first", parents=cp)
    dl.add_argument("--login")
    dl.add_argument("--limit", type=int, default=100)
    add_out_argument(dl)
    dl.set_defaults(func=cmd_document_list)
    ds = dsub.add_parser("show", help="a document's record and file hashes", parents=cp)
    ds.add_argument("id", type=int)
    add_out_argument(ds)
    ds.set_defaults(func=cmd_document_show)
    dr = dsub.add_parser("render", help="render a statement's document now", parents=cp)
    dr.add_argument("statement_id", type=int, nargs="?")
    dr.add_argument("--pending", action="store_true", help="every statement without one")
    dr.set_defaults(func=cmd_document_render)
    dg = dsub.add_parser("get", help="a stored document file, verified", parents=cp)
    dg.add_argument("id", type=int)
    dg.add_argument("--format", choices=["html", "pdf"], default="html")
    dg.add_argument("--output", metavar="FILE", help="default: standard output")
    dg.set_defaults(func=cmd_document_get)
    rei = dsub.add_parser("reissue", help="a new document that replaces one", parents=cp)
    rei.add_argument("id", type=int)
    rei.add_argument("--reason", required=True)
    rei.set_defaults(func=cmd_document_reissue)

    exp = sub.add_parser("export", help="payments, charges, invoices, balances for a period",
                         parents=cp)
    exp.add_argument("kind", choices=KINDS)
    exp.add_argument("--from", dest="start", required=True, metavar="DATE",
                     help="YYYY-MM-DD or ISO time (inclusive)")
    exp.add_argument("--to", dest="end", required=True, metavar="DATE", help="(exclusive)")
    exp.add_argument("--out", choices=["csv", "xml"], default="csv")
    exp.add_argument("--columns", help="CSV columns in order ([export] default: all)")
    exp.add_argument("--delimiter", help="CSV separator ([export] delimiter)")
    exp.set_defaults(func=cmd_export)


def _statement_dict(s: StatementView) -> dict[str, Any]:
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


def _doc_dict(d: DocumentView) -> dict[str, Any]:
    return {"id": d.id, "kind": d.kind, "login": d.login, "title": d.title,
            "statement_id": d.statement_id, "invoice": d.invoice_number,
            "replaces_id": d.replaces_id, "reason": d.reason or None,
            "html_path": d.html_path, "html_sha256": d.html_sha256, "pdf_path": d.pdf_path,
            "pdf_sha256": d.pdf_sha256, "created_at": d.created_at}


def cmd_statement_issue(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from billing.accounts import find_subscriber
    from billing.models import BillingAccount

    ctx = CliContext(args)
    try:
        settings = StatementSettings.from_config(ctx.config)
        period = check_period(args.period) if args.period else closed_period(
            datetime.now(UTC), settings)
        only = None
        if args.login:
            def account_of(s: Any) -> list[int]:
                sub = find_subscriber(s, args.login)
                return list(s.scalars(select(BillingAccount.id)
                                      .where(BillingAccount.subscriber_id == sub.id)))
            only = ctx.run(account_of)
        cursor = statements = invoices = 0
        while True:
            r = ctx.run(thd_issue_statements, settings, period, cursor, None, only)
            statements += r.statements
            invoices += r.invoices
            cursor = r.last_account_id
            if r.done:
                break
    finally:
        ctx.close()
    print(f"period {period}: {statements} statements and {invoices} invoices issued"
          + ("" if statements else " (every account already had its statement)"))
    return 0


def cmd_statement_list(args: argparse.Namespace) -> int:
    ctx = CliContext(args)
    try:
        rows = ctx.run(thd_list_statements, args.login, args.period, args.limit)
    finally:
        ctx.close()
    emit_list([_statement_dict(s) for s in rows], STATEMENT_COLUMNS, args.out,
              root="statements", item="statement")
    return 0


def cmd_statement_show(args: argparse.Namespace) -> int:
    ctx = CliContext(args)
    try:
        s = ctx.run(thd_get_statement, args.id)
    finally:
        ctx.close()
    emit_object(_statement_dict(s), args.out, item="statement")
    return 0


def cmd_document_list(args: argparse.Namespace) -> int:
    ctx = CliContext(args)
    try:
        rows = ctx.run(thd_list_documents, args.login, args.limit)
    finally:
        ctx.close()
    emit_list([_doc_dict(d) for d in rows], DOCUMENT_COLUMNS, args.out, root="documents",
              item="document")
    return 0


def cmd_document_show(args: argparse.Namespace) -> int:
    ctx = CliContext(args)
    try:
        d = ctx.run(thd_get_document, args.id)
        renderer = DocumentRenderer(ctx.config)
    finally:
        ctx.close()
    out = _doc_dict(d)
    problems = []
    for fmt in ("html", "pdf") if d.pdf_path else ("html",):
        try:
            renderer.read(d, fmt)
        except Exception as exc:
            problems.append(str(exc))
    out["verified"] = not problems
    out["problems"] = problems or None
    emit_object(out, args.out, item="document")
    return 0 if not problems else 1


def cmd_document_render(args: argparse.Namespace) -> int:
    if (args.statement_id is None) == (not args.pending):
        raise InvalidInput("give a STATEMENT_ID or --pending")
    ctx = CliContext(args)
    try:
        renderer = DocumentRenderer(ctx.config)
        ids = [args.statement_id] if args.statement_id else ctx.run(
            thd_pending_statements, 1_000_000)
        made = 0
        for sid in ids:
            doc = render_statement(renderer, ctx.run, sid)
            if doc is None:
                print(f"statement {sid}: already has its document (documents are immutable; "
                      "use 'document reissue')")
            else:
                made += 1
                print(f"statement {sid}: document {doc}")
    finally:
        ctx.close()
    if args.pending:
        print(f"{made} documents rendered")
    return 0


def cmd_document_get(args: argparse.Namespace) -> int:
    ctx = CliContext(args)
    try:
        d = ctx.run(thd_get_document, args.id)
        content = DocumentRenderer(ctx.config).read(d, args.format)
    finally:
        ctx.close()
    if args.output:
        Path(args.output).write_bytes(content)
    else:
        sys.stdout.buffer.write(content)
    return 0


def cmd_document_reissue(args: argparse.Namespace) -> int:
    ctx = CliContext(args)
    try:
        old = ctx.run(thd_get_document, args.id)
        if old.statement_id is None:
            raise InvalidInput(f"document {args.id} has no statement to render again")
        doc = render_statement(DocumentRenderer(ctx.config), ctx.run, old.statement_id,
                               replaces_id=old.id, reason=args.reason)
    finally:
        ctx.close()
    print(f"document {doc} issued, replacing document {old.id}")
    return 0


def _when(text: str, zone: ZoneInfo, what: str) -> datetime:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a date like 2024-05-01") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=zone)


def cmd_export(args: argparse.Namespace) -> int:
    ctx = CliContext(args)
    try:
        cfg = ctx.config
        zone = ZoneInfo(cfg.statements.time_zone)
        start, end = _when(args.start, zone, "--from"), _when(args.end, zone, "--to")
        currency = check_currency(cfg.billing.currency)
        export = ctx.run(thd_export, args.kind, start, end)
    finally:
        ctx.close()
    if args.out == "xml":
        sys.stdout.write(to_xml(export, currency))
    else:
        columns = [c.strip() for c in args.columns.split(",")] if args.columns \
            else list(getattr(cfg.export, args.kind))
        delimiter = args.delimiter if args.delimiter is not None else cfg.export.delimiter
        if len(delimiter) != 1:
            raise InvalidInput("--delimiter must be one character")
        sys.stdout.write(to_csv(export, currency, columns, delimiter))
    return 0
