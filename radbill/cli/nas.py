"""radbill nas add|list|show|set|remove: the RADIUS clients allowed to talk to radbill.

The running server reloads its client table on a timer, so changes take
effect within seconds, without a restart.
"""

from __future__ import annotations

import argparse
from typing import Any

from core.db.models import Vendor
from core.errors import InvalidInput
from radbill.cli.context import run_as as run
from radbill.cli.context import stdin_value
from radbill.cli.output import add_out_argument, emit_list, emit_object
from webadmin.service import catalog

LIST_COLUMNS = ["name", "address", "vendor", "coa_port", "require_message_authenticator",
                "description"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from radbill.cli import common_parent

    nas = sub.add_parser("nas", help="RADIUS clients (NAS)", parents=[common_parent()])
    nsub = nas.add_subparsers(dest="nas_command", metavar="ACTION", required=True)

    add = nsub.add_parser("add", help="add a NAS", parents=[common_parent()])
    add.add_argument("name", help="unique name, 1..64 characters")
    add.add_argument("--address", required=True, metavar="IP-or-CIDR",
                     help="source address of its requests, or a network")
    add.add_argument("--secret", required=True,
                     help="shared secret; '-' reads it from standard input")
    add.add_argument("--vendor", default=Vendor.GENERIC.value, choices=[v.value for v in Vendor])
    add.add_argument("--coa-port", type=int, default=3799, metavar="PORT",
                     help="where it listens for Disconnect/CoA (default 3799)")
    add.add_argument("--no-require-message-authenticator", dest="require_message_authenticator",
                     action="store_false",
                     help="accept requests without Message-Authenticator (Blast-RADIUS risk)")
    add.add_argument("--description", default="")
    add.set_defaults(func=cmd_add)

    lst = nsub.add_parser("list", help="list NAS clients", parents=[common_parent()])
    add_out_argument(lst)
    lst.set_defaults(func=cmd_list)

    show = nsub.add_parser("show", help="show one NAS", parents=[common_parent()])
    show.add_argument("name")
    show.add_argument("--show-secret", action="store_true", help="print the secret unmasked")
    add_out_argument(show)
    show.set_defaults(func=cmd_show)

    upd = nsub.add_parser("set", help="change a NAS", parents=[common_parent()])
    upd.add_argument("name")
    upd.add_argument("--address", metavar="IP-or-CIDR")
    upd.add_argument("--secret", help="'-' reads it from standard input")
    upd.add_argument("--vendor", choices=[v.value for v in Vendor])
    upd.add_argument("--coa-port", type=int, metavar="PORT")
    msg = upd.add_mutually_exclusive_group()
    msg.add_argument("--require-message-authenticator", dest="require_message_authenticator",
                     action="store_true", default=None)
    msg.add_argument("--no-require-message-authenticator", dest="require_message_authenticator",
                     action="store_false", default=None)
    upd.add_argument("--description")
    upd.set_defaults(func=cmd_set)

    rm = nsub.add_parser("remove", help="remove a NAS", parents=[common_parent()])
    rm.add_argument("name")
    rm.set_defaults(func=cmd_remove)




def cmd_add(args: argparse.Namespace) -> int:
    secret = stdin_value(args.secret, "secret")
    info = run(args, catalog.thd_add_nas, args.name, args.address, secret, args.vendor,
               args.coa_port, args.require_message_authenticator, args.description)
    print(f"NAS {info.name!r} added (address {info.address}, vendor {info.vendor})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rows = []
    for info in run(args, catalog.thd_list_nas):
        row = info.as_dict()
        del row["secret"]
        rows.append(row)
    emit_list(rows, LIST_COLUMNS, args.out, root="nas_list", item="nas")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    info = run(args, catalog.thd_get_nas, args.name)
    emit_object(info.as_dict(show_secret=args.show_secret), args.out, item="nas")
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {}
    for key in ("address", "vendor", "coa_port", "require_message_authenticator",
                "description"):
        value = getattr(args, key)
        if value is not None:
            changes[key] = value
    if args.secret is not None:
        changes["secret"] = stdin_value(args.secret, "secret")
    if not changes:
        raise InvalidInput("nothing to change; give at least one option (see --help)")
    info = run(args, catalog.thd_update_nas, args.name, changes)
    print(f"NAS {info.name!r} changed: " + ", ".join(sorted(changes)))
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    info = run(args, catalog.thd_remove_nas, args.name)
    print(f"NAS {info.name!r} removed")
    return 0
