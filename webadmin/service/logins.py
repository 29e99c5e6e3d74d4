"""Logins and credentials: operator and subscriber sessions, and who a token or session is.

Checking a password (argon2) happens outside these transactions, in a thread of
its own; these functions only read what the check needs and record the result.
A session is a 256-bit random token, stored as SHA-256 like API tokens, with an
absolute end (``[web] session_lifetime``) and an idle timeout (``session_idle``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.access import ApiSession, ApiToken, Operator
from core.db.base import utcnow
from core.db.models import Reseller, Subscriber
from webadmin.roles import Caller
from webadmin.service.tokens import SESSION_PREFIX, new_secret, token_hash

SEEN_EVERY = timedelta(seconds=60)  # last_seen_at / last_used_at writes at most this often


@dataclass(frozen=True)
class OperatorSecret:
    id: int
    login: str
    enabled: bool
    password_hash: str = field(repr=False)


def thd_operator_secret(session: Session, login: str) -> OperatorSecret | None:
    row = session.execute(select(Operator.id, Operator.login, Operator.enabled,
                                 Operator.password_hash)
                          .where(Operator.login == login)).first()
    return None if row is None else OperatorSecret(row[0], row[1], bool(row[2]), row[3])


@dataclass(frozen=True)
class OpenedSession:
    token: str = field(repr=False)
    expires_at: datetime
    caller: Caller


def thd_open_session(session: Session, *, address: str, lifetime: float,
                     operator_id: int | None = None, subscriber: str | None = None,
                     via_token_id: int | None = None) -> OpenedSession:
    """A new login session for an operator (whose password was checked) or a subscriber."""
    now = utcnow()
    sub_id = None
    if subscriber is not None:
        sub_id = session.scalar(select(Subscriber.id).where(Subscriber.login == subscriber))
    token = new_secret(SESSION_PREFIX)
    row = ApiSession(token_hash=token_hash(token), operator_id=operator_id,
                     subscriber_id=sub_id, via_token_id=via_token_id, address=address[:45],
                     created_at=now, last_seen_at=now,
                     expires_at=now + timedelta(seconds=lifetime))
    session.add(row)
    if operator_id is not None:
        op = session.get(Operator, operator_id)
        if op is not None:
            op.last_login_at = now
    session.flush()
    caller = _session_caller(session, row, address)
    assert caller is not None
    return OpenedSession(token, row.expires_at, caller)


def thd_end_session(session: Session, hashed: str) -> bool:
    row = session.scalars(select(ApiSession).where(ApiSession.token_hash == hashed)).first()
    if row is None or row.ended_at is not None:
        return False
    row.ended_at = utcnow()
    return True


def _reseller(session: Session, rid: int | None) -> str | None:
    return None if rid is None else session.scalar(select(Reseller.name)
                                                   .where(Reseller.id == rid))


def _session_caller(session: Session, row: ApiSession, address: str) -> Caller | None:
    if row.operator_id is not None:
        op = session.get(Operator, row.operator_id)
        if op is None or not op.enabled:
            return None
        return Caller(actor=f"operator:{op.login}", role=op.role, reseller_id=op.reseller_id,
                      reseller=_reseller(session, op.reseller_id), operator_id=op.id,
                      address=address)
    if row.subscriber_id is not None:
        sub = session.execute(select(Subscriber.login, Subscriber.status)
                              .where(Subscriber.id == row.subscriber_id)).first()
        if sub is None or sub[1] == "disabled":
            return None
        return Caller(actor=f"subscriber:{sub[0]}", role="subscriber",
                      subscriber_id=row.subscriber_id, subscriber=sub[0], address=address,
                      token_id=row.via_token_id)
    return None


@dataclass(frozen=True)
class Authenticated:
    caller: Caller
    session: bool  # a login session (cookie-capable, CSRF applies), not an API token
    expires_at: datetime | None


def thd_authenticate(session: Session, hashed: str, address: str,
                     idle: float) -> Authenticated | None:
    """Who holds this token or session, or None (unknown, revoked, expired, idle, disabled)."""
    now = utcnow()
    tok = session.scalars(select(ApiToken).where(ApiToken.token_hash == hashed)).first()
    if tok is not None:
        if tok.revoked_at is not None or (tok.expires_at is not None and tok.expires_at <= now):
            return None
        if tok.last_used_at is None or now - tok.last_used_at > SEEN_EVERY:
            tok.last_used_at = now
        return Authenticated(Caller(actor=f"token:{tok.name}", role=tok.role,
                                    reseller_id=tok.reseller_id,
                                    reseller=_reseller(session, tok.reseller_id),
                                    token_id=tok.id, address=address), False, tok.expires_at)
    row = session.scalars(select(ApiSession).where(ApiSession.token_hash == hashed)).first()
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return None
    if now - row.last_seen_at > timedelta(seconds=idle):
        row.ended_at = now
        return None
    if row.via_token_id is not None:
        via = session.get(ApiToken, row.via_token_id)
        if via is None or via.revoked_at is not None or (
                via.expires_at is not None and via.expires_at <= now):
            return None
    caller = _session_caller(session, row, address)
    if caller is None:
        return None
    if now - row.last_seen_at > SEEN_EVERY:
        row.last_seen_at = now
    return Authenticated(caller, True, row.expires_at)
