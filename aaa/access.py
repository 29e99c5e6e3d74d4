"""Access-Request processing: find the subscriber, authenticate, authorize, run hooks.

Later stages (simultaneous-use, balance reservation, pool leases) plug in as
AccessHooks given at wiring time, in order; the first that returns a reject
decision ends the request. A hook that raises fails the request with no
reply, so the NAS retries or fails over rather than rejecting a subscriber
for a server-side fault.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pyrad.packet import Packet
from twisted.internet import defer

from aaa.authenticate import Authenticator, raw
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

    @defer.inlineCallbacks
    def handle(self, client: NasClient, pkt: Packet):  # type: ignore[no-untyped-def]
        name_raw = raw(pkt, USER_NAME)
        if not name_raw:
            return Decision(Outcome.NO_CREDENTIALS, detail="no User-Name")
        try:
            user_name = name_raw.decode("utf-8")
        except UnicodeDecodeError:
            return Decision(Outcome.UNKNOWN_LOGIN, detail="User-Name is not UTF-8")
        sub = yield self.credentials.get(user_name)
        if sub is None:
            return Decision(Outcome.UNKNOWN_LOGIN, detail=f"login {user_name!r}")
        result = yield self.authenticator.authenticate(pkt, name_raw, sub)
        if result.outcome is not Outcome.ACCEPT:
            return Decision(result.outcome, attributes=result.attributes,
                            detail=f"{user_name} {result.method} {result.detail}".strip())
        if sub.status is SubscriberStatus.BLOCKED:
            return Decision(Outcome.BLOCKED, detail=user_name)
        if sub.status is SubscriberStatus.DISABLED:
            return Decision(Outcome.DISABLED, detail=user_name)
        ctx = AccessContext(client=client, packet=pkt, user_name=user_name, subscriber=sub,
                            method=result.method, reply=plan_attributes(client, sub))
        for hook in self.hooks:
            verdict = yield hook(ctx)
            if verdict is not None:
                if not verdict.detail:
                    verdict.detail = user_name
                return verdict
        return Decision(Outcome.ACCEPT, attributes=result.attributes + ctx.reply,
                        detail=f"{user_name} {result.method}")
