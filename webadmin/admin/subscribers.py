"""Subscribers: list, add, the subscriber page and its actions (block, plan, password, money)."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from twisted.internet import threads

from aaa.admin.passwords import hash_credentials
from billing.money import parse_amount
from core.errors import InvalidInput, NotFound
from webadmin.admin.site import Ctx, form_error, require
from webadmin.admin.views import Cell, Column, Field, Link, Paging, Table
from webadmin.pages.app import Form, inline
from webadmin.pages.i18n import N_
from webadmin.pages.site import PageError, PageRequest, Response
from webadmin.service import catalog, money, resellers, subscribers
from webadmin.service.dashboard import thd_subscriber_overview

if TYPE_CHECKING:
    from webadmin.admin.site import AdminSite

STATUSES = (("active", N_("active")), ("blocked", N_("blocked")), ("disabled", N_("disabled")))
PAYMENT_KINDS = (("payment", N_("payment")), ("refund", N_("refund")),
                 ("adjustment", N_("adjustment")))
MIN_PASSWORD = 6


def q(text: str) -> str:
    return quote(text, safe="")


def sub_href(site: AdminSite, login: str) -> str:
    return f"{site.home}subscribers/{q(login)}"


def status_cell(_: Any, status: str) -> Cell:
    return Cell(_(status), cls=f"status-{status}")


def install(site: AdminSite) -> None:
    r = site.router
    home = site.home

    def plan_choices(ctx: Ctx, plans: list[Any]) -> list[tuple[str, str]]:
        return [("", ctx._("(no plan)"))] + [(p.name, p.name) for p in plans]

    # -- list -----------------------------------------------------------------------------

    @inline
    def listing(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "subscriber.read")
        _ = ctx._
        paging = Paging.of(req, site.page_size)
        status = req.arg("status") or None
        if status not in (None, "active", "blocked", "disabled"):
            status = None
        plan = req.arg("plan") or None
        prefix = req.arg("login").strip()[:128] or None
        plans = yield site.run(ctx, catalog.thd_list_plans) if ctx.may("plan.read") else []
        try:
            rows = yield site.run(ctx, subscribers.thd_list, status=status, plan=plan,
                                  login_prefix=prefix, limit=paging.size + 1,
                                  offset=paging.offset)
        except (InvalidInput, NotFound) as exc:  # an unknown plan in the filter, say
            ctx.session.flash("error", str(exc))
            rows = []
        table = Table([Column(_("Login")), Column(_("Status")), Column(_("Plan")),
                       Column(_("Static IP")), Column(_("Reseller")), Column(_("Description"))],
                      id="subscribers")
        for s in rows[:paging.size]:
            table.rows.append([Cell(s.login, sub_href(site, s.login)), status_cell(_, s.status),
                               Cell(s.plan or ""), Cell(s.static_ip or ""),
                               Cell(s.reseller or ""), Cell(s.description)])
        filters = [Field("login", _("Login starts with")),
                   Field("status", _("Status"), choices=[("", _("any"))]
                         + [(v, _(t)) for v, t in STATUSES]),
                   Field("plan", _("Plan"), choices=[("", _("any")), ("none", _("(no plan)"))]
                         + [(p.name, p.name) for p in plans])]
        links = [Link(_("Add subscriber"), home + "subscribers/new", "button")] \
            if ctx.may("subscriber.write") else []
        return site.render(req, ctx, "admin/list.html", title=_("Subscribers"), table=table,
                           filters=filters, query=req.query, links=links,
                           paging=paging.done(req, home + "subscribers", len(rows)))

    # -- add ------------------------------------------------------------------------------

    def add_fields(ctx: Ctx, plans: list[Any], resellers_: list[Any]) -> list[Field]:
        _ = ctx._
        out = [Field("login", _("Login"), required=True),
               Field("password", _("Password"), type="password", required=True,
                     hint=_("At least %(n)s characters.", n=MIN_PASSWORD)),
               Field("plan", _("Plan"), choices=plan_choices(ctx, plans)),
               Field("static_ip", _("Static IP"), hint=_("Optional.")),
               Field("status", _("Status"), choices=[(v, _(t)) for v, t in STATUSES]),
               Field("chap", _("Keep the password for CHAP too"), type="checkbox"),
               Field("description", _("Description"), rows=2)]
        if not ctx.caller.scoped and resellers_:
            out.insert(3, Field("reseller", _("Reseller"), choices=[("", _("(operator)"))]
                                + [(x.name, x.name) for x in resellers_]))
        return out

    @inline
    def add_page(req: PageRequest, form: Form | None = None,
                 status: int = 200) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "subscriber.write")
        plans = yield site.run(ctx, catalog.thd_list_plans)
        res = yield site.run(ctx, resellers.thd_list_resellers)
        return site.render(req, ctx, "admin/form.html", title=ctx._("Add subscriber"),
                           form=form or Form(values={"status": "active"}),
                           fields=add_fields(ctx, plans, res), action=home + "subscribers/new",
                           submit=ctx._("Add"), back=home + "subscribers", status=status)

    @inline
    def add(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req, post=True)
        _ = ctx._
        f = req.form
        form = Form(values={k: f.get(k, "") for k in ("login", "plan", "static_ip", "status",
                                                      "description", "reseller", "chap")})
        login = f.get("login", "").strip()
        password = f.get("password", "")
        if not login:
            form.errors["login"] = _("Give a login.")
        if len(password) < MIN_PASSWORD:
            form.errors["password"] = _("At least %(n)s characters.", n=MIN_PASSWORD)
        if form.ok:
            try:
                creds = yield threads.deferToThread(hash_credentials, password)
                yield site.run(ctx, subscribers.thd_add, login, creds,
                               plan=f.get("plan") or None, chap=bool(f.get("chap")),
                               static_ip=f.get("static_ip", "").strip() or None,
                               status=f.get("status") or "active",
                               description=f.get("description", ""),
                               reseller=f.get("reseller") or None)
            except Exception as exc:
                if not form_error(form, exc, "login"):
                    raise
        if not form.ok:
            return (yield add_page(req, form, 400))
        return site.done(ctx, sub_href(site, login), _("Subscriber %(login)s added.",
                                                       login=login))

    # -- the subscriber page --------------------------------------------------------------

    @inline
    def show(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "subscriber.read")
        login = req.params["login"]
        ov = yield site.run(ctx, thd_subscriber_overview, login, site.settings.currency)
        return site.render(req, ctx, "admin/subscriber.html", ov=ov, s=ov.info,
                           href=sub_href(site, login))

    # -- edit -----------------------------------------------------------------------------

    def edit_fields(ctx: Ctx, plans: list[Any]) -> list[Field]:
        _ = ctx._
        return [Field("plan", _("Plan"), choices=plan_choices(ctx, plans)),
                Field("static_ip", _("Static IP"), hint=_("Empty for none.")),
                Field("status", _("Status"), choices=[(v, _(t)) for v, t in STATUSES]),
                Field("description", _("Description"), rows=2)]

    @inline
    def edit_page(req: PageRequest, form: Form | None = None,
                  status: int = 200) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "subscriber.write")
        login = req.params["login"]
        s = yield site.run(ctx, subscribers.thd_get, login)
        plans = yield site.run(ctx, catalog.thd_list_plans)
        form = form or Form(values={"plan": s.plan or "", "static_ip": s.static_ip or "",
                                    "status": s.status, "description": s.description})
        return site.render(req, ctx, "admin/form.html",
                           title=ctx._("Edit subscriber %(login)s", login=login), form=form,
                           fields=edit_fields(ctx, plans), action=sub_href(site, login) + "/edit",
                           submit=ctx._("Save"), back=sub_href(site, login), status=status)

    @inline
    def edit(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req, post=True)
        login = req.params["login"]
        f = req.form
        form = Form(values={k: f.get(k, "") for k in ("plan", "static_ip", "status",
                                                      "description")})
        changes = {"plan": f.get("plan") or None,
                   "static_ip": f.get("static_ip", "").strip() or None,
                   "status": f.get("status", "active"), "description": f.get("description", "")}
        try:
            yield site.run(ctx, subscribers.thd_update, login, changes)
        except Exception as exc:
            if not form_error(form, exc):
                raise
            return (yield edit_page(req, form, 400))
        return site.done(ctx, sub_href(site, login), ctx._("Saved."))

    # -- block / unblock ------------------------------------------------------------------

    @inline
    def set_status(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req, post=True)
        login = req.params["login"]
        status = req.form.get("status", "")
        if status not in ("active", "blocked"):
            raise PageError(400, N_("Unknown status."))
        info = yield site.run(ctx, subscribers.thd_set_status, login, status)
        _ = ctx._
        if info.status == "blocked" and ctx.may("session.disconnect") and site.disconnector:
            from webadmin.admin.usage import disconnect_all

            results = yield disconnect_all(site, ctx, login)
            for text in results:
                ctx.session.flash("ok", text)
        return site.done(ctx, sub_href(site, login),
                         _("%(login)s is now %(status)s.", login=login, status=_(info.status)))

    # -- password -------------------------------------------------------------------------

    def password_fields(ctx: Ctx) -> list[Field]:
        _ = ctx._
        return [Field("password", _("New password"), type="password", required=True,
                      hint=_("At least %(n)s characters.", n=MIN_PASSWORD)),
                Field("chap", _("Keep it for CHAP too"), type="checkbox")]

    @inline
    def password_page(req: PageRequest, form: Form | None = None,
                      status: int = 200) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "subscriber.password")
        login = req.params["login"]
        yield site.run(ctx, subscribers.thd_get, login)
        return site.render(req, ctx, "admin/form.html",
                           title=ctx._("Set the password of %(login)s", login=login),
                           form=form or Form(), fields=password_fields(ctx),
                           action=sub_href(site, login) + "/password",
                           submit=ctx._("Set password"), back=sub_href(site, login),
                           status=status)

    @inline
    def password(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req, post=True)
        login = req.params["login"]
        pw = req.form.get("password", "")
        form = Form(values={"chap": req.form.get("chap", "")})
        if len(pw) < MIN_PASSWORD:
            form.errors["password"] = ctx._("At least %(n)s characters.", n=MIN_PASSWORD)
        else:
            try:
                creds = yield threads.deferToThread(hash_credentials, pw)
                yield site.run(ctx, subscribers.thd_set_password, login, creds,
                               bool(req.form.get("chap")) or None)
            except Exception as exc:
                if not form_error(form, exc, "password"):
                    raise
        if not form.ok:
            return (yield password_page(req, form, 400))
        return site.done(ctx, sub_href(site, login), ctx._("Password set."))

    # -- money: payment / refund / adjustment, credit limit -------------------------------

    def payment_fields(ctx: Ctx) -> list[Field]:
        _ = ctx._
        return [Field("amount", _("Amount"), required=True,
                      hint=_("In %(c)s, like 12.50.", c=site.settings.currency)),
                Field("kind", _("Kind"), choices=[(v, _(t)) for v, t in PAYMENT_KINDS],
                      hint=_("An adjustment may be negative.")),
                Field("reference", _("Reference"),
                      hint=_("The bank's or receipt's number: the same reference is never "
                             "posted twice.")),
                Field("description", _("Description"))]

    @inline
    def payment_page(req: PageRequest, form: Form | None = None,
                     status: int = 200) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "payment.write")
        login = req.params["login"]
        yield site.run(ctx, subscribers.thd_get, login)
        return site.render(req, ctx, "admin/form.html",
                           title=ctx._("Post a payment to %(login)s", login=login),
                           form=form or Form(values={"kind": "payment"}),
                           fields=payment_fields(ctx), action=sub_href(site, login) + "/payment",
                           submit=ctx._("Post"), back=sub_href(site, login), status=status)

    @inline
    def payment(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req, post=True)
        login = req.params["login"]
        f = req.form
        form = Form(values={k: f.get(k, "") for k in ("amount", "kind", "reference",
                                                      "description")})
        kind = f.get("kind", "payment")
        currency = site.settings.currency
        result = None
        try:
            amount = parse_amount(f.get("amount", ""), currency,
                                  allow_negative=kind == "adjustment")
            result = yield site.run(ctx, money.thd_add_payment, login, amount, currency,
                                    reference=f.get("reference", "").strip() or None,
                                    kind=kind, description=f.get("description", "").strip())
        except Exception as exc:
            if not form_error(form, exc, "amount"):
                raise
        if result is None:
            return (yield payment_page(req, form, 400))
        _ = ctx._
        shown = ctx.fmt.money(result.entry.amount, currency)
        if not result.created:
            return site.done(ctx, sub_href(site, login),
                             _("That reference was already posted (%(amount)s); nothing was "
                               "added.", amount=shown))
        return site.done(ctx, sub_href(site, login),
                         _("Posted %(amount)s; the balance is now %(balance)s.", amount=shown,
                           balance=ctx.fmt.money(result.account.balance, currency)))

    @inline
    def credit_page(req: PageRequest, form: Form | None = None,
                    status: int = 200) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "account.credit")
        login = req.params["login"]
        currency = site.settings.currency
        if form is None:
            detail = yield site.run(ctx, money.thd_account, login, currency, 0)
            form = Form(values={"limit": ctx.fmt.amount(detail.account.credit_limit, currency)})
        fields = [Field("limit", ctx._("Credit limit"),
                        hint=ctx._("How far below zero the balance may go, in %(c)s; empty "
                                   "returns to the plan's default.", c=currency))]
        return site.render(req, ctx, "admin/form.html",
                           title=ctx._("Credit limit of %(login)s", login=login), form=form,
                           fields=fields, action=sub_href(site, login) + "/credit",
                           submit=ctx._("Save"), back=sub_href(site, login), status=status)

    @inline
    def credit(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req, post=True)
        login = req.params["login"]
        text = req.form.get("limit", "").strip()
        form = Form(values={"limit": text})
        currency = site.settings.currency
        try:
            limit = parse_amount(text, currency, what="credit limit") if text else None
            yield site.run(ctx, money.thd_set_credit_limit, login, limit, currency)
        except Exception as exc:
            if not form_error(form, exc, "limit"):
                raise
            return (yield credit_page(req, form, 400))
        return site.done(ctx, sub_href(site, login), ctx._("Credit limit saved."))

    # -- remove ---------------------------------------------------------------------------

    @inline
    def remove_page(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "subscriber.write")
        login = req.params["login"]
        yield site.run(ctx, subscribers.thd_get, login)
        return site.render(req, ctx, "admin/confirm.html",
                           title=ctx._("Remove subscriber %(login)s", login=login),
                           question=ctx._("Remove %(login)s with its sessions, calls and "
                                          "ledger? This cannot be undone.", login=login),
                           action=sub_href(site, login) + "/remove", submit=ctx._("Remove"),
                           back=sub_href(site, login))

    @inline
    def remove(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req, post=True)
        login = req.params["login"]
        if req.form.get("confirm") != "yes":
            return Response.redirect(sub_href(site, login) + "/remove")
        yield site.run(ctx, subscribers.thd_remove, login)
        return site.done(ctx, home + "subscribers",
                         ctx._("Subscriber %(login)s removed.", login=login))

    r.get("/subscribers")(listing)
    r.get("/subscribers/new")(lambda req: add_page(req))
    r.post("/subscribers/new")(add)
    r.get("/subscribers/{login}")(show)
    r.get("/subscribers/{login}/edit")(lambda req: edit_page(req))
    r.post("/subscribers/{login}/edit")(edit)
    r.post("/subscribers/{login}/status")(set_status)
    r.get("/subscribers/{login}/password")(lambda req: password_page(req))
    r.post("/subscribers/{login}/password")(password)
    r.get("/subscribers/{login}/payment")(lambda req: payment_page(req))
    r.post("/subscribers/{login}/payment")(payment)
    r.get("/subscribers/{login}/credit")(lambda req: credit_page(req))
    r.post("/subscribers/{login}/credit")(credit)
    r.get("/subscribers/{login}/remove")(remove_page)
    r.post("/subscribers/{login}/remove")(remove)
