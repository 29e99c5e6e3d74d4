"""Wrong-password floods are bounded (issue 12 point 2): queue, shed, throttles, priorities."""

from __future__ import annotations

import os
from typing import Any

from argon2 import PasswordHasher, Type
from pyrad import packet as P
from twisted.internet import defer

from aaa.authenticate import Authenticator
from aaa.credentials import SubscriberAuth
from aaa.dictionary import load_dictionary
from aaa.errors import Shed
from aaa.outcome import Outcome
from aaa.slowqueue import Priority, SlowCheckQueue
from aaa.throttle import FailureThrottle
from aaa.verifier import PasswordVerifier
from core.db.models import SubscriberStatus
from tests.deferred_support import answered
from tests.fake_threads import ThreadedClock

SECRET = b"testing123"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)
HASH = CHEAP.hash("right")
DICT = load_dictionary()


def sub(i: int) -> SubscriberAuth:
    return SubscriberAuth(id=i, login=f"u{i}", status=SubscriberStatus.ACTIVE,
                          password_hash=HASH, nt_hash=None, chap_enabled=False, cleartext=None,
                          static_ip=None, plan=None)


def pap(login: str, password: bytes, port: int | None = None) -> P.AuthPacket:
    pkt = P.AuthPacket(dict=DICT, secret=SECRET, authenticator=os.urandom(16))
    pkt["User-Name"] = login
    pkt["User-Password"] = pkt.PwCrypt(password)
    if port is not None:
        pkt["NAS-Port"] = port
    return P.AuthPacket(packet=pkt.RequestPacket(), dict=DICT, secret=SECRET)


NAS = "nas1"  # what the port throttle keys on (a NasClient's name)


def harness(running: int = 2, waiting: int = 8) -> tuple[ThreadedClock, Authenticator]:
    clock = ThreadedClock()
    queue = SlowCheckQueue(clock, running=running, waiting=waiting)
    verifier = PasswordVerifier(clock, os.urandom(32), queue)
    return clock, Authenticator(verifier, throttle=FailureThrottle(clock, 5, 60.0, 60.0))


def login(auth: Authenticator, s: SubscriberAuth, password: bytes,
          port: int | None = None) -> list[Any]:
    got = answered(defer.maybeDeferred(auth.authenticate, pap(s.login, password, port),
                                       s.login.encode(), s, NAS))
    return got


def outcome(got: list[Any]) -> Outcome | None:
    return got[0].outcome if got else None


def test_queue_runs_a_bounded_number_and_sheds_the_rest() -> None:
    """At most `running` checks run and `waiting` wait; the excess fails with Shed at once."""
    clock = ThreadedClock()
    queue = SlowCheckQueue(clock, running=2, waiting=3)
    results = [answered(queue.submit(Priority.LOGIN, lambda i=i: i)) for i in range(10)]
    assert queue.running == 2 and queue.waiting == 3 and len(clock.pool.jobs) == 2
    assert all(r and r[0].check(Shed) for r in results[5:])
    assert clock.pool.run_all() == 5  # every admitted check ran, two at a time
    assert [r[0] for r in results[:5]] == [0, 1, 2, 3, 4]
    assert queue.shed == 5


def test_clean_login_displaces_suspects_and_background_from_a_full_queue() -> None:
    """A full queue gives a clean login the place of the newest suspect; suspects cannot."""
    clock = ThreadedClock()
    queue = SlowCheckQueue(clock, running=1, waiting=2)
    queue.submit(Priority.LOGIN, lambda: "running")
    suspects = [answered(queue.submit(Priority.SUSPECT, lambda: "s")) for _ in range(2)]
    clean = answered(queue.submit(Priority.LOGIN, lambda: "clean"))
    assert suspects[1] and suspects[1][0].check(Shed) and not clean
    late = answered(queue.submit(Priority.SUSPECT, lambda: "s"))
    assert late and late[0].check(Shed)
    clock.pool.run_one()  # the running one ends: the clean login goes before the suspect
    clock.pool.run_one()
    assert clean == ["clean"] and suspects[0] == []


