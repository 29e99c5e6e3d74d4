"""Billing commands: account, ledger, payment, rate, rates, billing run.

    radbill account show LOGIN            balance, held, credit limit, last charges, events
    radbill account limit LOGIN AMOUNT|plan
    radbill ledger LOGIN [--limit N]      the account's entries, newest first
    radbill ledger check                  cached balance == SUM(entries) for every account
    radbill payment add LOGIN AMOUNT [--ref EXT-ID] [--kind payment|refund|adjustment]
    radbill payment import FILE [--skip-bad]   bank/gateway CSV, idempotent by reference
    radbill rate --subscriber L --duration S [--octets-in N] [--octets-out N]
                 [--called NUMBER] [--at TIME]     what it would cost (dry run)
    radbill rates import PLAN FILE.csv    voice rates: prefix,rate,connect_fee,minimum,increment
    radbill billing run                   one pass of the billing loop (cron-less setups)
"""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from billing.errors import BillingError, LedgerMismatch
from billing.models import EntryKind
from billing.money import check_currency, format_amount, parse_amount
from billing.tariffs import parse_rates_csv
from core.errors import InvalidInput
from radbill.cli.context import CliContext, run_as, run_with_dbpool
from radbill.cli.output import add_out_argument, emit_list, emit_object
from webadmin.service import catalog, money

