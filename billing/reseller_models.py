"""Resellers' money with the operator: a prepaid balance, its ledger, wholesale rates per plan.

``reseller_id`` references ``reseller`` (migration 0325, which depends on the access
branch that creates it): the balance cache goes with its reseller, the ledger keeps a
reseller with money history from being removed.

* ``reseller_entry.uq(idempotency_key)``: a draw is keyed on the subscriber payment it pays
  for (``rs:<payment key>``), so a replayed payment never draws twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from billing.models import BigId
from core.db.base import Base, UTCDateTime, utcnow


class ResellerAccount(Base):
    __tablename__ = "reseller_account"

    reseller_id: Mapped[int] = mapped_column(ForeignKey("reseller.id", ondelete="CASCADE"),
                                             primary_key=True,
                                             comment="reseller.id")
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[int] = mapped_column(BigInteger, default=0,
                                         comment="cache of SUM(reseller_entry.amount)")
    credit_limit: Mapped[int] = mapped_column(BigInteger, default=0)


class ResellerEntry(Base):
    __tablename__ = "reseller_entry"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reseller_id: Mapped[int] = mapped_column(ForeignKey("reseller.id", ondelete="RESTRICT"),
                                             comment="reseller.id")
    kind: Mapped[str] = mapped_column(String(16), comment="topup|draw|adjustment")
    amount: Mapped[int] = mapped_column(BigInteger, comment="minor units; draws < 0")
    idempotency_key: Mapped[str] = mapped_column(String(191), unique=True)
    reference: Mapped[str | None] = mapped_column(String(128), default=None)
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_reseller_entry_reseller_id_id", "reseller_id", "id"),
                      Index("ix_reseller_entry_created_at", "created_at"))


class PlanWholesale(Base):
    __tablename__ = "plan_wholesale"

    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id", ondelete="CASCADE"),
                                         primary_key=True)
    percent: Mapped[str] = mapped_column(String(8), comment="of each payment the reseller "
                                                            "owes the operator")
