"""Admin operations on plans (the service side; prices live in billing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, null, select
from sqlalchemy.orm import Session

from aaa.admin.rows import delete_row, flush_unique
from aaa.admin.validate import (
    NONE_WORDS,
    nullable,
    parse_reply_attribute,
    validate_framed_protocol,
    validate_name,
    validate_positive,
    validate_rate_limit,
    validate_reply_attributes,
)
from core.db.models import Plan, Reseller, Subscriber
from core.errors import AlreadyExists, InUse, InvalidInput, NotFound


@dataclass(frozen=True)
class PlanInfo:
    id: int
    name: str
    rate_limit: str | None
    session_timeout: int | None
    idle_timeout: int | None
    interim_interval: int | None
    simultaneous_use: int | None
    framed_protocol: str | None
    reply_attributes: tuple[tuple[str, str], ...]
    subscribers: int
    created_at: datetime
    updated_at: datetime
    reseller: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rate_limit": self.rate_limit,
                "session_timeout": self.session_timeout, "idle_timeout": self.idle_timeout,
                "interim_interval": self.interim_interval,
                "simultaneous_use": self.simultaneous_use,
                "framed_protocol": self.framed_protocol,
                "reply_attributes": [f"{a}={v}" for a, v in self.reply_attributes],
                "subscribers": self.subscribers, "reseller": self.reseller,
                "created_at": self.created_at, "updated_at": self.updated_at}





def _plan_info(row: Plan, subscribers: int, reseller: str | None = None) -> PlanInfo:
    return PlanInfo(id=row.id, name=row.name, rate_limit=row.rate_limit,
                    session_timeout=row.session_timeout, idle_timeout=row.idle_timeout,
                    interim_interval=row.interim_interval,
                    simultaneous_use=row.simultaneous_use,
                    framed_protocol=row.framed_protocol,
                    reply_attributes=tuple((str(a), str(v)) for a, v in row.extra_reply or []),
                    subscribers=subscribers,
                    created_at=row.created_at, updated_at=row.updated_at,
                    reseller=reseller)


def _reseller_name(session: Session, reseller_id: int | None) -> str | None:
    if reseller_id is None:
        return None
    return session.scalar(select(Reseller.name).where(Reseller.id == reseller_id))


def _plan_row(session: Session, name: str) -> Plan:
    row = session.scalars(select(Plan).where(Plan.name == name)).one_or_none()
    if row is None:
        raise NotFound(f"plan {name!r} not found")
    return row


def _plan_users(session: Session, plan_id: int) -> int:
    return int(session.scalar(select(func.count()).select_from(Subscriber)
                              .where(Subscriber.plan_id == plan_id)) or 0)


PLAN_FIELDS = frozenset({"rate_limit", "session_timeout", "idle_timeout", "interim_interval",
                         "simultaneous_use", "framed_protocol", "reply_attributes",
                         "reseller_id"})
_PLAN_INTS = {"session_timeout": "session timeout", "idle_timeout": "idle timeout",
              "interim_interval": "interim interval", "simultaneous_use": "simultaneous use"}


def _apply_plan(row: Plan, changes: Mapping[str, Any]) -> None:
    unknown = set(changes) - PLAN_FIELDS
    if unknown:
        raise InvalidInput("cannot change plan field(s): " + ", ".join(sorted(unknown)))
    if "rate_limit" in changes:
        row.rate_limit = validate_rate_limit(nullable(changes["rate_limit"]))
    for key, what in _PLAN_INTS.items():
        if key in changes:
            setattr(row, key, validate_positive(nullable(changes[key]), what))
    if "framed_protocol" in changes:
        protocol = validate_framed_protocol(changes["framed_protocol"])
        # The column defaults to PPP, and the ORM lets an INSERT default replace a
        # plain None; null() writes the NULL that means "not a framed service".
        row.framed_protocol = protocol if protocol is not None else null()
    if "reply_attributes" in changes:
        pairs = [parse_reply_attribute(p) if isinstance(p, str) else (str(p[0]), str(p[1]))
                 for p in changes["reply_attributes"] or ()]
        row.extra_reply = [list(p) for p in validate_reply_attributes(pairs)]
    if "reseller_id" in changes:
        row.reseller_id = changes["reseller_id"]


def thd_add_plan(session: Session, name: str, rate_limit: str | None = None,
                 session_timeout: int | None = None, idle_timeout: int | None = None,
                 interim_interval: int | None = None, simultaneous_use: int | None = None,
                 framed_protocol: str | None = "PPP",
                 reply_attributes: Sequence[str] = (),
                 reseller_id: int | None = None) -> PlanInfo:
    """``reply_attributes`` are 'Attr=Value' strings, checked against the dictionary."""
    name = validate_name(name, "plan")
    if name.lower() in NONE_WORDS:
        raise InvalidInput(f"plan name {name!r} is reserved (it means 'no plan')")
    row = Plan(name=name)
    _apply_plan(row, {"rate_limit": rate_limit, "session_timeout": session_timeout,
                      "idle_timeout": idle_timeout, "interim_interval": interim_interval,
                      "simultaneous_use": simultaneous_use, "framed_protocol": framed_protocol,
                      "reply_attributes": list(reply_attributes),
                      "reseller_id": reseller_id})
    if session.scalars(select(Plan.id).where(Plan.name == name)).first() is not None:
        raise AlreadyExists(f"plan {name!r} already exists")
    session.add(row)
    flush_unique(session, f"plan {name!r}")
    return _plan_info(row, 0, _reseller_name(session, reseller_id))


def thd_update_plan(session: Session, name: str, changes: Mapping[str, Any]) -> PlanInfo:
    """Change only the fields present; None (or 'none') clears a field."""
    row = _plan_row(session, name)
    _apply_plan(row, changes)
    session.flush()
    return _plan_info(row, _plan_users(session, row.id),
                      _reseller_name(session, row.reseller_id))


def thd_list_plans(session: Session, where: Any = None) -> list[PlanInfo]:
    """Ordered by name; ``where`` (a clause on Plan) narrows it for a scoped caller."""
    counts = dict(session.execute(select(Subscriber.plan_id, func.count())
                                  .where(Subscriber.plan_id.is_not(None))
                                  .group_by(Subscriber.plan_id)).all())
    names = dict(session.execute(select(Reseller.id, Reseller.name)).all())
    query = select(Plan).order_by(Plan.name)
    if where is not None:
        query = query.where(where)
    return [_plan_info(r, int(counts.get(r.id, 0)), names.get(r.reseller_id))
            for r in session.scalars(query)]


def thd_get_plan(session: Session, name: str) -> PlanInfo:
    row = _plan_row(session, name)
    return _plan_info(row, _plan_users(session, row.id),
                      _reseller_name(session, row.reseller_id))


def thd_remove_plan(session: Session, name: str) -> PlanInfo:
    row = _plan_row(session, name)
    users = _plan_users(session, row.id)
    if users:
        raise InUse(f"plan {name!r} is used by {users} subscriber"
                    f"{'s' if users != 1 else ''}; move them to another plan first")
    info = _plan_info(row, 0, _reseller_name(session, row.reseller_id))
    delete_row(session, row, f"plan {name!r}")
    return info
