"""The billing hook stays out of the login path for plans without prices."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from aaa.access import AccessContext
from aaa.billing_hook import BillingAccessHook
from aaa.clients import NasClient
from aaa.credentials import PlanService, SubscriberAuth
from core.config import Config
from core.db.models import SubscriberStatus, Vendor


class CountingPool:
    """Answers thd_priced_plan_ids with a fixed set and counts every other call."""

    def __init__(self, priced: frozenset[int]) -> None:
        self.priced = priced
        self.calls: list[str] = []

    def run(self, fn: Any, *args: Any) -> defer.Deferred[Any]:
        self.calls.append(fn.__name__)
        if fn.__name__ == "thd_priced_plan_ids":
            return defer.succeed(self.priced)
        return defer.Deferred()  # a reservation: never answered here


def context(plan_id: int) -> AccessContext:
    plan = PlanService(id=plan_id, name="p", rate_limit=None, session_timeout=None,
                       idle_timeout=None, interim_interval=None, simultaneous_use=None,
                       framed_protocol=None, extra_reply=())
    sub = SubscriberAuth(id=1, login="u", status=SubscriberStatus.ACTIVE, password_hash=None,
                         nt_hash=None, chap_enabled=False, cleartext=None, static_ip=None,
                         plan=plan)
    client = NasClient(id=1, name="n", address="127.0.0.1", secret=b"s",
                       vendor=Vendor.GENERIC, require_message_authenticator=False, coa_port=3799)
    return AccessContext(client=client, packet={}, user_name="u",  # type: ignore[arg-type]
                         subscriber=sub, method="pap")


def test_unpriced_plan_skips_reservation_and_priced_plan_reserves() -> None:
    """Logins on an unpriced plan run no reservation; a priced plan's login does."""
    now = [0.0]
    pool = CountingPool(frozenset({7}))
    hook = BillingAccessHook(pool, Config(), priced_ttl=10.0, clock=lambda: now[0])
    results: list[Any] = []
    for _ in range(3):
        defer.maybeDeferred(hook, context(plan_id=3)).addCallback(results.append)
    assert results == [None, None, None]
    assert pool.calls == ["thd_priced_plan_ids"]  # loaded once, then cached
    hook(context(plan_id=7))
    assert pool.calls == ["thd_priced_plan_ids", "thd_reserve"]
    now[0] = 11.0  # past the TTL: the priced set is loaded again
    hook(context(plan_id=3))
    assert pool.calls.count("thd_priced_plan_ids") == 2
