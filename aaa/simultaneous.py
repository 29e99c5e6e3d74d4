"""Simultaneous-use: an AccessHook that rejects a login beyond the plan's session limit.

Only live sessions count (open, and heard of within their stale deadline; see
accounting.hygiene), so a session whose Stop was lost never locks its
subscriber out for longer than ``stale_after_intervals`` Interim-Updates.
The count is read from the database on every Access-Request of a limited
plan: it is never cached, because a session that just stopped must free its
slot at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from twisted.internet import defer

from aaa.access import AccessContext, AccessHook
from aaa.maybe import Maybe
from aaa.outcome import Decision, Outcome
from accounting.hygiene import thd_count_live_sessions
from core.db.base import utcnow
from core.db.pool import DBPool


def make_simultaneous_use_hook(dbpool: DBPool,
                               now: Callable[[], datetime] = utcnow) -> AccessHook:
    """The hook for AccessHandler; plans without a limit (None or 0) cost no query."""

    def simultaneous_use(ctx: AccessContext) -> Maybe[Decision | None]:
        plan = ctx.subscriber.plan
        limit = plan.simultaneous_use if plan is not None else None
        if not limit or limit <= 0:
            return None

        def check(live: int) -> Decision | None:
            if live >= limit:
                return Decision(Outcome.TOO_MANY_SESSIONS,
                                detail=f"{ctx.user_name}: {live} live sessions, "
                                       f"plan allows {limit}")
            return None

        d: defer.Deferred[int] = dbpool.run(thd_count_live_sessions, ctx.subscriber.id, now())
        return d.addCallback(check)

    # Only a read: under radius.on_database_down = "cache" a login goes on without it.
    simultaneous_use.optional_when_database_down = True  # type: ignore[attr-defined]
    return simultaneous_use
