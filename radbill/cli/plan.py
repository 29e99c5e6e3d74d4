"""radbill plan add|list|show|set|remove: the service a subscriber gets in the Access-Accept."""

from __future__ import annotations

import argparse
from typing import Any

from aaa.admin import validate as admin_validate
from core.errors import InvalidInput
from radbill.cli.context import run_as as run
from radbill.cli.output import add_out_argument, emit_list, emit_object
from radbill.cli.pool import add_pool_argument
from webadmin.service import catalog

LIST_COLUMNS = ["name", "rate_limit", "session_timeout", "idle_timeout", "interim_interval",
                "simultaneous_use", "framed_protocol", "subscribers"]
SERVICE_FIELDS = ("rate_limit", "session_timeout", "idle_timeout", "interim_interval",
                  "simultaneous_use", "framed_protocol")


def _seconds_or_none(text: str) -> int | None:
    """An argparse type: a whole number, or 'none' to clear the field (plan set)."""
    if text.strip().lower() in admin_validate.NONE_WORDS:
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number or 'none'") from None


def _service_options(parser: argparse.ArgumentParser, clearing: bool) -> None:
    """The plan's service options; for 'set' (clearing) 'none' clears a field.

    In 'set' an option that is not given is left out of the namespace
    (SUPPRESS), so 'not given' (keep) and 'none' (clear) stay distinct.
    """
    kind = _seconds_or_none if clearing else int
    hint = " ('none' clears it)" if clearing else ""
    default = argparse.SUPPRESS if clearing else None
    parser.add_argument("--rate-limit", metavar="UP/DOWN", default=default,
                        help=f"upload/download as in 10M/10M or 512k/2M{hint}")
    parser.add_argument("--session-timeout", type=kind, metavar="SECONDS", default=default,
                        help=f"Session-Timeout{hint}")
    parser.add_argument("--idle-timeout", type=kind, metavar="SECONDS", default=default,
                        help=f"Idle-Timeout{hint}")
    parser.add_argument("--interim", dest="interim_interval", type=kind, metavar="SECONDS",
                        default=default, help=f"Acct-Interim-Interval{hint}")
    parser.add_argument("--simultaneous-use", type=kind, metavar="N", default=default,
                        help=f"sessions one login may hold at once{hint}")
    parser.add_argument("--framed-protocol", metavar="PPP|none", default=default,
                        help="Framed-Protocol value, or none for non-PPP service"
                             + ("" if clearing else " (default PPP)"))
    parser.add_argument("--reply-attribute", dest="reply_attributes", action="append",
                        metavar="ATTR=VALUE", default=default,
                        help="extra attribute for every Access-Accept (repeatable)"
                             + ("; replaces the plan's list" if clearing else ""))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from radbill.cli import common_parent

    plan = sub.add_parser("plan", help="service plans", parents=[common_parent()])
    psub = plan.add_subparsers(dest="plan_command", metavar="ACTION", required=True)

    add = psub.add_parser("add", help="add a plan", parents=[common_parent()])
    add.add_argument("name", help="unique name, 1..64 characters")
    _service_options(add, clearing=False)
    add_pool_argument(add)
    add.add_argument("--reseller", metavar="NAME", help="a reseller's own plan")
    add.set_defaults(func=cmd_add)

    lst = psub.add_parser("list", help="list plans", parents=[common_parent()])
    add_out_argument(lst)
    lst.set_defaults(func=cmd_list)

    show = psub.add_parser("show", help="show one plan", parents=[common_parent()])
    show.add_argument("name")
    add_out_argument(show)
    show.set_defaults(func=cmd_show)

    upd = psub.add_parser("set", help="change a plan", parents=[common_parent()])
    upd.add_argument("name")
    _service_options(upd, clearing=True)
    upd.add_argument("--clear-reply-attributes", action="store_true",
                     help="remove every extra reply attribute")
    add_pool_argument(upd)
    upd.add_argument("--reseller", metavar="NAME|none", default=argparse.SUPPRESS,
                     help="give the plan to a reseller ('none': the operator's own)")
    upd.set_defaults(func=cmd_set)

    rm = psub.add_parser("remove", help="remove a plan no subscriber uses",
                         parents=[common_parent()])
    rm.add_argument("name")
    rm.set_defaults(func=cmd_remove)

    # Prices are billing's: `plan set` gains the price flags, plus `plan import|prices`.
    from radbill.cli.pricing import add_plan_price_commands

    add_plan_price_commands(psub, upd)


def _pool_names(pools: list[str]) -> list[str]:
    return [p for p in pools if p]  # --pool '' clears the list


def cmd_add(args: argparse.Namespace) -> int:
    info = run(args, catalog.thd_add_plan, args.name, args.rate_limit, args.session_timeout,
               args.idle_timeout, args.interim_interval, args.simultaneous_use,
               "PPP" if args.framed_protocol is None else args.framed_protocol,
               args.reply_attributes or [], _pool_names(args.pools) if args.pools else None,
               args.reseller)
    print(f"plan {info['name']!r} added")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rows = [info.as_dict() for info in run(args, catalog.thd_list_plans)]
    emit_list(rows, LIST_COLUMNS, args.out, root="plans", item="plan")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    emit_object(run(args, catalog.thd_get_plan, args.name), args.out, item="plan")
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {key: getattr(args, key) for key in SERVICE_FIELDS
                               if hasattr(args, key)}
    reply_attributes = getattr(args, "reply_attributes", None)
    if args.clear_reply_attributes and reply_attributes:
        raise InvalidInput("give --reply-attribute or --clear-reply-attributes, not both")
    if args.clear_reply_attributes:
        changes["reply_attributes"] = []
    elif reply_attributes:
        changes["reply_attributes"] = reply_attributes
    if hasattr(args, "reseller"):
        changes["reseller"] = args.reseller
    pools = args.pools
    if not changes and pools is None:
        raise InvalidInput("nothing to change; give at least one option (see --help)")

    info = run(args, catalog.thd_update_plan, args.name, changes,
               _pool_names(pools) if pools is not None else None)
    print(f"plan {info['name']!r} changed: "
          + ", ".join(sorted([*changes, *(["pools"] if pools is not None else [])])))
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    info = run(args, catalog.thd_remove_plan, args.name)
    print(f"plan {info.name!r} removed")
    return 0
