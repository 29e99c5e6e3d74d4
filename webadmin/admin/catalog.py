"""NAS clients, plans with their prices, and pools: lists, details, forms, removal.

A NAS secret is write-only here: forms never show it (an empty secret field
on edit keeps the old one) and no page renders it.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from billing.money import format_price
from billing.tariffs import spec_from_mapping
from core.errors import NotFound
from webadmin.admin.site import Ctx, form_error, require
from webadmin.admin.subscribers import q
from webadmin.admin.views import Cell, Column, Field, Link, Table, yes_no
from webadmin.pages.app import Form, inline
from webadmin.pages.site import PageRequest, Response
from webadmin.service import catalog

if TYPE_CHECKING:
    from webadmin.admin.site import AdminSite

VENDORS = ("generic", "mikrotik", "cisco", "juniper", "huawei", "accel-ppp", "asterisk",
           "freeswitch")
NONE = "\u2013"  # an en dash for an empty value
PLAN_INTS = ("session_timeout", "idle_timeout", "interim_interval", "simultaneous_use")


def _int_or_none(form: Form, name: str, text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        form.errors[name] = "must be a whole number"
        return None


def install(site: AdminSite) -> None:
    r = site.router
    home = site.home

    def confirm(ctx: Ctx, req: PageRequest, title: str, question: str, action: str,
                back: str) -> Response:
        return site.render(req, ctx, "admin/confirm.html", title=title, question=question,
                           action=action, submit=ctx._("Remove"), back=back)

    # -- NAS ------------------------------------------------------------------------------

    def nas_fields(ctx: Ctx, new: bool) -> list[Field]:
        _ = ctx._
        out = [Field("address", _("Address"), required=True,
                     hint=_("The IP address the NAS sends from.")),
               Field("secret", _("Shared secret"), type="password", required=new,
                     hint=_("Never shown again.") if new else
                     _("Leave empty to keep the current secret.")),
               Field("vendor", _("Vendor"), choices=[(v, v) for v in VENDORS]),
               Field("coa_port", _("CoA/Disconnect port"), type="number"),
               Field("require_message_authenticator", _("Require Message-Authenticator"),
                     type="checkbox"),
               Field("description", _("Description"), rows=2)]
        if new:
            out.insert(0, Field("name", _("Name"), required=True))
        return out

    @inline
    def nas_list(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "nas.read")
        _ = ctx._
        rows = yield site.run(ctx, catalog.thd_list_nas)
        table = Table([Column(_("Name")), Column(_("Address")), Column(_("Vendor")),
                       Column(_("CoA port"), True), Column(_("Message-Authenticator")),
                       Column(_("Description"))], id="nas")
        for n in rows:
            table.rows.append([Cell(n.name, f"{home}nas/{q(n.name)}"), Cell(n.address),
                               Cell(n.vendor), Cell(n.coa_port, num=True),
                               Cell(yes_no(_, n.require_message_authenticator)),
                               Cell(n.description)])
        links = [Link(_("Add NAS"), home + "nas/new", "button")] if ctx.may("nas.write") else []
        return site.render(req, ctx, "admin/list.html", title=_("NAS"), table=table,
                           filters=[], query={}, links=links, paging=None)

    @inline
    def nas_form(req: PageRequest, form: Form | None = None,
                 status: int = 200) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "nas.write")
        name = req.params.get("name")
        if form is None:
            if name:
                n = yield site.run(ctx, catalog.thd_get_nas, name)
                form = Form(values={"address": n.address, "vendor": n.vendor,
                                    "coa_port": str(n.coa_port), "description": n.description,
                                    "require_message_authenticator":
                                        n.require_message_authenticator})
            else:
                form = Form(values={"vendor": "generic", "coa_port": "3799",
                                    "require_message_authenticator": True})
        _ = ctx._
        return site.render(req, ctx, "admin/form.html",
                           title=_("Edit NAS %(name)s", name=name) if name else _("Add NAS"),
                           form=form, fields=nas_fields(ctx, not name),
                           action=f"{home}nas/{q(name)}/edit" if name else home + "nas/new",
                           submit=_("Save") if name else _("Add"),
                           back=f"{home}nas/{q(name)}" if name else home + "nas",
                           status=status)

    @inline
    def nas_save(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req, post=True)
        f = req.form
        name = req.params.get("name") or f.get("name", "").strip()
        mauth = bool(f.get("require_message_authenticator"))
        form = Form(values={**{k: f.get(k, "") for k in ("name", "address", "vendor",
                                                        "coa_port", "description")},
                            "require_message_authenticator": mauth})
        port = _int_or_none(form, "coa_port", f.get("coa_port", "")) or 3799
        if form.ok:
            try:
                if req.params.get("name"):
                    changes: dict[str, Any] = {
                        "address": f.get("address", "").strip(), "vendor": f.get("vendor", ""),
                        "coa_port": port, "require_message_authenticator": mauth,
                        "description": f.get("description", "")}
                    if f.get("secret"):
                        changes["secret"] = f["secret"]
                    yield site.run(ctx, catalog.thd_update_nas, name, changes)
                else:
                    yield site.run(ctx, catalog.thd_add_nas, name, f.get("address", "").strip(),
                                   f.get("secret", ""), f.get("vendor") or "generic", port,
                                   mauth, f.get("description", ""))
            except Exception as exc:
                if not form_error(form, exc, "name"):
                    raise
        if not form.ok:
            return (yield nas_form(req, form, 400))
        return site.done(ctx, f"{home}nas/{q(name)}", ctx._("Saved."))

    @inline
    def nas_show(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "nas.read")
        _ = ctx._
        n = yield site.run(ctx, catalog.thd_get_nas, req.params["name"])
        facts = [(_("Address"), n.address), (_("Vendor"), n.vendor),
                 (_("Shared secret"), _("(set; never shown)")),
                 (_("CoA/Disconnect port"), n.coa_port),
                 (_("Require Message-Authenticator"),
                  yes_no(_, n.require_message_authenticator)),
                 (_("Description"), n.description), (_("Added"), ctx.fmt.datetime(n.created_at))]
        links = []
        if ctx.may("nas.write"):
            links = [Link(_("Edit"), f"{home}nas/{q(n.name)}/edit"),
                     Link(_("Remove"), f"{home}nas/{q(n.name)}/remove", "button danger")]
        return site.render(req, ctx, "admin/detail.html", title=_("NAS %(name)s", name=n.name),
                           facts=facts, tables=[], links=links)

    @inline
    def nas_remove_page(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "nas.write")
        name = req.params["name"]
        yield site.run(ctx, catalog.thd_get_nas, name)
        return confirm(ctx, req, ctx._("Remove NAS %(name)s", name=name),
                       ctx._("Remove NAS %(name)s? Its requests will be dropped from now on.",
                             name=name), f"{home}nas/{q(name)}/remove", f"{home}nas/{q(name)}")

    @inline
    def nas_remove(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req, post=True)
        name = req.params["name"]
        if req.form.get("confirm") != "yes":
            return Response.redirect(f"{home}nas/{q(name)}/remove")
        yield site.run(ctx, catalog.thd_remove_nas, name)
        return site.done(ctx, home + "nas", ctx._("NAS %(name)s removed.", name=name))

    # -- plans ----------------------------------------------------------------------------

    def prices_of(ctx: Ctx, name: str) -> Any:
        """The plan's Tariff, or None while it has no prices yet."""
        d = site.run(ctx, catalog.thd_plan_prices, name)

        def none(f: Any) -> None:
            f.trap(NotFound)
            return None
        return d.addErrback(none)

    def plan_fields(ctx: Ctx, new: bool) -> list[Field]:
        _ = ctx._
        out = [Field("rate_limit", _("Rate limit"), hint=_("Like 10M/10M; empty for none.")),
               Field("session_timeout", _("Session-Timeout, s"), type="number"),
               Field("idle_timeout", _("Idle-Timeout, s"), type="number"),
               Field("interim_interval", _("Acct-Interim-Interval, s"), type="number"),
               Field("simultaneous_use", _("Simultaneous sessions"), type="number"),
               Field("reply_attributes", _("Reply attributes"), rows=4,
                     hint=_("One per line: Attribute = value (e.g. Reply-Message = Welcome)."))]
        if new:
            out.insert(0, Field("name", _("Name"), required=True))
        return out

    def plan_values(p: dict[str, Any]) -> dict[str, Any]:
        out = {k: "" if p.get(k) is None else str(p.get(k)) for k in ("rate_limit", *PLAN_INTS)}
        attrs = p.get("reply_attributes") or []
        out["reply_attributes"] = "\n".join(
            f"{a[0]} = {a[1]}" if isinstance(a, list | tuple) else str(a) for a in attrs)
        return out

    @inline
    def plan_list(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "plan.read")
        _ = ctx._
        rows = yield site.run(ctx, catalog.thd_list_plans)
        table = Table([Column(_("Name")), Column(_("Rate limit")), Column(_("Subscribers"), True),
                       Column(_("Reseller"))], id="plans")
        for p in rows:
            table.rows.append([Cell(p.name, f"{home}plans/{q(p.name)}"), Cell(p.rate_limit or ""),
                               Cell(ctx.fmt.number(p.subscribers), num=True),
                               Cell(p.reseller or "")])
        links = [Link(_("Add plan"), home + "plans/new", "button")] \
            if ctx.may("plan.write") else []
        return site.render(req, ctx, "admin/list.html", title=_("Plans"), table=table,
                           filters=[], query={}, links=links, paging=None)

    @inline
    def plan_show(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "plan.read")
        _ = ctx._
        name = req.params["name"]
        p = yield site.run(ctx, catalog.thd_get_plan, name)
        t = yield prices_of(ctx, name)
        cur = site.settings.currency
        fmt = ctx.fmt
        values = plan_values(p)
        facts = [(_("Rate limit"), p.get("rate_limit") or NONE),
                 (_("Session-Timeout, s"), values["session_timeout"] or NONE),
                 (_("Idle-Timeout, s"), values["idle_timeout"] or NONE),
                 (_("Acct-Interim-Interval, s"), values["interim_interval"] or NONE),
                 (_("Simultaneous sessions"), values["simultaneous_use"] or NONE),
                 (_("Reply attributes"), values["reply_attributes"] or NONE),
                 (_("Subscribers"), fmt.number(p.get("subscribers", 0))),
                 (_("Reseller"), p.get("reseller") or NONE),
                 (_("Pools"), ", ".join(p.get("pools", [])) or NONE)]
        if t is None:
            facts.append((_("Prices"), _("none yet: the plan is free until prices are set")))
        else:
            facts += [
                (_("Monthly fee"), fmt.money_text(format_price(t.monthly_fee), cur)),
                (_("Daily fee"), fmt.money_text(format_price(t.daily_fee), cur)),
                (_("Time price"), fmt.money_text(format_price(t.time_price), cur) + " "
                 + (_("per second") if t.time_unit == 1 else _("per minute"))),
                (_("Price per MB uploaded"),
                 fmt.money_text(format_price(t.price_per_mb_in), cur)),
                (_("Price per MB downloaded"),
                 fmt.money_text(format_price(t.price_per_mb_out), cur)),
                (_("Credit limit"), fmt.money(t.credit_limit, cur))]
        links = []
        if ctx.may("plan.write") and not (ctx.caller.scoped and p.get("reseller") is None):
            links = [Link(_("Edit"), f"{home}plans/{q(name)}/edit"),
                     Link(_("Prices"), f"{home}plans/{q(name)}/prices"),
                     Link(_("Remove"), f"{home}plans/{q(name)}/remove", "button danger")]
        return site.render(req, ctx, "admin/detail.html", title=_("Plan %(name)s", name=name),
                           facts=facts, tables=[], links=links)

    @inline
    def plan_form(req: PageRequest, form: Form | None = None,
                  status: int = 200) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "plan.write")
        name = req.params.get("name")
        if form is None:
            form = Form()
            if name:
                p = yield site.run(ctx, catalog.thd_get_plan, name)
                form.values = plan_values(p)
        _ = ctx._
        return site.render(req, ctx, "admin/form.html",
                           title=_("Edit plan %(name)s", name=name) if name else _("Add plan"),
                           form=form, fields=plan_fields(ctx, not name),
                           action=f"{home}plans/{q(name)}/edit" if name else home + "plans/new",
                           submit=_("Save") if name else _("Add"),
                           back=f"{home}plans/{q(name)}" if name else home + "plans",
                           status=status)

    @inline
    def plan_save(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req, post=True)
        f = req.form
        name = req.params.get("name") or f.get("name", "").strip()
        keys = ("name", "rate_limit", "reply_attributes", *PLAN_INTS)
        form = Form(values={k: f.get(k, "") for k in keys})
        ints = {k: _int_or_none(form, k, f.get(k, "")) for k in PLAN_INTS}
        attrs = [line.strip() for line in f.get("reply_attributes", "").splitlines()
                 if line.strip()]
        if form.ok:
            try:
                if req.params.get("name"):
                    yield site.run(ctx, catalog.thd_update_plan, name, {
                        "rate_limit": f.get("rate_limit", "").strip() or None, **ints,
                        "reply_attributes": attrs})
                else:
                    yield site.run(ctx, catalog.thd_add_plan, name,
                                   f.get("rate_limit", "").strip() or None,
                                   ints["session_timeout"], ints["idle_timeout"],
                                   ints["interim_interval"], ints["simultaneous_use"],
                                   reply_attributes=attrs)
            except Exception as exc:
                if not form_error(form, exc, "name"):
                    raise
        if not form.ok:
            return (yield plan_form(req, form, 400))
        return site.done(ctx, f"{home}plans/{q(name)}", ctx._("Saved."))

    PRICE_FIELDS = ("monthly_fee", "daily_fee", "time_price", "time_unit", "time_increment",
                    "price_per_mb_in", "price_per_mb_out", "credit_limit")

    def price_fields(ctx: Ctx) -> list[Field]:
        _ = ctx._
        cur = site.settings.currency
        return [Field("monthly_fee", _("Monthly fee"), hint=cur),
                Field("daily_fee", _("Daily fee"), hint=cur),
                Field("time_price", _("Time price"), hint=cur),
                Field("time_unit", _("Time unit"), choices=[("minute", _("per minute")),
                                                           ("second", _("per second"))]),
                Field("time_increment", _("Billing increment, s"), type="number"),
                Field("price_per_mb_in", _("Price per MB uploaded"), hint=cur),
                Field("price_per_mb_out", _("Price per MB downloaded"), hint=cur),
                Field("credit_limit", _("Credit limit"), hint=cur)]

    @inline
    def prices_form(req: PageRequest, form: Form | None = None,
                    status: int = 200) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "plan.write")
        name = req.params["name"]
        if form is None:
            t = yield prices_of(ctx, name)
            form = Form(values={"time_unit": "minute"}) if t is None else Form(values={
                                "monthly_fee": format_price(t.monthly_fee),
                                "daily_fee": format_price(t.daily_fee),
                                "time_price": format_price(t.time_price),
                                "time_unit": "second" if t.time_unit == 1 else "minute",
                                "time_increment": str(t.time_increment),
                                "price_per_mb_in": format_price(t.price_per_mb_in),
                                "price_per_mb_out": format_price(t.price_per_mb_out),
                                "credit_limit": ctx.fmt.amount(t.credit_limit,
                                                               site.settings.currency)})
        return site.render(req, ctx, "admin/form.html",
                           title=ctx._("Prices of plan %(name)s", name=name), form=form,
                           fields=price_fields(ctx), action=f"{home}plans/{q(name)}/prices",
                           submit=ctx._("Save"), back=f"{home}plans/{q(name)}", status=status)

    @inline
    def prices_save(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req, post=True)
        name = req.params["name"]
        f = req.form
        form = Form(values={k: f.get(k, "") for k in PRICE_FIELDS})
        data: dict[str, Any] = {}
        for key in ("monthly_fee", "daily_fee", "credit_limit"):
            if f.get(key, "").strip():
                data[key] = f[key].strip()
        time: dict[str, Any] = {"unit": f.get("time_unit", "minute")}
        if f.get("time_price", "").strip():
            time["price"] = f["time_price"].strip()
        inc = _int_or_none(form, "time_increment", f.get("time_increment", ""))
        if inc is not None:
            time["increment"] = inc
        data["time"] = time
        traffic = {k: f[k].strip() for k in ("price_per_mb_in", "price_per_mb_out")
                   if f.get(k, "").strip()}
        if traffic:
            data["traffic"] = traffic
        if form.ok:
            try:
                spec = spec_from_mapping(name, data, site.settings.currency)
                yield site.run(ctx, catalog.thd_apply_prices, spec)
            except Exception as exc:
                if not form_error(form, exc):
                    raise
        if not form.ok:
            return (yield prices_form(req, form, 400))
        return site.done(ctx, f"{home}plans/{q(name)}", ctx._("Prices saved."))

    @inline
    def plan_remove_page(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "plan.write")
        name = req.params["name"]
        yield site.run(ctx, catalog.thd_get_plan, name)
        return confirm(ctx, req, ctx._("Remove plan %(name)s", name=name),
                       ctx._("Remove plan %(name)s and its prices?", name=name),
                       f"{home}plans/{q(name)}/remove", f"{home}plans/{q(name)}")

    @inline
    def plan_remove(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req, post=True)
        name = req.params["name"]
        if req.form.get("confirm") != "yes":
            return Response.redirect(f"{home}plans/{q(name)}/remove")
        yield site.run(ctx, catalog.thd_remove_plan, name)
        return site.done(ctx, home + "plans", ctx._("Plan %(name)s removed.", name=name))

    # -- pools ----------------------------------------------------------------------------

    @inline
    def pool_list(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "pool.read")
        _ = ctx._
        rows = yield site.run(ctx, catalog.thd_list_pools)
        table = Table([Column(_("Name")), Column(_("Kind")), Column(_("Size"), True),
                       Column(_("Used"), True), Column(_("Free"), True),
                       Column(_("Utilization"), True)], id="pools")
        for p in rows:
            table.rows.append([Cell(p.name, f"{home}pools/{q(p.name)}"), Cell(p.kind.value),
                               Cell(ctx.fmt.number(p.size), num=True),
                               Cell(ctx.fmt.number(p.used), num=True),
                               Cell(ctx.fmt.number(p.free), num=True),
                               Cell(ctx.fmt.percent(p.percent / 100), num=True,
                                    cls="nak" if p.warning else "")])
        links = [Link(_("Add pool"), home + "pools/new", "button")] \
            if ctx.may("pool.write") else []
        return site.render(req, ctx, "admin/list.html", title=_("Pools"), table=table,
                           filters=[], query={}, links=links, paging=None)

    @inline
    def pool_show(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "pool.read")
        _ = ctx._
        name = req.params["name"]
        d = yield site.run(ctx, catalog.thd_show_pool, name)
        leases = yield site.run(ctx, catalog.thd_list_leases, name, None, 100)
        u = d.usage
        fmt = ctx.fmt
        facts = [(_("Kind"), u.kind.value), (_("Size"), fmt.number(u.size)),
                 (_("Used"), fmt.number(u.used)), (_("Free"), fmt.number(u.free)),
                 (_("Utilization"), fmt.percent(u.percent / 100)),
                 (_("Ranges"), ", ".join(d.ranges) or NONE),
                 (_("Excluded"), ", ".join(d.excluded) or NONE),
                 (_("NAS group"), d.nas_group or NONE),
                 (_("Framed-Pool name"), d.framed_pool_name or NONE)]
        table = Table([Column(_("Value")), Column(_("State")), Column(_("Holder")),
                       Column(_("NAS"))], id="leases")
        for item in leases:
            holder = item.holder or ""
            table.rows.append([Cell(item.value, cls="mono"), Cell(_(item.state.value)),
                               Cell(holder, f"{home}subscribers/{q(holder)}" if holder else ""),
                               Cell(item.nas or "")])
        links = [Link(_("Remove"), f"{home}pools/{q(name)}/remove", "button danger")] \
            if ctx.may("pool.write") else []
        return site.render(req, ctx, "admin/detail.html", title=_("Pool %(name)s", name=name),
                           facts=facts, tables=[(_("Addresses in use"), table)], links=links)

    POOL_KINDS = ("ipv4", "ipv6", "pd", "phone", "login")

    def pool_fields(ctx: Ctx) -> list[Field]:
        _ = ctx._
        return [Field("name", _("Name"), required=True),
                Field("kind", _("Kind"), choices=[(k, k) for k in POOL_KINDS]),
                Field("ranges", _("Ranges"), rows=3,
                      hint=_("Networks or first-last ranges, separated by spaces, commas or "
                             "lines (10.0.0.0/24, 100.64.0.10-100.64.0.99, +7495100-+7495199); "
                             "a login pool takes one pattern.")),
                Field("exclude", _("Excluded"), rows=2, hint=_("Optional, the same way.")),
                Field("prefix_length", _("Prefix length"), type="number",
                      hint=_("Only for ipv6 and pd pools.")),
                Field("nas_group", _("NAS group"), hint=_("Optional.")),
                Field("framed_pool_name", _("Framed-Pool name"),
                      hint=_("Only when the NAS allocates from its own pool.")),
                Field("description", _("Description"))]

    @inline
    def pool_form(req: PageRequest, form: Form | None = None,
                  status: int = 200) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "pool.write")
        return site.render(req, ctx, "admin/form.html", title=ctx._("Add pool"),
                           form=form or Form(values={"kind": "ipv4"}), fields=pool_fields(ctx),
                           action=home + "pools/new", submit=ctx._("Add"), back=home + "pools",
                           status=status)

    @inline
    def pool_add(req: PageRequest) -> Generator[Any, Any, Response]:
        from pools.manage import NewPool
        from pools.models import PoolKind
        from pools.ranges import split_tokens

        ctx = yield site.ctx(req, post=True)
        f = req.form
        keys = ("name", "kind", "ranges", "exclude", "prefix_length", "nas_group",
                "framed_pool_name", "description")
        form = Form(values={k: f.get(k, "") for k in keys})
        name = f.get("name", "").strip()
        kind = f.get("kind", "ipv4")
        prefix = _int_or_none(form, "prefix_length", f.get("prefix_length", ""))
        if kind not in POOL_KINDS:
            form.errors["kind"] = ctx._("Unknown kind.")
        if form.ok:
            ranges = split_tokens([f.get("ranges", "")])
            login = kind == "login"
            new = NewPool(name, PoolKind(kind), ranges=() if login else tuple(ranges),
                          exclude=tuple(split_tokens([f.get("exclude", "")])),
                          prefix_length=prefix, pattern=ranges[0] if login and ranges else None,
                          nas_group=f.get("nas_group", "").strip() or None,
                          framed_pool_name=f.get("framed_pool_name", "").strip() or None,
                          description=f.get("description", ""))
            try:
                yield site.run(ctx, catalog.thd_add_pool, new)
            except Exception as exc:
                if not form_error(form, exc, "ranges"):
                    raise
        if not form.ok:
            return (yield pool_form(req, form, 400))
        return site.done(ctx, f"{home}pools/{q(name)}", ctx._("Saved."))

    @inline
    def pool_remove(req: PageRequest) -> Generator[Any, Any, Response]:
        name = req.params["name"]
        if req.method == "GET":
            ctx = yield site.ctx(req)
            require(ctx, "pool.write")
            yield site.run(ctx, catalog.thd_show_pool, name)
            return confirm(ctx, req, ctx._("Remove pool %(name)s", name=name),
                           ctx._("Remove pool %(name)s with all its addresses? It is refused "
                                 "while any address is leased or assigned.", name=name),
                           f"{home}pools/{q(name)}/remove", f"{home}pools/{q(name)}")
        ctx = yield site.ctx(req, post=True)
        if req.form.get("confirm") != "yes":
            return Response.redirect(f"{home}pools/{q(name)}/remove")
        yield site.run(ctx, catalog.thd_remove_pool, name)
        return site.done(ctx, home + "pools", ctx._("Pool %(name)s removed.", name=name))

    r.get("/pools/new")(lambda req: pool_form(req))
    r.post("/pools/new")(pool_add)
    r.get("/pools/{name}/remove")(pool_remove)
    r.post("/pools/{name}/remove")(pool_remove)
    r.get("/nas")(nas_list)
    r.get("/nas/new")(lambda req: nas_form(req))
    r.post("/nas/new")(nas_save)
    r.get("/nas/{name}")(nas_show)
    r.get("/nas/{name}/edit")(lambda req: nas_form(req))
    r.post("/nas/{name}/edit")(nas_save)
    r.get("/nas/{name}/remove")(nas_remove_page)
    r.post("/nas/{name}/remove")(nas_remove)
    r.get("/plans")(plan_list)
    r.get("/plans/new")(lambda req: plan_form(req))
    r.post("/plans/new")(plan_save)
    r.get("/plans/{name}")(plan_show)
    r.get("/plans/{name}/edit")(lambda req: plan_form(req))
    r.post("/plans/{name}/edit")(plan_save)
    r.get("/plans/{name}/prices")(lambda req: prices_form(req))
    r.post("/plans/{name}/prices")(prices_save)
    r.get("/plans/{name}/remove")(plan_remove_page)
    r.post("/plans/{name}/remove")(plan_remove)
    r.get("/pools")(pool_list)
    r.get("/pools/{name}")(pool_show)
