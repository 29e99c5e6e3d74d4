"""PAP password checks: argon2 off the reactor thread, with a verified-password cache.

argon2 is slow on purpose (tens of milliseconds), which would cap PAP at a
few dozen logins per second per core. After one successful argon2 check the
server remembers an HMAC of (login, stored hash, password) under a key that
lives only in this process's memory; the next login of the same subscriber
compares HMACs instead. Changing the password changes the stored hash, so a
cached entry can never vouch for an old password. Only successes are cached:
a wrong password always pays the full argon2 price (no cheap guessing).
"""

from __future__ import annotations

import hmac
import os
from collections import OrderedDict

from twisted.internet import defer, threads
from twisted.internet.interfaces import IReactorThreads

from aaa.maybe import Maybe
from aaa.pap import verify_password


class PasswordVerifier:
    def __init__(self, reactor: IReactorThreads, max_entries: int = 200_000) -> None:
        self.reactor = reactor
        self.max_entries = max_entries
        self._key = os.urandom(32)
        self._verified: OrderedDict[str, bytes] = OrderedDict()

    def _tag(self, login: str, stored_hash: str, password: bytes) -> bytes:
        msg = login.encode() + b"\0" + stored_hash.encode() + b"\0" + password
        return hmac.digest(self._key, msg, "sha256")  # one-shot C HMAC: same tag, less work

    def verify(self, login: str, stored_hash: str, password: bytes) -> Maybe[bool]:
        """True at once for a remembered success; otherwise argon2 in a thread, later."""
        tag = self._tag(login, stored_hash, password)
        known = self._verified.get(login)
        if known is not None and hmac.compare_digest(known, tag):
            return True
        d: defer.Deferred[bool] = threads.deferToThreadPool(
            self.reactor, self.reactor.getThreadPool(), verify_password, stored_hash, password)

        def remember(ok: bool) -> bool:
            if ok:
                self._verified.pop(login, None)
                if len(self._verified) >= self.max_entries:
                    self._verified.popitem(last=False)
                self._verified[login] = tag
            return ok

        return d.addCallback(remember)
