"""Prepaid cards' tables: batches, cards (a serial and the hash of a secret PIN), PIN attempts.

Index choice:

* ``card.uq(serial)``: activation and hotspot login find a card by its serial.
* ``card(batch_id, id)``: a batch's cards in print order (export, list).
* ``card_attempt`` is keyed by its scope (``sub:<id>`` or ``addr:<ip>``): one
  row per subscriber or address that typed a wrong PIN, read and updated
  under its row lock at every activation attempt.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, UTCDateTime, utcnow


class CardStatus(enum.StrEnum):
    ACTIVE = "active"    # sold or on sale, not yet used
    BLOCKED = "blocked"  # stolen batch, refunded, ...: refused until unblocked
    USED = "used"        # activated once; never again


class CardBatch(Base):
    __tablename__ = "card_batch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    value: Mapped[int] = mapped_column(BigInteger, comment="minor units credited per card")
    currency: Mapped[str] = mapped_column(String(3))
    count: Mapped[int] = mapped_column(Integer)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plan.id", ondelete="RESTRICT"),
                                                default=None)
    validity_days: Mapped[int | None] = mapped_column(
        Integer, default=None, comment="voucher subscriber lifetime from first use")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    reseller_id: Mapped[int | None] = mapped_column(
        ForeignKey("reseller.id", ondelete="RESTRICT"), default=None)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Card(Base):
    __tablename__ = "card"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("card_batch.id", ondelete="RESTRICT"))
    serial: Mapped[str] = mapped_column(String(32), unique=True)
    pin_hash: Mapped[str] = mapped_column(String(128), comment="sha256$salt$hex of the PIN")
    status: Mapped[str] = mapped_column(String(10), default=CardStatus.ACTIVE.value)
    status_reason: Mapped[str] = mapped_column(String(255), default="")
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriber.id", ondelete="SET NULL"), default=None)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    activated_via: Mapped[str | None] = mapped_column(String(16), default=None,
                                                      comment="operator|selfcare|api|radius")
    activated_from: Mapped[str | None] = mapped_column(String(64), default=None)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    ledger_entry_id: Mapped[int | None] = mapped_column(BigInteger, default=None)

    __table_args__ = (Index("ix_card_batch_id_id", "batch_id", "id"),
                      Index("ix_card_valid_until", "valid_until"))


class CardAttempt(Base):
    __tablename__ = "card_attempt"

    scope: Mapped[str] = mapped_column(String(160), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
