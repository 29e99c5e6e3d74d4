"""radbill login generate: new logins from a login pool's pattern, never one already in use."""

from __future__ import annotations

import argparse

from radbill.cli.context import run_as
from radbill.cli.output import add_out_argument, emit_list
from webadmin.service import catalog


def register(sub: argparse._SubParsersAction) -> None:
    from radbill.cli import common_parent

    common = [common_parent()]
    login = sub.add_parser("login", help="logins from login pools", parents=common)
    lsub = login.add_subparsers(dest="login_command", metavar="ACTION", required=True)
    gen = lsub.add_parser("generate", help="issue new logins from a login pool", parents=common)
    gen.add_argument("--pool", required=True, help="a pool added with --kind login")
    gen.add_argument("--count", type=int, default=1, help="how many (default 1)")
    add_out_argument(gen)
    gen.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    logins = run_as(args, catalog.thd_generate_logins, args.pool, args.count)
    if args.out == "text":
        for login in logins:
            print(login)
    else:
        emit_list([{"login": login} for login in logins], ["login"], args.out, "logins",
                  "login")
    return 0
