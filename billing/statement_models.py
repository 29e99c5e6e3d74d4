"""Statements, invoices, their numbering, and the documents rendered from them.

* ``statement.uq(account_id, period)``: one statement per account and month,
  whatever restarts or how many nodes: a second issuer's INSERT fails and its
  batch rolls back.
* ``invoice.uq(issuer, number)`` and ``invoice_sequence`` (one row per issuer,
  locked FOR UPDATE while numbers are taken, in the transaction that inserts
  the invoices): numbers without gaps or duplicates.
* ``statement(document_id)``: the renderer's queue (statements not yet
  rendered).
* Documents are immutable: a correction is a new row with ``replaces_id``.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, UTCDateTime, utcnow


class DocumentKind(enum.StrEnum):
    STATEMENT = "statement"
    INVOICE = "invoice"


class Statement(Base):
    __tablename__ = "statement"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("billing_account.id",
                                                       ondelete="RESTRICT"))
    period: Mapped[str] = mapped_column(String(7), comment="YYYY-MM in [statements] time_zone")
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    currency: Mapped[str] = mapped_column(String(3))
    opening: Mapped[int] = mapped_column(BigInteger)
    closing: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict, comment="service -> [entries, signed minor units]")
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    document_id: Mapped[int | None] = mapped_column(Integer, default=None)

    __table_args__ = (UniqueConstraint("account_id", "period"),
                      Index("ix_statement_document_id", "document_id"),
                      Index("ix_statement_period", "period"))


class InvoiceSequence(Base):
    __tablename__ = "invoice_sequence"

    issuer: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_number: Mapped[int] = mapped_column(BigInteger, default=0)


class Invoice(Base):
    __tablename__ = "invoice"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(64))
    number: Mapped[int] = mapped_column(BigInteger)
    number_text: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(ForeignKey("billing_account.id",
                                                       ondelete="RESTRICT"))
    statement_id: Mapped[int] = mapped_column(ForeignKey("statement.id", ondelete="RESTRICT"),
                                              unique=True)
    period: Mapped[str] = mapped_column(String(7))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_date: Mapped[datetime] = mapped_column(UTCDateTime)
    currency: Mapped[str] = mapped_column(String(3))
    vat_rate: Mapped[str] = mapped_column(String(8), comment="percent, e.g. 20 or 7.7")
    net: Mapped[int] = mapped_column(BigInteger)
    tax: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    document_id: Mapped[int | None] = mapped_column(Integer, default=None)

    __table_args__ = (UniqueConstraint("issuer", "number"),
                      Index("ix_invoice_issued_at", "issued_at"))


class Document(Base):
    __tablename__ = "document"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[int] = mapped_column(ForeignKey("billing_account.id",
                                                       ondelete="RESTRICT"))
    statement_id: Mapped[int | None] = mapped_column(Integer, default=None)
    invoice_id: Mapped[int | None] = mapped_column(Integer, default=None)
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("document.id"), default=None)
    reason: Mapped[str] = mapped_column(String(255), default="")
    title: Mapped[str] = mapped_column(String(128))
    html_path: Mapped[str] = mapped_column(String(255), comment="relative to [documents] store")
    html_sha256: Mapped[str] = mapped_column(String(64))
    pdf_path: Mapped[str | None] = mapped_column(String(255), default=None)
    pdf_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_document_account_id_id", "account_id", "id"),)
