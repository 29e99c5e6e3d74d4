"""AccessHandler: hooks answering now or later run in order; a warm login needs no Deferred."""

from __future__ import annotations

from typing import Any

from pyrad import packet as P
from twisted.internet import defer

from aaa.access import AccessContext, AccessHandler
from aaa.authenticate import AuthResult
from aaa.clients import NasClient
from aaa.credentials import PlanService, SubscriberAuth
from aaa.dictionary import load_dictionary
from aaa.outcome import Decision, Outcome
from core.db.models import SubscriberStatus, Vendor

SECRET = b"testing123"
CLIENT = NasClient(id=1, name="nas", address="127.0.0.1", secret=SECRET, vendor=Vendor.MIKROTIK,
                   require_message_authenticator=False, coa_port=3799)
PLAN = PlanService(id=1, name="home", rate_limit="10M/10M", session_timeout=3600,
                   idle_timeout=None, interim_interval=None, simultaneous_use=None,
                   framed_protocol=None, extra_reply=())
ALICE = SubscriberAuth(id=1, login="alice", status=SubscriberStatus.ACTIVE, password_hash="x",
                       nt_hash=None, chap_enabled=False, cleartext=None, static_ip=None,
                       plan=PLAN)


class Credentials:
    """Answers from memory, or through a Deferred when ``later`` is set."""

    def __init__(self, later: bool = False) -> None:
        self.later = later

    def get(self, login: str) -> Any:
        sub = ALICE if login == "alice" else None
        return defer.succeed(sub) if self.later else sub


class Accept:
    def authenticate(self, pkt: Any, name: bytes, sub: SubscriberAuth,
                     client: Any = None) -> AuthResult:
        return AuthResult(Outcome.ACCEPT, "pap")


def request(user: str = "alice") -> P.AuthPacket:
    pkt = P.AuthPacket(dict=load_dictionary(), secret=SECRET)
    pkt.AddAttribute("User-Name", user)
    return P.AuthPacket(packet=pkt.RequestPacket(), dict=load_dictionary(), secret=SECRET)


def settle(value: Any) -> Any:
    out: list[Any] = []
    defer.maybeDeferred(lambda: value).addBoth(out.append)
    assert out, "the decision never arrived"
    return out[0]


def test_warm_login_is_decided_without_a_deferred() -> None:
    """Credentials, authentication and hooks all answering at once give a plain Decision."""
    seen: list[str] = []

    def hook(ctx: AccessContext) -> None:
        seen.append(ctx.user_name)

    handler = AccessHandler(Credentials(), Accept(), [hook, hook])  # type: ignore[arg-type]
    decision = handler.handle(CLIENT, request())
    assert isinstance(decision, Decision) and decision.outcome is Outcome.ACCEPT
    assert ("Mikrotik-Rate-Limit", "10M/10M") in decision.attributes
    assert seen == ["alice", "alice"]


def test_hooks_run_in_order_across_deferred_and_plain_answers() -> None:
    """A hook answering later holds the next one back; the first reject ends the request."""
    order: list[str] = []
    pending: defer.Deferred[Decision | None] = defer.Deferred()

    def first(ctx: AccessContext) -> defer.Deferred[Decision | None]:
        order.append("first")
        return pending

    def second(ctx: AccessContext) -> Decision:
        order.append("second")
        return Decision(Outcome.TOO_MANY_SESSIONS)

    def third(ctx: AccessContext) -> None:
        order.append("third")

    handler = AccessHandler(Credentials(later=True), Accept(),  # type: ignore[arg-type]
                            [first, second, third])
    result = handler.handle(CLIENT, request())
    assert isinstance(result, defer.Deferred) and order == ["first"]
    pending.callback(None)
    decision = settle(result)
    assert order == ["first", "second"]
    assert decision.outcome is Outcome.TOO_MANY_SESSIONS and decision.detail == "alice"


def test_unknown_login_and_failing_hook() -> None:
    """No subscriber: UNKNOWN_LOGIN at once; a hook that raises fails the request."""
    def broken(ctx: AccessContext) -> None:
        raise RuntimeError("hook bug")

    handler = AccessHandler(Credentials(), Accept(), [broken])  # type: ignore[arg-type]
    assert settle(handler.handle(CLIENT, request("nobody"))).outcome is Outcome.UNKNOWN_LOGIN
    failure = settle(defer.maybeDeferred(handler.handle, CLIENT, request()))
    assert failure.check(RuntimeError)
