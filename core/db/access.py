"""Who works with radbill and what they did: operators, API tokens, sessions, the audit log.

Core tables (branch ``access``, migration 0400_access) because the CLI, the HTTP API and
the web pages all read and write them; the permission table that gives a role its
meaning lives above, in ``webadmin.roles``. Secrets are stored only as hashes: operator
passwords as argon2id, tokens and session ids as SHA-256 (they are 256-bit random, so a
fast hash is enough and a lookup by hash is one index probe).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, UTCDateTime, utcnow


class Operator(Base):
    """A person who manages radbill: admin, manager, cashier, support or reseller staff."""

    __tablename__ = "operator"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    reseller_id: Mapped[int | None] = mapped_column(
        ForeignKey("reseller.id", ondelete="RESTRICT"), default=None, index=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ApiToken(Base):
    """A credential for software (``radbill token add``): shown once, only its hash kept."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    reseller_id: Mapped[int | None] = mapped_column(
        ForeignKey("reseller.id", ondelete="RESTRICT"), default=None, index=True)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class ApiSession(Base):
    """A login: an operator's browser session or a subscriber's self-care session.

    In the database, not in memory, so ``radbill web`` on several hosts (or a restart)
    keeps everyone logged in, and logout or disabling an operator ends them everywhere.
    A subscriber session opened through a ``selfcare-frontend`` token remembers that
    token (``via_token_id``) and dies with it.
    """

    __tablename__ = "api_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    operator_id: Mapped[int | None] = mapped_column(
        ForeignKey("operator.id", ondelete="CASCADE"), default=None, index=True)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriber.id", ondelete="CASCADE"), default=None, index=True)
    via_token_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_token.id", ondelete="CASCADE"), default=None, index=True)
    address: Mapped[str] = mapped_column(String(45), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, comment="absolute end")
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow,
                                                   comment="for the idle timeout")
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class AuditEntry(Base):
    """One change: who, when, from where, what object, before and after (secrets masked).

    Written by ``webadmin.service.audit.record`` in the transaction of the change
    itself, so a change without its audit row (or the reverse) cannot be committed.
    """

    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(160), index=True,
                                       comment="operator:LOGIN, token:NAME, cli:USER, ...")
    role: Mapped[str] = mapped_column(String(32), default="")
    address: Mapped[str] = mapped_column(String(45), default="")
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_key: Mapped[str] = mapped_column(String(255))
    before: Mapped[Any] = mapped_column(JSON, default=None, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, default=None, nullable=True)

    __table_args__ = (Index("ix_audit_entry_object_type_object_key", "object_type",
                            "object_key"),)


class IdempotencyKey(Base):
    """The first answer to a money-moving API request, kept under its Idempotency-Key.

    Inserted at the start of the request's own transaction (so a concurrent
    duplicate waits on the unique key, then finds the answer) and filled with the
    answer before commit. Keys are per actor: two clients cannot collide.
    """

    __tablename__ = "api_idempotency"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor: Mapped[str] = mapped_column(String(160))
    key: Mapped[str] = mapped_column(String(128))
    endpoint: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64), comment="SHA-256 of the request")
    status: Mapped[int] = mapped_column(Integer, default=0)
    response: Mapped[Any] = mapped_column(JSON, default=None, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    __table_args__ = (Index("uq_api_idempotency_actor_key", "actor", "key", unique=True),)
