"""Operators: accounts of the people who manage radbill (``radbill operator``, /api/v1/operators).

Passwords are argon2id hashes made by :func:`hash_operator_password` outside the
transaction (argon2 is slow on purpose); they never leave this module except to
the login check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import argon2
from sqlalchemy import select
from sqlalchemy.orm import Session

from aaa.admin.rows import delete_row, flush_unique
from aaa.admin.validate import DESCRIPTION_MAX, text_field
from core.db.access import ApiSession, Operator
from core.db.base import utcnow
from core.errors import AlreadyExists, InvalidInput, NotFound
from webadmin.roles import OPERATOR_ROLES, SCOPED_ROLES, Caller
from webadmin.service import audit, scope

LOGIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
PASSWORD_MIN = 8
PASSWORD_MAX = 256
_hasher = argon2.PasswordHasher()


@dataclass(frozen=True)
class OperatorInfo:
    id: int
    login: str
    role: str
    reseller: str | None
    reseller_id: int | None
    enabled: bool
    description: str
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"login": self.login, "role": self.role, "reseller": self.reseller,
                "enabled": self.enabled, "description": self.description,
                "last_login_at": self.last_login_at, "created_at": self.created_at,
                "updated_at": self.updated_at}


def validate_operator_login(login: Any) -> str:
    if not isinstance(login, str) or not LOGIN_RE.match(login):
        raise InvalidInput("operator login must be 1..64 letters, digits or _ . @ - "
                           "(starting with a letter or digit)", field="login")
    return login


def validate_role(role: Any, allowed: tuple[str, ...] = OPERATOR_ROLES) -> str:
    if role not in allowed:
        raise InvalidInput(f"role {role!r} is not one of " + ", ".join(allowed), field="role")
    return str(role)


def check_scope_for_role(role: str, reseller_id: int | None) -> None:
    if role in SCOPED_ROLES and reseller_id is None:
        raise InvalidInput(f"role {role!r} needs a reseller (--reseller NAME)", field="reseller")
    if role not in SCOPED_ROLES and reseller_id is not None:
        raise InvalidInput(f"only the reseller role is limited to a reseller, not {role!r}",
                           field="reseller")


def hash_operator_password(password: Any) -> str:
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise InvalidInput(f"password must be {PASSWORD_MIN}..{PASSWORD_MAX} characters",
                           field="password")
    return _hasher.hash(password)


def verify_operator_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


def _info(session: Session, row: Operator) -> OperatorInfo:
    return OperatorInfo(row.id, row.login, row.role, scope.reseller_name(session, row.reseller_id),
                        row.reseller_id, bool(row.enabled), row.description or "",
                        row.last_login_at, row.created_at, row.updated_at)


def _row(session: Session, login: str) -> Operator:
    row = session.scalars(select(Operator).where(Operator.login == login)).one_or_none()
    if row is None:
        raise NotFound(f"operator {login!r} not found")
    return row


def thd_add_operator(session: Session, caller: Caller, login: str, password_hash: str,
                     role: str, reseller: str | None = None,
                     description: str = "") -> OperatorInfo:
    caller.require("operator.admin")
    login = validate_operator_login(login)
    role = validate_role(role)
    rid = scope.reseller_id(session, reseller)
    check_scope_for_role(role, rid)
    if session.scalar(select(Operator.id).where(Operator.login == login)) is not None:
        raise AlreadyExists(f"operator {login!r} already exists")
    row = Operator(login=login, password_hash=password_hash, role=role, reseller_id=rid,
                   enabled=True, description=text_field(description, "description",
                                                        DESCRIPTION_MAX, allow_empty=True))
    session.add(row)
    flush_unique(session, f"operator {login!r}")
    info = _info(session, row)
    audit.record(session, caller, "operator.add", "operator", login, None, info.as_dict())
    return info


def thd_list_operators(session: Session, caller: Caller) -> list[OperatorInfo]:
    caller.require("operator.admin")
    return [_info(session, r) for r in session.scalars(select(Operator).order_by(Operator.login))]


def thd_get_operator(session: Session, caller: Caller, login: str) -> OperatorInfo:
    caller.require("operator.admin")
    return _info(session, _row(session, login))


OPERATOR_FIELDS = frozenset({"role", "reseller", "enabled", "description"})


def _end_sessions(session: Session, operator_id: int) -> None:
    for s in session.scalars(select(ApiSession).where(ApiSession.operator_id == operator_id,
                                                      ApiSession.ended_at.is_(None))):
        s.ended_at = utcnow()


def thd_update_operator(session: Session, caller: Caller, login: str,
                        changes: Mapping[str, Any]) -> OperatorInfo:
    """Role, reseller, enabled, description; disabling or a new role ends its sessions."""
    caller.require("operator.admin")
    unknown = set(changes) - OPERATOR_FIELDS
    if unknown:
        raise InvalidInput("cannot change operator field(s): " + ", ".join(sorted(unknown)))
    row = _row(session, login)
    before = _info(session, row).as_dict()
    if "role" in changes:
        row.role = validate_role(changes["role"])
    if "reseller" in changes:
        row.reseller_id = scope.reseller_id(session, changes["reseller"])
    check_scope_for_role(row.role, row.reseller_id)
    if "enabled" in changes:
        if not isinstance(changes["enabled"], bool):
            raise InvalidInput("enabled must be true or false", field="enabled")
        row.enabled = changes["enabled"]
    if "description" in changes:
        row.description = text_field(changes["description"], "description", DESCRIPTION_MAX,
                                     allow_empty=True)
    if not row.enabled or {"role", "reseller"} & set(changes):
        _end_sessions(session, row.id)
    session.flush()
    info = _info(session, row)
    audit.record(session, caller, "operator.set", "operator", login, before, info.as_dict())
    return info


def thd_set_operator_password(session: Session, caller: Caller, login: str,
                              password_hash: str) -> OperatorInfo:
    """A new password ends the operator's other sessions (a stolen cookie stops working)."""
    if caller.operator_id is None or caller.actor != f"operator:{login}":
        caller.require("operator.admin")
    row = _row(session, login)
    row.password_hash = password_hash
    _end_sessions(session, row.id)
    session.flush()
    info = _info(session, row)
    audit.record(session, caller, "operator.passwd", "operator", login,
                 {"password": "old"}, {"password": "new"})
    return info


def thd_remove_operator(session: Session, caller: Caller, login: str) -> OperatorInfo:
    caller.require("operator.admin")
    row = _row(session, login)
    info = _info(session, row)
    delete_row(session, row, f"operator {login!r}")
    audit.record(session, caller, "operator.remove", "operator", login, info.as_dict(), None)
    return info