LEDGER_COLUMNS = ["id", "created_at", "kind", "amount", "reference", "source_id",
                  "description"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from radbill.cli import common_parent

    cp = [common_parent()]
    acc = sub.add_parser("account", help="billing accounts", parents=cp)
    asub = acc.add_subparsers(dest="account_command", metavar="ACTION", required=True)
    show = asub.add_parser("show", help="balance, held money, limit, last charges",
                           parents=cp)
    show.add_argument("login")
    show.add_argument("--last", type=int, default=10, help="how many charges and events")
    add_out_argument(show)
    show.set_defaults(func=cmd_account_show)
    lim = asub.add_parser("limit", help="set an account's credit limit ('plan' = the plan's)",
                          parents=cp)
    lim.add_argument("login")
    lim.add_argument("amount", help="e.g. 50.00, or 'plan'")
    lim.set_defaults(func=cmd_account_limit)

    led = sub.add_parser("ledger", help="an account's ledger, or 'ledger check'", parents=cp)
    led.add_argument("target", nargs="?", help="LOGIN, or 'check'")
    led.add_argument("--login", help="the login (for a subscriber named 'check')")
    led.add_argument("--limit", type=int, default=50)
    add_out_argument(led)
    led.set_defaults(func=cmd_ledger)

    pay = sub.add_parser("payment", help="payments, refunds, adjustments", parents=cp)
    psub = pay.add_subparsers(dest="payment_command", metavar="ACTION", required=True)
    add = psub.add_parser("add", help="post a payment (idempotent with --ref)", parents=cp)
    add.add_argument("login")
    add.add_argument("amount", help="e.g. 10.00 (an adjustment may be negative)")
    add.add_argument("--ref", help="external reference; posting it again changes nothing")
    add.add_argument("--kind", choices=["payment", "refund", "adjustment"], default="payment")
    add.add_argument("--description", default="")
    add_out_argument(add)
    add.set_defaults(func=cmd_payment_add)
    from radbill.cli.payment_import import register_import

    register_import(psub, cp)

    rate = sub.add_parser("rate", help="what a session or call would cost (dry run)",
                          parents=cp)
    who = rate.add_mutually_exclusive_group(required=True)
    who.add_argument("--subscriber", metavar="LOGIN")
    who.add_argument("--plan", metavar="NAME")
    rate.add_argument("--duration", type=int, default=0, metavar="SECONDS")
    rate.add_argument("--octets-in", type=int, default=0, metavar="N")
    rate.add_argument("--octets-out", type=int, default=0, metavar="N")
    rate.add_argument("--called", metavar="NUMBER", help="rate a call to this number")
    rate.add_argument("--at", metavar="TIME", help="start time, ISO 8601 (default now)")
    add_out_argument(rate)
    rate.set_defaults(func=cmd_rate)

    rates = sub.add_parser("rates", help="voice rate tables", parents=cp)
    rsub = rates.add_subparsers(dest="rates_command", metavar="ACTION", required=True)
    imp = rsub.add_parser("import", help="replace a plan's voice rates from CSV", parents=cp)
    imp.add_argument("plan")
    imp.add_argument("file", help="prefix,rate,connect_fee,minimum,increment[,description]")
    imp.set_defaults(func=cmd_rates_import)

    bil = sub.add_parser("billing", help="the billing loop", parents=cp)
    bsub = bil.add_subparsers(dest="billing_command", metavar="ACTION", required=True)
    run = bsub.add_parser("run", help="one pass: rate usage, fees, holds, cut-offs",
                          parents=cp)
    run.add_argument("--batch", type=int, default=5000, help=argparse.SUPPRESS)
    add_out_argument(run)
    run.set_defaults(func=cmd_billing_run)


def _currency(args: argparse.Namespace) -> tuple[CliContext, str]:
    ctx = CliContext(args)
    return ctx, check_currency(ctx.config.billing.currency)


_account_dict = money.account_dict


def cmd_account_show(args: argparse.Namespace) -> int:
    ctx, currency = _currency(args)
    try:
        detail = ctx.run_as(money.thd_account, args.login, currency, args.last)
        acct, charges, events = detail.account, detail.charges, detail.events
    finally:
        ctx.close()
    out = _account_dict(acct)
    out["last_charges"] = [f"{e.created_at:%Y-%m-%d %H:%M:%S} {e.kind} "
                           f"{format_amount(e.amount, acct.currency)} {e.description}"
                           for e in charges]
    out["events"] = [f"{e.created_at:%Y-%m-%d %H:%M:%S} {e.kind} {e.detail}" for e in events]
    if args.out == "text":
        sections = {"last charges": out.pop("last_charges"), "events": out.pop("events")}
        emit_object(out, "text", item="account")
        for title, lines in sections.items():
            print(f"{title}:")
            for line in lines or ["-"]:
                print(f"  {line}")
        return 0
    emit_object(out, args.out, item="account")
    return 0


def cmd_account_limit(args: argparse.Namespace) -> int:
    ctx, currency = _currency(args)
    try:
        limit = None if args.amount.strip().lower() == "plan" else parse_amount(
            args.amount, currency, what="credit limit")
        acct = ctx.run_as(money.thd_set_credit_limit, args.login, limit, currency)
    finally:
        ctx.close()
    print(f"{acct.login}: credit limit {format_amount(acct.credit_limit, currency)}, "
          f"status {acct.status}")
    return 0


def cmd_ledger(args: argparse.Namespace) -> int:
    if args.login is None and args.target == "check":
        return cmd_ledger_check(args)
    login = args.login or args.target
    if not login:
        raise InvalidInput("give a LOGIN, or 'check'")
    ctx, currency = _currency(args)
    try:
        acct, entries = ctx.run_as(money.thd_ledger, login, currency, args.limit)
    finally:
        ctx.close()
    rows = [{"id": e.id, "created_at": e.created_at, "kind": e.kind,
             "amount": format_amount(e.amount, acct.currency), "reference": e.reference,
             "source_id": e.source_id, "description": e.description} for e in entries]
    emit_list(rows, LEDGER_COLUMNS, args.out, root="ledger", item="entry")
    if args.out == "text":
        print(f"balance {format_amount(acct.balance, acct.currency)} {acct.currency}")
    return 0


def cmd_ledger_check(args: argparse.Namespace) -> int:
    result = run_as(args, money.thd_ledger_check)
    out = {"accounts": result.accounts, "entries": result.entries,
           "mismatches": [{"account_id": m.account_id, "subscriber_id": m.subscriber_id,
                           "cached_balance": m.cached, "ledger_sum": m.ledger_sum}
                          for m in result.mismatches],
           "ok": not result.mismatches}
    emit_object(out, args.out, item="ledger_check")
    if result.mismatches:
        raise LedgerMismatch(f"{len(result.mismatches)} account(s) whose balance differs "
                             "from the sum of their ledger entries")
    return 0


def cmd_payment_add(args: argparse.Namespace) -> int:
    ctx, currency = _currency(args)
    try:
        kind = EntryKind(args.kind)
        amount = parse_amount(args.amount, currency, allow_negative=kind is EntryKind.ADJUSTMENT)
        result = ctx.run_as(money.thd_add_payment, args.login, amount, currency, args.ref,
                            kind.value, args.description)
    finally:
        ctx.close()
    out = {"entry_id": result.entry.id, "recorded": result.created,
           "already_recorded": not result.created, "unblocked": result.unblocked,
           **_account_dict(result.account)}
    if args.out == "text":
        what = "recorded" if result.created else "already recorded (same --ref), nothing changed"
        print(f"{args.kind} {format_amount(abs(result.entry.amount), currency)} {currency} "
              f"for {args.login} {what}; balance {out['balance']}, status {out['status']}"
              + ("; unblocked" if result.unblocked else ""))
    else:
        emit_object(out, args.out, item="payment")
    return 0


def _parse_time(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"--at {text!r} is not an ISO 8601 time like "
                           "2024-05-01T21:30:00+02:00") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def cmd_rate(args: argparse.Namespace) -> int:
    for name in ("duration", "octets_in", "octets_out"):
        if getattr(args, name) < 0:
            raise InvalidInput(f"--{name.replace('_', '-')} must not be negative")
    ctx, currency = _currency(args)
    try:
        quote = ctx.run_as(money.thd_rate, args.subscriber, args.plan, args.duration,
                           args.octets_in, args.octets_out, args.called, _parse_time(args.at),
                           currency)
    finally:
        ctx.close()
    if args.out == "text" and "lines" in quote:
        lines = quote.pop("lines")
        emit_object(quote, "text", item="quote")
        emit_list(lines, ["band", "seconds", "billed_seconds", "octets_in", "octets_out",
                          "cost"], "text", root="lines", item="line")
        return 0
    emit_object(quote, args.out, item="quote")
    return 0


def cmd_rates_import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: {getattr(exc, 'strerror', None) or exc}") from None
    rates = parse_rates_csv(text)
    count = run_as(args, catalog.thd_import_rates, args.plan, rates)
    print(f"plan {args.plan!r}: {count} voice rates loaded")
    return 0


def cmd_billing_run(args: argparse.Namespace) -> int:
    """One pass, on a reactor of its own so Disconnect-Requests can go out and be answered."""
    from core.config import load_config
    from core.logs import setup_logging

    config = load_config(args.config)
    if not logging.getLogger().handlers:  # an embedding process keeps its own logging
        setup_logging(config.server.log_level, config.logging.scheduler)

    async def main(reactor: Any, dbpool: Any) -> dict[str, Any]:
        from aaa.billing_hook import make_billing_loop

        loop, coa = make_billing_loop(config, dbpool, reactor, batch=args.batch)
        try:
            result = await loop.run_once()
            return result.as_dict()  # type: ignore[no-any-return]
        finally:
            coa.close()

    report = run_with_dbpool(config, main)
    emit_object(report, args.out, item="billing_pass")
    return 0


__all__ = ["BillingError", "register"]
