"""radbill operator|token|reseller|audit: who may work with radbill, and what they did.

    radbill operator add LOGIN --role ROLE [--password P | --password-stdin] [--reseller NAME]
    radbill operator list|show|set|remove|passwd
    radbill token add NAME --role ROLE [--reseller NAME] [--expires DAYS]   prints the token once
    radbill token list|revoke NAME
    radbill reseller add|list|show|set|remove
    radbill audit list [--object TYPE[:KEY]] [--operator NAME] [--limit N]
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from core.errors import InvalidInput
from radbill.cli.context import run_as
from radbill.cli.output import add_out_argument, emit_list, emit_object
from webadmin.roles import OPERATOR_ROLES, TOKEN_ROLES
from webadmin.service import audit, operators, resellers, tokens

OPERATOR_COLUMNS = ["login", "role", "reseller", "enabled", "last_login_at"]
TOKEN_COLUMNS = ["name", "role", "reseller", "state", "expires_at", "last_used_at"]
RESELLER_COLUMNS = ["name", "subscribers", "plans", "operators", "description"]
AUDIT_COLUMNS = ["id", "at", "actor", "address", "action", "object"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from radbill.cli import common_parent

    cp = [common_parent()]

    op = sub.add_parser("operator", help="operators (people who manage radbill)", parents=cp)
    osub = op.add_subparsers(dest="operator_command", metavar="ACTION", required=True)
    add = osub.add_parser("add", help="add an operator", parents=cp)
    add.add_argument("login")
    add.add_argument("--role", required=True, choices=OPERATOR_ROLES)
    _password_options(add)
    add.add_argument("--reseller", metavar="NAME", help="limit to one reseller (role reseller)")
    add.add_argument("--description", default="")
    add.set_defaults(func=cmd_operator_add)
    lst = osub.add_parser("list", help="list operators", parents=cp)
    add_out_argument(lst)
    lst.set_defaults(func=cmd_operator_list)
    show = osub.add_parser("show", help="show one operator", parents=cp)
    show.add_argument("login")
    add_out_argument(show)
    show.set_defaults(func=cmd_operator_show)
    upd = osub.add_parser("set", help="change role, reseller, description; enable/disable",
                          parents=cp)
    upd.add_argument("login")
    upd.add_argument("--role", choices=OPERATOR_ROLES, default=argparse.SUPPRESS)
    upd.add_argument("--reseller", metavar="NAME|none", default=argparse.SUPPRESS)
    upd.add_argument("--description", default=argparse.SUPPRESS)
    en = upd.add_mutually_exclusive_group()
    en.add_argument("--enable", dest="enabled", action="store_true", default=argparse.SUPPRESS)
    en.add_argument("--disable", dest="enabled", action="store_false",
                    default=argparse.SUPPRESS, help="refuse its logins and end its sessions")
    upd.set_defaults(func=cmd_operator_set)
    pw = osub.add_parser("passwd", help="set an operator's password", parents=cp)
    pw.add_argument("login")
    _password_options(pw)
    pw.set_defaults(func=cmd_operator_passwd)
    rm = osub.add_parser("remove", help="remove an operator", parents=cp)
    rm.add_argument("login")
    rm.set_defaults(func=cmd_operator_remove)

    tok = sub.add_parser("token", help="API tokens for software", parents=cp)
    tsub = tok.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    tadd = tsub.add_parser("add", help="create a token; prints it once, alone on stdout",
                           parents=cp)
    tadd.add_argument("name")
    tadd.add_argument("--role", required=True, choices=TOKEN_ROLES)
    tadd.add_argument("--reseller", metavar="NAME", help="limit to one reseller (role reseller)")
    tadd.add_argument("--expires", type=int, metavar="DAYS", help="valid for DAYS days")
    tadd.set_defaults(func=cmd_token_add)
    tlst = tsub.add_parser("list", help="list tokens (never the tokens themselves)",
                           parents=cp)
    add_out_argument(tlst)
    tlst.set_defaults(func=cmd_token_list)
    trev = tsub.add_parser("revoke", help="revoke a token at once", parents=cp)
    trev.add_argument("name")
    trev.set_defaults(func=cmd_token_revoke)

    res = sub.add_parser("reseller", help="resellers (partners owning subscribers and plans)",
                         parents=cp)
    rsub = res.add_subparsers(dest="reseller_command", metavar="ACTION", required=True)
    radd = rsub.add_parser("add", help="add a reseller", parents=cp)
    radd.add_argument("name")
    radd.add_argument("--description", default="")
    radd.set_defaults(func=cmd_reseller_add)
    rlst = rsub.add_parser("list", help="list resellers", parents=cp)
    add_out_argument(rlst)
    rlst.set_defaults(func=cmd_reseller_list)
    rshow = rsub.add_parser("show", help="show one reseller", parents=cp)
    rshow.add_argument("name")
    add_out_argument(rshow)
    rshow.set_defaults(func=cmd_reseller_show)
    rset = rsub.add_parser("set", help="change a reseller's description", parents=cp)
    rset.add_argument("name")
    rset.add_argument("--description", required=True)
    rset.set_defaults(func=cmd_reseller_set)
    rrm = rsub.add_parser("remove", help="remove a reseller that owns nothing", parents=cp)
    rrm.add_argument("name")
    rrm.set_defaults(func=cmd_reseller_remove)
    from radbill.cli.reseller_money import register_money

    register_money(rsub, cp)

    aud = sub.add_parser("audit", help="the audit log", parents=cp)
    asub = aud.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    alst = asub.add_parser("list", help="changes, newest first", parents=cp)
    alst.add_argument("--object", metavar="TYPE[:KEY]",
                      help="e.g. subscriber or subscriber:alice")
    alst.add_argument("--operator", "--actor", dest="actor", metavar="NAME",
                      help="who: an operator login, a token name, or operator:NAME, cli:USER")
    alst.add_argument("--limit", type=int, default=50)
    alst.add_argument("--offset", type=int, default=0)
    add_out_argument(alst)
    alst.set_defaults(func=cmd_audit_list)


def _password_options(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--password", help="the password (visible in ps; prefer --password-stdin)")
    g.add_argument("--password-stdin", action="store_true",
                   help="read the password from standard input (prompted on a terminal)")


def _password(args: argparse.Namespace) -> str:
    if args.password is not None:
        return str(args.password)
    if args.password_stdin and not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise InvalidInput("no password on standard input")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise InvalidInput("give --password or --password-stdin")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise InvalidInput("the passwords differ")
    return first


def cmd_operator_add(args: argparse.Namespace) -> int:
    operators.validate_operator_login(args.login)  # fail fast, before argon2
    hashed = operators.hash_operator_password(_password(args))
    info = run_as(args, operators.thd_add_operator, args.login, hashed, args.role,
                  args.reseller, args.description)
    print(f"operator {info.login!r} added (role {info.role}"
          + (f", reseller {info.reseller}" if info.reseller else "") + ")")
    return 0


def cmd_operator_list(args: argparse.Namespace) -> int:
    rows = [i.as_dict() for i in run_as(args, operators.thd_list_operators)]
    emit_list(rows, OPERATOR_COLUMNS, args.out, root="operators", item="operator")
    return 0


def cmd_operator_show(args: argparse.Namespace) -> int:
    emit_object(run_as(args, operators.thd_get_operator, args.login).as_dict(), args.out,
                item="operator")
    return 0


def cmd_operator_set(args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {k: getattr(args, k) for k in
                               ("role", "reseller", "enabled", "description") if hasattr(args, k)}
    if not changes:
        raise InvalidInput("nothing to change; give at least one option (see --help)")
    info = run_as(args, operators.thd_update_operator, args.login, changes)
    print(f"operator {info.login!r} changed: " + ", ".join(sorted(changes)))
    return 0


def cmd_operator_passwd(args: argparse.Namespace) -> int:
    hashed = operators.hash_operator_password(_password(args))
    info = run_as(args, operators.thd_set_operator_password, args.login, hashed)
    print(f"password of operator {info.login!r} changed; its sessions were ended")
    return 0


def cmd_operator_remove(args: argparse.Namespace) -> int:
    info = run_as(args, operators.thd_remove_operator, args.login)
    print(f"operator {info.login!r} removed")
    return 0


def cmd_token_add(args: argparse.Namespace) -> int:
    new = run_as(args, tokens.thd_add_token, args.name, args.role, args.reseller, args.expires)
    print(new.token)  # alone on stdout: TOKEN=$(radbill token add ...)
    print(f"token {new.info.name!r} (role {new.info.role}) created; it is shown only now",
          file=sys.stderr)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    rows = [t.as_dict() for t in run_as(args, tokens.thd_list_tokens)]
    emit_list(rows, TOKEN_COLUMNS, args.out, root="tokens", item="token")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    info = run_as(args, tokens.thd_revoke_token, args.name)
    print(f"token {info.name!r} revoked")
    return 0


def cmd_reseller_add(args: argparse.Namespace) -> int:
    info = run_as(args, resellers.thd_add_reseller, args.name, args.description)
    print(f"reseller {info.name!r} added")
    return 0


def cmd_reseller_list(args: argparse.Namespace) -> int:
    rows = [r.as_dict() for r in run_as(args, resellers.thd_list_resellers)]
    emit_list(rows, RESELLER_COLUMNS, args.out, root="resellers", item="reseller")
    return 0


def cmd_reseller_show(args: argparse.Namespace) -> int:
    emit_object(run_as(args, resellers.thd_get_reseller, args.name).as_dict(), args.out,
                item="reseller")
    return 0


def cmd_reseller_set(args: argparse.Namespace) -> int:
    info = run_as(args, resellers.thd_update_reseller, args.name,
                  {"description": args.description})
    print(f"reseller {info.name!r} changed: description")
    return 0


def cmd_reseller_remove(args: argparse.Namespace) -> int:
    info = run_as(args, resellers.thd_remove_reseller, args.name)
    print(f"reseller {info.name!r} removed")
    return 0


def cmd_audit_list(args: argparse.Namespace) -> int:
    object_type = object_key = None
    if args.object:
        object_type, _, key = args.object.partition(":")
        object_key = key or None
    rows = run_as(args, audit.thd_list_audit, object_type, object_key, args.actor,
                  args.limit, args.offset)
    out = [r.as_dict() for r in rows]
    if args.out == "text":
        for r in out:
            r["object"] = f"{r['object_type']}:{r['object']}"
    emit_list(out, AUDIT_COLUMNS if args.out == "text" else list(out[0]) if out else [],
              args.out, root="audit", item="entry")
    return 0
