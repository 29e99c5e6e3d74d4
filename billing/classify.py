"""Which service a ledger entry belongs to, for statements, exports and reports (one place).

Charges carry the rater's description (``session +60s ...``, ``call 4930...``)
and fees their own kind; payments carry their method. The same CASE is used
as SQL (grouping millions of entries in the database) and as Python.
"""

from __future__ import annotations

from sqlalchemy import case, func
from sqlalchemy.sql.elements import ColumnElement

from billing.models import EntryKind, LedgerEntry

SERVICES = ("sessions", "calls", "fees", "other_charges", "payments", "refunds", "adjustments")


def service_of(kind: str, description: str) -> str:
    if kind == EntryKind.FEE.value:
        return "fees"
    if kind == EntryKind.CHARGE.value:
        if description.startswith("call "):
            return "calls"
        if description.startswith("session "):
            return "sessions"
        return "other_charges"
    if kind == EntryKind.PAYMENT.value:
        return "payments"
    if kind == EntryKind.REFUND.value:
        return "refunds"
    return "adjustments"


def service_column() -> ColumnElement[str]:
    """:func:`service_of` as a SQL expression over ledger_entry."""
    e = LedgerEntry
    return case(
        (e.kind == EntryKind.FEE.value, "fees"),
        (e.kind == EntryKind.CHARGE.value,
         case((e.description.like("call %"), "calls"),
              (e.description.like("session %"), "sessions"), else_="other_charges")),
        (e.kind == EntryKind.PAYMENT.value, "payments"),
        (e.kind == EntryKind.REFUND.value, "refunds"),
        else_="adjustments")


def method_column() -> ColumnElement[str]:
    return func.coalesce(LedgerEntry.method, "manual")
