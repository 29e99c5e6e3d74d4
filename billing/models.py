"""Billing's tables: accounts, the ledger, prices, charging sessions, allowances, events.

Money columns are BIGINT minor units (amounts) or micro-units (prices); see
billing.money. Index choice:

* ``ledger_entry.uq(idempotency_key)``: the one guard against charging twice.
* ``ledger_entry(account_id, id)``: an account's history, newest first.
* ``charging_session.uq(source, source_id)``: a usage delta finds its session.
* ``charging_session(account_id, state)``: what an account holds in reservations,
  read under the account's row lock at every reservation and charge.
* ``charging_session(state, expires_at)``: the loop's "which holds went stale".
* ``billing_account(status)``/``(next_fee_at)``: the loop's cut-off and fee scans.
* ``charging_session(cut_result)``: captive sessions due to be restored after a payment
  (written at cut-off and restore only, so it costs nothing on the usage path).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer, "sqlite")


class AccountStatus(enum.StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"  # blocked for money: new sessions refused, live ones cut


class EntryKind(enum.StrEnum):
    CHARGE = "charge"
    PAYMENT = "payment"
    ADJUSTMENT = "adjustment"
    REFUND = "refund"
    FEE = "fee"


class ChargingState(enum.StrEnum):
    RESERVED = "reserved"  # held at Access-Request, no usage seen yet
    ACTIVE = "active"      # usage is flowing; holds the next slice
    CLOSED = "closed"      # session over; holds nothing
    EXPIRED = "expired"    # never started, or went silent; holds nothing


HOLDING_STATES = (ChargingState.RESERVED.value, ChargingState.ACTIVE.value)


class BillingAccount(Base):
    __tablename__ = "billing_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscriber.id", ondelete="RESTRICT"), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[int] = mapped_column(BigInteger, default=0,
                                         comment="cache of SUM(ledger_entry.amount)")
    credit_limit: Mapped[int | None] = mapped_column(
        BigInteger, default=None, comment="minor units; NULL = the plan's")
    status: Mapped[str] = mapped_column(String(16), default=AccountStatus.ACTIVE.value)
    status_reason: Mapped[str] = mapped_column(String(255), default="")
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    next_fee_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_billing_account_status", "status"),
        Index("ix_billing_account_next_fee_at", "next_fee_at"),
    )


class LedgerEntry(Base):
    """Immutable: rows are inserted, never updated or deleted (ledger check proves the sum)."""

    __tablename__ = "ledger_entry"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("billing_account.id",
                                                       ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger, comment="minor units; charges < 0")
    idempotency_key: Mapped[str] = mapped_column(String(191), unique=True)
    reference: Mapped[str | None] = mapped_column(String(128), default=None,
                                                  comment="external payment id")
    source_id: Mapped[str | None] = mapped_column(String(64), default=None,
                                                  comment="session or call charged")
    description: Mapped[str] = mapped_column(String(255), default="")
    method: Mapped[str | None] = mapped_column(
        String(32), default=None, comment="payments: manual|card|import|gateway:<name>")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_ledger_entry_account_id_id", "account_id", "id"),
                      Index("ix_ledger_entry_created_at", "created_at"),
                      Index("ix_ledger_entry_account_id_created_at", "account_id",
                            "created_at"))


class TariffRow(Base):
    __tablename__ = "tariff"

    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id", ondelete="CASCADE"),
                                         primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    time_price: Mapped[int] = mapped_column(BigInteger, default=0)
    time_unit: Mapped[int] = mapped_column(Integer, default=60)
    time_increment: Mapped[int] = mapped_column(Integer, default=1)
    price_per_mb_in: Mapped[int] = mapped_column(BigInteger, default=0)
    price_per_mb_out: Mapped[int] = mapped_column(BigInteger, default=0)
    monthly_fee: Mapped[int] = mapped_column(BigInteger, default=0)
    daily_fee: Mapped[int] = mapped_column(BigInteger, default=0)
    credit_limit: Mapped[int] = mapped_column(BigInteger, default=0)
    allowance_period: Mapped[str | None] = mapped_column(String(8), default=None)
    allowance_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    allowance_octets: Mapped[int] = mapped_column(BigInteger, default=0)
    allowance_after: Mapped[str] = mapped_column(String(16), default="charge")
    throttle_rate_limit: Mapped[str | None] = mapped_column(String(64), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class TariffBand(Base):
    __tablename__ = "tariff_band"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(32))
    days: Mapped[str] = mapped_column(String(32), comment="0=Mon..6=Sun, comma separated")
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer, comment="<= start wraps past midnight")
    time_price: Mapped[int | None] = mapped_column(BigInteger, default=None)
    price_per_mb_in: Mapped[int | None] = mapped_column(BigInteger, default=None)
    price_per_mb_out: Mapped[int | None] = mapped_column(BigInteger, default=None)

    __table_args__ = (UniqueConstraint("plan_id", "name"),)


class VoiceRateRow(Base):
    __tablename__ = "voice_rate"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id", ondelete="CASCADE"))
    prefix: Mapped[str] = mapped_column(String(32))
    price_per_minute: Mapped[int] = mapped_column(BigInteger)
    connect_fee: Mapped[int] = mapped_column(BigInteger, default=0)
    minimum: Mapped[int] = mapped_column(Integer, default=0)
    increment: Mapped[int] = mapped_column(Integer, default=1)
    description: Mapped[str] = mapped_column(String(128), default="")

    __table_args__ = (UniqueConstraint("plan_id", "prefix"),)


class ChargingSession(Base):
    """A session or call as billing sees it: money held for it and what it was charged."""

    __tablename__ = "charging_session"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("billing_account.id",
                                                       ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(String(8), default=None,
                                               comment="session|call; NULL until usage binds")
    source_id: Mapped[str | None] = mapped_column(String(64), default=None)
    state: Mapped[str] = mapped_column(String(10), default=ChargingState.RESERVED.value)
    nas_id: Mapped[int | None] = mapped_column(Integer, default=None)
    acct_session_id: Mapped[str | None] = mapped_column(String(128), default=None)
    user_name: Mapped[str] = mapped_column(String(128), default="")
    framed_ip: Mapped[str | None] = mapped_column(String(45), default=None)
    destination: Mapped[str | None] = mapped_column(String(64), default=None)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0, comment="minor units held")
    charged: Mapped[int] = mapped_column(BigInteger, default=0, comment="minor units charged")
    rating: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    grant_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    exhausts_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, default=None, comment="when the held money runs out, if it is short")
    throttled: Mapped[bool] = mapped_column(default=False)
    cut_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    cut_result: Mapped[str | None] = mapped_column(String(32), default=None)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_usage_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("source", "source_id"),
        Index("ix_charging_session_account_id_state", "account_id", "state"),
        Index("ix_charging_session_state_expires_at", "state", "expires_at"),
        Index("ix_charging_session_nas_id_acct_session_id", "nas_id", "acct_session_id"),
        Index("ix_charging_session_cut_result", "cut_result"),
    )


class AllowanceUsage(Base):
    __tablename__ = "allowance_usage"

    account_id: Mapped[int] = mapped_column(ForeignKey("billing_account.id",
                                                       ondelete="CASCADE"), primary_key=True)
    period: Mapped[str] = mapped_column(String(10), primary_key=True,
                                        comment="2024-05 or 2024-05-17, tariff's zone")
    seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    octets: Mapped[int] = mapped_column(BigInteger, default=0)


class BillingEvent(Base):
    """What billing did to an account and why: blocks, unblocks, disconnects and their answers."""

    __tablename__ = "billing_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("billing_account.id",
                                                       ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    detail: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_billing_event_account_id_id", "account_id", "id"),)
