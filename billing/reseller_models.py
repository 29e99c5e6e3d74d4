"""Resellers' money with the operator: a prepaid balance, its ledger, wholesale rates per plan.

``reseller_id`` has no foreign key: ``reseller`` lives on the access branch of the
migrations, and a cross-branch dependency would make that branch's head disappear from
``alembic_version``; a reseller that owns anything cannot be removed anyway.

* ``reseller_entry.uq(idempotency_key)``: a draw is keyed on the subscriber payment it pays
  for (``rs:<payment key>``), so a replayed payment never draws twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from billing.models import BigId
from core.db.base import Base, UTCDateTime, utcnow


class ResellerAccount(Base):
    __tablename__ = "reseller_account"

    reseller_id: Mapped[int] = mapped_column(Integer, primary_key=True,
                                             comment="reseller.id (no FK: another branch)")
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[int] = mapped_column(BigInteger, default=0,
                                         comment="cache of SUM(reseller_entry.amount)")
    credit_limit: Mapped[int] = mapped_column(BigInteger, default=0)


class ResellerEntry(Base):
    __tablename__ = "reseller_entry"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reseller_id: Mapped[int] = mapped_column(Integer, comment="reseller.id")
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
