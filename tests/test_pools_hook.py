"""The pool AccessHook: addresses in the Accept, rejects when full, end to end with radclient."""

from __future__ import annotations

import shutil
from collections.abc import Generator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from prometheus_client import REGISTRY
from pyrad.packet import AuthPacket
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from twisted.internet import defer, reactor, task
from twisted.internet.utils import getProcessOutputAndValue

from aaa.access import AccessHandler
from aaa.authenticate import AuthResult
from aaa.clients import NasClient
from aaa.credentials import PlanService, SubscriberAuth
from aaa.dictionary import load_dictionary
from aaa.outcome import Outcome, rule_for
from aaa.pap import hash_password
from aaa.pool_hook import PoolHook
from core.config import Config, DatabaseConfig, RadiusConfig, ServerConfig
from core.db.models import Nas, Plan, Subscriber, SubscriberStatus, Vendor
from core.db.pool import DBPool
from pools.manage import thd_assign_static, thd_attach
from pools.models import OnExhausted, PoolKind
from tests.pools_support import add_pool, thd_demo_rows, thd_states
from tests.radclient import parse_output

SECRET = "testing123"
Steps = Generator[Any, Any, None]  # a pytest_twisted.inlineCallbacks test


class FakeCredentials:
    """A CredentialStore holding fixed subscribers."""

    def __init__(self, subs: dict[str, SubscriberAuth]) -> None:
        self.subs = subs

    def get(self, login: str) -> defer.Deferred[SubscriberAuth | None]:
        return defer.succeed(self.subs.get(login))


class AcceptAll:
    """An Authenticator that accepts every request (the hook comes after authentication)."""

    def authenticate(self, pkt: Any, name: bytes, sub: SubscriberAuth,
                     client: Any = None) -> defer.Deferred[AuthResult]:
        return defer.succeed(AuthResult(Outcome.ACCEPT, "pap"))


def _sub(login: str, plan_id: int | None, sub_id: int, static_ip: str | None = None
         ) -> SubscriberAuth:
    plan = None if plan_id is None else PlanService(
        id=plan_id, name="home", rate_limit=None, session_timeout=None, idle_timeout=None,
        interim_interval=None, simultaneous_use=None, framed_protocol=None, extra_reply=())
    return SubscriberAuth(id=sub_id, login=login, status=SubscriberStatus.ACTIVE,
                          password_hash=None, nt_hash=None, chap_enabled=False, cleartext=None,
                          static_ip=static_ip, plan=plan)


def _packet(login: str, device: str = "aa:bb:cc:dd:ee:ff") -> AuthPacket:
    d = load_dictionary()
    pkt = AuthPacket(dict=d, secret=SECRET.encode())
    pkt.AddAttribute("User-Name", login)
    pkt.AddAttribute("Calling-Station-Id", device)
    return AuthPacket(packet=pkt.RequestPacket(), dict=d, secret=SECRET.encode())


@pytest.fixture
def setup(dbpool: DBPool) -> tuple[AccessHandler, PoolHook, NasClient, dict[str, int]]:
    """AccessHandler with the PoolHook, plan 'home' on ipv4/ipv6/pd pools, NAS nas1."""
    ids = dbpool.run_sync(thd_demo_rows, ("alice", "bob", "carol", "dave"))
    add_pool(dbpool, "v4", PoolKind.IPV4, "100.64.0.1-100.64.0.2")
    add_pool(dbpool, "v6", PoolKind.IPV6, "2001:db8:1::/62", prefix_length=64)
    add_pool(dbpool, "pd", PoolKind.PD, "2001:db8:100::/52", prefix_length=56)
    for pool in ("v4", "v6", "pd"):
        dbpool.run_sync(thd_attach, "home", pool)
    subs = {login: _sub(login, ids["home"], ids[login]) for login in ("alice", "bob", "carol")}
    subs["dave"] = _sub("dave", ids["home"], ids["dave"], static_ip="192.0.2.9")
    subs["nobody"] = _sub("nobody", None, 999)
    hook = PoolHook(dbpool, reactor, offer_lease_seconds=30, routes_ttl=0)
    handler = AccessHandler(FakeCredentials(subs), AcceptAll(), [hook])  # type: ignore[arg-type]
    client = NasClient(id=ids["nas1"], name="nas1", address="127.0.0.1", secret=SECRET.encode(),
                       vendor=Vendor.GENERIC, require_message_authenticator=False, coa_port=3799)
    return handler, hook, client, ids


