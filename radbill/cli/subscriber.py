"""radbill subscriber ...: logins, passwords, status, and bulk import from CSV.

Passwords are hashed here, before a transaction opens (argon2 is slow on
purpose), and are never printed: ``show`` and ``list`` say which methods
(PAP, MS-CHAPv2, CHAP) can authenticate the subscriber instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from tqdm import tqdm

from aaa.admin import importing as admin_importing
from aaa.admin import passwords as admin_passwords
from aaa.admin import subscribers as admin_subscribers
from aaa.admin import validate as admin_validate
from core.db.models import SubscriberStatus
from core.errors import InvalidInput
from radbill.cli.context import CliContext, run_as, stdin_value
from radbill.cli.output import add_out_argument, emit_list, emit_object
from webadmin.service import subscribers as svc

LIST_COLUMNS = ["login", "status", "plan", "static_ip", "auth"]
STATUSES = [s.value for s in SubscriberStatus]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from radbill.cli import common_parent

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        return ssub.add_parser(name, help=help_text, parents=[common_parent()])

    subscriber = sub.add_parser("subscriber", help="subscribers (logins)",
                                parents=[common_parent()])
    ssub = subscriber.add_subparsers(dest="subscriber_command", metavar="ACTION",
                                     required=True)

    add = action("add", "add a subscriber")
    add.add_argument("login", help="User-Name, 1..128 characters")
    add.add_argument("--password", required=True,
                     help="password; '-' reads it from standard input")
    add.add_argument("--plan", metavar="NAME")
    add.add_argument("--chap", action="store_true",
                     help="also allow CHAP, which keeps a reversible copy of the password")
    add.add_argument("--static-ip", metavar="IPv4", help="sent as Framed-IP-Address")
    add.add_argument("--status", choices=STATUSES, default=SubscriberStatus.ACTIVE.value)
    add.add_argument("--description", default="")
    add.add_argument("--reseller", metavar="NAME", help="the reseller owning the subscriber")
    add.set_defaults(func=cmd_add)

    lst = action("list", "list subscribers")
    lst.add_argument("--status", choices=STATUSES)
    lst.add_argument("--plan", metavar="NAME", help="only this plan ('none': without a plan)")
    lst.add_argument("--login-prefix", metavar="TEXT", help="only logins starting with TEXT")
    lst.add_argument("--limit", type=int, metavar="N", help="at most N subscribers")
    lst.add_argument("--offset", type=int, default=0, metavar="N", help="skip the first N")
    lst.add_argument("--reseller", metavar="NAME", help="only this reseller's subscribers")
    add_out_argument(lst)
    lst.set_defaults(func=cmd_list)

    show = action("show", "show one subscriber")
    show.add_argument("login")
    add_out_argument(show)
    show.set_defaults(func=cmd_show)

    upd = action("set", "change plan, static IP, description, or turn CHAP off")
    upd.add_argument("login")
    upd.add_argument("--plan", metavar="NAME|none", default=argparse.SUPPRESS)
    upd.add_argument("--static-ip", metavar="IPv4|none", default=argparse.SUPPRESS)
    upd.add_argument("--description", default=argparse.SUPPRESS)
    upd.add_argument("--reseller", metavar="NAME|none", default=argparse.SUPPRESS,
                     help="move the subscriber to a reseller ('none': the operator's own)")
    upd.add_argument("--no-chap", action="store_true",
                     help="turn CHAP off and delete the reversible password copy")
    upd.set_defaults(func=cmd_set)

    pw = action("passwd", "set a new password")
    pw.add_argument("login")
    pw.add_argument("--password", required=True,
                    help="new password; '-' reads it from standard input")
    chap = pw.add_mutually_exclusive_group()
    chap.add_argument("--chap", dest="chap", action="store_true", default=None,
                      help="allow CHAP (keeps a reversible copy)")
    chap.add_argument("--no-chap", dest="chap", action="store_false", default=None,
                      help="disallow CHAP (deletes the reversible copy)")
    pw.set_defaults(func=cmd_passwd)

    for name, status, help_text in (
            ("block", SubscriberStatus.BLOCKED, "refuse logins (e.g. unpaid)"),
            ("unblock", SubscriberStatus.ACTIVE, "allow logins again"),
            ("disable", SubscriberStatus.DISABLED, "refuse logins (account closed)")):
        p = action(name, help_text)
        p.add_argument("login")
        if status is not SubscriberStatus.ACTIVE:
            p.add_argument("--no-disconnect", dest="disconnect", action="store_false",
                           help="leave live sessions up (by default each gets a "
                                "Disconnect-Request; exit code 3 if a NAS does not confirm)")
        p.set_defaults(func=cmd_status, status=status.value)

    rm = action("remove", "remove a subscriber")
    rm.add_argument("login")
    rm.set_defaults(func=cmd_remove)

    imp = action("import", "add many subscribers from a CSV file, all or nothing")
    imp.add_argument("file", metavar="FILE.csv", help="CSV with a header row; '-' for stdin")
    imp.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    imp.add_argument("--workers", type=int, metavar="N",
                     help="password hashing threads (default: CPU count)")
    imp.add_argument("--argon2-now", action="store_true",
                     help="compute argon2 hashes during the import (about 70 ms per row) "
                          "instead of at each subscriber's first PAP login")
    imp.set_defaults(func=cmd_import)




def _auth(info: admin_subscribers.SubscriberInfo) -> str:
    return ", ".join(info.auth_methods) or "none"


def cmd_add(args: argparse.Namespace) -> int:
    login = admin_validate.validate_login(args.login)  # fail fast, before ~70 ms of argon2
    credentials = admin_passwords.hash_credentials(stdin_value(args.password, "password"))
    info = run_as(args, svc.thd_add, login, credentials, args.plan, args.chap,
                  args.static_ip, args.status, args.description, args.reseller)
    print(f"subscriber {info.login!r} added (plan {info.plan or 'none'}, "
          f"auth {_auth(info)})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    infos = run_as(args, svc.thd_list, args.status, args.plan, args.login_prefix, args.limit,
                   args.offset, args.reseller)
    emit_list([i.as_dict() for i in infos], LIST_COLUMNS, args.out, root="subscribers",
              item="subscriber")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    info = run_as(args, svc.thd_get, args.login)
    emit_object(info.as_dict(), args.out, item="subscriber")
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {k: getattr(args, k) for k in
                               ("plan", "static_ip", "description", "reseller")
                               if hasattr(args, k)}
    done = sorted(changes) + (["chap off"] if args.no_chap else [])
    if args.no_chap:
        changes["chap"] = False
    if not changes:
        raise InvalidInput("nothing to change; give at least one option (see --help)")
    info = run_as(args, svc.thd_update, args.login, changes)
    print(f"subscriber {info.login!r} changed: " + ", ".join(done))
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    credentials = admin_passwords.hash_credentials(stdin_value(args.password, "password"))
    info = run_as(args, svc.thd_set_password, args.login, credentials, args.chap)
    print(f"password of {info.login!r} changed (auth {_auth(info)})")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    info = run_as(args, svc.thd_set_status, args.login, args.status)
    print(f"subscriber {info.login!r} is now {info.status}")
    if not getattr(args, "disconnect", False):
        return 0
    from aaa.kick import thd_live_sessions_of
    from radbill.cli.kick import disconnect

    login = info.login
    return disconnect(args, lambda s: thd_live_sessions_of(s, login), quiet_when_none=True)


def cmd_remove(args: argparse.Namespace) -> int:
    info = run_as(args, svc.thd_remove, args.login)
    print(f"subscriber {info.login!r} removed")
    return 0


def _read_rows(path: str) -> list[admin_importing.ImportRow]:
    def parse(stream: TextIO) -> list[admin_importing.ImportRow]:
        try:
            return admin_importing.read_import_csv(stream)
        except InvalidInput as exc:
            raise InvalidInput(f"{path}: {exc}") from None

    if path == "-":
        return parse(sys.stdin)
    try:
        # utf-8-sig: spreadsheets like to start their CSV exports with a BOM.
        with open(path, encoding="utf-8-sig", newline="") as stream:
            return parse(stream)
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read: {exc.strerror}") from None


def cmd_import(args: argparse.Namespace) -> int:
    started = time.monotonic()
    if args.workers is not None and args.workers < 1:
        raise InvalidInput(f"--workers {args.workers} must be 1 or more")
    rows = _read_rows(args.file)
    ctx = CliContext(args)
    try:
        try:
            # Check against the database before spending minutes on argon2.
            ctx.run_as(svc.thd_check_import, rows)
        except InvalidInput as exc:
            raise InvalidInput(f"{args.file}: {exc}") from None
        to_hash = sum(1 for r in rows if r.needs_hashing)
        with tqdm(total=to_hash, desc="hashing passwords", unit="row", file=sys.stderr,
                  disable=args.quiet or to_hash == 0 or not sys.stderr.isatty()) as bar:
            rows = admin_importing.hash_import_rows(rows, workers=args.workers, progress=bar.update,
                                           argon2_now=args.argon2_now)
        result = ctx.run_as(svc.thd_import, rows)
    finally:
        ctx.close()
    elapsed = time.monotonic() - started
    print(f"imported {result.imported} subscribers from {args.file} "
          f"({to_hash} passwords hashed) in {elapsed:.1f} s")
    return 0
