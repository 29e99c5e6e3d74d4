"""Notification tables: the outbox, subscribers' contacts, webhook endpoints, low-balance state.

* ``notification.uq(uid)``: the stable id receivers de-duplicate on.
* ``notification(status, next_attempt_at)``: the sender's queue scan.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from billing.models import BigId
from core.db.base import Base, UTCDateTime, utcnow


class NotificationStatus(enum.StrEnum):
    PENDING = "pending"    # waiting for its (next) attempt
    SENDING = "sending"    # claimed by a sender until claimed_until; then pending again
    SENT = "sent"
    DEAD = "dead"          # gave up after [notify] max_attempts


class Channel(enum.StrEnum):
    EMAIL = "email"        # target: the subscriber's address
    ADMIN = "admin"        # to [notify] admin_emails, resolved when sent
    WEBHOOK = "webhook"    # target: a webhook_endpoint name


class Notification(Base):
    __tablename__ = "notification"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    event: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(8))
    target: Mapped[str] = mapped_column(String(255), default="")
    language: Mapped[str] = mapped_column(String(8), default="en")
    account_id: Mapped[int | None] = mapped_column(Integer, default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(8), default=NotificationStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    __table_args__ = (Index("ix_notification_status_next_attempt_at", "status",
                            "next_attempt_at"),)


class NotifyContact(Base):
    __tablename__ = "notify_contact"

    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id", ondelete="CASCADE"),
                                               primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(8), default="en")


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoint"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(String(512))
    secret: Mapped[str] = mapped_column(String(128))
    events: Mapped[str] = mapped_column(String(512), default="*",
                                        comment="comma-separated event names, or *")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class LowBalanceThreshold(Base):
    __tablename__ = "low_balance_threshold"

    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id", ondelete="CASCADE"),
                                         primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger, comment="minor units")


class LowBalanceState(Base):
    __tablename__ = "low_balance_state"

    account_id: Mapped[int] = mapped_column(ForeignKey("billing_account.id",
                                                       ondelete="CASCADE"), primary_key=True)
    notified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PoolAlertState(Base):
    """A pool the admins were told is above ``[pools] warn_utilization``; gone once below."""

    __tablename__ = "pool_alert_state"

    pool_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    percent: Mapped[str] = mapped_column(String(8), comment="utilization when alerted")
    notified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
