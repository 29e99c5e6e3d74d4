"""Accounting's tables: sessions, calls, and how far the spool has been replayed.

Index choice (checked with EXPLAIN on MariaDB in tests/test_accounting_indexes.py):

* ``(session_key)``: every Accounting-Request finds the sessions of its key (NAS, user,
  Acct-Session-Id, port), among which accounting.store picks its own by start time; calls
  are found by ``uq(unique_id)``.
* ``(subscriber_id, started_at)``: "the last N sessions of one subscriber", read
  backwards without a sort whatever the table size.
* ``(subscriber_id, stale_deadline)``: live sessions of a subscriber for
  simultaneous-use; closed sessions have no deadline, so only open rows are scanned.
* ``(nas_id, stopped_at)``: the open sessions of one NAS (Accounting-On/Off, listings).
* ``(stale_deadline)``: the sweeper's "which open sessions went silent".
* ``(started_at)``: recent sessions across all subscribers and ``--since``; retention's
  batches (accounting.retention) walk it in (started_at, id) order.
* ``acct_call(stopped_at, last_seen_at)``: the sweep's "which open calls went silent".

Invariant kept by accounting.store: a session is open exactly when
``stopped_at`` is NULL, and then (and only then) ``stale_deadline`` is set.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from accounting import records as R
from core.db.base import Base, UTCDateTime, utcnow

# SQLite only auto-increments an INTEGER PRIMARY KEY; MariaDB gets 64 bits.
BigId = BigInteger().with_variant(Integer, "sqlite")


class AcctSession(Base):
    __tablename__ = "acct_session"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # The session key, or md5 of it and the start second (records.session_row_id); the
    # column comment predates that and stays (a comment change is a migration of its own).
    unique_id: Mapped[str] = mapped_column(String(R.UNIQUE_ID_LEN), unique=True,
                                           comment="md5 of NAS, Acct-Session-Id and User-Name")
    # Migration 0110. NULL only on rows closed long before it (never matched again).
    session_key: Mapped[str | None] = mapped_column(
        String(R.UNIQUE_ID_LEN),
        comment="md5 of acct_unique's parts: NAS, User-Name, Acct-Session-Id, NAS-Port(-Id)")
    # No foreign key on purpose: history outlives a deleted NAS entry, and a spooled
    # record replayed after the NAS was removed must still be stored.
    nas_id: Mapped[int | None] = mapped_column(Integer, comment="nas.id when it was stored")
    nas_identity: Mapped[str] = mapped_column(String(R.LEN_NAS_IDENTITY),
                                              comment="NAS-IP-Address, NAS-Identifier or source")
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriber.id", ondelete="SET NULL"))
    user_name: Mapped[str] = mapped_column(String(R.LEN_LOGIN))
    session_id: Mapped[str] = mapped_column(String(R.LEN_SESSION_ID))
    multi_session_id: Mapped[str | None] = mapped_column(String(R.LEN_SESSION_ID))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, comment="NAS event time, latest")
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime,
                                                   comment="when radbill last heard of it")
    stale_deadline: Mapped[datetime | None] = mapped_column(
        UTCDateTime, comment="open sessions only: closed as stale when passed")
    interim_interval: Mapped[int] = mapped_column(Integer)
    start_seen: Mapped[bool] = mapped_column(Boolean, default=False)
    session_time: Mapped[int] = mapped_column(BigInteger, default=0)
    input_octets: Mapped[int] = mapped_column(BigInteger, default=0)
    output_octets: Mapped[int] = mapped_column(BigInteger, default=0)
    input_packets: Mapped[int] = mapped_column(BigInteger, default=0)
    output_packets: Mapped[int] = mapped_column(BigInteger, default=0)
    framed_ip: Mapped[str | None] = mapped_column(String(R.LEN_IP))
    framed_ipv6_address: Mapped[str | None] = mapped_column(String(R.LEN_IP))
    framed_ipv6_prefix: Mapped[str | None] = mapped_column(String(R.LEN_PREFIX))
    delegated_ipv6_prefix: Mapped[str | None] = mapped_column(String(R.LEN_PREFIX))
    calling_station_id: Mapped[str | None] = mapped_column(String(R.LEN_STATION))
    called_station_id: Mapped[str | None] = mapped_column(String(R.LEN_STATION))
    nas_port: Mapped[int | None] = mapped_column(BigInteger)
    nas_port_id: Mapped[str | None] = mapped_column(String(R.LEN_PORT_ID))
    nas_port_type: Mapped[str | None] = mapped_column(String(R.LEN_PORT_TYPE))
    terminate_cause: Mapped[str | None] = mapped_column(String(R.LEN_CAUSE))
    closed_by: Mapped[str | None] = mapped_column(String(R.LEN_CLOSED_BY))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_acct_session_subscriber_id_started_at", "subscriber_id", "started_at"),
        Index("ix_acct_session_subscriber_id_stale_deadline", "subscriber_id", "stale_deadline"),
        Index("ix_acct_session_nas_id_stopped_at", "nas_id", "stopped_at"),
        Index("ix_acct_session_stale_deadline", "stale_deadline"),
        Index("ix_acct_session_started_at", "started_at"),
        Index("ix_acct_session_session_key", "session_key"),
    )


class AcctCall(Base):
    __tablename__ = "acct_call"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    unique_id: Mapped[str] = mapped_column(String(R.UNIQUE_ID_LEN), unique=True)
    nas_id: Mapped[int | None] = mapped_column(Integer, comment="nas.id when it was stored")
    nas_identity: Mapped[str] = mapped_column(String(R.LEN_NAS_IDENTITY))
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriber.id", ondelete="SET NULL"))
    user_name: Mapped[str] = mapped_column(String(R.LEN_LOGIN))
    session_id: Mapped[str] = mapped_column(String(R.LEN_SESSION_ID))
    call_id: Mapped[str | None] = mapped_column(String(R.LEN_CALL_ID))
    conf_id: Mapped[str | None] = mapped_column(String(R.LEN_CALL_ID))
    caller: Mapped[str | None] = mapped_column(String(R.LEN_NUMBER))
    callee: Mapped[str | None] = mapped_column(String(R.LEN_NUMBER), comment="dialled number")
    leg: Mapped[str | None] = mapped_column(String(R.LEN_LEG))
    billable: Mapped[bool] = mapped_column(Boolean, default=True)
    setup_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    connect_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disconnect_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disconnect_cause: Mapped[str | None] = mapped_column(String(R.LEN_CAUSE))
    duration: Mapped[int] = mapped_column(BigInteger, default=0, comment="seconds connected")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_acct_call_subscriber_id_started_at", "subscriber_id", "started_at"),
        Index("ix_acct_call_nas_id_started_at", "nas_id", "started_at"),
        Index("ix_acct_call_started_at", "started_at"),
        Index("ix_acct_call_stopped_at_last_seen_at", "stopped_at", "last_seen_at"),
    )


class AcctSpoolPosition(Base):
    """The last spool line applied, written in the same transaction as the line's record,
    which is what makes replay exactly-once across crashes."""

    __tablename__ = "acct_spool_position"

    spool_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