def _attrs(decision: Any) -> dict[str, object]:
    return dict(decision.attributes)


@pytest_twisted.inlineCallbacks
def test_accept_carries_address_and_prefixes(setup: Any, dbpool: DBPool) -> Steps:
    """The Accept gets Framed-IP-Address, Framed-IPv6-Prefix and Delegated-IPv6-Prefix."""
    handler, _, client, _ = setup
    decision = yield handler.handle(client, _packet("alice"))
    assert decision.outcome is Outcome.ACCEPT
    attrs = _attrs(decision)
    assert attrs["Framed-IP-Address"] == "100.64.0.1"
    assert attrs["Framed-IPv6-Prefix"] == "2001:db8:1::/64"
    assert attrs["Delegated-IPv6-Prefix"] == "2001:db8:100::/56"
    assert dbpool.run_sync(thd_states, "v4")["100.64.0.1"] == ("offered", "alice")
    again = yield handler.handle(client, _packet("alice"))
    assert _attrs(again)["Framed-IP-Address"] == "100.64.0.1"  # a repeated request


@pytest_twisted.inlineCallbacks
def test_full_pool_rejects_with_message_and_counter(setup: Any, dbpool: DBPool) -> Steps:
    """The third subscriber finds v4 full: Access-Reject 'Address pool is full', counted."""
    handler, _, client, _ = setup
    before = REGISTRY.get_sample_value("radbill_pool_exhausted_total",
                                       {"pool": "v4", "outcome": "reject"}) or 0
    for login in ("alice", "bob"):
        ok = yield handler.handle(client, _packet(login, device=login))
        assert ok.outcome is Outcome.ACCEPT
    full = yield handler.handle(client, _packet("carol"))
    assert full.outcome is Outcome.POOL_EXHAUSTED
    assert rule_for("auth", full.outcome).message == "Address pool is full"
    assert REGISTRY.get_sample_value("radbill_pool_exhausted_total",
                                     {"pool": "v4", "outcome": "reject"}) == before + 1
    offered = [v for v, (state, holder) in dbpool.run_sync(thd_states).items()
               if holder == "carol" and state == "offered"]
    assert offered == []  # nothing half-allocated for the rejected request


@pytest_twisted.inlineCallbacks
def test_full_pool_falls_back_to_framed_pool(setup: Any, dbpool: DBPool) -> Steps:
    """With on_exhausted=framed-pool the third subscriber is accepted with Framed-Pool."""
    handler, _, client, _ = setup
    dbpool.run_sync(thd_attach, "home", "v4", on_exhausted=OnExhausted.FRAMED_POOL)
    for login in ("alice", "bob"):
        yield handler.handle(client, _packet(login, device=login))
    decision = yield handler.handle(client, _packet("carol"))
    assert decision.outcome is Outcome.ACCEPT
    attrs = _attrs(decision)
    assert attrs["Framed-Pool"] == "v4" and "Framed-IP-Address" not in attrs
    assert "Delegated-IPv6-Prefix" in attrs


@pytest_twisted.inlineCallbacks
def test_static_addresses_win(setup: Any, dbpool: DBPool) -> Steps:
    """A pool static assignment is what the subscriber gets; a subscriber static_ip skips v4."""
    handler, _, client, _ = setup
    dbpool.run_sync(thd_assign_static, "v4", "bob", "100.64.0.2")
    bob = yield handler.handle(client, _packet("bob"))
    assert _attrs(bob)["Framed-IP-Address"] == "100.64.0.2"
    dave = yield handler.handle(client, _packet("dave"))
    assert [v for k, v in dave.attributes if k == "Framed-IP-Address"] == ["192.0.2.9"]
    assert "Framed-IPv6-Prefix" in _attrs(dave)
    assert dbpool.run_sync(thd_states, "v4")["100.64.0.1"] == ("free", None)


