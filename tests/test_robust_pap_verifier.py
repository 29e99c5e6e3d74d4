"""PAP verifiers (issue 12 point 1): cold logins after a restart need no argon2."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from argon2 import PasswordHasher, Type
from pyrad import packet as P
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session
from twisted.internet import defer, reactor
from twisted.internet.task import Clock

import aaa.authenticate
from aaa.authenticate import Authenticator
from aaa.credentials import CredentialStore
from aaa.dictionary import load_dictionary
from aaa.errors import PapKeyError
from aaa.models import PapVerifier
from aaa.mschap import nt_password_hash
from aaa.outcome import Outcome
from aaa.pap_key import load_or_create_key
from aaa.password_upgrade import PasswordUpgrader
from aaa.slowqueue import SlowCheckQueue
from aaa.verifier import PasswordVerifier, thd_store_verifiers, verifier_tag
from core.db.models import Subscriber
from core.db.pool import DBPool
from tests.deferred_support import answered
from tests.fake_threads import ThreadedClock

SECRET = b"testing123"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)


def pap(login: str, password: bytes) -> P.AuthPacket:
    pkt = P.AuthPacket(dict=load_dictionary(), secret=SECRET, authenticator=os.urandom(16))
    pkt["User-Name"] = login
    pkt["User-Password"] = pkt.PwCrypt(password)
    return P.AuthPacket(packet=pkt.RequestPacket(), dict=load_dictionary(), secret=SECRET)


class Server:
    """What one `radbill serve` process holds for PAP: its caches are its own."""

    def __init__(self, dbpool: DBPool, key: bytes) -> None:
        self.credentials = CredentialStore(dbpool, Clock(), ttl=60, max_loads=2)
        self.verifier = PasswordVerifier(
            reactor, key, SlowCheckQueue(reactor, running=2, waiting=8),
            store=lambda rows: dbpool.run(thd_store_verifiers, rows))
        self.upgrader = PasswordUpgrader(dbpool, reactor, self.credentials,  # type: ignore[arg-type]
                                         self.verifier)
        self.auth = Authenticator(self.verifier, self.upgrader)

    @defer.inlineCallbacks
    def login(self, login: str, password: bytes) -> Any:
        sub = yield self.credentials.get(login)
        result = yield defer.maybeDeferred(self.auth.authenticate, pap(login, password),
                                           login.encode(), sub)
        yield self.settled()
        return result.outcome

    @defer.inlineCallbacks
    def settled(self) -> Any:
        """Let the verifier writes (and background upgrades) finish."""
        for _ in range(1500):  # up to 30 s: argon2 on a busy machine
            if not self.verifier._saving and not self.verifier._unsaved and \
                    not self.verifier.queue.running and not self.upgrader._pending:
                return
            d: defer.Deferred[None] = defer.Deferred()
            reactor.callLater(0.02, d.callback, None)  # type: ignore[attr-defined]
            yield d


@pytest.fixture
def slow_checks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every argon2 verification the authenticator asks for, by password."""
    calls: list[bytes] = []
    real = aaa.authenticate.verify_password

    def counting(stored: str, password: bytes) -> bool:
        calls.append(password)
        return real(stored, password)

    monkeypatch.setattr(aaa.authenticate, "verify_password", counting)
    return calls


NEW_HASH = CHEAP.hash("new")


def add(engine: Engine, login: str, password: str) -> int:
    with Session(engine) as s, s.begin():
        sub = Subscriber(login=login, password_hash=CHEAP.hash(password))
        s.add(sub)
        s.flush()
        return sub.id


