"""Who is asking: bearer tokens, session cookies with CSRF, login throttling, client address.

* ``Authorization: Bearer TOKEN`` (an API token, or a session token a self-care
  front end holds for its subscriber): no CSRF, the browser never sends it alone.
* The ``radbill_session`` cookie (``Secure`` under TLS, ``HttpOnly``,
  ``SameSite=Lax``): every state-changing request must also carry
  ``X-CSRF-Token``, an HMAC of the session token that only a page which saw the
  login answer (or ``GET /api/v1/me``) knows.
* Checked credentials are cached ``[web] token_cache`` seconds, so a revocation
  takes effect within that time and a busy client costs one lookup per period.
* Failed logins are counted per client address and per login over a minute;
  past ``[web] login_failures`` further attempts are refused (429) before any
  password is checked, logged, and counted in ``radbill_web_login_failures_total``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

from core.db.pool import DBPool
from webadmin.errors import Throttled, Unauthorized
from webadmin.roles import Caller
from webadmin.service.logins import Authenticated, thd_authenticate
from webadmin.service.tokens import token_hash

log = logging.getLogger(__name__)

COOKIE = b"radbill_session"
CSRF_HEADER = b"x-csrf-token"
LOGIN_FAILURES = Counter("radbill_web_login_failures_total",
                         "Failed API/web logins (wrong credentials or throttled)",
                         ["kind", "outcome"])
CACHE_MAX = 10_000
WINDOW = 60.0


def csrf_token(session_token: str) -> str:
    """Derived from the (HttpOnly) session token: nothing to store, nothing a forger can know."""
    return hmac.new(session_token.encode(), b"radbill-csrf", hashlib.sha256).hexdigest()


def bearer(header: bytes | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.decode("latin-1").strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("authentication required")
    return value.strip()


@dataclass(frozen=True)
class Identity:
    caller: Caller
    session: bool  # a login session (not an API token)
    cookie: bool  # came in the cookie: CSRF applies to changes
    secret: str  # the token or session token itself (for CSRF, logout)


class Authenticator:
    def __init__(self, dbpool: DBPool, idle: float, cache_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.dbpool, self.idle, self.cache_seconds, self.clock = dbpool, idle, cache_seconds, clock
        self._cache: OrderedDict[str, tuple[float, Authenticated]] = OrderedDict()

    def forget(self, secret: str) -> None:
        self._cache.pop(token_hash(secret), None)

    def clear(self) -> None:
        self._cache.clear()

    async def identify(self, request: Any, address: str) -> Identity:
        """The caller, or Unauthorized (the same message whatever was wrong)."""
        secret = bearer(request.getHeader(b"authorization"))
        cookie = False
        if secret is None:
            raw = request.getCookie(COOKIE)
            if not raw:
                raise Unauthorized("authentication required")
            secret, cookie = raw.decode("latin-1"), True
        hashed = token_hash(secret)
        now = self.clock()
        hit = self._cache.get(hashed)
        if hit is not None and hit[0] > now:
            found: Authenticated | None = hit[1]
        else:
            found = await self.dbpool.run(thd_authenticate, hashed, address, self.idle)
            if found is None:
                self._cache.pop(hashed, None)
            else:
                self._cache[hashed] = (now + self.cache_seconds, found)
                self._cache.move_to_end(hashed)
                while len(self._cache) > CACHE_MAX:
                    self._cache.popitem(last=False)
        if found is None or (cookie and not found.session):
            raise Unauthorized("authentication required")
        caller = found.caller
        if caller.address != address:
            from dataclasses import replace

            caller = replace(caller, address=address)
        return Identity(caller, found.session, cookie, secret)


class LoginThrottle:
    """Sliding one-minute counts of failures per address and per login."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.clock = limit, clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        q = self._failures.get(key)
        if q is None:
            return deque()
        cutoff = self.clock() - WINDOW
        while q and q[0] <= cutoff:
            q.popleft()
        if not q:
            del self._failures[key]
        return q

    def check(self, kind: str, address: str, login: str) -> None:
        for key in (f"addr:{address}", f"login:{kind}:{login}"):
            q = self._recent(key)
            if len(q) >= self.limit:
                retry = max(1, int(q[0] + WINDOW - self.clock()) + 1)
                LOGIN_FAILURES.labels(kind, "throttled").inc()
                log.warning("%s login for %r from %s refused: %d failures in a minute (%s)",
                            kind, login, address, len(q), key.split(":")[0])
                raise Throttled("too many failed logins; try again later", retry)

    def failed(self, kind: str, address: str, login: str) -> None:
        LOGIN_FAILURES.labels(kind, "wrong").inc()
        log.warning("%s login failed for %r from %s", kind, login, address)
        now = self.clock()
        for key in (f"addr:{address}", f"login:{kind}:{login}"):
            self._failures.setdefault(key, deque()).append(now)
        if len(self._failures) > 100_000:  # a flood of distinct keys: forget the quiet ones
            for key in [k for k, q in self._failures.items() if q[-1] <= now - WINDOW]:
                del self._failures[key]

    def succeeded(self, kind: str, login: str) -> None:
        self._failures.pop(f"login:{kind}:{login}", None)


def _in(address: str, networks: list[Any]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks)


class ClientView:
    """The client's address and scheme: the peer's, or a trusted proxy's X-Forwarded-*."""

    def __init__(self, tls: bool, behind_proxy: bool, trusted: list[str]) -> None:
        self.tls, self.behind_proxy = tls, behind_proxy
        self.trusted = [ipaddress.ip_network(t, strict=False) for t in trusted]

    def _proxied(self, request: Any) -> bool:
        peer = request.getClientAddress()
        return self.behind_proxy and _in(getattr(peer, "host", ""), self.trusted)

    def address(self, request: Any) -> str:
        peer = getattr(request.getClientAddress(), "host", "") or ""
        if self._proxied(request):
            fwd = request.getHeader(b"x-forwarded-for")
            if fwd:
                # The right-most address not itself a trusted proxy is the client.
                for hop in reversed([h.strip() for h in fwd.decode("latin-1").split(",")]):
                    if not _in(hop, self.trusted):
                        try:
                            return str(ipaddress.ip_address(hop))
                        except ValueError:
                            break
                    peer = hop
        return peer

    def secure(self, request: Any) -> bool:
        if self.tls:
            return True
        if self._proxied(request):
            proto = request.getHeader(b"x-forwarded-proto")
            return bool(proto) and proto.decode("latin-1").strip().lower() == "https"
        return False
