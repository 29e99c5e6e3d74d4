"""radbill card ...: prepaid card batches, their export, block/unblock, activation.

    radbill card batch NAME --count N --value AMOUNT [--expires DATE] [--plan PLAN]
                       [--validity DAYS] [--pins FILE]
    radbill card export BATCH [--out csv|json|xml]   serials for printing (PINs: see below)
    radbill card list [--batch B] [--status S] | show SERIAL
    radbill card block|unblock SERIAL... [--reason TEXT]  (or --batch B for a whole batch)
    radbill card activate LOGIN SERIAL PIN      ('-' as PIN reads it from standard input)

``card batch`` is the only moment a PIN exists outside the card: it writes
the batch as CSV (serial,pin,value,currency,expires) to ``--pins FILE``
(created 0600, refused if it exists) or to standard output. radbill keeps
only the PINs' hashes, so ``card export`` lists serials and status only.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import io
import os
import sys
from datetime import UTC, datetime, time
from typing import Any, TextIO

from billing.cards import (
    BatchView,
    CardView,
    thd_activate,
    thd_block_batch,
    thd_create_batch,
    thd_list_batches,
    thd_list_cards,
    thd_set_blocked,
    thd_show_card,
)
from billing.money import check_currency, format_amount, parse_amount
from core.errors import InvalidInput
from radbill.cli.context import CliContext, stdin_value
from radbill.cli.output import FORMATS, add_out_argument, emit_list, emit_object

CARD_COLUMNS = ["serial", "batch", "value", "status", "plan", "expires_at", "login",
                "activated_at", "activated_via", "valid_until"]
BATCH_COLUMNS = ["name", "count", "value", "currency", "plan", "validity_days", "expires_at",
                 "used", "blocked", "created_at"]
PIN_COLUMNS = ["serial", "pin", "value", "currency", "expires_at"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from radbill.cli import common_parent

    card = sub.add_parser("card", help="prepaid cards and hotspot vouchers",
                          parents=[common_parent()])
    csub = card.add_subparsers(dest="card_command", metavar="ACTION", required=True)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        return csub.add_parser(name, help=help_text, parents=[common_parent()])

    batch = action("batch", "generate a batch of cards (PINs are shown this once)")
    batch.add_argument("name")
    batch.add_argument("--count", type=int, required=True)
    batch.add_argument("--value", required=True, help="credit per card, e.g. 10.00")
    batch.add_argument("--expires", metavar="DATE", help="last day of use, YYYY-MM-DD (UTC)")
    batch.add_argument("--plan", metavar="PLAN",
                       help="hotspot vouchers: the plan a card's own subscriber gets")
    batch.add_argument("--validity", type=int, metavar="DAYS",
                       help="a voucher subscriber lives this long from its first login")
    batch.add_argument("--reseller", metavar="NAME",
                       help="the reseller owning the batch (only its subscribers may use it)")
    batch.add_argument("--pins", metavar="FILE",
                       help="write serials and PINs here (mode 0600) instead of stdout")
    batch.set_defaults(func=cmd_batch)

    exp = action("export", "a batch's serials and status, for printing and records")
    exp.add_argument("batch")
    exp.add_argument("--out", choices=["csv", *FORMATS], default="csv")
    exp.set_defaults(func=cmd_export)

    lst = action("list", "card batches, or the cards of one batch")
    lst.add_argument("--batch")
    lst.add_argument("--status", choices=["active", "blocked", "used"])
    lst.add_argument("--limit", type=int, default=1000)
    add_out_argument(lst)
    lst.set_defaults(func=cmd_list)

    show = action("show", "one card")
    show.add_argument("serial")
    add_out_argument(show)
    show.set_defaults(func=cmd_show)

    for name, blocked in (("block", True), ("unblock", False)):
        p = action(name, f"{name} unused cards")
        p.add_argument("serials", nargs="*", metavar="SERIAL")
        p.add_argument("--batch", help=f"{name} every unused card of this batch")
        p.add_argument("--reason", default="")
        p.set_defaults(func=cmd_block, blocked=blocked)

    act = action("activate", "credit a card to a subscriber's account")
    act.add_argument("login")
    act.add_argument("serial")
    act.add_argument("pin", help="the card's PIN; '-' reads it from standard input")
    add_out_argument(act)
    act.set_defaults(func=cmd_activate)


def _date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise InvalidInput(f"--expires {text!r} is not a date like 2025-12-31") from None
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def _batch_dict(b: BatchView) -> dict[str, Any]:
    return {"name": b.name, "count": b.count, "value": format_amount(b.value, b.currency),
            "currency": b.currency, "plan": b.plan, "validity_days": b.validity_days,
            "expires_at": b.expires_at, "used": b.used, "blocked": b.blocked,
            "created_at": b.created_at}


def _card_dict(c: CardView) -> dict[str, Any]:
    return {"serial": c.serial, "batch": c.batch, "value": format_amount(c.value, c.currency),
            "currency": c.currency, "status": c.status,
            "status_reason": c.status_reason or None, "plan": c.plan,
            "expires_at": c.expires_at, "login": c.login, "activated_at": c.activated_at,
            "activated_via": c.activated_via, "activated_from": c.activated_from,
            "valid_until": c.valid_until}


def _write_csv(rows: list[dict[str, Any]], columns: list[str], out: TextIO) -> None:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(["" if r.get(c) is None else (r[c].isoformat() if isinstance(r[c], datetime)
                                                 else r[c]) for c in columns])


def cmd_batch(args: argparse.Namespace) -> int:
    ctx = CliContext(args)
    try:
        currency = check_currency(ctx.config.billing.currency)
        value = parse_amount(args.value, currency, what="--value")
        fh: TextIO | None = None
        if args.pins:
            try:
                fd = os.open(args.pins, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except OSError as exc:
                raise InvalidInput(f"--pins {args.pins}: {exc.strerror}") from None
            fh = os.fdopen(fd, "w", encoding="utf-8", newline="")
        try:
            reseller_id = None
            if args.reseller:
                from sqlalchemy import select

                from core.db.models import Reseller

                reseller_id = ctx.run(lambda s: s.scalar(select(Reseller.id).where(
                    Reseller.name == args.reseller)))
                if reseller_id is None:
                    raise InvalidInput(f"--reseller {args.reseller!r}: no such reseller")
            created = ctx.run(thd_create_batch, args.name, args.count, value, currency,
                              reseller_id=reseller_id,
                              expires_at=_date(args.expires), plan=args.plan,
                              validity_days=args.validity,
                              pin_digits=ctx.config.cards.pin_digits,
                              created_by=f"cli:{getpass.getuser()}")
        except BaseException:
            if fh is not None:
                fh.close()
                os.unlink(args.pins)
            raise
    finally:
        ctx.close()
    b = created.batch
    rows = [{"serial": c.serial, "pin": c.pin, "value": format_amount(b.value, b.currency),
             "currency": b.currency, "expires_at": b.expires_at} for c in created.cards]
    if fh is not None:
        with fh:
            _write_csv(rows, PIN_COLUMNS, fh)
        print(f"batch {b.name}: {b.count} cards of {format_amount(b.value, b.currency)} "
              f"{b.currency}; serials and PINs in {args.pins} (shown only this once)")
    else:
        _write_csv(rows, PIN_COLUMNS, sys.stdout)
        print(f"batch {b.name}: {b.count} cards; these PINs are shown only this once",
              file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    ctx = CliContext(args)
    try:
        cards = ctx.run(thd_list_cards, args.batch, None, 10_000_000)
    finally:
        ctx.close()
    rows = [_card_dict(c) for c in cards]
    if args.out == "csv":
        buf = io.StringIO()
        _write_csv(rows, CARD_COLUMNS, buf)
        sys.stdout.write(buf.getvalue())
    else:
        emit_list(rows, CARD_COLUMNS, args.out, root="cards", item="card")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    ctx = CliContext(args)
    try:
        if args.batch is None and args.status is None:
            batches = ctx.run(thd_list_batches)
            emit_list([_batch_dict(b) for b in batches], BATCH_COLUMNS, args.out,
                      root="card_batches", item="batch")
            return 0
        cards = ctx.run(thd_list_cards, args.batch, args.status, args.limit)
    finally:
        ctx.close()
    emit_list([_card_dict(c) for c in cards], CARD_COLUMNS, args.out, root="cards",
              item="card")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    ctx = CliContext(args)
    try:
        card = ctx.run(thd_show_card, args.serial)
    finally:
        ctx.close()
    emit_object(_card_dict(card), args.out, item="card")
    return 0


def cmd_block(args: argparse.Namespace) -> int:
    if bool(args.serials) == bool(args.batch):
        raise InvalidInput("give SERIAL... or --batch, not both and not neither")
    verb = "blocked" if args.blocked else "unblocked"
    ctx = CliContext(args)
    try:
        if args.batch:
            n = ctx.run(thd_block_batch, args.batch, args.blocked, args.reason)
            print(f"batch {args.batch}: {n} cards {verb}")
            return 0
        cards = ctx.run(thd_set_blocked, args.serials, args.blocked, args.reason)
    finally:
        ctx.close()
    for c in cards:
        print(f"card {c.serial} {verb}")
    return 0


def cmd_activate(args: argparse.Namespace) -> int:
    from billing.cards import card_policy

    pin = stdin_value(args.pin, "PIN")
    ctx = CliContext(args)
    try:
        currency = check_currency(ctx.config.billing.currency)
        result = ctx.run(thd_activate, args.serial, pin, args.login, currency,
                         via="operator", address=f"cli:{getpass.getuser()}",
                         policy=card_policy(ctx.config.cards))
    finally:
        ctx.close()
    result.raise_if_refused()
    assert result.payment is not None
    acct = result.payment.account
    out = {"serial": result.serial, "login": result.login,
           "credited": format_amount(result.payment.entry.amount, currency),
           "currency": currency, "balance": format_amount(acct.balance, currency),
           "status": acct.status, "unblocked": result.payment.unblocked}
    if args.out == "text":
        print(f"card {result.serial} credited {out['credited']} {currency} to {result.login}; "
              f"balance {out['balance']}, status {acct.status}"
              + ("; unblocked" if result.payment.unblocked else ""))
    else:
        emit_object(out, args.out, item="card_activation")
    return 0
