"""radbill notify|webhook: who is told what, and the outbox.

    radbill notify contact LOGIN --email ADDR [--language en|ru] | --remove
    radbill notify threshold PLAN AMOUNT|none     low-balance warning below AMOUNT
    radbill notify list [--status pending|sending|sent|dead] [--limit N]
    radbill notify retry ID                       a dead notification gets another round
    radbill webhook add NAME URL --secret SECRET|- [--events a,b|*]
    radbill webhook list | remove NAME
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from billing.accounts import find_subscriber
from billing.money import check_currency, format_amount, parse_amount
from billing.notify import EVENTS
from billing.notify_models import (
    LowBalanceThreshold,
    Notification,
    NotificationStatus,
    NotifyContact,
    WebhookEndpoint,
)
from core.db.base import utcnow
from core.db.models import Plan
from core.errors import AlreadyExists, InvalidInput, NotFound
from radbill.cli.context import CliContext, run_once, stdin_value
from radbill.cli.output import add_out_argument, emit_list

EMAIL_RE = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")
NOTIFY_COLUMNS = ["id", "uid", "event", "channel", "target", "status", "attempts",
                  "next_attempt_at", "last_error"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from radbill.cli import common_parent

    cp = [common_parent()]
    n = sub.add_parser("notify", help="notification contacts, thresholds and the outbox",
                       parents=cp)
    nsub = n.add_subparsers(dest="notify_command", metavar="ACTION", required=True)
    c = nsub.add_parser("contact", help="a subscriber's e-mail for notifications", parents=cp)
    c.add_argument("login")
    c.add_argument("--email")
    c.add_argument("--language", default="en", choices=["en", "ru"])
    c.add_argument("--remove", action="store_true")
    c.set_defaults(func=cmd_contact)
    t = nsub.add_parser("threshold", help="a plan's low-balance warning level", parents=cp)
    t.add_argument("plan")
    t.add_argument("amount", help="e.g. 5.00, or 'none'")
    t.set_defaults(func=cmd_threshold)
    ls = nsub.add_parser("list", help="the outbox, newest first", parents=cp)
    ls.add_argument("--status", choices=[s.value for s in NotificationStatus])
    ls.add_argument("--limit", type=int, default=50)
    add_out_argument(ls)
    ls.set_defaults(func=cmd_list)
    r = nsub.add_parser("retry", help="send a dead notification again", parents=cp)
    r.add_argument("id", type=int)
    r.set_defaults(func=cmd_retry)

    w = sub.add_parser("webhook", help="webhook endpoints for notifications", parents=cp)
    wsub = w.add_subparsers(dest="webhook_command", metavar="ACTION", required=True)
    wa = wsub.add_parser("add", help="add an endpoint", parents=cp)
    wa.add_argument("name")
    wa.add_argument("url")
    wa.add_argument("--secret", required=True, help="HMAC key; '-' reads it from stdin")
    wa.add_argument("--events", default="*", help="comma-separated events, or *")
    wa.set_defaults(func=cmd_webhook_add)
    wl = wsub.add_parser("list", help="endpoints (secrets not shown)", parents=cp)
    add_out_argument(wl)
    wl.set_defaults(func=cmd_webhook_list)
    wr = wsub.add_parser("remove", help="remove an endpoint", parents=cp)
    wr.add_argument("name")
    wr.set_defaults(func=cmd_webhook_remove)


def cmd_contact(args: argparse.Namespace) -> int:
    if args.remove == bool(args.email):
        raise InvalidInput("give --email ADDR or --remove")
    if args.email and (len(args.email) > 254 or not EMAIL_RE.match(args.email)):
        raise InvalidInput(f"--email {args.email!r} is not an e-mail address")

    def fn(s: Session) -> str:
        sub = find_subscriber(s, args.login)
        row = s.get(NotifyContact, sub.id)
        if args.remove:
            if row is not None:
                s.delete(row)
            return f"{args.login}: no notification e-mail"
        if row is None:
            s.add(NotifyContact(subscriber_id=sub.id, email=args.email,
                                language=args.language))
        else:
            row.email, row.language = args.email, args.language
        return f"{args.login}: notifications to {args.email} ({args.language})"

    print(run_once(args, fn))
    return 0


def cmd_threshold(args: argparse.Namespace) -> int:
    ctx = CliContext(args)
    try:
        currency = check_currency(ctx.config.billing.currency)
        amount = None if args.amount.lower() == "none" else parse_amount(
            args.amount, currency, what="threshold")

        def fn(s: Session) -> str:
            plan_id = s.scalar(select(Plan.id).where(Plan.name == args.plan))
            if plan_id is None:
                raise NotFound(f"plan {args.plan!r} not found")
            row = s.get(LowBalanceThreshold, plan_id)
            if amount is None:
                if row is not None:
                    s.delete(row)
                return f"plan {args.plan}: no low-balance warning"
            if row is None:
                s.add(LowBalanceThreshold(plan_id=plan_id, amount=amount))
            else:
                row.amount = amount
            return f"plan {args.plan}: warn below {format_amount(amount, currency)} {currency}"

        print(ctx.run(fn))
    finally:
        ctx.close()
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    def fn(s: Session) -> list[dict[str, Any]]:
        q = select(Notification).order_by(Notification.id.desc()).limit(args.limit)
        if args.status:
            q = q.where(Notification.status == args.status)
        return [{c: getattr(r, c) for c in NOTIFY_COLUMNS} for r in s.scalars(q)]

    emit_list(run_once(args, fn), NOTIFY_COLUMNS, args.out, root="notifications",
              item="notification")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    def fn(s: Session) -> str:
        r = s.get(Notification, args.id)
        if r is None:
            raise NotFound(f"notification {args.id} not found")
        if r.status != NotificationStatus.DEAD.value:
            raise InvalidInput(f"notification {args.id} is {r.status}, not dead")
        r.status, r.attempts, r.next_attempt_at = NotificationStatus.PENDING.value, 0, utcnow()
        return f"notification {args.id} ({r.uid}) queued again"

    print(run_once(args, fn))
    return 0


def cmd_webhook_add(args: argparse.Namespace) -> int:
    if not re.match(r"^https?://[^\s]+$", args.url) or len(args.url) > 512:
        raise InvalidInput("URL must be an http:// or https:// address")
    events = args.events.strip()
    if events != "*":
        names = [e.strip() for e in events.split(",") if e.strip()]
        unknown = [e for e in names if e not in EVENTS]
        if unknown or not names:
            raise InvalidInput(f"--events: unknown {unknown[0] if unknown else '(empty)'!r} "
                               f"(known: {', '.join(EVENTS)})")
        events = ",".join(names)
    secret = stdin_value(args.secret, "webhook secret")
    if len(secret) < 16 or len(secret) > 128:
        raise InvalidInput("--secret must be 16..128 characters")

    def fn(s: Session) -> str:
        if s.scalar(select(WebhookEndpoint.id).where(WebhookEndpoint.name == args.name)):
            raise AlreadyExists(f"webhook {args.name!r} already exists")
        s.add(WebhookEndpoint(name=args.name[:64], url=args.url, secret=secret,
                              events=events, enabled=True))
        return f"webhook {args.name}: {args.url} ({events})"

    print(run_once(args, fn))
    return 0


def cmd_webhook_list(args: argparse.Namespace) -> int:
    def fn(s: Session) -> list[dict[str, Any]]:
        return [{"name": w.name, "url": w.url, "events": w.events, "enabled": w.enabled}
                for w in s.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.name))]

    emit_list(run_once(args, fn), ["name", "url", "events", "enabled"], args.out,
              root="webhooks", item="webhook")
    return 0


def cmd_webhook_remove(args: argparse.Namespace) -> int:
    def fn(s: Session) -> int:
        return int(s.execute(delete(WebhookEndpoint).where(
            WebhookEndpoint.name == args.name)).rowcount)  # type: ignore[attr-defined]

    if not run_once(args, fn):
        raise NotFound(f"webhook {args.name!r} not found")
    print(f"webhook {args.name} removed")
    return 0
