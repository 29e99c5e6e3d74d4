"""Access-Request processing: find the subscriber, authenticate, authorize, run hooks.

Later stages (simultaneous-use, balance reservation, pool leases) plug in as
AccessHooks given at wiring time, in order; the first that returns a reject
decision ends the request. A hook that raises fails the request with no
reply, so the NAS retries or fails over rather than rejecting a subscriber
for a server-side fault.

Each step may answer at once or through a Deferred (aaa.maybe): with warm
caches a login runs start to finish without creating a single Deferred, and
the Deferred and generator machinery it replaced was about a fifth of the CPU
of a whole request (bench/auth_bench.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pyrad.packet import Packet
from twisted.python.failure import Failure

from aaa.authenticate import Authenticator, AuthResult, raw
from aaa.authorize import plan_attributes
from aaa.clients import NasClient
from aaa.credentials import CredentialStore, SubscriberAuth
from aaa.maybe import Maybe, is_deferred, then
from aaa.outcome import Decision, Outcome
from core.db.models import SubscriberStatus
from core.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

USER_NAME = 1


@dataclass
class AccessContext:
    """One Access-Request on its way through the hooks; hooks may add reply attributes."""

    client: NasClient
    packet: Packet
    user_name: str
    subscriber: SubscriberAuth
    method: str
    reply: list[tuple[str, object]] = field(default_factory=list)

    def attr(self, name: str) -> object | None:
        try:
            values = self.packet.get(name)
        except Exception:  # an undecodable value is as good as absent here
            return None
        return values[0] if values else None


class AccessHook(Protocol):
    """Runs after authentication; None lets the login through, a Decision ends it.

    May answer at once or through a Deferred (aaa.maybe).
    """

    def __call__(self, ctx: AccessContext) -> Maybe[Decision | None]: ...


class UnknownLogin(Protocol):
    """Asked about a login the store does not know (e.g. a hotspot voucher, aaa.voucher).

    None: not for it (the login is unknown); else a Deferred of the subscriber
    it created, or None when it refused.
    """

    def __call__(self, client: NasClient, pkt: Packet,
                 user_name: str) -> Maybe[SubscriberAuth | None] | None: ...


#: Hooks marked so (an attribute on the hook) are skipped under on_database_down = "cache"
#: when the database cannot answer them: they only read (simultaneous-use), and letting a
#: login through without that read is the documented price of answering from memory.
OPTIONAL_WHEN_DOWN = "optional_when_database_down"


class AccessHandler:
    def __init__(self, credentials: CredentialStore, authenticator: Authenticator,
                 hooks: Sequence[AccessHook] = (),
                 unknown_login: UnknownLogin | None = None,
                 on_database_down: str = "drop") -> None:
        """``on_database_down``: radius.on_database_down (drop, reject or cache)."""
        self.credentials = credentials
        self.authenticator = authenticator
        self.hooks = list(hooks)
        self.unknown_login = unknown_login
        self.on_database_down = on_database_down

    def handle(self, client: NasClient, pkt: Packet) -> Maybe[Decision]:
        name_raw = raw(pkt, USER_NAME)
        if not name_raw:
            return Decision(Outcome.NO_CREDENTIALS, detail="no User-Name")
        try:
            user_name = name_raw.decode("utf-8")
        except UnicodeDecodeError:
            return Decision(Outcome.UNKNOWN_LOGIN, detail="User-Name is not UTF-8")
        found = self.credentials.get(user_name)
        if is_deferred(found):
            found.addErrback(self._load_failed, user_name)  # type: ignore[union-attr]
        decision = then(found, self._found, client, pkt, name_raw, user_name)
        if is_deferred(decision):
            decision.addErrback(self._database_down, user_name)  # type: ignore[union-attr]
        return decision

    def _load_failed(self, failure: Failure, user_name: str) -> object:
        """With the database down and on_database_down = cache, the last entry loaded."""
        failure.trap(DatabaseUnavailable)
        if self.on_database_down != "cache" or not self.credentials.known(user_name):
            return failure
        return self.credentials.stale(user_name)

    def _database_down(self, failure: Failure, user_name: str) -> Decision:
        """Whatever step needed the database and could not have it: radius.on_database_down.

        No traceback and no line of its own: core.db.outage logs the outage once, and the
        reject/drop line of aaa.radius (rate-limited) counts the requests.
        """
        failure.trap(DatabaseUnavailable)
        outcome = (Outcome.DATABASE_DOWN_REJECT if self.on_database_down == "reject"
                   else Outcome.DATABASE_DOWN)
        return Decision(outcome, detail=f"{user_name}: the database is unreachable")

    def _found(self, sub: SubscriberAuth | None, client: NasClient, pkt: Packet,
               name_raw: bytes, user_name: str) -> Maybe[Decision]:
        if sub is None:
            fallback = (self.unknown_login(client, pkt, user_name)
                        if self.unknown_login is not None else None)
            if fallback is None:
                return Decision(Outcome.UNKNOWN_LOGIN, detail=f"login {user_name!r}")
            return then(fallback, self._created, client, pkt, name_raw, user_name)
        return then(self.authenticator.authenticate(pkt, name_raw, sub, client),
                    self._authenticated, client, pkt, user_name, sub)

    def _created(self, sub: SubscriberAuth | None, client: NasClient, pkt: Packet,
                 name_raw: bytes, user_name: str) -> Maybe[Decision]:
        if sub is None:
            return Decision(Outcome.UNKNOWN_LOGIN, detail=f"login {user_name!r} (voucher refused)")
        return then(self.authenticator.authenticate(pkt, name_raw, sub, client),
                    self._authenticated, client, pkt, user_name, sub)

    def _authenticated(self, result: AuthResult, client: NasClient, pkt: Packet,
                       user_name: str, sub: SubscriberAuth) -> Maybe[Decision]:
        if result.outcome is not Outcome.ACCEPT:
            return Decision(result.outcome, attributes=result.attributes,
                            detail=f"{user_name} {result.method} {result.detail}".strip())
        if sub.status is SubscriberStatus.BLOCKED:
            return Decision(Outcome.BLOCKED, detail=user_name)
        if sub.status is SubscriberStatus.DISABLED:
            return Decision(Outcome.DISABLED, detail=user_name)
        ctx = AccessContext(client=client, packet=pkt, user_name=user_name, subscriber=sub,
                            method=result.method, reply=plan_attributes(client, sub))
        return self._run_hooks(ctx, result, 0)

    def _run_hooks(self, ctx: AccessContext, result: AuthResult, i: int) -> Maybe[Decision]:
        """Hooks in order from the i-th; a hook that answers at once costs no Deferred."""
        hooks = self.hooks
        while i < len(hooks):
            hook = hooks[i]
            verdict = hooks[i](ctx)
            i += 1
            if is_deferred(verdict):
                if self.on_database_down == "cache" and getattr(hook, OPTIONAL_WHEN_DOWN,
                                                                False):
                    verdict.addErrback(_skip_when_down)  # type: ignore[union-attr]
                return verdict.addCallback(  # type: ignore[union-attr,no-any-return]
                    self._hook_answered, ctx, result, i)
            if verdict is not None:
                return self._rejected(verdict, ctx)
        return Decision(Outcome.ACCEPT, attributes=result.attributes + ctx.reply,
                        detail=f"{ctx.user_name} {result.method}")

    def _hook_answered(self, verdict: Decision | None, ctx: AccessContext, result: AuthResult,
                       i: int) -> Maybe[Decision]:
        if verdict is not None:
            return self._rejected(verdict, ctx)
        return self._run_hooks(ctx, result, i)

    @staticmethod
    def _rejected(verdict: Decision, ctx: AccessContext) -> Decision:
        if not verdict.detail:
            verdict.detail = ctx.user_name
        return verdict


def _skip_when_down(failure: Failure) -> None:
    failure.trap(DatabaseUnavailable)
    return None
