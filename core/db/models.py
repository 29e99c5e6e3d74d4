"""Core tables every package reads: NAS clients, service plans, subscribers.

They sit at the bottom of the import graph because accounting, billing and
pools all refer to them; each upper package keeps its own tables in its own
``models.py`` on the same :class:`~core.db.base.Base`.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, Enum, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db.base import Base, UTCDateTime, utcnow


class Vendor(enum.StrEnum):
    """How a NAS wants its rate limit and its Disconnect-Request session identity."""

    GENERIC = "generic"
    MIKROTIK = "mikrotik"
    CISCO = "cisco"
    JUNIPER = "juniper"
    ACCEL_PPP = "accel-ppp"


class SubscriberStatus(enum.StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"
    DISABLED = "disabled"


def _enum(cls: type[enum.StrEnum], name: str) -> Enum:
    # native_enum=False: a VARCHAR + CHECK on both databases, so adding a value
    # later is a plain migration rather than an ALTER of a MariaDB ENUM.
    return Enum(cls, name=name, native_enum=False, length=20,
                values_callable=lambda e: [m.value for m in e], validate_strings=True)


class Nas(Base):
    __tablename__ = "nas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str] = mapped_column(String(64), comment="IP address or CIDR")
    secret: Mapped[str] = mapped_column(String(128))
    vendor: Mapped[Vendor] = mapped_column(_enum(Vendor, "vendor"), default=Vendor.GENERIC)
    require_message_authenticator: Mapped[bool] = mapped_column(Boolean, default=True)
    coa_port: Mapped[int] = mapped_column(Integer, default=3799)
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Reseller(Base):
    """A partner reselling service: its operators and tokens see only its own rows.

    Added by migration 0400_access (branch ``access``), with ``subscriber.reseller_id``
    and ``plan.reseller_id``; money per reseller (balances, cards) builds on it.
    """

    __tablename__ = "reseller"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Plan(Base):
    __tablename__ = "plan"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    rate_limit: Mapped[str | None] = mapped_column(String(64), default=None,
                                                   comment="rx/tx as in 10M/10M")
    session_timeout: Mapped[int | None] = mapped_column(Integer, default=None)
    idle_timeout: Mapped[int | None] = mapped_column(Integer, default=None)
    interim_interval: Mapped[int | None] = mapped_column(Integer, default=None)
    simultaneous_use: Mapped[int | None] = mapped_column(Integer, default=None)
    framed_protocol: Mapped[str | None] = mapped_column(String(16), default="PPP")
    extra_reply: Mapped[list[list[str]]] = mapped_column(
        JSON, default=list, comment="[[attribute, value], ...] added to every Access-Accept")
    reseller_id: Mapped[int | None] = mapped_column(
        ForeignKey("reseller.id", ondelete="RESTRICT"), default=None, index=True,
        comment="a reseller's own plan; NULL = the operator's")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Subscriber(Base):
    __tablename__ = "subscriber"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(128), unique=True)
    status: Mapped[SubscriberStatus] = mapped_column(
        _enum(SubscriberStatus, "subscriber_status"), default=SubscriberStatus.ACTIVE)
    plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("plan.id", ondelete="RESTRICT"), default=None, index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None,
                                                      comment="argon2, for PAP")
    nt_hash: Mapped[str | None] = mapped_column(String(32), default=None,
                                                comment="hex MD4 of UTF-16LE, for MS-CHAP")
    # Migration branch "legacy" (0600): a FreeRADIUS hash kept by `radbill import`.
    legacy_hash: Mapped[str | None] = mapped_column(
        String(255), default=None,
        comment="imported FreeRADIUS hash (libpass form), replaced at the next PAP login")
    chap_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    cleartext_password: Mapped[str | None] = mapped_column(
        String(255), default=None, comment="kept only when chap_enabled")
    # Unique: a static address belongs to one subscriber even if two admins race.
    static_ip: Mapped[str | None] = mapped_column(String(45), default=None, unique=True)
    description: Mapped[str] = mapped_column(Text().with_variant(String(1024), "mysql"),
                                             default="")
    reseller_id: Mapped[int | None] = mapped_column(
        ForeignKey("reseller.id", ondelete="RESTRICT"), default=None, index=True,
        comment="the reseller owning this subscriber; NULL = the operator's")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Indexed: running servers poll it to invalidate cached credentials (aaa.credential_watch).
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow,
                                                 index=True)

    plan: Mapped[Plan | None] = relationship(lazy="raise")
