"""The admin site (/admin/): operators log in, then every page acts as their service-layer Caller.

The pages never touch the database themselves: each handler runs the same
``webadmin.service`` ``thd_*`` function the HTTP API runs, through the DB
pool, with the logged-in operator's :class:`~webadmin.roles.Caller`, so the
permission checks and the reseller scope are the API's own. A page only
*hides* what the role may not do (``may``); a forged form is refused by the
service layer anyway. The login is an ``api_session`` row like an API login
(argon2 checked in a thread), so disabling an operator or changing its role
ends its browser sessions too; the caller is looked up again at most every
``token_cache`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import tzinfo
from functools import cache
from typing import Any

from twisted.internet import defer, threads

from core.db.pool import DBPool
from core.errors import AlreadyExists, InvalidInput, NotFound
from webadmin.admin.rates import RateSampler
from webadmin.errors import Forbidden as ServiceForbidden
from webadmin.pages.app import Form, NavItem, PageApp, Who, inline
from webadmin.pages.i18n import N_, Formatter, translations
from webadmin.pages.render import Renderer
from webadmin.pages.sessions import PageSession, check_csrf
from webadmin.pages.site import PageError, PageRequest, Response
from webadmin.roles import Caller, may
from webadmin.service import logins
from webadmin.service.operators import hash_operator_password, verify_operator_password
from webadmin.service.tokens import token_hash

MAX_PASSWORD = 256
ROLE_WORDS = {"admin": N_("admin"), "manager": N_("manager"), "cashier": N_("cashier"),
              "support": N_("support"), "reseller": N_("reseller")}

# (label, path, permission): the navigation, each entry shown only to who may read it.
NAV = ((N_("Dashboard"), "", "dashboard.read"),
       (N_("Subscribers"), "subscribers", "subscriber.read"),
       (N_("Sessions"), "sessions", "session.read"),
       (N_("Calls"), "calls", "call.read"),
       (N_("Accounts"), "accounts", "account.read"),
       (N_("Payments"), "payments", "payment.read"),
       (N_("Documents"), "documents", "document.read"),
       (N_("Cards"), "cards", "card.read"),
       (N_("Plans"), "plans", "plan.read"),
       (N_("NAS"), "nas", "nas.read"),
       (N_("Pools"), "pools", "pool.read"),
       (N_("Reports"), "reports", "report.read"),
       (N_("Operators"), "operators", "operator.admin"),
       (N_("Tokens"), "tokens", "token.admin"),
       (N_("Audit log"), "audit", "audit.read"))



@cache
def dummy_hash() -> str:
    """A real argon2 hash to verify against for unknown logins (same cost: no timing oracle)."""
    return hash_operator_password("radbill-no-such-operator")


@dataclass
class Operator:
    """What a page session holds after login: the session token (hashed) and the caller."""

    hashed: str = field(repr=False)
    caller: Caller
    checked: float  # when the caller was last confirmed from the database (monotonic)


@dataclass
class Ctx:
    """One request's logged-in operator: its page session, caller, language and formatter."""

    session: PageSession
    caller: Caller
    _: Callable[..., str]
    fmt: Formatter

    def may(self, permission: str) -> bool:
        return may(self.caller, permission)


@dataclass
class Settings:
    currency: str
    tz: tzinfo
    session_idle: float = 1800
    session_lifetime: float = 43200
    token_cache: float = 2.0


