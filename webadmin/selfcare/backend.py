"""What the self-care pages need from radbill, as one Protocol with two implementations.

``local.LocalSelfcare`` runs the service functions in this process (inside
``radbill serve``); ``remote.ApiSelfcare`` asks radbill's HTTP API with a
self-care token (``radbill selfcare`` on a public host, no database URL).
The pages cannot tell which one they use, and neither can reach anything but
the logged-in subscriber's own data: every call takes the handle that login
returned, never a login chosen by the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from twisted.internet.defer import Deferred

# The data the pages show, defined by the service layer both backends end in.
from webadmin.service.selfcare import DayRow, LedgerRow, Me, Quota, UsageRow

__all__ = ["CardCredit", "CardNotCredited", "DayRow", "DocRow", "DocumentFile",
           "DocumentMissing", "Handle", "LedgerRow", "Me", "Quota", "SelfcareBackend", "UsageRow",
           "WrongPassword", "as_json"]


# The shortest password a subscriber may choose for itself: the pages check it before asking,
# the API's self-care endpoint refuses shorter ones (operators setting a password are not held
# to it: imported subscribers keep what the old system had).
SELF_PASSWORD_MIN = 8


@dataclass(frozen=True)
class Handle:
    """A logged-in subscriber as the backend knows it (login, and the API's session token)."""

    login: str
    token: str = ""

    def __repr__(self) -> str:
        return f"Handle({self.login!r})"


@dataclass(frozen=True)
class CardCredit:
    """A prepaid card credited to the subscriber: what it added and the balance after."""

    serial: str
    credited: int
    balance: int
    currency: str


@dataclass(frozen=True)
class DocRow:
    id: int
    kind: str  # statement, invoice
    title: str
    invoice: str | None
    pdf: bool
    created_at: datetime


@dataclass(frozen=True)
class DocumentFile:
    content: bytes
    content_type: str
    filename: str


class CardNotCredited(Exception):
    """A card activation was refused; ``reason`` is billing.cards' REFUSAL_TEXT (English)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DocumentMissing(Exception):
    """No such document of this subscriber (another's answers the same)."""


class SelfcareBackend(Protocol):
    def login(self, login: str, password: str, client: str) -> Deferred[Handle | None]: ...
    def logout(self, handle: Handle) -> Deferred[None]: ...
    def me(self, handle: Handle) -> Deferred[Me]: ...
    def sessions(self, handle: Handle, offset: int, limit: int) -> Deferred[list[UsageRow]]: ...
    def calls(self, handle: Handle, offset: int, limit: int) -> Deferred[list[UsageRow]]: ...
    def ledger(self, handle: Handle, offset: int, limit: int,
               payments_only: bool = False) -> Deferred[list[LedgerRow]]: ...
    def traffic(self, handle: Handle, days: int) -> Deferred[list[DayRow]]: ...
    def change_password(self, handle: Handle, old: str, new: str) -> Deferred[None]: ...
    def activate_card(self, handle: Handle, serial: str, pin: str,
                      client: str) -> Deferred[CardCredit]: ...
    def documents(self, handle: Handle, limit: int) -> Deferred[list[DocRow]]: ...
    def document_file(self, handle: Handle, document_id: int,
                      fmt: str) -> Deferred[DocumentFile]: ...


class WrongPassword(Exception):
    """The current password given to change it was wrong."""


def as_json(obj: Any) -> Any:
    """Dataclasses to JSON-ready values (datetimes as ISO 8601 UTC)."""
    from dataclasses import fields, is_dataclass

    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: as_json(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, list | tuple):
        return [as_json(x) for x in obj]
    return obj
