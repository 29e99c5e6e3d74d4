"""PAP password checks: a cheap verifier first, the slow check (argon2) only when it misses.

argon2 is slow on purpose (tens of milliseconds of CPU and 64 MiB), which caps PAP at a few
dozen logins per second per core. After one successful slow check the server keeps a
verifier, HMAC-SHA256(key, subscriber id, stored credential, password), in memory and in
the ``pap_verifier`` table; a later login, also after a restart, compares HMACs instead
(one SHA-256 pair, microseconds). The key lives in ``radius.pap_key_file``, outside the
database (aaa.pap_key): README "PAP verifiers" states what an attacker gains with the
database alone (nothing faster than argon2) and with the key too (an HMAC per guess).

The stored credential (the argon2 hash with its salt, or the legacy hash) is part of the
message, so a changed password changes what a verifier must be and an old one never
vouches for it; no code that changes passwords has to remember the verifiers. Only
successes are kept: a wrong password always goes to the slow check, which runs in the
bounded aaa.slowqueue, and is throttled by aaa.throttle.

New verifiers are written in batches (one upsert for all that arrived while the previous
one ran), not one transaction per login; a login whose verifier is already stored writes
nothing.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session
from twisted.internet import defer
from twisted.python.failure import Failure

from aaa.credentials import SubscriberAuth
from aaa.errors import Shed
from aaa.maybe import Maybe
from aaa.models import PapVerifier
from aaa.slowqueue import Priority, SlowCheckQueue
from core.db.base import utcnow
from core.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

_DOMAIN = b"radbill-pap-verifier-v1\0"

SlowCheck = Callable[[str, bytes], bool]
StoreVerifiers = Callable[[list[tuple[int, str]]], "defer.Deferred[Any]"]


def verifier_tag(key: bytes, subscriber_id: int, credential: str, password: bytes) -> bytes:
    """HMAC-SHA256 of one (subscriber, stored credential, password); what pap_verifier holds."""
    msg = b"%s%d\0%s\0%s" % (_DOMAIN, subscriber_id, credential.encode(), password)
    return hmac.digest(key, msg, "sha256")  # one-shot C HMAC


def thd_store_verifiers(session: Session, rows: list[tuple[int, str]]) -> int:
    """Insert or replace verifiers (subscriber id, hex tag); rows of deleted subscribers skip."""
    from sqlalchemy import select

    if not rows:
        return 0
    latest = dict(rows)
    now = utcnow()
    have = set(session.scalars(select(PapVerifier.subscriber_id)
                               .where(PapVerifier.subscriber_id.in_(latest))))
    for sid in have:
        session.execute(update(PapVerifier).where(PapVerifier.subscriber_id == sid)
                        .values(tag=latest[sid], verified_at=now))
    new = [sid for sid in latest if sid not in have]
    if new:
        from core.db.models import Subscriber

        alive = set(session.scalars(select(Subscriber.id).where(Subscriber.id.in_(new))))
        session.add_all(PapVerifier(subscriber_id=sid, tag=latest[sid], verified_at=now)
                        for sid in new if sid in alive)
    return len(latest)


class PasswordVerifier:
    """Verifiers in memory and in the database; slow checks through a SlowCheckQueue."""

    def __init__(self, reactor: Any, key: bytes | None = None,
                 queue: SlowCheckQueue | None = None, store: StoreVerifiers | None = None,
                 max_entries: int = 200_000, wrong_ttl: float = 60.0) -> None:
        self.reactor = reactor
        self.max_entries = max_entries
        # Without a key file (tests, tools) the verifiers only live as long as the process.
        self.key = key if key is not None else os.urandom(32)
        self.queue = queue if queue is not None else SlowCheckQueue(reactor, running=4,
                                                                    waiting=1024)
        self.store = store
        self.wrong_ttl = wrong_ttl
        self._verified: OrderedDict[int, bytes] = OrderedDict()
        # Tags of passwords the slow check refused lately -> until when that is trusted:
        # a CPE retrying a stale password every few seconds pays argon2 once, not each time.
        self._wrong: OrderedDict[bytes, float] = OrderedDict()
        # Tags being checked now -> who else waits for that same check.
        self._checking: dict[bytes, list[defer.Deferred[bool]]] = {}
        self._unsaved: dict[int, str] = {}
        self._saving = False

    def tag(self, sub: SubscriberAuth, credential: str, password: bytes) -> bytes:
        return verifier_tag(self.key, sub.id, credential, password)

    def known(self, sub: SubscriberAuth, credential: str, password: bytes,
              tag: bytes | None = None) -> bool:
        """The password is the one last proven for this credential (memory or database).

        ``tag``: self.tag(...) when the caller has it already (one HMAC per request).
        """
        if tag is None:
            tag = self.tag(sub, credential, password)
        mine = self._verified.get(sub.id)
        if mine is not None and hmac.compare_digest(mine, tag):
            return True
        stored = sub.pap_verifier
        if stored is not None and hmac.compare_digest(stored, tag):
            self.keep(sub.id, tag)
            return True
        return False

    def known_wrong(self, sub: SubscriberAuth, credential: str, password: bytes,
                    tag: bytes | None = None) -> bool:
        """The slow check refused exactly this password for this credential lately."""
        if tag is None:
            tag = self.tag(sub, credential, password)
        until = self._wrong.get(tag)
        return until is not None and until > self.reactor.seconds()

    def slow(self, sub: SubscriberAuth, credential: str, password: bytes, check: SlowCheck,
             priority: Priority = Priority.LOGIN, tag: bytes | None = None
             ) -> defer.Deferred[bool]:
        """The slow check in the queue; a success is remembered (Shed: raised or failed).

        The same password for the same credential already being checked waits for that
        check instead of queueing its own (a NAS resending, a CPE retrying).
        """
        if tag is None:
            tag = self.tag(sub, credential, password)
        mine: defer.Deferred[bool] = defer.Deferred()
        waiting = self._checking.get(tag)
        if waiting is not None:
            waiting.append(mine)
            return mine
        if not self.queue.admits(priority):
            # A flood's excess: refused here, at the cost of a counter, not a Deferred chain.
            self.queue.refuse(priority)
            raise Shed("the queue is full")
        waiting = self._checking[tag] = [mine]
        d = self.queue.submit(priority, check, credential, password)

        def checked(ok: bool) -> bool:
            if ok:
                self.remember(sub, credential, password, tag=tag)
            else:
                self._wrong.pop(tag, None)
                if len(self._wrong) >= self.max_entries:
                    self._wrong.popitem(last=False)
                self._wrong[tag] = self.reactor.seconds() + self.wrong_ttl
            return bool(ok)

        def answer(result: object) -> None:
            del self._checking[tag]
            for each in waiting:
                if isinstance(result, Failure):
                    each.errback(result)
                else:
                    each.callback(result)

        d.addCallback(checked).addBoth(answer)
        return mine

    def verify(self, sub: SubscriberAuth, credential: str, password: bytes,
               check: SlowCheck, priority: Priority = Priority.LOGIN) -> Maybe[bool]:
        """True at once for a known password, else the slow check, later."""
        if self.known(sub, credential, password):
            return True
        return self.slow(sub, credential, password, check, priority)

    def remember(self, sub: SubscriberAuth, credential: str, password: bytes,
                 tag: bytes | None = None) -> bytes:
        """Keep the verifier of a proven password, and have it written to the database."""
        sid = sub.id
        if tag is None:
            tag = verifier_tag(self.key, sid, credential, password)
        self.keep(sid, tag)
        if self.store is not None:
            self._unsaved[sid] = tag.hex()
            self._save()
        return tag

    def keep(self, sid: int, tag: bytes) -> None:
        self._verified.pop(sid, None)
        if len(self._verified) >= self.max_entries:
            self._verified.popitem(last=False)
        self._verified[sid] = tag

    def _save(self) -> None:
        if self._saving or not self._unsaved or self.store is None:
            return
        rows, self._unsaved = list(self._unsaved.items()), {}
        self._saving = True

        def failed(f: Failure) -> None:
            # Only speed is lost: the next cold login of these subscribers pays argon2 again.
            level = logging.DEBUG if f.check(DatabaseUnavailable) else logging.WARNING
            log.log(level, "could not store %d PAP verifiers: %s", len(rows),
                    f.getErrorMessage())

        def done(_: object) -> None:
            self._saving = False
            self._save()

        d = defer.maybeDeferred(self.store, rows)
        d.addErrback(failed).addBoth(done)