@pytest_twisted.inlineCallbacks
def test_login_after_restart_uses_the_stored_verifier(engine: Engine, dbpool: DBPool,
                                                      slow_checks: list[bytes]):  # type: ignore[no-untyped-def]
    """The first login pays argon2 and stores a verifier; a new process accepts it without."""
    add(engine, "alice", "secret")
    key = os.urandom(32)
    first = Server(dbpool, key)
    assert (yield first.login("alice", b"secret")) is Outcome.ACCEPT
    assert slow_checks == [b"secret"]
    with Session(engine) as s:
        assert len(s.scalars(select(PapVerifier)).all()) == 1
    restarted = Server(dbpool, key)
    assert (yield restarted.login("alice", b"secret")) is Outcome.ACCEPT
    assert slow_checks == [b"secret"]  # no argon2 after the restart
    assert (yield restarted.login("alice", b"guess")) is Outcome.WRONG_PASSWORD
    assert slow_checks == [b"secret", b"guess"]  # a wrong password always pays


@pytest_twisted.inlineCallbacks
def test_changed_password_or_lost_key_never_trusts_an_old_verifier(
        engine: Engine, dbpool: DBPool, slow_checks: list[bytes]):  # type: ignore[no-untyped-def]
    """A new hash makes the stored verifier useless; a new key file costs one argon2 again."""
    sid = add(engine, "bob", "old")
    key = os.urandom(32)
    assert (yield Server(dbpool, key).login("bob", b"old")) is Outcome.ACCEPT
    with Session(engine) as s, s.begin():
        s.execute(update(Subscriber).where(Subscriber.id == sid)
                  .values(password_hash=NEW_HASH))
    assert (yield Server(dbpool, key).login("bob", b"old")) is Outcome.WRONG_PASSWORD
    assert (yield Server(dbpool, key).login("bob", b"new")) is Outcome.ACCEPT
    count = len(slow_checks)
    assert (yield Server(dbpool, os.urandom(32)).login("bob", b"new")) is Outcome.ACCEPT
    assert len(slow_checks) == count + 1  # the key was lost: argon2 once, then a new verifier


@pytest_twisted.inlineCallbacks
def test_imported_subscriber_gets_argon2_and_a_verifier_in_one_transaction(
        engine: Engine, dbpool: DBPool, slow_checks: list[bytes]):  # type: ignore[no-untyped-def]
    """NT-only: accepted by NT hash, argon2 stored in the background with its verifier."""
    with Session(engine) as s, s.begin():
        s.add(Subscriber(login="imp", nt_hash=nt_password_hash("pw").hex()))
    key = os.urandom(32)
    server = Server(dbpool, key)
    assert (yield server.login("imp", b"pw")) is Outcome.ACCEPT
    with Session(engine) as s:
        sub = s.scalars(select(Subscriber).where(Subscriber.login == "imp")).one()
        row = s.get(PapVerifier, sub.id)
    assert sub.password_hash is not None and row is not None
    assert bytes.fromhex(row.tag) == verifier_tag(key, sub.id, sub.password_hash, b"pw")
    assert (yield Server(dbpool, key).login("imp", b"pw")) is Outcome.ACCEPT
    assert slow_checks == []  # neither login nor the restart ran an argon2 verification


def test_background_upgrades_do_not_storm_the_slow_queue() -> None:
    """10,000 imported logins at once start one argon2 hash at a time; the rest are postponed."""
    from aaa.credentials import SubscriberAuth
    from core.db.models import SubscriberStatus

    clock = ThreadedClock()
    queue = SlowCheckQueue(clock, running=2, waiting=16)
    verifier = PasswordVerifier(clock, os.urandom(32), queue)

    class Pool:
        def run(self, *a: Any) -> defer.Deferred[bool]:
            return defer.succeed(True)

    upgrader = PasswordUpgrader(Pool(), clock, CredentialStore(Pool(), clock),  # type: ignore[arg-type]
                                verifier)
    for i in range(10_000):
        sub = SubscriberAuth(id=i, login=f"u{i}", status=SubscriberStatus.ACTIVE,
                             password_hash=None, nt_hash=nt_password_hash("pw"),
                             chap_enabled=False, cleartext=None, static_ip=None, plan=None)
        upgrader(sub, "pw")
    assert queue.running == 1  # one slot stays free for logins
    assert queue.waiting == 16 and queue.shed == 10_000 - 17
    assert len(upgrader._pending) == 17  # postponed ones are tried again at the next login


