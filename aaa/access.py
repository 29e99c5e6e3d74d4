"""Access-Request processing: find the subscriber, authenticate, authorize, run hooks.

Later stages (simultaneous-use, balance reservation, pool leases) plug in as
AccessHooks given at wiring time, in order; the first that returns a reject
decision ends the request. A hook that raises fails the request with no
reply, so the NAS retries or fails over rather than rejecting a subscriber
for a server-side fault.

The steps are chained Deferred callbacks rather than one inlineCallbacks
generator: with warm caches every step has already fired, and the generator
machinery was a tenth of the CPU of a whole request (bench/auth_bench.py).
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pyrad.packet import Packet
from twisted.internet import defer

from aaa.authenticate import Authenticator, AuthResult, raw
from aaa.authorize import plan_attributes
from aaa.clients import NasClient
from aaa.credentials import CredentialStore, SubscriberAuth
from aaa.outcome import Decision, Outcome
from radbill.db.models import SubscriberStatus

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
    def __call__(self, ctx: AccessContext) -> defer.Deferred[Decision | None]: ...


class AccessHandler:
    def __init__(self, credentials: CredentialStore, authenticator: Authenticator,
                 hooks: Sequence[AccessHook] = ()) -> None:
        self.credentials = credentials
        self.authenticator = authenticator
        self.hooks = list(hooks)

    def handle(self, client: NasClient, pkt: Packet) -> defer.Deferred[Decision]:
        name_raw = raw(pkt, USER_NAME)
        if not name_raw:
            return defer.succeed(Decision(Outcome.NO_CREDENTIALS, detail="no User-Name"))
        try:
            user_name = name_raw.decode("utf-8")
        except UnicodeDecodeError:
            return defer.succeed(Decision(Outcome.UNKNOWN_LOGIN, detail="User-Name is not UTF-8"))
        d: defer.Deferred[SubscriberAuth | None] = defer.maybeDeferred(
            self.credentials.get, user_name)
        return d.addCallback(self._found, client, pkt, name_raw, user_name)

    def _found(self, sub: SubscriberAuth | None, client: NasClient, pkt: Packet,
               name_raw: bytes, user_name: str) -> Decision | defer.Deferred[Decision]:
        if sub is None:
            return Decision(Outcome.UNKNOWN_LOGIN, detail=f"login {user_name!r}")
        d: defer.Deferred[AuthResult] = defer.maybeDeferred(
            self.authenticator.authenticate, pkt, name_raw, sub)
        return d.addCallback(self._authenticated, client, pkt, user_name, sub)

    def _authenticated(self, result: AuthResult, client: NasClient, pkt: Packet,
                       user_name: str, sub: SubscriberAuth) -> Decision | defer.Deferred[Decision]:
        if result.outcome is not Outcome.ACCEPT:
            return Decision(result.outcome, attributes=result.attributes,
                            detail=f"{user_name} {result.method} {result.detail}".strip())
        if sub.status is SubscriberStatus.BLOCKED:
            return Decision(Outcome.BLOCKED, detail=user_name)
        if sub.status is SubscriberStatus.DISABLED:
            return Decision(Outcome.DISABLED, detail=user_name)
        ctx = AccessContext(client=client, packet=pkt, user_name=user_name, subscriber=sub,
                            method=result.method, reply=plan_attributes(client, sub))
        if not self.hooks:
            return Decision(Outcome.ACCEPT, attributes=result.attributes + ctx.reply,
                            detail=f"{user_name} {result.method}")
        return self._run_hooks(ctx, result)

    @defer.inlineCallbacks
    def _run_hooks(self, ctx: AccessContext,
                   result: AuthResult) -> Generator[Any, Any, Decision]:
        for hook in self.hooks:
            verdict = yield hook(ctx)
            if verdict is not None:
                if not verdict.detail:
                    verdict.detail = ctx.user_name
                return verdict
        return Decision(Outcome.ACCEPT, attributes=result.attributes + ctx.reply,
                        detail=f"{ctx.user_name} {result.method}")
