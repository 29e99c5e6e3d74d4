"""radius.on_database_down: drop, reject or answer from memory (issue 12 point 2)."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock

from aaa.access import AccessContext, AccessHandler
from aaa.credentials import CredentialStore
from aaa.outcome import Decision, Outcome, rule_for
from core.errors import DatabaseUnavailable
from tests.test_access_handler import ALICE, CLIENT, Accept, request, settle


class FlakyPool:
    """Answers loads with ALICE until ``down`` is set, then fails like an outage."""

    def __init__(self) -> None:
        self.down = False

    def run(self, fn: Any, *args: Any) -> defer.Deferred[Any]:
        if self.down:
            return defer.fail(DatabaseUnavailable("database unreachable"))
        return defer.succeed(ALICE if args[0] == "alice" else None)


def handler(mode: str, hooks: list[Any] = ()) -> tuple[FlakyPool, Clock, AccessHandler]:  # type: ignore[assignment]
    pool, clock = FlakyPool(), Clock()
    store = CredentialStore(pool, clock, ttl=10)  # type: ignore[arg-type]
    return pool, clock, AccessHandler(store, Accept(), hooks,  # type: ignore[arg-type]
                                      on_database_down=mode)


@pytest.mark.parametrize(("mode", "outcome", "code"), [
    ("drop", Outcome.DATABASE_DOWN, None),
    ("reject", Outcome.DATABASE_DOWN_REJECT, 3),
    ("cache", Outcome.DATABASE_DOWN, None),  # never loaded: nothing to answer from
])
def test_a_login_the_database_must_answer(mode: str, outcome: Outcome, code: int | None) -> None:
    """A login not in memory follows the mode: no reply, or Access-Reject with a message."""
    pool, _, h = handler(mode)
    pool.down = True
    decision = settle(h.handle(CLIENT, request()))
    assert isinstance(decision, Decision) and decision.outcome is outcome
    rule = rule_for("auth", outcome)
    assert rule.code == code
    if code:
        assert rule.message == "Service temporarily unavailable"


def test_cache_mode_answers_an_expired_entry_and_skips_read_only_hooks() -> None:
    """cache: an expired entry is used, a read-only hook skipped, a hook that writes drops."""
    seen: list[str] = []

    def read_only(ctx: AccessContext) -> defer.Deferred[None]:
        seen.append("read")
        return defer.fail(DatabaseUnavailable("down"))

    read_only.optional_when_database_down = True  # type: ignore[attr-defined]

    pool, clock, h = handler("cache", [read_only])
    assert settle(h.handle(CLIENT, request())).outcome is Outcome.ACCEPT
    pool.down = True
    clock.advance(60)  # the entry expired: the reload fails, the old entry answers
    assert settle(h.handle(CLIENT, request())).outcome is Outcome.ACCEPT
    assert seen == ["read", "read"]

    def writes(ctx: AccessContext) -> defer.Deferred[None]:
        return defer.fail(DatabaseUnavailable("down"))

    h.hooks.append(writes)
    assert settle(h.handle(CLIENT, request())).outcome is Outcome.DATABASE_DOWN
    # drop mode never uses the expired entry
    h.on_database_down = "drop"
    h.hooks = []
    assert settle(h.handle(CLIENT, request())).outcome is Outcome.DATABASE_DOWN


def test_credential_poll_failing_in_an_outage_keeps_the_cache_for_cache_mode() -> None:
    """cache mode: polls failing with the DB down keep entries; the first good poll flushes."""
    from aaa.credential_watch import ChangeSnapshot, CredentialWatcher

    pool, clock = FlakyPool(), Clock()
    store = CredentialStore(pool, clock, ttl=10)  # type: ignore[arg-type]
    store.get("alice")
    watcher = CredentialWatcher(store, pool, clock, keep_during_outage=True)  # type: ignore[arg-type]
    pool.down = True
    watcher.poll()
    assert store.known("alice")
    snap = ChangeSnapshot((), 1, 1, 0, 0, None)
    watcher._apply(snap)
    assert not store.known("alice")  # flushed once the database answered again
