"""Prepaid cards and hotspot vouchers: batches, PINs shown once, exactly-once activation.

A card is a serial (printed, not secret) and a PIN (secret, random from
:mod:`secrets`). Only ``sha256$<salt>$<hex>`` of the PIN is stored: a PIN
has 40+ bits of entropy and the lockout below stops guessing, so a fast
salted hash is enough and a batch of 100,000 cards is generated in seconds
(argon2 at ~70 ms a card would take two hours).

Activation (by an operator, the subscriber in self-care, the API, or a
hotspot login over RADIUS with the serial as login and the PIN as password)
locks the card row, checks it, and books the value as a payment with method
``card`` and the idempotency key ``card:<serial>`` in the same transaction,
so two concurrent attempts credit once: the second sees ``used``.

Wrong PINs are counted per subscriber and per client address (table
``card_attempt``); after :attr:`CardPolicy.max_failures` within
:attr:`CardPolicy.window` further attempts are refused until
:attr:`CardPolicy.lockout` has passed. A refused attempt still commits its
counters: activation returns an :class:`Activation` with the reason instead
of raising, and the caller turns a refusal into an error.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing.card_models import Card, CardAttempt, CardBatch, CardStatus
from billing.errors import BillingError
from billing.models import EntryKind
from billing.payments import PaymentResult, thd_add_payment
from core.config import CardsConfig
from core.db.base import utcnow
from core.db.models import Plan, Subscriber, SubscriberStatus
from core.errors import AlreadyExists, InvalidInput, NotFound

MAX_BATCH = 1_000_000
SERIAL_DIGITS = 12
CHUNK = 500


class CardRefused(BillingError):
    """A card activation refused: wrong PIN, locked out, blocked, expired or used."""


class Refusal(enum.StrEnum):
    WRONG_PIN = "wrong_pin"        # also an unknown serial: never confirm a serial exists
    LOCKED_OUT = "locked_out"
    BLOCKED = "blocked"
    EXPIRED = "expired"
    USED = "used"
    NO_PLAN = "no_plan"            # a hotspot login with a card that has no plan
    CURRENCY = "currency"
    OTHER_RESELLER = "other_reseller"  # a reseller's card, and a subscriber not of that reseller


REFUSAL_TEXT = {
    Refusal.WRONG_PIN: "wrong serial or PIN",
    Refusal.LOCKED_OUT: "too many wrong PINs; try again later",
    Refusal.BLOCKED: "the card is blocked",
    Refusal.EXPIRED: "the card has expired",
    Refusal.USED: "the card has already been used",
    Refusal.NO_PLAN: "the card carries no plan, so it cannot be a hotspot login",
    Refusal.CURRENCY: "the card is in another currency than the account",
    Refusal.OTHER_RESELLER: "the card belongs to another reseller",
}


@dataclass(frozen=True)
class CardPolicy:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)


DEFAULT_POLICY = CardPolicy()


def card_policy(cards: CardsConfig) -> CardPolicy:
    """The wrong-PIN lockout of ``[cards]``: one reading for the RADIUS voucher path, the CLI
    and the API."""
    return CardPolicy(max_failures=cards.max_failures,
                      window=timedelta(minutes=cards.window_minutes),
                      lockout=timedelta(minutes=cards.lockout_minutes))


@dataclass(frozen=True)
class BatchView:
    id: int
    name: str
    value: int
    currency: str
    count: int
    plan: str | None
    validity_days: int | None
    expires_at: datetime | None
    reseller_id: int | None
    created_at: datetime
    used: int
    blocked: int


@dataclass(frozen=True)
class CardView:
    serial: str
    batch: str
    value: int
    currency: str
    status: str
    status_reason: str
    plan: str | None
    expires_at: datetime | None
    login: str | None
    activated_at: datetime | None
    activated_via: str | None
    activated_from: str | None
    valid_until: datetime | None


@dataclass(frozen=True)
class NewCard:
    serial: str
    pin: str  # shown once, in the batch output; never stored


@dataclass(frozen=True)
class BatchCreated:
    batch: BatchView
    cards: tuple[NewCard, ...]


@dataclass(frozen=True)
class Activation:
    serial: str
    refused: Refusal | None
    login: str | None = None
    payment: PaymentResult | None = None
    created_subscriber: bool = False

    @property
    def ok(self) -> bool:
        return self.refused is None

    def raise_if_refused(self) -> Activation:
        if self.refused is not None:
            raise CardRefused(f"card {self.serial}: {REFUSAL_TEXT[self.refused]}")
        return self


def hash_pin(pin: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(8)
    digest = hashlib.sha256(f"{salt}:{pin}".encode()).hexdigest()
    return f"sha256${salt}${digest}"


def pin_matches(stored: str, pin: str) -> bool:
    try:
        algo, salt, _ = stored.split("$", 2)
    except ValueError:
        return False
    return algo == "sha256" and hmac.compare_digest(hash_pin(pin, salt), stored)


def new_pin(digits: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(digits))


def _new_serial() -> str:
    # A leading non-zero digit keeps serials the same length in spreadsheets.
    return secrets.choice("123456789") + "".join(
        secrets.choice("0123456789") for _ in range(SERIAL_DIGITS - 1))


def _free_serials(session: Session, count: int) -> list[str]:
    serials: set[str] = set()
    while len(serials) < count:
        want = {_new_serial() for _ in range(count - len(serials))} - serials
        for i in range(0, len(want), CHUNK):
            chunk = list(want)[i:i + CHUNK]
            taken = set(session.scalars(select(Card.serial).where(Card.serial.in_(chunk))))
            serials.update(s for s in chunk if s not in taken)
    return sorted(serials)[:count]


def _batch_view(session: Session, b: CardBatch) -> BatchView:
    counts = dict(session.execute(select(Card.status, func.count()).where(Card.batch_id == b.id)
                                  .group_by(Card.status)).all())
    plan = session.scalar(select(Plan.name).where(Plan.id == b.plan_id)) if b.plan_id else None
    return BatchView(id=b.id, name=b.name, value=b.value, currency=b.currency, count=b.count,
                     plan=plan, validity_days=b.validity_days, expires_at=b.expires_at,
                     reseller_id=b.reseller_id, created_at=b.created_at,
                     used=int(counts.get(CardStatus.USED.value, 0)),
                     blocked=int(counts.get(CardStatus.BLOCKED.value, 0)))


def thd_create_batch(session: Session, name: str, count: int, value: int, currency: str,
                     *, expires_at: datetime | None = None, plan: str | None = None,
                     validity_days: int | None = None, reseller_id: int | None = None,
                     pin_digits: int = 12, created_by: str = "",
                     now: datetime | None = None) -> BatchCreated:
    """Generate ``count`` cards of ``value`` minor units; returns their PINs (only time shown)."""
    name = name.strip()
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        raise InvalidInput("batch NAME must be 1..64 characters without spaces")
    if not 1 <= count <= MAX_BATCH:
        raise InvalidInput(f"--count must be 1..{MAX_BATCH}")
    if value <= 0:
        raise InvalidInput("--value must be greater than 0")
    if not 8 <= pin_digits <= 32:
        raise InvalidInput("PIN length must be 8..32 digits")
    if validity_days is not None and validity_days <= 0:
        raise InvalidInput("--validity must be a positive number of days")
    now = now or utcnow()
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("--expires must be in the future")
    plan_id = None
    if plan is not None:
        plan_id = session.scalar(select(Plan.id).where(Plan.name == plan))
        if plan_id is None:
            raise NotFound(f"plan {plan!r} not found")
    if session.scalar(select(CardBatch.id).where(CardBatch.name == name)) is not None:
        raise AlreadyExists(f"card batch {name!r} already exists")
    batch = CardBatch(name=name, value=value, currency=currency, count=count, plan_id=plan_id,
                      validity_days=validity_days, expires_at=expires_at,
                      reseller_id=reseller_id, created_by=created_by[:128], created_at=now)
    session.add(batch)
    session.flush()
    cards = [NewCard(serial, new_pin(pin_digits)) for serial in _free_serials(session, count)]
    session.execute(Card.__table__.insert(), [
        {"batch_id": batch.id, "serial": c.serial, "pin_hash": hash_pin(c.pin),
         "status": CardStatus.ACTIVE.value, "status_reason": ""} for c in cards])
    return BatchCreated(batch=_batch_view(session, batch), cards=tuple(cards))


def _batch(session: Session, name: str) -> CardBatch:
    b = session.scalars(select(CardBatch).where(CardBatch.name == name)).one_or_none()
    if b is None:
        raise NotFound(f"card batch {name!r} not found")
    return b


def thd_list_batches(session: Session, reseller_id: int | None = None) -> list[BatchView]:
    q = select(CardBatch).order_by(CardBatch.id)
    if reseller_id is not None:
        q = q.where(CardBatch.reseller_id == reseller_id)
    return [_batch_view(session, b) for b in session.scalars(q)]


_CARD_Q = (select(Card, CardBatch, Plan.name, Subscriber.login)
           .join(CardBatch, CardBatch.id == Card.batch_id)
           .outerjoin(Plan, Plan.id == CardBatch.plan_id)
           .outerjoin(Subscriber, Subscriber.id == Card.subscriber_id))


def _card_view(c: Card, b: CardBatch, plan: str | None, login: str | None) -> CardView:
    return CardView(serial=c.serial, batch=b.name, value=b.value, currency=b.currency,
                    status=c.status, status_reason=c.status_reason, plan=plan,
                    expires_at=b.expires_at, login=login, activated_at=c.activated_at,
                    activated_via=c.activated_via, activated_from=c.activated_from,
                    valid_until=c.valid_until)


def thd_list_cards(session: Session, batch: str | None = None, status: str | None = None,
                   limit: int = 1000, reseller_id: int | None = None) -> list[CardView]:
    q = _CARD_Q
    if batch is not None:
        q = q.where(Card.batch_id == _batch(session, batch).id)
    if status is not None:
        if status not in {s.value for s in CardStatus}:
            raise InvalidInput("--status must be active, blocked or used")
        q = q.where(Card.status == status)
    if reseller_id is not None:
        q = q.where(CardBatch.reseller_id == reseller_id)
    rows = session.execute(q.order_by(Card.id).limit(limit)).all()
    return [_card_view(*r) for r in rows]


def thd_show_card(session: Session, serial: str,
                  reseller_id: int | None = None) -> CardView:
    q = _CARD_Q.where(Card.serial == serial.strip())
    if reseller_id is not None:
        q = q.where(CardBatch.reseller_id == reseller_id)
    row = session.execute(q).one_or_none()
    if row is None:
        raise NotFound(f"card {serial!r} not found")
    return _card_view(*row)


def thd_set_blocked(session: Session, serials: Sequence[str], blocked: bool,
                    reason: str = "", reseller_id: int | None = None) -> list[CardView]:
    """Block or unblock unused cards (a used card stays used)."""
    out = []
    for serial in serials:
        view = thd_show_card(session, serial, reseller_id)
        card = session.scalars(select(Card).where(Card.serial == view.serial)
                               .with_for_update()).one()
        if card.status == CardStatus.USED.value:
            raise InvalidInput(f"card {serial} is used; a used card cannot be "
                               f"{'blocked' if blocked else 'unblocked'}")
        card.status = CardStatus.BLOCKED.value if blocked else CardStatus.ACTIVE.value
        card.status_reason = reason[:255] if blocked else ""
        session.flush()
        out.append(thd_show_card(session, serial))
    return out


def thd_block_batch(session: Session, batch: str, blocked: bool, reason: str = "") -> int:
    b = _batch(session, batch)
    want_from = CardStatus.ACTIVE.value if blocked else CardStatus.BLOCKED.value
    result = session.execute(
        update(Card).where(Card.batch_id == b.id, Card.status == want_from)
        .values(status=CardStatus.BLOCKED.value if blocked else CardStatus.ACTIVE.value,
                status_reason=reason[:255] if blocked else ""))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- activation -------------------------------------------------------------------------------


def _attempt_row(session: Session, scope: str, now: datetime) -> CardAttempt:
    q = select(CardAttempt).where(CardAttempt.scope == scope).with_for_update()
    row = session.scalars(q.execution_options(populate_existing=True)).one_or_none()
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = CardAttempt(scope=scope, failures=0, window_start=now, locked_until=None)
            session.add(row)
    except IntegrityError:
        row = session.scalars(q.execution_options(populate_existing=True)).one()
    return row


def _scopes(subscriber_id: int | None, address: str | None) -> list[str]:
    out = []
    if subscriber_id is not None:
        out.append(f"sub:{subscriber_id}")
    if address:
        out.append(f"addr:{address[:150]}")
    return out


def _locked(session: Session, scopes: Sequence[str], now: datetime) -> bool:
    for scope in scopes:
        row = session.get(CardAttempt, scope)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            return True
    return False


def _count_failure(session: Session, scopes: Sequence[str], policy: CardPolicy,
                   now: datetime) -> None:
    for scope in scopes:
        row = _attempt_row(session, scope, now)
        if now - row.window_start > policy.window:
            row.failures, row.window_start = 0, now
        row.failures += 1
        if row.failures >= policy.max_failures:
            row.locked_until = now + policy.lockout
            row.failures, row.window_start = 0, now


def thd_activate(session: Session, serial: str, pin: str, login: str | None, currency: str,
                 *, via: str = "operator", address: str | None = None,
                 policy: CardPolicy = DEFAULT_POLICY, voucher_password_hash: str | None = None,
                 now: datetime | None = None) -> Activation:
    """Credit the card to ``login``; with ``login=None`` the card becomes its own subscriber.

    The second form is the hotspot voucher: the subscriber's login is the
    serial, its password hash ``voucher_password_hash`` (argon2 of the PIN,
    computed by the caller outside the transaction), its plan the batch's.
    """
    now = now or utcnow()
    serial = serial.strip()
    sub_id = None
    if login is not None:
        sub_id = session.scalar(select(Subscriber.id).where(Subscriber.login == login))
        if sub_id is None:
            raise NotFound(f"no subscriber with login {login!r}")
    scopes = _scopes(sub_id, address)
    if _locked(session, scopes, now):
        return Activation(serial, Refusal.LOCKED_OUT)
    card = session.scalars(select(Card).where(Card.serial == serial).with_for_update()
                           .execution_options(populate_existing=True)).one_or_none()
    if card is None or not pin_matches(card.pin_hash, pin.strip()):
        _count_failure(session, scopes, policy, now)
        return Activation(serial, Refusal.WRONG_PIN)
    for scope in scopes[:1] if sub_id is not None else []:
        row = session.get(CardAttempt, scope)
        if row is not None:
            session.delete(row)
    batch = session.get(CardBatch, card.batch_id)
    assert batch is not None
    if card.status == CardStatus.USED.value:
        return Activation(serial, Refusal.USED)
    if card.status == CardStatus.BLOCKED.value:
        return Activation(serial, Refusal.BLOCKED)
    if batch.expires_at is not None and batch.expires_at <= now:
        return Activation(serial, Refusal.EXPIRED)
    if batch.currency != currency:
        return Activation(serial, Refusal.CURRENCY)
    if login is not None and batch.reseller_id is not None and session.scalar(
            select(Subscriber.reseller_id).where(Subscriber.id == sub_id)) != batch.reseller_id:
        return Activation(serial, Refusal.OTHER_RESELLER)
    created = False
    if login is None:
        if batch.plan_id is None:
            return Activation(serial, Refusal.NO_PLAN)
        existing = session.scalars(select(Subscriber).where(Subscriber.login == serial)
                                   ).one_or_none()
        if existing is None:
            sub = Subscriber(login=serial, plan_id=batch.plan_id, reseller_id=batch.reseller_id,
                             password_hash=voucher_password_hash,
                             status=SubscriberStatus.ACTIVE,
                             description=f"voucher from card batch {batch.name}")
            session.add(sub)
            session.flush()
            created = True
        else:
            sub = existing
        sub_id, login = sub.id, sub.login
        if batch.validity_days:
            card.valid_until = now + timedelta(days=batch.validity_days)
    card.status = CardStatus.USED.value
    card.subscriber_id = sub_id
    card.activated_at = now
    card.activated_via = via[:16]
    card.activated_from = (address or "")[:64] or None
    payment = thd_add_payment(session, login, batch.value, currency, reference=f"card:{serial}",
                              kind=EntryKind.PAYMENT, description=f"card {serial} ({batch.name})",
                              now=now, method="card", key=f"card:{serial}")
    card.ledger_entry_id = payment.entry.id
    session.flush()
    from billing.money import format_amount
    from billing.notify import enqueue_account

    enqueue_account(session, "card_activated", payment.account.id, {
        "serial": serial, "value": format_amount(batch.value, currency), "currency": currency,
        "via": via}, now)
    return Activation(serial, None, login=login, payment=payment, created_subscriber=created)


def thd_expire_vouchers(session: Session, now: datetime | None = None,
                        limit: int = 1000) -> list[str]:
    """Disable voucher subscribers whose validity has run out; returns their logins."""
    now = now or utcnow()
    rows = session.execute(
        select(Subscriber.id, Subscriber.login).join(Card, Card.subscriber_id == Subscriber.id)
        .where(Card.valid_until.is_not(None), Card.valid_until <= now,
               Subscriber.status == SubscriberStatus.ACTIVE,
               Subscriber.login == Card.serial).limit(limit)).all()
    if rows:
        session.execute(update(Subscriber).where(Subscriber.id.in_([r[0] for r in rows]))
                        .values(status=SubscriberStatus.DISABLED, updated_at=now))
    return [r[1] for r in rows]


def thd_card_secret_for_login(session: Session, serial: str) -> bool:
    """Whether ``serial`` is an unused card with a plan (a hotspot voucher login candidate)."""
    row = session.execute(select(Card.status, CardBatch.plan_id)
                          .join(CardBatch, CardBatch.id == Card.batch_id)
                          .where(Card.serial == serial)).one_or_none()
    return row is not None and row[0] == CardStatus.ACTIVE.value and row[1] is not None
