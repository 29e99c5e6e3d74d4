"""The ledger: immutable entries with idempotency keys; a balance is their sum.

Every balance change is one inserted row of ``ledger_entry``; nothing here
updates or deletes one. ``billing_account.balance`` is a cache of the sum,
moved in the same transaction as the insert (the caller holds the account's
row lock), and ``radbill ledger check`` proves cache == SUM for every account.
The idempotency key is UNIQUE: posting a key that exists changes nothing and
returns the stored entry, so replaying a packet or re-running the loop never
charges twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from billing.models import BillingAccount, EntryKind, LedgerEntry
from core.db.base import utcnow

SIGNS = {EntryKind.CHARGE: -1, EntryKind.FEE: -1, EntryKind.PAYMENT: 1, EntryKind.REFUND: 1,
         EntryKind.ADJUSTMENT: 0}


@dataclass(frozen=True)
class Entry:
    id: int
    account_id: int
    kind: str
    amount: int
    idempotency_key: str
    reference: str | None
    source_id: str | None
    description: str
    created_at: datetime


@dataclass(frozen=True)
class Posted:
    entry: Entry
    created: bool  # False: the key existed, nothing changed


def _entry(row: LedgerEntry) -> Entry:
    return Entry(id=row.id, account_id=row.account_id, kind=row.kind, amount=row.amount,
                 idempotency_key=row.idempotency_key, reference=row.reference,
                 source_id=row.source_id, description=row.description,
                 created_at=row.created_at)


def signed_amount(kind: EntryKind, amount: int) -> int:
    """Charges and fees take money (negative), payments and refunds give; adjustments either."""
    sign = SIGNS[kind]
    if sign == 0:
        return amount
    if amount < 0:
        raise ValueError(f"a {kind.value} amount is given as a positive number")
    return sign * amount


def find_entry(session: Session, key: str) -> Entry | None:
    row = session.scalars(select(LedgerEntry).where(LedgerEntry.idempotency_key == key)
                          ).one_or_none()
    return _entry(row) if row is not None else None


def post(session: Session, account: BillingAccount, kind: EntryKind, amount: int, key: str,
         *, reference: str | None = None, source_id: str | None = None,
         description: str = "", now: datetime | None = None,
         method: str | None = None) -> Posted:
    """Insert one entry and move the cached balance; the caller holds the account row lock.

    ``amount`` is the magnitude for charge/fee/payment/refund and the signed
    value for an adjustment.
    """
    existing = find_entry(session, key)
    if existing is not None:
        return Posted(existing, created=False)
    value = signed_amount(kind, amount)
    row = LedgerEntry(account_id=account.id, kind=kind.value, amount=value, idempotency_key=key,
                      reference=reference, source_id=source_id, description=description[:255],
                      method=method, created_at=now or utcnow())
    session.add(row)
    account.balance = account.balance + value
    session.flush()
    return Posted(_entry(row), created=True)


def post_many(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk insert of entries whose keys the caller knows are new (executemany).

    Balances are the caller's to move (one UPDATE per account); a duplicate key
    raises IntegrityError and so rolls the whole batch back: never half a batch.
    """
    if rows:
        session.execute(insert(LedgerEntry), list(rows))


def add_to_balances(session: Session, deltas: dict[int, int]) -> None:
    """balance += delta for each account (its row lock is held by the caller)."""
    if not deltas:
        return
    params = [{"aid": aid, "delta": d} for aid, d in deltas.items() if d]
    if not params:
        return
    table = cast(Table, BillingAccount.__table__)
    session.connection().execute(
        update(table).where(table.c.id == bindparam("aid"))
        .values(balance=table.c.balance + bindparam("delta")), params)


def thd_entries(session: Session, account_id: int, limit: int = 50,
                kinds: Sequence[str] | None = None) -> list[Entry]:
    q = select(LedgerEntry).where(LedgerEntry.account_id == account_id)
    if kinds:
        q = q.where(LedgerEntry.kind.in_(list(kinds)))
    rows = session.scalars(q.order_by(LedgerEntry.id.desc()).limit(limit)).all()
    return [_entry(r) for r in rows]


@dataclass(frozen=True)
class Mismatch:
    account_id: int
    subscriber_id: int
    cached: int
    ledger_sum: int


@dataclass(frozen=True)
class CheckResult:
    accounts: int
    entries: int
    mismatches: tuple[Mismatch, ...]


def thd_check(session: Session) -> CheckResult:
    """Every account's cached balance against SUM(amount) of its entries, in one pass."""
    sums = (select(LedgerEntry.account_id, func.coalesce(func.sum(LedgerEntry.amount), 0)
                   .label("total"), func.count().label("n"))
            .group_by(LedgerEntry.account_id).subquery())
    rows = session.execute(
        select(BillingAccount.id, BillingAccount.subscriber_id, BillingAccount.balance,
               func.coalesce(sums.c.total, 0), func.coalesce(sums.c.n, 0))
        .outerjoin(sums, sums.c.account_id == BillingAccount.id)).all()
    mismatches = tuple(Mismatch(aid, sid, int(bal), int(total))
                       for aid, sid, bal, total, _ in rows if int(bal) != int(total))
    orphans = session.scalar(select(func.count()).select_from(LedgerEntry).where(
        ~LedgerEntry.account_id.in_(select(BillingAccount.id)))) or 0
    if orphans:
        mismatches += (Mismatch(0, 0, 0, int(orphans)),)
    return CheckResult(accounts=len(rows), entries=sum(int(r[4]) for r in rows),
                       mismatches=mismatches)
