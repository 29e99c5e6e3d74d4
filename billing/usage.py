"""Usage deltas: the interface through which accounting pushes usage to billing.

Billing owns this contract. Accounting computes, inside the transaction that
stores an Accounting-Request, how much a session or call grew (seconds,
octets, call duration) and hands the deltas to a sink injected at wiring
(``thd_record_usage`` here by default), in that same transaction: a delta
exists exactly when the record change that caused it was committed, so a
retransmitted or replayed packet (which changes nothing) produces none.

Until billing rates them, deltas are only stored in ``usage_delta``. The
``idempotency_key`` is unique: inserting the same delta twice is a no-op, so
a consumer may also re-send. Octet directions are the NAS's: ``octets_in`` is
Acct-Input-Octets (from the subscriber, i.e. upload).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, false
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db.base import Base, UTCDateTime, utcnow

UsageSource = Literal["session", "call"]


@dataclass(frozen=True)
class UsageDelta:
    """Usage that happened between ``period_start`` and ``period_end`` on one session or call."""

    subscriber_id: int
    source: UsageSource
    source_id: str  # the session's or call's unique id (stable across replays)
    seconds: int
    octets_in: int
    octets_out: int
    period_start: datetime
    period_end: datetime
    idempotency_key: str
    destination: str | None = None  # calls: the dialled number
    caller: str | None = None  # calls: the calling number
    total_seconds: int = 0  # the session's or call's duration after this delta
    final: bool = False  # the session or call has ended (its Stop was stored)


_FIELDS = tuple(f.name for f in fields(UsageDelta))

#: What accounting calls with its open transaction and the deltas of one commit.
UsageSink = Callable[[Session, Sequence[UsageDelta]], None]


class UsageDeltaRow(Base):
    __tablename__ = "usage_delta"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(8))
    source_id: Mapped[str] = mapped_column(String(64))
    seconds: Mapped[int] = mapped_column(BigInteger)
    octets_in: Mapped[int] = mapped_column(BigInteger)
    octets_out: Mapped[int] = mapped_column(BigInteger)
    destination: Mapped[str | None] = mapped_column(String(64))
    caller: Mapped[str | None] = mapped_column(String(64))
    total_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    final: Mapped[bool] = mapped_column(Boolean, default=False)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set by billing (billing.charging) in the transaction that charges the delta;
    # added by migration 0310_billing. (rated, id) is billing's work queue.
    rated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Set with ``rated`` (migration 0350): what this delta cost, and which ledger entry
    # carries it: the one per account per charging transaction, keyed
    # usage:<account id>:<ledger_batch> (NULL: nothing charged). An integer and no index:
    # this column is written for every delta, and an entry's deltas are found through
    # the subscriber's index (subscriber_id, period_end) plus this value.
    charged: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    ledger_batch: Mapped[int | None] = mapped_column(BigInteger, default=None)

    __table_args__ = (
        Index("ix_usage_delta_subscriber_id_period_end", "subscriber_id", "period_end"),
        Index("ix_usage_delta_rated_id", "rated", "id"),
    )


def thd_record_usage(session: Session, deltas: Sequence[UsageDelta]) -> None:
    """Insert deltas, skipping any whose idempotency key is already stored."""
    if not deltas:
        return
    table: Any = UsageDeltaRow.__table__
    now = utcnow()
    names = _FIELDS
    # Not dataclasses.asdict: it deep-copies, and this runs for every Interim-Update.
    rows = [{**{n: getattr(d, n) for n in names}, "created_at": now} for d in deltas]
    stmt: Any
    if session.get_bind().dialect.name == "mysql":
        stmt = mysql.insert(table)
        stmt = stmt.on_duplicate_key_update(idempotency_key=stmt.inserted.idempotency_key)
    else:
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=["idempotency_key"])
    session.execute(stmt, rows)
