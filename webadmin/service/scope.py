"""Reseller scope: the rows a scoped caller may see, answered as "not found" otherwise.

A reseller's caller sees its own subscribers and plans, and the operator's
shared plans (``reseller_id`` NULL) read-only. Anything else raises the same
NotFound a missing row raises, with the same message, so an id or login of
another reseller cannot be confirmed by probing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Plan, Reseller, Subscriber
from core.errors import NotFound
from webadmin.roles import Caller


def reseller_id(session: Session, name: str | None) -> int | None:
    if name is None or name == "" or name.lower() == "none":
        return None
    rid = session.scalar(select(Reseller.id).where(Reseller.name == name))
    if rid is None:
        raise NotFound(f"reseller {name!r} not found")
    return rid


def reseller_name(session: Session, rid: int | None) -> str | None:
    if rid is None:
        return None
    return session.scalar(select(Reseller.name).where(Reseller.id == rid))


def subscriber(session: Session, caller: Caller, login: str) -> tuple[int | None, int | None]:
    """(id, reseller_id) of a subscriber the caller may see; NotFound otherwise.

    For an unscoped caller a missing login gives (None, None): the domain function
    called next raises its own, usual error.
    """
    row = session.execute(select(Subscriber.id, Subscriber.reseller_id)
                          .where(Subscriber.login == login)).one_or_none()
    if caller.scoped and (row is None or row[1] != caller.reseller_id):
        raise NotFound(f"subscriber {login!r} not found")
    return (row[0], row[1]) if row is not None else (None, None)


def plan(session: Session, caller: Caller, name: str | None, *, write: bool = False) -> None:
    """NotFound unless the plan exists and the caller may use it (or change it, ``write``)."""
    if name is None or name.lower() == "none":
        return
    row = session.execute(select(Plan.id, Plan.reseller_id)
                          .where(Plan.name == name)).one_or_none()
    if row is None:
        raise NotFound(f"plan {name!r} not found")
    if caller.scoped and row[1] != caller.reseller_id and (write or row[1] is not None):
        raise NotFound(f"plan {name!r} not found")


def subscriber_filter(caller: Caller) -> Any:
    """A WHERE clause on Subscriber for lists, or None when the caller sees all."""
    return Subscriber.reseller_id == caller.reseller_id if caller.scoped else None


def plan_filter(caller: Caller) -> Any:
    if not caller.scoped:
        return None
    return (Plan.reseller_id == caller.reseller_id) | Plan.reseller_id.is_(None)


def scoped_reseller(session: Session, caller: Caller, name: str | None) -> int | None:
    """The reseller a new row gets: a scoped caller's own whatever was asked, else by name."""
    if caller.scoped:
        if name is not None and name != caller.reseller:
            raise NotFound(f"reseller {name!r} not found")
        return caller.reseller_id
    return reseller_id(session, name)
