"""The notification outbox: rows written in the transaction of the event they report.

Subscriber events (``low_balance``, ``cut_off``, ``restored``, ``payment_received``,
``card_activated``, ``statement_issued``) go to the subscriber's e-mail
(``notify_contact``) and to every enabled webhook endpoint that subscribes
to the event; admin events (``loop_error``, ``disconnect_failed``,
``db_outage``, ``pool_high``) go to ``[notify] admin_emails`` and webhooks.
Each recipient is one row with its own ``uid`` (a UUID4): the id a receiver
de-duplicates on, since delivery is at least once. Nothing is sent here:
billing.notify_delivery claims rows and delivers them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, or_, select
from sqlalchemy.orm import Session

from billing.models import BillingAccount
from billing.notify_models import Channel, Notification, NotifyContact, WebhookEndpoint
from core.db.base import utcnow
from core.db.models import Subscriber

SUBSCRIBER_EVENTS = ("low_balance", "cut_off", "restored", "payment_received",
                     "card_activated", "statement_issued")
ADMIN_EVENTS = ("loop_error", "disconnect_failed", "db_outage", "pool_high")
EVENTS = SUBSCRIBER_EVENTS + ADMIN_EVENTS
IN_CHUNK = 1000

Executor = Session | Connection


def _endpoints(db: Executor, event: str) -> list[str]:
    rows = db.execute(select(WebhookEndpoint.name, WebhookEndpoint.events)
                      .where(WebhookEndpoint.enabled.is_(True))).all()
    return [name for name, events in rows
            if events.strip() == "*" or event in {e.strip() for e in events.split(",")}]


def _row(event: str, channel: Channel, target: str, payload: Mapping[str, Any],
         account_id: int | None, language: str, now: datetime) -> dict[str, Any]:
    return {"uid": str(uuid.uuid4()), "event": event, "channel": channel.value,
            "target": target[:255], "language": language[:8], "account_id": account_id,
            "payload": {"event": event, **payload}, "status": "pending", "attempts": 0,
            "next_attempt_at": now, "claimed_until": None, "last_error": "",
            "created_at": now, "sent_at": None}


def enqueue_accounts(db: Executor, event: str,
                     items: Sequence[tuple[int, Mapping[str, Any]]],
                     now: datetime | None = None) -> int:
    """One event per account (account id, payload); returns the rows written."""
    if not items:
        return 0
    now = now or utcnow()
    hooks = _endpoints(db, event)
    ids = [aid for aid, _ in items]
    contacts: dict[int, tuple[str, str, str]] = {}
    for i in range(0, len(ids), IN_CHUNK):
        for aid, login, email, lang in db.execute(
                select(BillingAccount.id, Subscriber.login, NotifyContact.email,
                       NotifyContact.language)
                .join(Subscriber, Subscriber.id == BillingAccount.subscriber_id)
                .outerjoin(NotifyContact, NotifyContact.subscriber_id == Subscriber.id)
                .where(BillingAccount.id.in_(ids[i:i + IN_CHUNK]))).all():
            contacts[aid] = (login, email or "", lang or "en")
    rows = []
    for aid, payload in items:
        login, email, lang = contacts.get(aid, ("", "", "en"))
        full = {"login": login, "account_id": aid, **payload}
        if email:
            rows.append(_row(event, Channel.EMAIL, email, full, aid, lang, now))
        rows.extend(_row(event, Channel.WEBHOOK, name, full, aid, lang, now) for name in hooks)
    if rows:
        db.execute(insert(Notification), rows)
    return len(rows)


def enqueue_account(db: Executor, event: str, account_id: int,
                    payload: Mapping[str, Any] | None = None,
                    now: datetime | None = None) -> int:
    return enqueue_accounts(db, event, [(account_id, payload or {})], now)


def enqueue_admin(db: Executor, event: str, payload: Mapping[str, Any],
                  now: datetime | None = None) -> int:
    """An operator-facing event: to the admin addresses and subscribed webhooks."""
    now = now or utcnow()
    rows = [_row(event, Channel.ADMIN, "", payload, None, "en", now)]
    rows.extend(_row(event, Channel.WEBHOOK, name, payload, None, "en", now)
                for name in _endpoints(db, event))
    db.execute(insert(Notification), rows)
    return len(rows)


def thd_enqueue_admin(session: Session, event: str, payload: Mapping[str, Any]) -> int:
    return enqueue_admin(session, event, payload)


def any_recipient(db: Executor, event: str) -> bool:
    """Cheap check before a bulk event: contacts or webhooks exist at all."""
    if _endpoints(db, event):
        return True
    return db.execute(select(NotifyContact.subscriber_id).limit(1)).first() is not None


def accounts_with_contacts(db: Executor, ids: Iterable[int]) -> list[int]:
    ids = list(ids)
    out: list[int] = []
    for i in range(0, len(ids), IN_CHUNK):
        out.extend(db.scalars(select(BillingAccount.id)
                              .join(NotifyContact,
                                    NotifyContact.subscriber_id == BillingAccount.subscriber_id)
                              .where(BillingAccount.id.in_(ids[i:i + IN_CHUNK]))))
    return out


def thd_low_balance_scan(session: Session, now: datetime | None = None,
                         limit: int = 1000) -> int:
    """Notify accounts that fell below their plan's threshold once; re-arm those back above."""
    from sqlalchemy import delete

    from billing.money import format_amount
    from billing.notify_models import LowBalanceState, LowBalanceThreshold

    now = now or utcnow()
    ba, lbt, lbs = BillingAccount, LowBalanceThreshold, LowBalanceState
    low = session.execute(
        select(ba.id, ba.balance, ba.currency, lbt.amount)
        .join(Subscriber, Subscriber.id == ba.subscriber_id)
        .join(lbt, lbt.plan_id == Subscriber.plan_id)
        .outerjoin(lbs, lbs.account_id == ba.id)
        .where(ba.balance < lbt.amount, lbs.account_id.is_(None))
        .order_by(ba.id).limit(limit)).all()
    if low:
        session.execute(insert(lbs), [{"account_id": r[0], "notified_at": now} for r in low])
        enqueue_accounts(session, "low_balance", [
            (aid, {"balance": format_amount(bal, cur), "threshold": format_amount(th, cur),
                   "currency": cur}) for aid, bal, cur, th in low], now)
    recovered = select(lbs.account_id).join(ba, ba.id == lbs.account_id).join(
        Subscriber, Subscriber.id == ba.subscriber_id).outerjoin(
        lbt, lbt.plan_id == Subscriber.plan_id).where(
        or_(lbt.amount.is_(None), ba.balance >= lbt.amount))
    ids = list(session.scalars(recovered.limit(limit)))
    if ids:
        session.execute(delete(lbs).where(lbs.account_id.in_(ids)))
    return len(low)
