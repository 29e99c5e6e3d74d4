"""Exactly-once for money-moving API writes: the first answer, kept by (actor, Idempotency-Key).

``thd_once`` inserts the key row first, in the same transaction as the change,
then runs the operation and stores its answer. A concurrent duplicate blocks on
the unique (actor, key) index until the first commits, then fails with an
IntegrityError; the face then calls ``thd_replay`` and answers the stored
result. The same key with a different request is a Conflict, not a replay.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.db.access import IdempotencyKey
from core.db.base import utcnow
from core.formats import plain
from webadmin.errors import Conflict
from webadmin.roles import Caller

KEEP = timedelta(days=30)


def request_hash(endpoint: str, request: Any) -> str:
    text = json.dumps([endpoint, plain(request)], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Stored:
    status: int
    response: Any
    replayed: bool


def _found(session: Session, caller: Caller, key: str, hashed: str) -> Stored | None:
    row = session.scalars(select(IdempotencyKey).where(
        IdempotencyKey.actor == caller.actor[:160], IdempotencyKey.key == key)).one_or_none()
    if row is None:
        return None
    if row.request_hash != hashed:
        raise Conflict("this Idempotency-Key was used for a different request")
    return Stored(row.status, row.response, True)


def thd_replay(session: Session, caller: Caller, key: str, hashed: str) -> Stored | None:
    return _found(session, caller, key, hashed)


def thd_once(session: Session, caller: Caller, key: str, endpoint: str, hashed: str,
             status: Callable[[Any], int], answer: Callable[[Any], Any],
             fn: Callable[..., Any], *args: Any) -> Stored:
    """The stored answer, or run ``fn(session, caller, *args)`` now and store its answer."""
    found = _found(session, caller, key, hashed)
    if found is not None:
        return found
    row = IdempotencyKey(actor=caller.actor[:160], key=key, endpoint=endpoint[:64],
                         request_hash=hashed, status=0, response=None, created_at=utcnow())
    session.add(row)
    session.flush()  # a concurrent duplicate waits here, then fails on the unique key
    result = fn(session, caller, *args)
    row.status, row.response = status(result), plain(answer(result))
    session.flush()
    return Stored(row.status, row.response, False)


def thd_expire(session: Session, older_than: timedelta = KEEP) -> int:
    """Forget keys older than ``older_than`` (a retry after a month is a new request)."""
    result = session.execute(delete(IdempotencyKey).where(
        IdempotencyKey.created_at < utcnow() - older_than))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
