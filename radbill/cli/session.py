"""radbill session list|show: accounting sessions, newest first.

Listings are bounded (--limit, default 50) and served by the indexes chosen
for them, so they stay fast however many sessions the database holds.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from accounting.queries import SessionFilter
from core.db.base import utcnow
from core.errors import InvalidInput
from radbill.cli.context import cli_caller, run_as
from radbill.cli.output import add_out_argument, emit_list, emit_object
from webadmin.service import usage

LIST_COLUMNS = ["id", "login", "nas", "state", "started_at", "stopped_at", "session_time",
                "input_octets", "output_octets", "framed_ip", "terminate_cause"]
RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """'2024-03-04', '2024-03-04T10:00', an ISO time with offset (UTC if none), or '2h', '7d'."""
    value = text.strip()
    match = RELATIVE.match(value.lower())
    if match:
        return (now or utcnow()) - timedelta(seconds=int(match.group(1))
                                             * UNIT_SECONDS[match.group(2)])
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"--since {text!r}: expected a date/time like 2024-03-04 or "
                           "2024-03-04T10:00, or an age like 30m, 2h, 7d") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from radbill.cli import common_parent

    session = sub.add_parser("session", help="accounting sessions", parents=[common_parent()])
    ssub = session.add_subparsers(dest="session_command", metavar="ACTION", required=True)

    lst = ssub.add_parser("list", help="list sessions, newest first", parents=[common_parent()])
    lst.add_argument("--online", action="store_true", help="only sessions not yet stopped")
    lst.add_argument("--subscriber", metavar="LOGIN", help="only this subscriber's sessions")
    lst.add_argument("--nas", metavar="NAME", help="only sessions on this NAS")
    lst.add_argument("--since", metavar="TIME",
                     help="started at or after TIME (ISO date/time, UTC unless an offset is "
                          "given, or an age: 30m, 2h, 7d)")
    lst.add_argument("--limit", type=positive_int, default=50, metavar="N",
                     help="at most N sessions (default 50)")
    add_out_argument(lst)
    lst.set_defaults(func=cmd_list)

    show = ssub.add_parser("show", help="show one session", parents=[common_parent()])
    show.add_argument("id", help="the session's id (as listed) or its unique id")
    add_out_argument(show)
    show.set_defaults(func=cmd_show)

    kick = ssub.add_parser(
        "disconnect", parents=[common_parent()],
        help="send a Disconnect-Request (RFC 5176) for live sessions to their NAS",
        description="Disconnect one live session, or every live session of a subscriber. "
                    "Exit code 3: some NAS did not confirm (timeout or NAK).")
    target = kick.add_mutually_exclusive_group(required=True)
    target.add_argument("id", nargs="?", help="the session's id (as listed) or its unique id")
    target.add_argument("--subscriber", metavar="LOGIN",
                        help="every live session of this subscriber")
    add_out_argument(kick)
    kick.set_defaults(func=cmd_disconnect)


def cmd_list(args: argparse.Namespace) -> int:
    since = parse_since(args.since) if args.since else None
    found = run_as(args, usage.thd_list_sessions, SessionFilter(
        online=args.online, subscriber=args.subscriber, nas=args.nas, since=since,
        limit=args.limit))
    emit_list([asdict(s) for s in found], LIST_COLUMNS, args.out, "sessions", "session")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    info = run_as(args, usage.thd_show_session, args.id)
    emit_object(asdict(info), args.out, "session")
    return 0


def cmd_disconnect(args: argparse.Namespace) -> int:
    from radbill.cli.kick import disconnect

    caller = cli_caller()
    if args.subscriber is not None:
        login = args.subscriber
        return disconnect(args, lambda s: usage.thd_disconnect_targets(s, caller, login=login))
    ident = args.id
    return disconnect(args, lambda s: usage.thd_disconnect_targets(s, caller,
                                                                   session_ident=ident))
