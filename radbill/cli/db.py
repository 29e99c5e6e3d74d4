"""radbill db upgrade|current: the schema through Alembic."""

from __future__ import annotations

import argparse

from core.db import schema
from radbill.cli.context import CliContext


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from radbill.cli import common_parent

    db = sub.add_parser("db", help="database schema", parents=[common_parent()])
    dbsub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = dbsub.add_parser("upgrade", help="create or upgrade the schema to this version",
                          parents=[common_parent()])
    up.set_defaults(func=cmd_upgrade)
    cur = dbsub.add_parser("current", help="print the schema version",
                           parents=[common_parent()])
    cur.set_defaults(func=cmd_current)


def cmd_upgrade(args: argparse.Namespace) -> int:
    ctx = CliContext(args, check_schema=False)
    try:
        before = schema.describe(schema.current_revisions(ctx.engine))
        schema.upgrade(ctx.engine)
        after = schema.describe(schema.current_revisions(ctx.engine))
    finally:
        ctx.close()
    if before == after:
        print(f"schema is up to date ({after})")
    else:
        print(f"schema upgraded from {before} to {after}")
    return 0


def cmd_current(args: argparse.Namespace) -> int:
    ctx = CliContext(args, check_schema=False)
    try:
        current = schema.current_revisions(ctx.engine)
    finally:
        ctx.close()
    heads = schema.head_revisions()
    print(f"{schema.describe(current)} (this radbill needs {schema.describe(heads)})")
    return 0 if current == heads else 1
