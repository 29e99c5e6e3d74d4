"""radbill payment import FILE: bank or gateway payments from CSV (see billing.payment_import).

    radbill payment import FILE [--skip-bad [--rejects FILE]] [--columns login,amount,reference]
                                [--delimiter ';'] [--header] [--decimal-comma] [--out ...]

Exit 0 when the file was applied (or had been already: "nothing changed"),
1 when it was refused because of bad rows (each listed with its line number).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from billing.money import check_currency, format_amount
from billing.payment_import import (
    ImportRefused,
    Layout,
    parse_payments_csv,
    thd_import_payments,
    write_rejects,
)
from core.errors import InvalidInput
from radbill.cli.context import CliContext
from radbill.cli.output import add_out_argument, emit_object


def register_import(psub: argparse._SubParsersAction[argparse.ArgumentParser],
                    parents: list[argparse.ArgumentParser]) -> None:
    imp = psub.add_parser("import", help="payments from a bank or gateway CSV (idempotent)",
                          parents=parents)
    imp.add_argument("file")
    imp.add_argument("--skip-bad", action="store_true",
                     help="apply the good rows, write the bad ones to --rejects")
    imp.add_argument("--rejects", metavar="FILE",
                     help="where bad rows go with --skip-bad (default FILE.rejects.csv)")
    imp.add_argument("--columns", help="e.g. reference,-,login,amount ([payment_import])")
    imp.add_argument("--delimiter", help="one character ([payment_import] delimiter)")
    imp.add_argument("--header", action="store_true", default=None,
                     help="the first line is a header")
    imp.add_argument("--decimal-comma", action="store_true", default=None,
                     help="amounts like 1.234,50")
    add_out_argument(imp)
    imp.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: {getattr(exc, 'strerror', None) or exc}") from None
    ctx = CliContext(args)
    try:
        cfg = ctx.config.payment_import
        layout = Layout(
            columns=tuple(c.strip() for c in args.columns.split(",")) if args.columns
            else tuple(cfg.columns),
            delimiter=args.delimiter if args.delimiter is not None else cfg.delimiter,
            header=cfg.header if args.header is None else args.header,
            decimal_comma=cfg.decimal_comma if args.decimal_comma is None
            else args.decimal_comma).check()
        currency = check_currency(ctx.config.billing.currency)
        parsed = parse_payments_csv(text, currency, layout)
        report = ctx.run(thd_import_payments, parsed, currency, args.skip_bad)
    finally:
        ctx.close()
    rejects = None
    if report.bad and report.committed:
        rejects = Path(args.rejects or f"{path}.rejects.csv")
        with rejects.open("w", encoding="utf-8", newline="") as fh:
            write_rejects(report.bad, fh, layout.delimiter)  # type: ignore[arg-type]
    out: dict[str, Any] = {
        "file": str(path), "rows": report.rows, "applied": report.applied,
        "already_recorded": report.already, "credited": format_amount(report.total, currency),
        "currency": currency, "bad_rows": len(report.bad), "committed": report.committed,
        "rejects_file": str(rejects) if rejects else None,
        "unblocked": list(report.unblocked),
        "errors": [f"line {b.line}: {b.reason}" for b in report.bad]}
    if args.out != "text":
        emit_object(out, args.out, item="payment_import")
    elif not report.committed:
        for b in report.bad:
            print(f"{path}:{b.line}: {b.reason}", file=sys.stderr)
    elif report.changed_nothing and not report.bad:
        print(f"{path}: all {report.already} payments were already recorded; nothing changed")
    else:
        print(f"{path}: {report.applied} payments applied ({out['credited']} {currency}), "
              f"{report.already} already recorded"
              + (f", {len(report.bad)} bad rows written to {rejects}" if rejects else "")
              + (f"; unblocked: {', '.join(report.unblocked)}" if report.unblocked else ""))
    if not report.committed:
        raise ImportRefused(f"{path}: {len(report.bad)} bad rows; nothing was applied "
                            "(fix them, or use --skip-bad)")
    return 0
