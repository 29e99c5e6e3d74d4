"""radbill call list|show: call detail records from PBXs and voice gateways."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from accounting.queries import CallFilter
from radbill.cli.context import run_as
from radbill.cli.output import add_out_argument, emit_list, emit_object
from radbill.cli.session import parse_since, positive_int
from webadmin.service import usage

LIST_COLUMNS = ["id", "caller", "callee", "subscriber", "nas", "state", "connect_time",
                "duration", "disconnect_cause", "leg"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from radbill.cli import common_parent

    call = sub.add_parser("call", help="call detail records", parents=[common_parent()])
    csub = call.add_subparsers(dest="call_command", metavar="ACTION", required=True)

    lst = csub.add_parser("list", help="list calls, newest first", parents=[common_parent()])
    lst.add_argument("--subscriber", metavar="LOGIN", help="only this subscriber's calls")
    lst.add_argument("--nas", metavar="NAME", help="only calls from this PBX or gateway")
    lst.add_argument("--since", metavar="TIME",
                     help="started at or after TIME (ISO date/time, or an age: 30m, 2h, 7d)")
    lst.add_argument("--caller", metavar="NUMBER", help="only calls from this number")
    lst.add_argument("--callee", metavar="PREFIX", help="only calls to numbers with this prefix")
    lst.add_argument("--limit", type=positive_int, default=50, metavar="N",
                     help="at most N calls (default 50)")
    add_out_argument(lst)
    lst.set_defaults(func=cmd_list)

    show = csub.add_parser("show", help="show one call", parents=[common_parent()])
    show.add_argument("id", help="the call's id (as listed) or its unique id")
    add_out_argument(show)
    show.set_defaults(func=cmd_show)


def cmd_list(args: argparse.Namespace) -> int:
    since = parse_since(args.since) if args.since else None
    found = run_as(args, usage.thd_list_calls, CallFilter(
        subscriber=args.subscriber, nas=args.nas, since=since, caller=args.caller,
        callee=args.callee, limit=args.limit))
    emit_list([asdict(c) for c in found], LIST_COLUMNS, args.out, "calls", "call")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    info = run_as(args, usage.thd_show_call, args.id)
    emit_object(asdict(info), args.out, "call")
    return 0
