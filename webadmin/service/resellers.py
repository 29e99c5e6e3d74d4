"""Resellers as objects: partners owning subscribers and plans (money per reseller builds on it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aaa.admin.rows import delete_row, flush_unique
from aaa.admin.validate import DESCRIPTION_MAX, NONE_WORDS, text_field, validate_name
from core.db.access import ApiToken, Operator
from core.db.models import Plan, Reseller, Subscriber
from core.errors import AlreadyExists, InUse, InvalidInput, NotFound
from webadmin.roles import Caller
from webadmin.service import audit


@dataclass(frozen=True)
class ResellerInfo:
    id: int
    name: str
    description: str
    subscribers: int
    plans: int
    operators: int
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "subscribers": self.subscribers, "plans": self.plans,
                "operators": self.operators, "created_at": self.created_at}


def _count(session: Session, column: Any, rid: int) -> int:
    return int(session.scalar(select(func.count()).where(column == rid)) or 0)


def _info(session: Session, row: Reseller) -> ResellerInfo:
    return ResellerInfo(row.id, row.name, row.description or "",
                        _count(session, Subscriber.reseller_id, row.id),
                        _count(session, Plan.reseller_id, row.id),
                        _count(session, Operator.reseller_id, row.id), row.created_at)


def _row(session: Session, caller: Caller, name: str) -> Reseller:
    row = session.scalars(select(Reseller).where(Reseller.name == name)).one_or_none()
    if row is None or (caller.scoped and row.id != caller.reseller_id):
        raise NotFound(f"reseller {name!r} not found")
    return row


def thd_add_reseller(session: Session, caller: Caller, name: str,
                     description: str = "") -> ResellerInfo:
    caller.require("reseller.admin")
    name = validate_name(name, "reseller")
    if name.lower() in NONE_WORDS:
        raise InvalidInput(f"reseller name {name!r} is reserved (it means 'no reseller')",
                           field="name")
    if session.scalar(select(Reseller.id).where(Reseller.name == name)) is not None:
        raise AlreadyExists(f"reseller {name!r} already exists")
    row = Reseller(name=name, description=text_field(description, "description",
                                                     DESCRIPTION_MAX, allow_empty=True))
    session.add(row)
    flush_unique(session, f"reseller {name!r}")
    info = _info(session, row)
    audit.record(session, caller, "reseller.add", "reseller", name, None, info.as_dict())
    return info


def thd_list_resellers(session: Session, caller: Caller) -> list[ResellerInfo]:
    caller.require("subscriber.read")
    q = select(Reseller).order_by(Reseller.name)
    if caller.scoped:
        q = q.where(Reseller.id == caller.reseller_id)
    return [_info(session, r) for r in session.scalars(q)]


def thd_get_reseller(session: Session, caller: Caller, name: str) -> ResellerInfo:
    caller.require("subscriber.read")
    return _info(session, _row(session, caller, name))


def thd_update_reseller(session: Session, caller: Caller, name: str,
                        changes: Mapping[str, Any]) -> ResellerInfo:
    caller.require("reseller.admin")
    unknown = set(changes) - {"description"}
    if unknown:
        raise InvalidInput("cannot change reseller field(s): " + ", ".join(sorted(unknown)))
    row = _row(session, caller, name)
    before = _info(session, row).as_dict()
    if "description" in changes:
        row.description = text_field(changes["description"], "description", DESCRIPTION_MAX,
                                     allow_empty=True)
    session.flush()
    info = _info(session, row)
    audit.record(session, caller, "reseller.set", "reseller", name, before, info.as_dict())
    return info


def thd_remove_reseller(session: Session, caller: Caller, name: str) -> ResellerInfo:
    caller.require("reseller.admin")
    row = _row(session, caller, name)
    info = _info(session, row)
    if info.subscribers or info.plans or info.operators or session.scalar(
            select(func.count()).where(ApiToken.reseller_id == row.id)):
        raise InUse(f"reseller {name!r} still has subscribers, plans, operators or "
                    "tokens; move or remove them first")
    delete_row(session, row, f"reseller {name!r}")
    audit.record(session, caller, "reseller.remove", "reseller", name, info.as_dict(), None)
    return info
