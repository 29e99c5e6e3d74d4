"""radbill import freeradius|daloradius: bring a FreeRADIUS SQL database over in one step.

The report lists what is (or, with --dry-run, would be) created, what already exists
(running the import again creates nothing), and every attribute that was not carried
over, with the reason. Passwords are never printed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from aaa.admin import freeradius
from core.db.engine import make_engine
from core.errors import InvalidInput
from radbill.cli.context import CliContext
from radbill.cli.output import add_out_argument, emit_object

KINDS = ("nas", "pool", "plan", "subscriber")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from radbill.cli import common_parent

    imp = sub.add_parser("import", help="import another RADIUS server's database",
                         parents=[common_parent()])
    isub = imp.add_subparsers(dest="import_command", metavar="SOURCE", required=True)
    for name, text in (("freeradius", "a FreeRADIUS 3 SQL database (rlm_sql schema)"),
                       ("daloradius", "FreeRADIUS's tables plus daloRADIUS's userinfo and "
                                      "userbillinfo")):
        p = isub.add_parser(name, help=text, parents=[common_parent()])
        p.add_argument("--url", required=True,
                       help="SQLAlchemy URL of the source, e.g. "
                            "mysql+pymysql://radius:secret@db/radius (read only)")
        p.add_argument("--dry-run", action="store_true",
                       help="report what would be created and what cannot be mapped; "
                            "write nothing")
        p.add_argument("--history", action="store_true",
                       help="also copy closed sessions from radacct")
        p.add_argument("--no-chap", dest="chap", action="store_false",
                       help="do not keep Cleartext-Password for CHAP (PAP and MS-CHAP keep "
                            "working from the argon2 and NT hashes)")
        add_out_argument(p)
        p.set_defaults(func=cmd_import, daloradius=name == "daloradius")


def cmd_import(args: argparse.Namespace) -> int:
    try:
        source = make_engine(args.url, pool_size=1)
    except Exception as exc:  # a malformed URL or unknown driver
        raise InvalidInput(f"--url: {exc}") from None
    ctx = CliContext(args)
    try:
        try:
            src = freeradius.read_source(source, history=args.history,
                                         daloradius=args.daloradius)
        except SQLAlchemyError as exc:
            raise freeradius.SourceError(f"cannot read the source: {exc.__cause__ or exc}") \
                from None
        plan = freeradius.plan_import(src)
        report = ctx.run(freeradius.thd_apply_import, plan, dry_run=args.dry_run,
                         chap=args.chap, source=source)
    finally:
        ctx.close()
        source.dispose()
    _print(report, args.out)
    return 0


def _print(report: freeradius.ImportReport, fmt: str) -> None:
    unmapped = [{"where": u.where, "attribute": u.attribute, "value": u.value,
                 "reason": u.reason} for u in report.unmapped]
    if fmt != "text":
        obj: dict[str, Any] = {"dry_run": report.dry_run,
                               "created": {k: list(report.created.get(k, ())) for k in KINDS},
                               "existing": {k: list(report.existing.get(k, ())) for k in KINDS},
                               "history": report.history, "unmapped": unmapped}
        emit_object(obj, fmt, "import")
        return
    out = sys.stdout
    verb = "would create" if report.dry_run else "created"
    for kind in KINDS:
        names = report.created.get(kind, ())
        have = report.existing.get(kind, ())
        out.write(f"{kind}: {verb} {len(names)}, already present {len(have)}\n")
        for name in names:
            out.write(f"  + {name}\n")
    if report.history:
        out.write(f"sessions (radacct history): {verb} {report.history}\n")
    if unmapped:
        out.write(f"not mapped ({len(unmapped)}):\n")
        for u in unmapped:
            value = f" {u['value']}" if u["value"] else ""
            out.write(f"  {u['where']}: {u['attribute']}{value}: {u['reason']}\n")
    if report.created.get("nas"):
        out.write("note: imported NAS entries do not require Message-Authenticator (as in "
                  "FreeRADIUS 3); turn it on per NAS with 'radbill nas set NAME "
                  "--require-message-authenticator' once it sends one\n")
