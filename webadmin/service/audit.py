"""The audit log: every change, by whom, from where, before and after, secrets masked.

``record`` is called by each changing operation inside its own transaction,
so the audit row commits (or rolls back) with the change it describes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.access import AuditEntry
from core.db.base import utcnow
from core.errors import InvalidInput
from core.formats import plain
from webadmin.roles import Caller

T = TypeVar("T")
MASK = "***"
_SECRET_WORDS = ("password", "secret", "token", "hash", "pin", "cleartext")


def masked(value: Any) -> Any:
    """A copy with the values of secret-looking keys replaced by ``***``."""
    if isinstance(value, Mapping):
        return {k: (MASK if v is not None and any(w in str(k).lower() for w in _SECRET_WORDS)
                    else masked(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    return value


def record(session: Session, caller: Caller, action: str, object_type: str, object_key: str,
           before: Any = None, after: Any = None) -> None:
    """Add the audit row of one change to the caller's transaction."""
    session.add(AuditEntry(
        at=utcnow(), actor=caller.actor[:160], role=caller.role, address=caller.address[:45],
        action=action, object_type=object_type, object_key=str(object_key)[:255],
        before=plain(masked(before)) if before is not None else None,
        after=plain(masked(after)) if after is not None else None))


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    role: str
    address: str
    action: str
    object_type: str
    object_key: str
    before: Any
    after: Any

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "actor": self.actor, "role": self.role,
                "address": self.address, "action": self.action,
                "object_type": self.object_type, "object": self.object_key,
                "before": self.before, "after": self.after}


def thd_list_audit(session: Session, caller: Caller, object_type: str | None = None,
                   object_key: str | None = None, actor: str | None = None,
                   limit: int = 100, offset: int = 0) -> list[AuditRow]:
    """Newest first. ``actor`` matches exactly (``operator:alice``) or by bare name."""
    caller.require("audit.read")
    if limit < 0 or offset < 0:
        raise InvalidInput("limit and offset must be 0 or greater")
    q = select(AuditEntry)
    if object_type:
        q = q.where(AuditEntry.object_type == object_type)
    if object_key:
        q = q.where(AuditEntry.object_key == object_key)
    if actor:
        q = q.where(AuditEntry.actor.in_([actor] if ":" in actor else
                                         [f"operator:{actor}", f"token:{actor}",
                                          f"cli:{actor}", f"subscriber:{actor}"]))
    q = q.order_by(AuditEntry.id.desc()).offset(offset).limit(limit)
    return [AuditRow(r.id, r.at, r.actor, r.role, r.address, r.action, r.object_type,
                     r.object_key, r.before, r.after) for r in session.scalars(q)]


def snapshot(value: Any) -> Any:
    """What the audit log keeps of an operation's result: its as_dict(), or its fields."""
    if value is None:
        return None
    as_dict = getattr(value, "as_dict", None)
    if callable(as_dict):
        return as_dict()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: snapshot(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, list | tuple):
        return [snapshot(v) for v in value]
    return value


def changed(session: Session, caller: Caller, permission: str, action: str, object_type: str,
            object_key: str, fn: Callable[..., T], *args: Any, before: Any = None,
            **kwargs: Any) -> T:
    """Check ``permission``, run the domain ``fn(session, ...)``, audit its result.

    All in the caller's one transaction, so the change and its audit row commit together.
    """
    caller.require(permission)
    result = fn(session, *args, **kwargs)
    after = snapshot(result)
    record(session, caller, action, object_type, object_key,
           snapshot(before), after if isinstance(after, Mapping) or after is None
           else {"result": after})
    return result
