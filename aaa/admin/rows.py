"""Row helpers that turn integrity errors into the one-line errors an operator reads."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import AlreadyExists, InUse


def flush_unique(session: Session, what: str) -> None:
    try:
        session.flush()
    except IntegrityError:
        raise AlreadyExists(f"{what} already exists") from None


def delete_row(session: Session, row: Any, what: str, instead: str = "") -> None:
    session.delete(row)
    try:
        session.flush()
    except IntegrityError:
        raise InUse(f"cannot remove {what}: other records still refer to it"
                    f"{instead}") from None
