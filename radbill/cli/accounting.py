"""radbill accounting purge: retention of closed sessions and calls, on demand.

The same batches as the billing leader's hourly run (accounting.retention),
on a private reactor with the server's kind of DB pool; ``--dry-run`` reads
the same rows and reports what a run would move, changing nothing.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from datetime import datetime
from typing import Any

from core.config import load_config
from core.errors import InvalidInput
from radbill.cli.context import cli_caller, run_with_dbpool
from radbill.cli.session import parse_since


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from radbill.cli import common_parent

    acct = sub.add_parser("accounting", help="accounting data maintenance",
                          parents=[common_parent()])
    asub = acct.add_subparsers(dest="accounting_command", metavar="ACTION", required=True)
    purge = asub.add_parser(
        "purge", parents=[common_parent()],
        help="archive or delete closed sessions and calls older than [accounting] keep_days")
    purge.add_argument("--dry-run", action="store_true",
                       help="only report what would be moved, per kind and month")
    purge.add_argument("--before", metavar="DATE",
                       help="move what closed before DATE (ISO date/time or an age such as "
                            "90d) instead of keep_days/keep_call_days ago")
    purge.add_argument("--kind", choices=["sessions", "calls", "usage", "all"], default="all",
                       help="which records (default all; usage = rated usage deltas, "
                            "[billing] keep_usage_days)")
    purge.add_argument("--mode", choices=["archive", "delete"],
                       help="override [accounting] retention for this run")
    purge.set_defaults(func=cmd_purge)


def _before(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_since(text)
    except InvalidInput:
        raise InvalidInput(f"--before {text!r}: expected a date/time like 2024-03-04 or an "
                           "age like 90d") from None


def cmd_purge(args: argparse.Namespace) -> int:
    from accounting.retention import KINDS, RetentionSettings, run_retention
    from billing.retention_guard import make_retention_guard
    from billing.statements import StatementSettings

    before = _before(args.before)
    config = load_config(args.config)
    settings = RetentionSettings.from_config(config)
    if args.mode:
        settings = replace(settings, mode=args.mode)
    from billing.usage_retention import run_usage_retention

    wanted = ("sessions", "calls", "usage") if args.kind == "all" else (args.kind,)
    kinds = tuple(k for k in KINDS if k in wanted)
    keep_usage = config.billing.keep_usage_days
    if before is None and not (any(settings.keep(k) for k in kinds)
                               or ("usage" in wanted and keep_usage)):
        print("retention is off ([accounting] keep_days, keep_call_days and [billing] "
              "keep_usage_days are 0); nothing to do (use --before DATE for a one-off purge)")
        return 0
    guard = make_retention_guard(StatementSettings.from_config(config))

    async def main(reactor: Any, dbpool: Any) -> Any:
        reports = await run_retention(dbpool, settings, guard, before=before,
                                      dry_run=args.dry_run, kinds=kinds)
        if "usage" in wanted:
            usage = await run_usage_retention(dbpool, keep_usage, guard, batch=settings.batch,
                                              before=before, dry_run=args.dry_run)
            if usage is not None:
                reports.append(usage)
        if not args.dry_run:
            await dbpool.run(_thd_audit, reports)
        return reports

    reports = run_with_dbpool(config, main)
    for kind in wanted:
        found = [r for r in reports if r.kind == kind]
        if found:
            print(found[0].describe())
        else:
            print(f"{kind}: kept forever ({KEEP_KEYS[kind]} = 0)")
    return 0


KEEP_KEYS = {"sessions": "[accounting] keep_days", "calls": "[accounting] keep_call_days",
             "usage": "[billing] keep_usage_days"}


def _thd_audit(session: Any, reports: list[Any]) -> None:
    from webadmin.service import audit

    audit.record(session, cli_caller(), "accounting.purge", "accounting", "retention",
                 after={r.kind: {"mode": getattr(r, "mode", "delete"),
                                 "cutoff": r.cutoff.isoformat(),
                                 "moved": getattr(r, "moved", None) or getattr(r, "deleted", {}),
                                 "kept_billing": r.kept_billing}
                        for r in reports})
