"""The self-care site (/my/): a subscriber's balance, plan, usage, payments and password.

Everything is read through the :class:`SelfcareBackend` with the handle the
login returned, so the pages can only ever show the logged-in subscriber's
own data, whichever backend (in-process or the API) is behind them.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

from core.db.base import utcnow
from core.errors import InvalidInput
from webadmin.pages.app import Form, NavItem, PageApp, Who, inline
from webadmin.pages.charts import Series, bar_chart
from webadmin.pages.i18n import N_
from webadmin.pages.render import Renderer
from webadmin.pages.sessions import check_csrf
from webadmin.pages.site import PageRequest, Response
from webadmin.selfcare.backend import (
    SELF_PASSWORD_MIN,
    CardNotCredited,
    DocumentMissing,
    Handle,
    SelfcareBackend,
    WrongPassword,
)

TRAFFIC_DAYS = 30
MAX_PASSWORD = 128
MAX_CARD_FIELD = 64
DOCUMENTS_SHOWN = 120  # ten years of monthly statements

NAV = ((N_("Overview"), ""), (N_("Sessions"), "sessions"), (N_("Calls"), "calls"),
       (N_("Payments"), "payments"), (N_("Ledger"), "ledger"), (N_("Documents"), "documents"),
       (N_("Activate a card"), "card"), (N_("Password"), "password"))
STATE_WORDS = (N_("online"), N_("overdue"), N_("closed"), N_("active"), N_("ended"),
               N_("blocked"), N_("disabled"))
KIND_WORDS = (N_("payment"), N_("charge"), N_("fee"), N_("refund"), N_("adjustment"))
# billing.cards.REFUSAL_TEXT, as a subscriber reads them (the backend gives the English text)
CARD_REFUSALS = (N_("wrong serial or PIN"), N_("too many wrong PINs; try again later"),
                 N_("the card is blocked"), N_("the card has expired"),
                 N_("the card has already been used"),
                 N_("the card is in another currency than the account"),
                 N_("the card belongs to another reseller"))
DOC_WORDS = (N_("statement"), N_("invoice"))
PRICE_WORDS = (N_("per second"), N_("per minute"), N_("per MB uploaded"),
               N_("per MB downloaded"), N_("monthly fee"), N_("daily fee"))


class Paging:
    def __init__(self, req: PageRequest, base: str, size: int, got: int) -> None:
        self.page = req.int_arg("page", 1, lo=1, hi=100_000)
        self.size = size
        self.offset = (self.page - 1) * size
        self.first = self.offset + 1 if got else 0
        self.last = self.offset + min(got, size)
        self.prev_href = f"{base}?page={self.page - 1}" if self.page > 1 else ""
        self.next_href = f"{base}?page={self.page + 1}" if got > size else ""


class SelfcareSite(PageApp):
    cookie = "radbill_my"

    def __init__(self, backend: SelfcareBackend, renderer: Renderer, **kw: Any) -> None:
        super().__init__("/my/", renderer, **kw)
        self.backend = backend
        r = self.router
        r.get("/login")(self.login_form)
        r.post("/login")(self.login)
        r.post("/logout")(self.logout)
        r.get("/")(self.overview)
        r.get("/sessions")(self.sessions)
        r.get("/calls")(self.calls)
        r.get("/payments")(self.payments)
        r.get("/ledger")(self.ledger)
        r.get("/card")(self.card_form)
        r.post("/card")(self.card)
        r.get("/documents")(self.documents)
        r.get("/documents/{id}/file")(self.document_file)
        r.get("/password")(self.password_form)
        r.post("/password")(self.password)

    def who(self, session: Any) -> Who | None:
        _ = self.renderer_gettext(session)
        return Who(session.principal.login, _("subscriber"))

    def renderer_gettext(self, session: Any) -> Any:
        from webadmin.pages.i18n import translations

        return translations(session.lang or self.default_language).gettext

    def nav(self, req: PageRequest, session: Any) -> list[NavItem]:
        _ = self.gettext(req, session)
        here = req.path.strip("/")
        return [NavItem(self.home + slug, _(label), here == slug) for label, slug in NAV]

    # -- login ----------------------------------------------------------------------------

    def login_form(self, req: PageRequest) -> Response:
        session = self.any_session(req)
        if session.principal is not None:
            return Response.redirect(self.home)
        return self.page(req, session, "my/login.html", form=Form())

    @inline
    def login(self, req: PageRequest) -> Generator[Any, Any, Response]:
        session = self.any_session(req)
        check_csrf(session, req)
        _ = self.gettext(req, session)
        login = req.form.get("login", "").strip()[:128]
        password = req.form.get("password", "")[:MAX_PASSWORD]
        form = Form(values={"login": login})
        if not self.throttle.allowed(req.client, login):
            form.errors[""] = _("Too many failed logins; wait a minute and try again.")
            return self.page(req, session, "my/login.html", form=form, status=429)
        handle = None
        if login and password:
            handle = yield self.backend.login(login, password, req.client)
        if handle is None:
            self.throttle.failed(req.client, login)
            form.errors[""] = _("Wrong login or password.")
            return self.page(req, session, "my/login.html", form=form, status=401)
        self.throttle.succeeded(login)
        return self.start_session(req, session, handle, self.home)

    def logout(self, req: PageRequest) -> Response:
        session = self.store.get(req)
        if session is not None and isinstance(session.principal, Handle):
            check_csrf(session, req)
            self.backend.logout(session.principal)
        return super().logout(req)

    # -- pages ----------------------------------------------------------------------------

    @inline
    def overview(self, req: PageRequest) -> Generator[Any, Any, Response]:
        session = self.logged_in(req)
        h = session.principal
        me = yield self.backend.me(h)
        days = yield self.backend.traffic(h, TRAFFIC_DAYS)
        recent = yield self.backend.sessions(h, 0, 5)
        fmt = self.fmt(req, session)
        _ = self.gettext(req, session)
        chart = self.traffic_chart(days, fmt, _)
        return self.page(req, session, "my/overview.html", me=me, chart=chart, recent=recent)

    def traffic_chart(self, days: list[Any], fmt: Any, _: Any) -> Any:
        today = fmt.local(utcnow()).date()
        labels = [(today - timedelta(days=i)) for i in range(TRAFFIC_DAYS - 1, -1, -1)]
        by_day = {d.day: d for d in days}
        keys = [d.isoformat() for d in labels]
        down = [by_day[k].octets_out / 1e6 if k in by_day else 0 for k in keys]
        up = [by_day[k].octets_in / 1e6 if k in by_day else 0 for k in keys]
        return bar_chart([fmt.number(d.day) for d in labels],
                         [Series(_("download"), down), Series(_("upload"), up)],
                         title=_("Traffic per day, last 30 days"), unit=_("MB"),
                         x_caption=_("day of month"),
                         value_format=lambda v: fmt.number(round(v, 1)))

    @inline
    def _usage(self, req: PageRequest, kind: str) -> Generator[Any, Any, Response]:
        session = self.logged_in(req)
        page = req.int_arg("page", 1, lo=1, hi=100_000)
        size = self.page_size
        fetch = self.backend.sessions if kind == "sessions" else self.backend.calls
        rows = yield fetch(session.principal, (page - 1) * size, size + 1)
        me = yield self.backend.me(session.principal)
        paging = Paging(req, self.home + kind, size, len(rows))
        return self.page(req, session, f"my/{kind}.html", rows=rows[:size], paging=paging,
                         currency=me.currency)

    def sessions(self, req: PageRequest) -> Any:
        return self._usage(req, "sessions")

    def calls(self, req: PageRequest) -> Any:
        return self._usage(req, "calls")

    @inline
    def _ledger(self, req: PageRequest, payments_only: bool) -> Generator[Any, Any, Response]:
        session = self.logged_in(req)
        page = req.int_arg("page", 1, lo=1, hi=100_000)
        size = self.page_size
        rows = yield self.backend.ledger(session.principal, (page - 1) * size, size + 1,
                                         payments_only)
        me = yield self.backend.me(session.principal)
        name = "payments" if payments_only else "ledger"
        paging = Paging(req, self.home + name, size, len(rows))
        return self.page(req, session, "my/ledger.html", rows=rows[:size], paging=paging,
                         me=me, payments_only=payments_only)

    def payments(self, req: PageRequest) -> Any:
        return self._ledger(req, True)

    def ledger(self, req: PageRequest) -> Any:
        return self._ledger(req, False)

    def password_form(self, req: PageRequest) -> Response:
        session = self.logged_in(req)
        return self.page(req, session, "my/password.html", form=Form())

    @inline
    def password(self, req: PageRequest) -> Generator[Any, Any, Response]:
        session = self.posted(req)
        _ = self.gettext(req, session)
        old = req.form.get("old", "")
        new = req.form.get("new", "")
        again = req.form.get("again", "")
        form = Form()
        if not old:
            form.errors["old"] = _("Enter your current password.")
        if len(new) < SELF_PASSWORD_MIN:
            form.errors["new"] = _("The new password needs at least 8 characters.")
        elif len(new.encode("utf-8", "replace")) > MAX_PASSWORD or "\x00" in new:
            form.errors["new"] = _("The new password is too long.")
        if new != again:
            form.errors["again"] = _("The two new passwords differ.")
        if form.ok:
            if not self.throttle.allowed(req.client, session.principal.login):
                form.errors["old"] = _("Too many failed attempts; wait a minute.")
            else:
                try:
                    yield self.backend.change_password(session.principal, old, new)
                except WrongPassword:
                    self.throttle.failed(req.client, session.principal.login)
                    form.errors["old"] = _("This is not your current password.")
                except InvalidInput as exc:  # radbill's own rule (through the API)
                    form.errors["new"] = str(exc)
        if not form.ok:
            return self.page(req, session, "my/password.html", form=form, status=400)
        session.flash("ok", _("Your password has been changed."))
        return Response.redirect(self.home)

    # -- prepaid cards and documents ------------------------------------------------------

    def card_form(self, req: PageRequest) -> Response:
        session = self.logged_in(req)
        return self.page(req, session, "my/card.html", form=Form())

    @inline
    def card(self, req: PageRequest) -> Generator[Any, Any, Response]:
        session = self.posted(req)
        _ = self.gettext(req, session)
        serial = req.form.get("serial", "").strip()
        pin = req.form.get("pin", "").strip()
        form = Form(values={"serial": serial[:MAX_CARD_FIELD]})
        if not serial:
            form.errors["serial"] = _("Enter the card's serial number.")
        elif len(serial) > MAX_CARD_FIELD or "\x00" in serial:
            form.errors["serial"] = _("This is not a card serial number.")
        if not pin:
            form.errors["pin"] = _("Enter the card's PIN.")
        elif len(pin) > MAX_CARD_FIELD or "\x00" in pin:
            form.errors["pin"] = _("This is not a card PIN.")
        if form.ok:
            try:
                got = yield self.backend.activate_card(session.principal, serial, pin,
                                                       req.client)
            except CardNotCredited as exc:
                form.errors["pin" if "PIN" in exc.reason else "serial"] = _(exc.reason)
            else:
                fmt = self.fmt(req, session)
                session.flash("ok", _("The card added %(amount)s; your balance is now "
                                      "%(balance)s.") % {
                    "amount": fmt.money(got.credited, got.currency),
                    "balance": fmt.money(got.balance, got.currency)})
                return Response.redirect(self.home)
        return self.page(req, session, "my/card.html", form=form, status=400)

    @inline
    def documents(self, req: PageRequest) -> Generator[Any, Any, Response]:
        session = self.logged_in(req)
        rows = yield self.backend.documents(session.principal, DOCUMENTS_SHOWN)
        return self.page(req, session, "my/documents.html", rows=rows)

    @inline
    def document_file(self, req: PageRequest) -> Generator[Any, Any, Response]:
        from webadmin.pages.site import PageError

        session = self.logged_in(req)
        text = req.params.get("id", "")
        fmt = req.query.get("format", "html")
        if not text.isdigit() or len(text) > 18 or fmt not in ("html", "pdf"):
            raise PageError(404, self.gettext(req, session)("No such document."))
        try:
            f = yield self.backend.document_file(session.principal, int(text), fmt)
        except DocumentMissing:
            raise PageError(404, self.gettext(req, session)("No such document.")) from None
        return Response(f.content, content_type=f.content_type,
                        headers={"Content-Disposition":
                                 f'attachment; filename="{f.filename}"'})
