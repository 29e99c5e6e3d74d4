"""radbill reseller topup|balance|limit|wholesale|statement: resellers' money with the operator.

Each goes through the service layer (webadmin.service.reseller_money / reseller_reports):
the CLI's caller has admin's rights, and every change is in the audit log.

    radbill reseller topup NAME AMOUNT --ref REF     (idempotent by --ref; negative corrects)
    radbill reseller balance NAME
    radbill reseller limit NAME AMOUNT
    radbill reseller wholesale PLAN PERCENT|none      share of each payment the reseller owes
    radbill reseller statement NAME --period YYYY-MM  its balance movements in that month
"""

from __future__ import annotations

import argparse

from billing.money import check_currency, format_amount, parse_amount
from core.config import load_config
from radbill.cli.context import CliContext
from radbill.cli.output import add_out_argument, emit_list, emit_object
from webadmin.service import reseller_money


def register_money(rsub: argparse._SubParsersAction[argparse.ArgumentParser],
                   cp: list[argparse.ArgumentParser]) -> None:
    top = rsub.add_parser("topup", help="the reseller prepaid the operator", parents=cp)
    top.add_argument("name")
    top.add_argument("amount")
    top.add_argument("--ref", required=True, help="e.g. the bank transfer's id")
    add_out_argument(top)
    top.set_defaults(func=cmd_topup)
    bal = rsub.add_parser("balance", help="the reseller's prepaid balance", parents=cp)
    bal.add_argument("name")
    add_out_argument(bal)
    bal.set_defaults(func=cmd_balance)
    lim = rsub.add_parser("limit", help="how far the reseller may go below 0", parents=cp)
    lim.add_argument("name")
    lim.add_argument("amount")
    add_out_argument(lim)
    lim.set_defaults(func=cmd_limit)
    ws = rsub.add_parser("wholesale", help="a plan's wholesale share in percent", parents=cp)
    ws.add_argument("plan")
    ws.add_argument("percent", help="e.g. 80, or 'none' (= 100)")
    ws.set_defaults(func=cmd_wholesale)
    st = rsub.add_parser("statement", parents=cp,
                         help="the reseller's own statement: its prepaid balance in a month")
    st.add_argument("name")
    st.add_argument("--period", required=True, metavar="YYYY-MM",
                    help="the month, in [statements] time_zone")
    add_out_argument(st)
    st.set_defaults(func=cmd_statement)


def cmd_topup(args: argparse.Namespace) -> int:
    ctx = CliContext(args)
    try:
        currency = check_currency(ctx.config.billing.currency)
        amount = parse_amount(args.amount, currency, allow_negative=True)
        out = ctx.run_as(reseller_money.thd_topup, args.name, amount, currency, args.ref)
    finally:
        ctx.close()
    if args.out == "text":
        print(f"reseller {args.name}: " + ("top-up recorded" if out["recorded"] else
                                           "already recorded (same --ref), nothing changed")
              + f"; balance {out['balance']} {currency}")
    else:
        emit_object(out, args.out, item="reseller_topup")
    return 0


def cmd_balance(args: argparse.Namespace) -> int:
    ctx = CliContext(args)
    try:
        out = ctx.run_as(reseller_money.thd_balance, args.name,
                         check_currency(ctx.config.billing.currency))
    finally:
        ctx.close()
    emit_object(out, args.out, item="reseller_balance")
    return 0


def cmd_limit(args: argparse.Namespace) -> int:
    ctx = CliContext(args)
    try:
        currency = check_currency(ctx.config.billing.currency)
        out = ctx.run_as(reseller_money.thd_set_limit, args.name,
                         parse_amount(args.amount, currency), currency)
    finally:
        ctx.close()
    emit_object(out, args.out, item="reseller_balance")
    return 0


def cmd_wholesale(args: argparse.Namespace) -> int:
    ctx = CliContext(args)
    try:
        pct = None if args.percent.lower() == "none" else args.percent
        ctx.run_as(reseller_money.thd_set_wholesale, args.plan, pct)
    finally:
        ctx.close()
    print(f"plan {args.plan}: resellers owe {pct or '100'}% of each payment")
    return 0


def cmd_statement(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from billing.statements import check_period
    from radbill.cli.context import run_as
    from webadmin.service.reseller_reports import thd_reseller_statement

    period = check_period(args.period)
    config = load_config(args.config)
    st = run_as(args, thd_reseller_statement, args.name, period,
                ZoneInfo(config.statements.time_zone), check_currency(config.billing.currency))
    c = st.currency
    lines = [{"at": line.at.isoformat(timespec="seconds"), "kind": line.kind,
              "amount": format_amount(line.amount, c), "reference": line.reference or "",
              "description": line.description} for line in st.lines]
    out = {"reseller": st.reseller, "period": st.period, "currency": c,
           "opening": format_amount(st.opening, c), "closing": format_amount(st.closing, c),
           **{f"total_{k}": format_amount(st.totals.get(k, 0), c)
              for k in ("topup", "draw", "adjustment")}}
    if args.out == "text":
        emit_object(out, "text", item="reseller_statement")
        if lines:
            print()
            emit_list(lines, ["at", "kind", "amount", "reference", "description"], "text",
                      "lines", "line")
    else:
        emit_object({**out, "lines": lines}, args.out, item="reseller_statement")
    return 0
