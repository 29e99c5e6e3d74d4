"""radbill report revenue: revenue and payments per month (or day), split by reseller or plan.

    radbill report revenue --by reseller --period 2024-05
    radbill report revenue --by plan --from 2024-01-01 --to 2024-07-01 --group day

Months and days are those of ``[statements] time_zone``; amounts are the
currency's units (the ledger's minor units, formatted).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from billing.money import format_amount
from billing.statements import month_bounds
from core.config import load_config
from core.errors import InvalidInput
from radbill.cli.context import run_as
from radbill.cli.output import add_out_argument, emit_list

RESELLER_COLUMNS = ["period", "reseller", "currency", "revenue", "payments", "wholesale",
                    "margin"]
PLAN_COLUMNS = ["period", "plan", "currency", "revenue", "payments"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from radbill.cli import common_parent

    cp = [common_parent()]
    rep = sub.add_parser("report", help="money reports", parents=cp)
    rsub = rep.add_subparsers(dest="report_command", metavar="REPORT", required=True)
    rev = rsub.add_parser("revenue", parents=cp,
                          help="revenue, payments (and reseller wholesale) per period")
    rev.add_argument("--by", choices=["reseller", "plan"], default="reseller",
                     help="split by reseller (default; '(operator)' for its own subscribers) "
                          "or by plan")
    rev.add_argument("--period", metavar="YYYY-MM", help="one month")
    rev.add_argument("--from", dest="since", metavar="DATE", help="from DATE (inclusive)")
    rev.add_argument("--to", dest="until", metavar="DATE", help="to DATE (exclusive)")
    rev.add_argument("--group", choices=["month", "day"], default="month",
                     help="one row per month (default) or per day")
    rev.add_argument("--reseller", metavar="NAME", help="only this reseller (--by reseller)")
    add_out_argument(rev)
    rev.set_defaults(func=cmd_revenue)


def _date(text: str, what: str, zone: ZoneInfo) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{what} {text!r}: expected a date like 2024-05-01") from None
    return (parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed).astimezone(UTC)


def window(args: argparse.Namespace, zone: ZoneInfo) -> tuple[datetime, datetime]:
    if args.period and (args.since or args.until):
        raise InvalidInput("give --period or --from/--to, not both")
    if args.period:
        start, end = month_bounds(args.period, zone)
        return start.astimezone(UTC), end.astimezone(UTC)
    if not (args.since and args.until):
        raise InvalidInput("give --period YYYY-MM, or both --from and --to")
    since, until = _date(args.since, "--from", zone), _date(args.until, "--to", zone)
    if since >= until:
        raise InvalidInput("--to must be after --from")
    return since, until


def cmd_revenue(args: argparse.Namespace) -> int:
    from webadmin.service.reseller_reports import thd_revenue_by_plan, thd_revenue_by_reseller

    config = load_config(args.config)
    zone = ZoneInfo(config.statements.time_zone)
    since, until = window(args, zone)
    rows: list[dict[str, Any]]
    if args.by == "reseller":
        found = run_as(args, thd_revenue_by_reseller, since, until, zone, args.group,
                       args.reseller)
        rows = [{"period": r.period, "reseller": r.reseller, "currency": r.currency,
                 **{k: format_amount(getattr(r, k), r.currency)
                    for k in ("revenue", "payments", "wholesale", "margin")}} for r in found]
        emit_list(rows, RESELLER_COLUMNS, args.out, "revenue", "row")
        return 0
    if args.reseller:
        raise InvalidInput("--reseller goes with --by reseller")
    plans = run_as(args, thd_revenue_by_plan, since, until, zone, args.group)
    rows = [{"period": r.period, "plan": r.group or "(no plan)", "currency": r.currency,
             "revenue": format_amount(r.revenue, r.currency),
             "payments": format_amount(r.payments, r.currency)} for r in plans]
    emit_list(rows, PLAN_COLUMNS, args.out, "revenue", "row")
    return 0