@pytest_twisted.inlineCallbacks
def test_no_plan_means_no_pool_work(setup: Any, dbpool: DBPool) -> Steps:
    """A subscriber without a plan is accepted untouched; no identifier is offered."""
    handler, _, client, _ = setup
    decision = yield handler.handle(client, _packet("nobody"))
    assert decision.outcome is Outcome.ACCEPT
    assert "Framed-IP-Address" not in _attrs(decision)
    assert all(state == "free" for state, _ in dbpool.run_sync(thd_states).values())


# -- end to end: the real server and FreeRADIUS's radclient -------------------------------

@pytest.fixture
def server(engine: Engine, db_url: str, tmp_path: Path) -> Iterator[Any]:
    """radbill on 127.0.0.1 port 0 with the PoolHook; plan 'home' draws from a 1-address pool."""
    if shutil.which("radclient") is None:
        pytest.skip("radclient not installed (apt-get install freeradius-utils)")
    from radbill.app import make_service

    with Session(engine) as s, s.begin():
        plan = Plan(name="home")
        s.add(plan)
        s.flush()
        s.add(Nas(name="lo", address="127.0.0.1", secret=SECRET,
                  require_message_authenticator=False))
        for login in ("alice", "bob"):
            s.add(Subscriber(login=login, password_hash=hash_password("s3cret!"),
                             plan_id=plan.id))
    setup_pool = DBPool(engine)
    add_pool(setup_pool, "v4", PoolKind.IPV4, "100.64.9.1")
    setup_pool.run_sync(thd_attach, "home", "v4")
    config = replace(Config(), server=ServerConfig(data_dir=str(tmp_path)),
                     database=DatabaseConfig(url=db_url, pool_size=2),
                     radius=RadiusConfig(listen=["127.0.0.1"], auth_port=0, acct_port=0))
    hook = PoolHook(None, reactor, offer_lease_seconds=60)  # type: ignore[arg-type]
    app = make_service(config, reactor, access_hooks=[hook])
    hook.dbpool = app.dbpool
    app.root.startService()

    @defer.inlineCallbacks
    def loaded():
        for _ in range(100):
            if len(app.radius.clients.table):
                return
            yield task.deferLater(reactor, 0.05, lambda: None)

    try:
        pytest_twisted.blockon(loaded())
        yield app
    finally:
        try:
            pytest_twisted.blockon(defer.maybeDeferred(app.root.stopService))
        finally:
            app.dbpool.stop()  # no-op if stopService did it; else its threads would outlive pytest


@defer.inlineCallbacks
def _radclient(port: int, attributes: str):
    path = shutil.which("radclient")
    out, err, _ = yield getProcessOutputAndValue(
        path, ["-x", "-t", "3", "-r", "1", f"127.0.0.1:{port}", "auth", SECRET],
        env={"PATH": "/usr/bin"}, reactor=reactor, stdinBytes=attributes.encode())
    return parse_output((out + err).decode(errors="replace"))


@pytest.mark.radclient
@pytest_twisted.inlineCallbacks
def test_radclient_gets_address_then_pool_full(server: Any) -> Steps:
    """Through the real server: alice's Accept carries the address; bob is rejected, pool full."""
    port = server.radius.bound_port("auth")
    alice = yield _radclient(port, 'User-Name = "alice"\nUser-Password = "s3cret!"\n')
    assert alice.code == "Access-Accept", alice.output
    assert alice.value("Framed-IP-Address") == "100.64.9.1"
    bob = yield _radclient(port, 'User-Name = "bob"\nUser-Password = "s3cret!"\n')
    assert bob.code == "Access-Reject", bob.output
    assert bob.value("Reply-Message") == "Address pool is full"
