"""PAP for imported subscribers: checked by NT hash, then given an argon2 hash (both DBs)."""

from __future__ import annotations

import os

import pytest_twisted
from pyrad import packet as P
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from twisted.internet import defer, reactor
from twisted.internet.task import Clock

from aaa.authenticate import Authenticator
from aaa.credentials import CredentialStore, SubscriberAuth
from aaa.dictionary import load_dictionary
from aaa.mschap import nt_password_hash
from aaa.outcome import Outcome
from aaa.pap import verify_password
from aaa.password_upgrade import PasswordUpgrader
from aaa.verifier import PasswordVerifier
from core.db.models import Subscriber, SubscriberStatus
from core.db.pool import DBPool

SECRET = b"testing123"


def pap_request(password: bytes) -> P.AuthPacket:
    pkt = P.AuthPacket(dict=load_dictionary(), secret=SECRET, authenticator=os.urandom(16))
    pkt["User-Name"] = "imp"
    pkt["User-Password"] = pkt.PwCrypt(password)
    return P.AuthPacket(packet=pkt.RequestPacket(), dict=load_dictionary(), secret=SECRET)


def pending(nt_password: str = "pw") -> SubscriberAuth:
    return SubscriberAuth(id=1, login="imp", status=SubscriberStatus.ACTIVE, password_hash=None,
                          nt_hash=nt_password_hash(nt_password), chap_enabled=False,
                          cleartext=None, static_ip=None, plan=None)


def authenticate(password: bytes, calls: list[str]) -> Outcome:
    auth = Authenticator(PasswordVerifier(reactor),  # type: ignore[arg-type]
                         lambda sub, pw: calls.append(pw))  # type: ignore[arg-type,func-returns-value]
    results: list[Outcome] = []
    defer.maybeDeferred(auth.authenticate, pap_request(password), b"imp", pending()).addCallback(
        lambda r: results.append(r.outcome))
    return results[0]


def test_pending_subscriber_pap_checks_nt_hash_and_asks_for_upgrade() -> None:
    """The right password is accepted and handed to the upgrade; a wrong one is not."""
    calls: list[str] = []
    assert authenticate(b"pw", calls) is Outcome.ACCEPT
    assert calls == ["pw"]
    assert authenticate(b"nope", calls) is Outcome.WRONG_PASSWORD
    assert authenticate(b"\xff\xfe", calls) is Outcome.WRONG_PASSWORD
    assert calls == ["pw"]


@pytest_twisted.inlineCallbacks
def test_upgrader_stores_argon2_once(engine: Engine, dbpool: DBPool):  # type: ignore[no-untyped-def]
    """The upgrader stores a verifying argon2 hash, and not over a password changed meanwhile."""
    with Session(engine) as s, s.begin():
        s.add_all([Subscriber(login="imp", nt_hash=nt_password_hash("pw").hex()),
                   Subscriber(login="moved", nt_hash=nt_password_hash("new").hex())])
    with Session(engine) as s:
        ids = dict(s.execute(select(Subscriber.login, Subscriber.id)).all())
    store = CredentialStore(dbpool, Clock(), ttl=60)
    upgrader = PasswordUpgrader(dbpool, reactor, store)  # type: ignore[arg-type]
    sub = yield store.get("imp")
    yield upgrader(sub, "pw")
    with Session(engine) as s:
        stored = s.scalars(select(Subscriber.password_hash).where(Subscriber.login == "imp")).one()
    assert stored is not None and verify_password(stored, b"pw")
    # 'moved' changed its password after the login read the old NT hash: leave it alone.
    stale = SubscriberAuth(id=ids["moved"], login="moved", status=SubscriberStatus.ACTIVE,
                           password_hash=None, nt_hash=nt_password_hash("old"),
                           chap_enabled=False, cleartext=None, static_ip=None, plan=None)
    yield upgrader(stale, "old")
    with Session(engine) as s:
        assert s.scalars(select(Subscriber.password_hash)
                         .where(Subscriber.login == "moved")).one() is None