class AdminSite(PageApp):
    cookie = "radbill_admin"

    def __init__(self, dbpool: DBPool, renderer: Renderer, settings: Settings, *,
                 reactor: Any = None, disconnector: Callable[[], Any] | None = None,
                 billing_status: Callable[[], Any] | None = None,
                 rates: RateSampler | None = None,
                 document_reader: Callable[[Any, str], bytes] | None = None,
                 **kw: Any) -> None:
        super().__init__("/admin/", renderer, **kw)
        from twisted.internet import reactor as default_reactor

        self.dbpool = dbpool
        self.settings = settings
        self.reactor = reactor or default_reactor
        self.disconnector = disconnector
        self.billing_status = billing_status or (lambda: None)
        self.rates = rates or RateSampler()
        # (DocumentView, "html"|"pdf") -> bytes checked against the recorded hash (blocking)
        self.document_reader = document_reader
        self._sender: Any = None
        self.store.idle = settings.session_idle
        self.store.absolute = settings.session_lifetime
        r = self.router
        r.get("/login")(self.login_form)
        r.post("/login")(self.login)
        r.post("/logout")(self.logout)
        from webadmin.admin import (
            access,
            cards,
            catalog,
            dashboard,
            documents,
            money,
            reports,
            subscribers,
            usage,
        )

        for module in (dashboard, subscribers, catalog, money, documents, cards, usage,
                       reports, access):
            module.install(self)

    # -- chrome ---------------------------------------------------------------------------

    def who(self, session: PageSession) -> Who | None:
        op = session.principal
        _ = translations(session.lang or self.default_language).gettext
        role = _(ROLE_WORDS.get(op.caller.role, op.caller.role))
        if op.caller.reseller:
            role = f"{role} · {op.caller.reseller}"
        return Who(op.caller.actor.partition(":")[2], role)

    def nav(self, req: PageRequest, session: PageSession) -> list[NavItem]:
        _ = self.gettext(req, session)
        caller = session.principal.caller
        here = req.path.strip("/").split("/")[0]
        return [NavItem(self.home + slug, _(label), here == slug)
                for label, slug, perm in NAV if caller.may(perm)]

    # -- login ----------------------------------------------------------------------------

    def login_form(self, req: PageRequest) -> Response:
        session = self.any_session(req)
        if session.principal is not None:
            return Response.redirect(self.home)
        return self.page(req, session, "admin/login.html", form=Form())

    @inline
    def login(self, req: PageRequest) -> Generator[Any, Any, Response]:
        session = self.any_session(req)
        check_csrf(session, req)
        _ = self.gettext(req, session)
        login = req.form.get("login", "").strip()[:64]
        password = req.form.get("password", "")[:MAX_PASSWORD]
        form = Form(values={"login": login})
        if not self.throttle.allowed(req.client, login):
            form.errors[""] = _("Too many failed logins; wait a minute and try again.")
            return self.page(req, session, "admin/login.html", form=form, status=429)
        secret = (yield self.dbpool.run(logins.thd_operator_secret, login)) if login else None
        stored = secret.password_hash if secret is not None and secret.enabled else dummy_hash()
        ok = yield threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(),
                                             verify_operator_password, stored, password)
        if not ok or secret is None or not secret.enabled:
            self.throttle.failed(req.client, login)
            form.errors[""] = _("Wrong login or password.")
            return self.page(req, session, "admin/login.html", form=form, status=401)
        self.throttle.succeeded(login)
        opened = yield self.dbpool.run(logins.thd_open_session, address=req.client,
                                       lifetime=self.settings.session_lifetime,
                                       operator_id=secret.id)
        principal = Operator(token_hash(opened.token), opened.caller, time.monotonic())
        return self.start_session(req, session, principal, self.home)

    def logout(self, req: PageRequest) -> Response:
        session = self.store.get(req)
        if session is not None and isinstance(session.principal, Operator):
            check_csrf(session, req)
            self.dbpool.run(logins.thd_end_session, session.principal.hashed).addErrback(
                lambda f: None)
        return super().logout(req)

    # -- every page -----------------------------------------------------------------------

    @defer.inlineCallbacks
    def ctx(self, req: PageRequest, post: bool = False) -> Generator[Any, Any, Ctx]:
        """The logged-in operator (re-checked against the database every token_cache s)."""
        session = self.logged_in(req)
        if post:
            check_csrf(session, req)
        op: Operator = session.principal
        now = time.monotonic()
        if now - op.checked > self.settings.token_cache:
            found = yield self.dbpool.run(logins.thd_authenticate, op.hashed, req.client,
                                          self.settings.session_idle)
            if found is None:
                self.store.end(session, Response())
                raise PageError(401, "")
            op.caller, op.checked = found.caller, now
        return Ctx(session, op.caller, formatting(self.gettext(req, session)),
                   self.fmt(req, session))

    def sender(self) -> Any:
        """The Disconnect-Request sender (one UDP socket, made on first use)."""
        if self._sender is None:
            if self.disconnector is None:
                raise PageError(503, N_("Disconnecting is not wired in this process."))
            self._sender = self.disconnector()
        return self._sender

    def close(self) -> Any:
        self.rates.stop()
        if self._sender is not None:
            return self._sender.close()
        return None

    def run(self, ctx: Ctx, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """A service-layer call as this operator, in the DB thread pool."""
        return self.dbpool.run(fn, ctx.caller, *args, **kw)

    def render(self, req: PageRequest, ctx: Ctx, template: str, *, status: int = 200,
               **context: Any) -> Response:
        return self.page(req, ctx.session, template, status=status, may=ctx.may,
                         caller=ctx.caller, currency=self.settings.currency, **context)

    def done(self, ctx: Ctx, target: str, message: str) -> Response:
        ctx.session.flash("ok", message)
        return Response.redirect(target)


def formatting(gettext: Callable[[str], str]) -> Callable[..., str]:
    """gettext that fills ``%(name)s`` from keywords, like the templates' newstyle ``_``."""
    def _(message: str, **values: Any) -> str:
        text = gettext(message)
        return text % values if values else text
    return _


def form_error(form: Form, exc: BaseException, default_field: str = "") -> bool:
    """Put a service-layer refusal beside its field; False when it is not a form error."""
    if isinstance(exc, ServiceForbidden):
        return False
    if isinstance(exc, InvalidInput):
        form.errors[exc.field or default_field] = str(exc)
        return True
    if isinstance(exc, AlreadyExists | NotFound):
        form.errors[default_field] = str(exc)
        return True
    from core.errors import RadbillError

    if isinstance(exc, RadbillError):
        form.errors[default_field] = str(exc)
        return True
    return False


def require(ctx: Ctx, permission: str) -> None:
    """Refuse a page the role has no business opening (the service would refuse it too)."""
    if not ctx.may(permission):
        raise PageError(403, N_("You may not do this."))
