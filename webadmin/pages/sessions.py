"""Browser sessions of the pages: random ids in an HttpOnly cookie, CSRF tokens, expiry.

A session is server-side state keyed by a 256-bit random id; the cookie holds
nothing else, is ``HttpOnly`` and ``SameSite=Lax`` and ``Secure`` when the site
is served over TLS (or behind a TLS proxy). Every state-changing form carries
the session's CSRF token, compared in constant time. A session ends on
logout, after ``idle`` seconds without a request, or ``absolute`` seconds
after login, whatever the activity. Before login, a short-lived pre-session
carries the login form's CSRF token and the chosen language.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from webadmin.pages.site import N_, PageError, PageRequest, Response

IDLE_SECONDS = 30 * 60
ABSOLUTE_SECONDS = 12 * 3600
MAX_SESSIONS = 100_000


@dataclass
class PageSession:
    id: str
    csrf: str
    created: float
    seen: float
    principal: Any = None  # who logged in (an operator or a subscriber), None before login
    lang: str | None = None
    flashes: list[tuple[str, str]] = field(default_factory=list)

    def flash(self, kind: str, text: str) -> None:
        self.flashes.append((kind, text))

    def take_flashes(self) -> list[tuple[str, str]]:
        out, self.flashes = self.flashes, []
        return out


class SessionStore:
    """In-memory sessions of one site; a restart logs everyone out (nothing to steal on disk)."""

    def __init__(self, cookie: str, *, idle: float = IDLE_SECONDS,
                 absolute: float = ABSOLUTE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cookie = cookie
        self.idle = idle
        self.absolute = absolute
        self.clock = clock
        self._sessions: dict[str, PageSession] = {}

    def _expired(self, s: PageSession, now: float) -> bool:
        return now - s.seen > self.idle or now - s.created > self.absolute

    def _sweep(self, now: float) -> None:
        for sid in [k for k, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[sid]
        while len(self._sessions) >= MAX_SESSIONS:  # oldest first
            del self._sessions[next(iter(self._sessions))]

    def get(self, request: PageRequest) -> PageSession | None:
        sid = request.cookies.get(self.cookie, "")
        s = self._sessions.get(sid) if sid else None
        if s is None:
            return None
        now = self.clock()
        if self._expired(s, now):
            del self._sessions[sid]
            return None
        s.seen = now
        return s

    def new(self, response: Response, principal: Any = None, lang: str | None = None,
            flashes: list[tuple[str, str]] | None = None) -> PageSession:
        """A fresh id (never reuse the pre-login one: no session fixation)."""
        now = self.clock()
        self._sweep(now)
        s = PageSession(id=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32),
                        created=now, seen=now, principal=principal, lang=lang,
                        flashes=list(flashes or []))
        self._sessions[s.id] = s
        response.set_cookie(self.cookie, s.id, path=b"/")
        return s

    def end(self, session: PageSession | None, response: Response) -> None:
        if session is not None:
            self._sessions.pop(session.id, None)
        response.set_cookie(self.cookie, "", path=b"/", max_age=0)

    def end_where(self, predicate: Callable[[PageSession], bool]) -> int:
        """End every session matching (a disabled operator, a changed password)."""
        gone = [k for k, s in self._sessions.items() if predicate(s)]
        for k in gone:
            del self._sessions[k]
        return len(gone)

    def __len__(self) -> int:
        return len(self._sessions)


def check_csrf(session: PageSession | None, request: PageRequest) -> None:
    """Refuse a state-changing form without this session's token (403, nothing done)."""
    sent = request.form.get("csrf", "")
    if session is None or not sent or not hmac.compare_digest(sent.encode(),
                                                              session.csrf.encode()):
        raise PageError(403, N_("The form has expired or did not come from this site; "
                                "reload the page and try again."))


class LoginThrottle:
    """At most ``limit`` failed logins per ``window`` seconds per address and per login.

    Past that, further attempts are refused without checking the password (so
    a guessing run gets nothing, and costs no argon2), until the window moves.
    """

    def __init__(self, limit: int = 5, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._fails: dict[str, list[float]] = {}

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._fails.get(key, []) if now - t < self.window]
        if times:
            self._fails[key] = times
        else:
            self._fails.pop(key, None)
        return times

    def allowed(self, client: str, login: str) -> bool:
        now = self.clock()
        return all(len(self._recent(k, now)) < self.limit
                   for k in (f"ip:{client}", f"login:{login}"))

    def failed(self, client: str, login: str) -> None:
        now = self.clock()
        if len(self._fails) > 100_000:
            self._fails.clear()
        for k in (f"ip:{client}", f"login:{login}"):
            self._fails.setdefault(k, []).append(now)

    def succeeded(self, login: str) -> None:
        self._fails.pop(f"login:{login}", None)
