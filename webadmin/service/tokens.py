"""API tokens for software: shown once at creation, only a SHA-256 of them stored.

A token is 256 random bits (``secrets``), so a plain SHA-256 is as good as a
slow hash here and lets each request find its token with one index lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aaa.admin.rows import flush_unique
from aaa.admin.validate import validate_name
from core.db.access import ApiSession, ApiToken
from core.db.base import utcnow
from core.errors import AlreadyExists, InvalidInput, NotFound
from webadmin.roles import TOKEN_ROLES, Caller
from webadmin.service import audit, scope
from webadmin.service.operators import check_scope_for_role, validate_role

TOKEN_PREFIX = "rbt_"  # noqa: S105 (a prefix, not a secret)
SESSION_PREFIX = "rbs_"
MAX_DAYS = 3650


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    role: str
    reseller: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= utcnow():
            return "expired"
        return "active"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "reseller": self.reseller,
                "state": self.state, "created_by": self.created_by,
                "created_at": self.created_at, "expires_at": self.expires_at,
                "revoked_at": self.revoked_at, "last_used_at": self.last_used_at}


@dataclass(frozen=True)
class NewToken:
    info: TokenInfo
    token: str  # the only time it exists outside the caller's hands


def _info(session: Session, row: ApiToken) -> TokenInfo:
    return TokenInfo(row.id, row.name, row.role, scope.reseller_name(session, row.reseller_id),
                     row.created_by, row.created_at, row.expires_at, row.revoked_at,
                     row.last_used_at)


def thd_add_token(session: Session, caller: Caller, name: str, role: str,
                  reseller: str | None = None, expires_days: int | None = None) -> NewToken:
    caller.require("token.admin")
    name = validate_name(name, "token")
    role = validate_role(role, TOKEN_ROLES)
    rid = scope.reseller_id(session, reseller)
    check_scope_for_role(role, rid)
    if expires_days is not None and (isinstance(expires_days, bool) or not isinstance(
            expires_days, int) or not 1 <= expires_days <= MAX_DAYS):
        raise InvalidInput(f"expires must be 1..{MAX_DAYS} days", field="expires")
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise AlreadyExists(f"token {name!r} already exists")
    secret = new_secret(TOKEN_PREFIX)
    now = utcnow()
    row = ApiToken(name=name, token_hash=token_hash(secret), role=role, reseller_id=rid,
                   created_by=caller.actor[:128], created_at=now,
                   expires_at=now + timedelta(days=expires_days) if expires_days else None)
    session.add(row)
    flush_unique(session, f"token {name!r}")
    info = _info(session, row)
    audit.record(session, caller, "token.add", "token", name, None, info.as_dict())
    return NewToken(info, secret)


def thd_list_tokens(session: Session, caller: Caller) -> list[TokenInfo]:
    caller.require("token.admin")
    return [_info(session, r) for r in session.scalars(select(ApiToken).order_by(ApiToken.name))]


def thd_revoke_token(session: Session, caller: Caller, name: str) -> TokenInfo:
    """Revoked at once, with every self-care session opened through it."""
    caller.require("token.admin")
    row = session.scalars(select(ApiToken).where(ApiToken.name == name)).one_or_none()
    if row is None:
        raise NotFound(f"token {name!r} not found")
    before = _info(session, row).as_dict()
    now = utcnow()
    if row.revoked_at is None:
        row.revoked_at = now
    for s in session.scalars(select(ApiSession).where(ApiSession.via_token_id == row.id,
                                                      ApiSession.ended_at.is_(None))):
        s.ended_at = now
    session.flush()
    info = _info(session, row)
    audit.record(session, caller, "token.revoke", "token", name, before, info.as_dict())
    return info
