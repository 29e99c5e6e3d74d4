"""Store radbill's own hashes for a subscriber who logged in by PAP without an argon2 hash.

Two kinds of subscriber get here: a bulk CSV import keeps only the NT hash, and an import
from FreeRADIUS may keep only a legacy hash (Crypt/SHA/SSHA/MD5-Password,
``subscriber.legacy_hash``). After the first successful PAP login the password is known, so
the argon2 hash (and, for a legacy subscriber, the NT hash MS-CHAP needs) is stored and the
legacy hash dropped.

Runs after the Access-Accept has been decided, and nothing waits on it: argon2 as
background work in the slow queue (aaa.slowqueue: behind every login, never more than
one at a time while logins wait; dropped when the queue is full and tried again at the
subscriber's next login), so 10,000 first logins after an import are not 10,000 argon2
hashes at once. The same transaction stores the PAP verifier of the new hash
(aaa.verifier), so the next login, even after a restart, costs no argon2 either.

The UPDATE only applies while the row still has no argon2 hash and the same NT and
legacy hashes the login checked, so a password changed in the meantime is never
overwritten with the old one.
"""

from __future__ import annotations

import logging

from sqlalchemy import ColumnElement, update
from sqlalchemy.orm import Session
from twisted.internet import defer, threads
from twisted.internet.interfaces import IReactorThreads
from twisted.python.failure import Failure

from aaa.credentials import CredentialStore, SubscriberAuth
from aaa.errors import Shed
from aaa.mschap import nt_password_hash
from aaa.pap import hash_password
from aaa.slowqueue import Priority
from aaa.verifier import PasswordVerifier, thd_store_verifiers, verifier_tag
from core.db.models import Subscriber
from core.db.pool import DBPool

log = logging.getLogger(__name__)


def _same(column: ColumnElement[str | None], value: str | None) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def thd_store_pending_hash(session: Session, subscriber_id: int, nt_hash: str | None,
                           password_hash: str, legacy_hash: str | None = None,
                           new_nt_hash: str | None = None,
                           verifier: str | None = None) -> bool:
    """argon2 (and the NT hash) for a row still as the login saw it; legacy hash cleared.

    ``verifier``: the hex PAP verifier of the new hash, stored when the row was updated.
    """
    values: dict[str, str | None] = {"password_hash": password_hash, "legacy_hash": None}
    if nt_hash is None and new_nt_hash is not None:
        values["nt_hash"] = new_nt_hash
    result = session.execute(
        update(Subscriber)
        .where(Subscriber.id == subscriber_id, Subscriber.password_hash.is_(None),
               _same(Subscriber.nt_hash, nt_hash), _same(Subscriber.legacy_hash, legacy_hash))
        .values(**values))
    changed = bool(result.rowcount)  # type: ignore[attr-defined]
    if changed and verifier is not None:
        thd_store_verifiers(session, [(subscriber_id, verifier)])
    return changed


class PasswordUpgrader:
    def __init__(self, dbpool: DBPool, reactor: IReactorThreads,
                 credentials: CredentialStore,
                 verifier: PasswordVerifier | None = None) -> None:
        self.dbpool = dbpool
        self.reactor = reactor
        self.credentials = credentials
        self.verifier = verifier
        self._pending: set[int] = set()

    def __call__(self, sub: SubscriberAuth, password: str) -> defer.Deferred[None] | None:
        """Start storing the hashes; the Deferred (for tests) fires when done, never fails."""
        if sub.id in self._pending or (sub.nt_hash is None and sub.legacy_hash is None):
            return None
        self._pending.add(sub.id)
        nt_hex = sub.nt_hash.hex() if sub.nt_hash is not None else None
        new_nt = nt_password_hash(password).hex()
        verifier = self.verifier
        if verifier is not None:
            d = verifier.queue.submit(Priority.BACKGROUND, hash_password, password)
        else:
            d = threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(),
                                          hash_password, password)
        tags: list[bytes] = []

        def hashed(new_hash: str) -> defer.Deferred[bool]:
            tag = None
            if verifier is not None:
                tags.append(verifier_tag(verifier.key, sub.id, new_hash, password.encode()))
                tag = tags[0].hex()
            return self.dbpool.run(thd_store_pending_hash, sub.id, nt_hex, new_hash,
                                   sub.legacy_hash, new_nt, tag)

        d.addCallback(hashed)

        def stored(changed: bool) -> None:
            if changed:
                if verifier is not None and tags:
                    verifier.keep(sub.id, tags[0])
                self.credentials.invalidate(sub.login)
                how = "legacy" if sub.legacy_hash else "NT"
                log.debug("stored radbill's hashes of %s after its first PAP login "
                          "(was verified by its %s hash)", sub.login, how)

        def failed(f: Failure) -> None:
            if f.check(Shed):
                return  # the queue was busy with logins: the next login tries again
            log.warning("could not store the argon2 hash of %s: %s", sub.login,
                        f.getErrorMessage())

        d.addCallbacks(stored, failed)
        d.addBoth(lambda _: self._pending.discard(sub.id))
        return d
