"""Prepaid cards through the service layer: batches, listing, blocking, activation.

A reseller's caller sees and acts on its own reseller's batches only (others
answer "not found"). Creating a batch returns its PINs once; they are never
stored in clear, and the audit row keeps only the batch's figures. A refused
activation (wrong PIN, used, expired, blocked) is returned, not raised, so the
failure it records (the wrong-PIN lockout counts) commits; the face raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from billing import cards
from billing.money import format_amount
from core.errors import NotFound
from webadmin.roles import Caller
from webadmin.service import audit, scope


def batch_dict(b: cards.BatchView) -> dict[str, object]:
    return {"name": b.name, "count": b.count, "value": format_amount(b.value, b.currency),
            "currency": b.currency, "plan": b.plan, "validity_days": b.validity_days,
            "expires_at": b.expires_at, "used": b.used, "blocked": b.blocked,
            "created_at": b.created_at}


def card_dict(c: cards.CardView) -> dict[str, object]:
    return {"serial": c.serial, "batch": c.batch, "value": format_amount(c.value, c.currency),
            "currency": c.currency, "status": c.status,
            "status_reason": c.status_reason or None, "plan": c.plan,
            "expires_at": c.expires_at, "login": c.login, "activated_at": c.activated_at,
            "activated_via": c.activated_via, "activated_from": c.activated_from,
            "valid_until": c.valid_until}


def _own_batch(session: Session, caller: Caller, batch: str | None) -> None:
    if batch is None or not caller.scoped:
        return
    if not any(b.name == batch for b in cards.thd_list_batches(session, caller.reseller_id)):
        raise NotFound(f"no card batch {batch!r}")


def thd_create_batch(session: Session, caller: Caller, name: str, count: int, value: int,
                     currency: str, *, expires_at: datetime | None = None,
                     plan: str | None = None, validity_days: int | None = None,
                     reseller: str | None = None, pin_digits: int = 12) -> cards.BatchCreated:
    caller.require("card.write")
    rid = scope.scoped_reseller(session, caller, reseller)
    scope.plan(session, caller, plan)
    created = cards.thd_create_batch(session, name, count, value, currency,
                                     expires_at=expires_at, plan=plan,
                                     validity_days=validity_days, reseller_id=rid,
                                     pin_digits=pin_digits, created_by=caller.actor[:64])
    audit.record(session, caller, "card.batch", "card_batch", name, None,
                 batch_dict(created.batch))
    return created


def thd_list_batches(session: Session, caller: Caller) -> list[cards.BatchView]:
    caller.require("card.read")
    return cards.thd_list_batches(session, caller.reseller_id)


def thd_list_cards(session: Session, caller: Caller, batch: str | None, status: str | None,
                   limit: int) -> list[cards.CardView]:
    caller.require("card.read")
    _own_batch(session, caller, batch)
    return cards.thd_list_cards(session, batch, status, limit, reseller_id=caller.reseller_id)


def thd_show_card(session: Session, caller: Caller, serial: str) -> cards.CardView:
    caller.require("card.read")
    return cards.thd_show_card(session, serial, reseller_id=caller.reseller_id)


def thd_set_blocked(session: Session, caller: Caller, serials: Sequence[str], blocked: bool,
                    reason: str = "") -> list[cards.CardView]:
    caller.require("card.write")
    done = cards.thd_set_blocked(session, serials, blocked, reason,
                                 reseller_id=caller.reseller_id)
    for c in done:
        audit.record(session, caller, "card.block" if blocked else "card.unblock", "card",
                     c.serial, None, {"status": c.status, "reason": reason})
    return done


def thd_block_batch(session: Session, caller: Caller, batch: str, blocked: bool,
                    reason: str = "") -> int:
    caller.require("card.write")
    _own_batch(session, caller, batch)
    n = cards.thd_block_batch(session, batch, blocked, reason)
    audit.record(session, caller, "card.block" if blocked else "card.unblock", "card_batch",
                 batch, None, {"cards": n, "reason": reason})
    return n


def thd_activate(session: Session, caller: Caller, serial: str, pin: str, login: str,
                 currency: str, policy: cards.CardPolicy) -> cards.Activation:
    """Credit a card to a subscriber the caller may see; audited when it was credited."""
    caller.require("card.activate")
    scope.subscriber(session, caller, login)
    if caller.scoped:
        cards.thd_show_card(session, serial, reseller_id=caller.reseller_id)
    result = cards.thd_activate(session, serial, pin, login, currency, via="operator",
                                address=caller.address or caller.actor, policy=policy)
    if result.ok and result.payment is not None:
        audit.record(session, caller, "card.activate", "card", result.serial, None,
                     {"login": result.login,
                      "credited": format_amount(result.payment.entry.amount, currency)})
    return result