def test_background_work_leaves_a_slot_for_logins_and_stale_checks_are_shed() -> None:
    """Background work never takes the last free slot; a check that waited > max_wait is shed."""
    clock = ThreadedClock()
    queue = SlowCheckQueue(clock, running=2, waiting=4, max_wait=5.0)
    queue.submit(Priority.BACKGROUND, lambda: "b1")
    queue.submit(Priority.BACKGROUND, lambda: "b2")
    assert queue.running == 1 and queue.waiting == 1
    first = answered(queue.submit(Priority.LOGIN, lambda: "l1"))
    assert queue.running == 2 and not first
    stale = answered(queue.submit(Priority.LOGIN, lambda: "l2"))
    clock.advance(6)
    clock.pool.run_one()  # b1 ends; l2 waited 6 s: shed, and b2 may not take the login slot
    assert stale and stale[0].check(Shed)
    clock.pool.run_all()
    assert first == ["l1"]


def test_wrong_password_flood_costs_a_bounded_number_of_slow_checks() -> None:
    """3,000 wrong passwords at once: 2 running, 8 waiting, the rest shed without argon2."""
    clock, auth = harness(running=2, waiting=8)
    flood = [login(auth, sub(1000 + i), b"guess-%d" % i, port=i) for i in range(3000)]
    assert len(clock.pool.jobs) == 2 and auth.verifier.queue.waiting == 8
    assert sum(outcome(g) is Outcome.SHED for g in flood) == 3000 - 10
    # A subscriber whose password was proven before is answered at once, flood or not.
    known = sub(1)
    auth.verifier.remember(known, HASH, b"right")
    assert outcome(login(auth, known, b"right", port=7)) is Outcome.ACCEPT
    assert clock.pool.run_all() == 10
    assert sum(outcome(g) is Outcome.WRONG_PASSWORD for g in flood) == 10


def test_failures_throttle_the_login_and_the_port_but_not_a_proven_password() -> None:
    """5 failures lock a login (and a port) out of argon2; its last good password still works."""
    clock, auth = harness(running=2, waiting=64)
    victim = sub(5)
    auth.verifier.remember(victim, HASH, b"right")
    for i in range(5):
        got = login(auth, victim, b"wrong-%d" % i, port=100 + i)
        clock.pool.run_all()
        assert outcome(got) is Outcome.WRONG_PASSWORD
    before = len(clock.pool.jobs)
    assert outcome(login(auth, victim, b"another")) is Outcome.THROTTLED
    assert len(clock.pool.jobs) == before  # no argon2 for it
    assert outcome(login(auth, victim, b"right")) is Outcome.ACCEPT
    # One NAS port cycling through logins is throttled as well.
    for i in range(5):
        login(auth, sub(200 + i), b"x", port=9)
        clock.pool.run_all()
    assert outcome(login(auth, sub(300), b"y", port=9)) is Outcome.THROTTLED
    assert outcome(login(auth, sub(301), b"y", port=10)) is None  # another port: queued
    clock.advance(61)
    assert outcome(login(auth, sub(302), b"z", port=9)) is None  # lockout over: checked again


def test_a_repeated_wrong_password_pays_argon2_once() -> None:
    """A CPE retrying a stale password: the resends share one check, later ones none."""
    clock, auth = harness()
    s = sub(9)
    first = [login(auth, s, b"stale") for _ in range(3)]
    assert len(clock.pool.jobs) == 1
    clock.pool.run_all()
    assert [outcome(g) for g in first] == [Outcome.WRONG_PASSWORD] * 3
    again = login(auth, s, b"stale")
    assert outcome(again) is Outcome.WRONG_PASSWORD and not clock.pool.jobs


def test_a_flooding_port_waits_behind_a_clean_login_from_another_port() -> None:
    """Checks from a port that already has one under way go behind a clean login."""
    clock, auth = harness(running=1, waiting=64)
    flood = [login(auth, sub(400 + i % 20), b"bad-%d" % i, port=1) for i in range(60)]
    clean = login(auth, sub(2), b"right", port=2)  # first login, no verifier yet: argon2
    clock.pool.run_one()  # the flood's first check
    clock.pool.run_one()  # next: the clean login, not the 59 suspects queued before it
    assert outcome(clean) is Outcome.ACCEPT
    assert sum(1 for g in flood if g) == 1
