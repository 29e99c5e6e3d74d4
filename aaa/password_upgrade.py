"""Store the argon2 hash of a subscriber who logged in by PAP with only an NT hash on file.

Runs after the Access-Accept has been decided: argon2 in the reactor's thread
pool, the write through the DB pool, and nothing waits on it. The UPDATE only
applies while the row still has no argon2 hash and the same NT hash, so a
password changed in the meantime is never overwritten with the old one.
"""

from __future__ import annotations

import logging

from sqlalchemy import update
from sqlalchemy.orm import Session
from twisted.internet import defer, threads
from twisted.internet.interfaces import IReactorThreads
from twisted.python.failure import Failure

from aaa.credentials import CredentialStore, SubscriberAuth
from aaa.pap import hash_password
from core.db.models import Subscriber
from core.db.pool import DBPool

log = logging.getLogger(__name__)


def thd_store_pending_hash(session: Session, subscriber_id: int, nt_hash: str,
                           password_hash: str) -> bool:
    result = session.execute(
        update(Subscriber)
        .where(Subscriber.id == subscriber_id, Subscriber.password_hash.is_(None),
               Subscriber.nt_hash == nt_hash)
        .values(password_hash=password_hash))
    return bool(result.rowcount)  # type: ignore[attr-defined]


class PasswordUpgrader:
    def __init__(self, dbpool: DBPool, reactor: IReactorThreads,
                 credentials: CredentialStore) -> None:
        self.dbpool = dbpool
        self.reactor = reactor
        self.credentials = credentials
        self._pending: set[int] = set()

    def __call__(self, sub: SubscriberAuth, password: str) -> defer.Deferred[None] | None:
        """Start storing the hash; the Deferred (for tests) fires when done, never fails."""
        if sub.id in self._pending or sub.nt_hash is None:
            return None
        self._pending.add(sub.id)
        nt_hex = sub.nt_hash.hex()
        d = threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(),
                                      hash_password, password)
        d.addCallback(lambda h: self.dbpool.run(thd_store_pending_hash, sub.id, nt_hex, h))

        def stored(changed: bool) -> None:
            if changed:
                self.credentials.invalidate(sub.login)
                log.info("stored the argon2 hash of %s after its first PAP login", sub.login)

        def failed(f: Failure) -> None:
            log.warning("could not store the argon2 hash of %s: %s", sub.login,
                        f.getErrorMessage())

        d.addCallbacks(stored, failed)
        d.addBoth(lambda _: self._pending.discard(sub.id))
        return d
