"""What the admin and the self-care sites share: sessions, language, the page chrome, login.

A site subclasses :class:`PageApp`, adds its routes to ``self.router`` and
renders through :meth:`page`, which fills the layout (who is logged in and
their role, the navigation the caller may see, flashes, the CSRF token).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer

from webadmin.pages.i18n import LANGUAGES, Formatter, negotiate, translations
from webadmin.pages.render import Renderer
from webadmin.pages.sessions import LoginThrottle, PageSession, SessionStore, check_csrf
from webadmin.pages.site import PageError, PageRequest, PagesResource, Response, Router


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str
    current: bool = False


@dataclass(frozen=True)
class Who:
    name: str
    role_label: str


@dataclass
class Chrome:
    """The layout's variables (``site`` in templates)."""

    home: str
    static: str
    path: str
    csrf: str
    nav: list[NavItem] = field(default_factory=list)
    who: Who | None = None
    flashes: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Form:
    """Values to show again and an error per field ('' = the whole form)."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def local_path(next_path: str, home: str) -> str:
    """Only a path on this site: no scheme, no host, no '//' (no open redirect)."""
    if (not next_path.startswith(home) or next_path.startswith("//") or "\\" in next_path
            or any(c in next_path for c in "\r\n")):
        return home
    return next_path


class PageApp:
    cookie = "radbill_page"
    title = "radbill"

    def __init__(self, home: str, renderer: Renderer, *, default_language: str = "en",
                 page_size: int = 50, secure_cookies: bool = False,
                 store: SessionStore | None = None,
                 throttle: LoginThrottle | None = None) -> None:
        self.home = home
        self.renderer = renderer
        self.default_language = default_language
        self.page_size = page_size
        self.store = store or SessionStore(self.cookie)
        self.throttle = throttle or LoginThrottle()
        self.router = Router()
        self.router.get("/lang")(self.set_language)
        self.resource = PagesResource(self.router, self.error_page, login_url=home + "login",
                                      secure_cookies=(lambda r: True) if secure_cookies
                                      else None)

    # -- language -------------------------------------------------------------------------

    def lang_of(self, req: PageRequest, session: PageSession | None) -> str:
        return negotiate(session.lang if session else None,
                         req.headers.get("accept-language"), self.default_language)

    def fmt(self, req: PageRequest, session: PageSession | None) -> Formatter:
        return self.renderer.formatter(self.lang_of(req, session))

    def gettext(self, req: PageRequest, session: PageSession | None) -> Callable[[str], str]:
        return translations(self.lang_of(req, session)).gettext

    def set_language(self, req: PageRequest) -> Response:
        lang = req.arg("lang")
        target = local_path(req.arg("next", self.home), self.home)
        resp = Response.redirect(target)
        if lang not in LANGUAGES:
            return resp
        session = self.store.get(req)
        if session is None:
            session = self.store.new(resp)
        session.lang = lang
        return resp

    # -- sessions -------------------------------------------------------------------------

    def any_session(self, req: PageRequest, resp: Response | None = None) -> PageSession:
        """The visitor's session, logged in or not, made when missing (login form CSRF)."""
        session = self.store.get(req)
        if session is None:
            session = self.store.new(resp if resp is not None else Response())
            req.params["_new_cookie"] = session.id
        return session

    def logged_in(self, req: PageRequest) -> PageSession:
        session = self.store.get(req)
        if session is None or session.principal is None:
            raise PageError(401, "")
        return session

    def posted(self, req: PageRequest) -> PageSession:
        """A logged-in session whose form carries its CSRF token."""
        session = self.logged_in(req)
        check_csrf(session, req)
        return session

    def start_session(self, req: PageRequest, old: PageSession | None, principal: Any,
                      target: str) -> Response:
        resp = Response.redirect(target)
        if old is not None:
            self.store.end(old, Response())
        self.store.new(resp, principal=principal, lang=old.lang if old else None)
        return resp

    def logout(self, req: PageRequest) -> Response:
        session = self.store.get(req)
        if session is not None:
            check_csrf(session, req)
        resp = Response.redirect(self.home + "login")
        self.store.end(session, resp)
        return resp

    # -- rendering ------------------------------------------------------------------------

    def who(self, session: PageSession) -> Who | None:
        return None

    def nav(self, req: PageRequest, session: PageSession) -> list[NavItem]:
        return []

    def page(self, req: PageRequest, session: PageSession, template: str, *,
             status: int = 200, **context: Any) -> Response:
        lang = self.lang_of(req, session)
        path = self.home + req.path.lstrip("/")
        chrome = Chrome(home=self.home, static=self.home + "static", path=path,
                        csrf=session.csrf,
                        nav=self.nav(req, session) if session.principal is not None else [],
                        who=self.who(session) if session.principal is not None else None,
                        flashes=session.take_flashes())
        body = self.renderer.render(template, lang, site=chrome, **context)
        resp = Response(body=body, status=status)
        new = req.params.get("_new_cookie")
        if new:
            resp.set_cookie(self.store.cookie, new, path=b"/")
        return resp

    def error_page(self, req: PageRequest, status: int, message: str) -> bytes:
        session = self.store.get(req) or PageSession("", "", 0, 0)
        _ = self.gettext(req, session)
        return self.renderer.render("error.html", self.lang_of(req, session),
                                    site=Chrome(home=self.home, static=self.home + "static",
                                                path=self.home, csrf=session.csrf,
                                                who=self.who(session)
                                                if session.principal is not None else None),
                                    status=status, message=_(message) if message else "")

    def resource_for(self) -> PagesResource:
        return self.resource


def inline(fn: Callable[..., Generator[Any, Any, Response]]) -> Callable[..., Any]:
    """inlineCallbacks for page handlers (a name that reads well above a route)."""
    return defer.inlineCallbacks(fn)