def test_concurrent_misses_are_loaded_in_batches() -> None:
    """With a bound on loads, misses arriving while loads run share one SELECT."""
    from aaa.credentials import thd_load_subscribers

    calls: list[tuple[Any, list[str]]] = []
    pending: list[defer.Deferred[Any]] = []

    class Pool:
        def run(self, fn: Any, logins: list[str]) -> defer.Deferred[Any]:
            calls.append((fn, list(logins)))
            d: defer.Deferred[Any] = defer.Deferred()
            pending.append(d)
            return d

    store = CredentialStore(Pool(), Clock(), ttl=60, max_loads=1)  # type: ignore[arg-type]
    got = [answered(store.get(f"u{i}")) for i in range(1200)]
    assert [len(c[1]) for c in calls] == [1] and calls[0][0] is thd_load_subscribers
    pending.pop(0).callback({"u0": "row0"})
    assert [len(c[1]) for c in calls] == [1, 500]
    pending.pop(0).callback({f"u{i}": f"row{i}" for i in range(1, 501)})
    pending.pop(0).callback({})
    assert [len(c[1]) for c in calls] == [1, 500, 500, 199]
    pending.pop(0).callback({})
    assert got[0] == ["row0"] and got[500] == ["row500"] and got[900] == [None]
    assert all(g for g in got)


def test_key_file_is_made_private_once_and_checked(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """Made 0600 with 32 random octets, read back the same; short or shared files are named."""
    path = tmp_path / "pap.key"
    key = load_or_create_key(path)
    assert len(key) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert load_or_create_key(path) == key
    assert "readable by others" in caplog.text
    path.write_bytes(b"short")
    with pytest.raises(PapKeyError, match="5 octets"):
        load_or_create_key(path)
    with pytest.raises(PapKeyError, match="cannot create"):
        load_or_create_key(tmp_path / "missing-dir" / "pap.key")


@pytest_twisted.inlineCallbacks
def test_preload_fills_the_cache_with_verifiers_and_skips_raced_chunks(
        engine: Engine, dbpool: DBPool):  # type: ignore[no-untyped-def]
    """After a restart every subscriber (and its verifier) is in memory without a login."""
    ids = [add(engine, f"p{i}", "pw") for i in range(7)]
    with Session(engine) as s, s.begin():
        thd_store_verifiers(s, [(ids[0], "ab" * 32)])
    store = CredentialStore(dbpool, Clock(), ttl=60)
    kept = yield store.preload(chunk=3)
    assert kept == 7
    first = store.get("p0")
    assert not isinstance(first, defer.Deferred)  # answered from memory, no load
    assert first.pap_verifier == bytes.fromhex("ab" * 32)
    # A chunk read while something was invalidated is not kept.
    raced = CredentialStore(dbpool, Clock(), ttl=60)
    d = raced.preload(chunk=100)
    raced.invalidate("p3")
    assert (yield d) == 0
    assert isinstance(raced.get("p3"), defer.Deferred)


def test_migration_0700_matches_the_model_and_downgrades(engine: Engine) -> None:
    """pap_verifier is exactly the model; the aaa branch goes down and up again."""
    from sqlalchemy import inspect

    from core.db import schema
    from tests.test_migration_0110_0600 import _diff

    assert _diff(engine, {"pap_verifier"}) == []
    schema.downgrade(engine, "aaa@0001")
    assert "pap_verifier" not in inspect(engine).get_table_names()
    schema.upgrade(engine)
    assert _diff(engine, {"pap_verifier"}) == []


def test_workers_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    """Eight starts racing to make the key all read the same 32 octets; no temp files stay."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "pap.key"
    barrier = threading.Barrier(8)

    def start(_: int) -> bytes:
        barrier.wait(5)
        return load_or_create_key(path)

    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(start, range(8)))
    assert len(set(keys)) == 1 and len(keys[0]) == 32
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pap.key"]
