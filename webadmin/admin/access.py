"""Operators, API tokens and the audit log (admin only; the service layer checks it too).

A new token's secret is shown once, on the page that answers its creation,
and never again; the token list shows names, roles and dates only.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from twisted.internet import threads

from webadmin.admin.site import ROLE_WORDS, Ctx, form_error, require
from webadmin.admin.subscribers import q
from webadmin.admin.views import Cell, Column, Field, Link, Paging, Table, yes_no
from webadmin.pages.app import Form, inline
from webadmin.pages.site import PageRequest, Response
from webadmin.roles import OPERATOR_ROLES, TOKEN_ROLES
from webadmin.service import audit, operators, resellers, tokens

if TYPE_CHECKING:
    from webadmin.admin.site import AdminSite


def install(site: AdminSite) -> None:
    r = site.router
    home = site.home

    def role_choices(ctx: Ctx, roles: tuple[str, ...]) -> list[tuple[str, str]]:
        return [(x, ctx._(ROLE_WORDS.get(x, x))) for x in roles]

    # -- operators ------------------------------------------------------------------------

    @inline
    def operator_list(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "operator.admin")
        _ = ctx._
        rows = yield site.run(ctx, operators.thd_list_operators)
        table = Table([Column(_("Login")), Column(_("Role")), Column(_("Reseller")),
                       Column(_("Enabled")), Column(_("Last login")), Column(_("Description"))],
                      id="operators")
        for o in rows:
            table.rows.append([Cell(o.login, f"{home}operators/{q(o.login)}"),
                               Cell(_(ROLE_WORDS.get(o.role, o.role))), Cell(o.reseller or ""),
                               Cell(yes_no(_, o.enabled)),
                               Cell(ctx.fmt.datetime(o.last_login_at)), Cell(o.description)])
        return site.render(req, ctx, "admin/list.html", title=_("Operators"), table=table,
                           filters=[], query={}, paging=None,
                           links=[Link(_("Add operator"), home + "operators/new", "button")])

    def operator_fields(ctx: Ctx, new: bool, res: list[Any]) -> list[Field]:
        _ = ctx._
        out = [Field("role", _("Role"), choices=role_choices(ctx, OPERATOR_ROLES)),
               Field("reseller", _("Reseller"), choices=[("", _("(none)"))]
                     + [(x.name, x.name) for x in res], hint=_("Only for the reseller role.")),
               Field("description", _("Description"))]
        if new:
            out[:0] = [Field("login", _("Login"), required=True),
                       Field("password", _("Password"), type="password", required=True,
                             hint=_("At least %(n)s characters.", n=operators.PASSWORD_MIN))]
        else:
            out += [Field("enabled", _("Enabled"), type="checkbox"),
                    Field("password", _("New password"), type="password",
                          hint=_("Leave empty to keep it."))]
        return out

    @inline
    def operator_form(req: PageRequest, form: Form | None = None,
                      status: int = 200) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "operator.admin")
        login = req.params.get("login")
        res = yield site.run(ctx, resellers.thd_list_resellers)
        if form is None:
            form = Form(values={"role": "support"})
            if login:
                o = yield site.run(ctx, operators.thd_get_operator, login)
                form.values = {"role": o.role, "reseller": o.reseller or "",
                               "description": o.description, "enabled": o.enabled}
        _ = ctx._
        return site.render(req, ctx, "admin/form.html",
                           title=_("Operator %(login)s", login=login) if login
                           else _("Add operator"),
                           form=form, fields=operator_fields(ctx, not login, res),
                           action=f"{home}operators/{q(login)}" if login
                           else home + "operators/new",
                           submit=_("Save") if login else _("Add"), back=home + "operators",
                           status=status)

    @inline
    def operator_save(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req, post=True)
        f = req.form
        login = req.params.get("login") or f.get("login", "").strip()
        form = Form(values={"login": login, "role": f.get("role", ""),
                            "reseller": f.get("reseller", ""),
                            "description": f.get("description", ""),
                            "enabled": bool(f.get("enabled"))})
        try:
            hashed = None
            if f.get("password") or not req.params.get("login"):
                hashed = yield threads.deferToThread(operators.hash_operator_password,
                                                     f.get("password", ""))
            if req.params.get("login"):
                yield site.run(ctx, operators.thd_update_operator, login, {
                    "role": f.get("role", ""), "reseller": f.get("reseller") or None,
                    "enabled": bool(f.get("enabled")), "description": f.get("description", "")})
                if hashed:
                    yield site.run(ctx, operators.thd_set_operator_password, login, hashed)
            else:
                yield site.run(ctx, operators.thd_add_operator, login, hashed, f.get("role", ""),
                               reseller=f.get("reseller") or None,
                               description=f.get("description", ""))
        except Exception as exc:
            if not form_error(form, exc, "login"):
                raise
            return (yield operator_form(req, form, 400))
        return site.done(ctx, home + "operators", ctx._("Saved."))

    # -- tokens ---------------------------------------------------------------------------

    @inline
    def token_list(req: PageRequest, created: Any = None,
                   form: Form | None = None, status: int = 200) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "token.admin")
        _ = ctx._
        rows = yield site.run(ctx, tokens.thd_list_tokens)
        res = yield site.run(ctx, resellers.thd_list_resellers)
        fields = [Field("name", _("Name"), required=True),
                  Field("role", _("Role"), choices=role_choices(ctx, TOKEN_ROLES)),
                  Field("reseller", _("Reseller"), choices=[("", _("(none)"))]
                        + [(x.name, x.name) for x in res]),
                  Field("expires", _("Expires after, days"), type="number",
                        hint=_("Empty: never."))]
        return site.render(req, ctx, "admin/tokens.html", rows=rows, created=created,
                           form=form or Form(values={"role": "support"}), fields=fields,
                           status=status, roles=ROLE_WORDS)

    @inline
    def token_add(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req, post=True)
        f = req.form
        form = Form(values={k: f.get(k, "") for k in ("name", "role", "reseller", "expires")})
        expires = None
        if f.get("expires", "").strip():
            try:
                expires = int(f["expires"])
            except ValueError:
                form.errors["expires"] = ctx._("A whole number of days.")
        created = None
        if form.ok:
            try:
                created = yield site.run(ctx, tokens.thd_add_token, f.get("name", "").strip(),
                                         f.get("role", ""), reseller=f.get("reseller") or None,
                                         expires_days=expires)
            except Exception as exc:
                if not form_error(form, exc, "name"):
                    raise
        return (yield token_list(req, created, None if created else form,
                                 200 if created else 400))

    @inline
    def token_revoke(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req, post=True)
        name = req.params["name"]
        if req.form.get("confirm") != "yes":
            return site.render(req, ctx, "admin/confirm.html",
                               title=ctx._("Revoke token %(name)s", name=name),
                               question=ctx._("Revoke token %(name)s? Software using it stops "
                                              "working at once.", name=name),
                               action=f"{home}tokens/{q(name)}/revoke", submit=ctx._("Revoke"),
                               back=home + "tokens")
        yield site.run(ctx, tokens.thd_revoke_token, name)
        return site.done(ctx, home + "tokens", ctx._("Token %(name)s revoked.", name=name))

    # -- audit ----------------------------------------------------------------------------

    @inline
    def audit_list(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "audit.read")
        _ = ctx._
        paging = Paging.of(req, site.page_size)
        rows = yield site.run(ctx, audit.thd_list_audit,
                              object_type=req.arg("type").strip() or None,
                              object_key=req.arg("object").strip() or None,
                              actor=req.arg("actor").strip() or None,
                              limit=paging.size + 1, offset=paging.offset)
        table = Table([Column(_("When")), Column(_("Who")), Column(_("Role")),
                       Column(_("From")), Column(_("Action")), Column(_("Object")),
                       Column(_("Before")), Column(_("After"))], id="audit")
        for a in rows[:paging.size]:
            table.rows.append([Cell(ctx.fmt.datetime(a.at)), Cell(a.actor), Cell(a.role),
                               Cell(a.address), Cell(a.action),
                               Cell(f"{a.object_type} {a.object_key}"),
                               Cell(json.dumps(a.before, ensure_ascii=False, default=str)
                                    if a.before is not None else "", cls="mono"),
                               Cell(json.dumps(a.after, ensure_ascii=False, default=str)
                                    if a.after is not None else "", cls="mono")])
        filters = [Field("actor", _("Who")), Field("type", _("Object type")),
                   Field("object", _("Object"))]
        return site.render(req, ctx, "admin/list.html", title=_("Audit log"), table=table,
                           filters=filters, query=req.query, links=[],
                           paging=paging.done(req, home + "audit", len(rows)))

    r.get("/operators")(operator_list)
    r.get("/operators/new")(lambda req: operator_form(req))
    r.post("/operators/new")(operator_save)
    r.get("/operators/{login}")(lambda req: operator_form(req))
    r.post("/operators/{login}")(operator_save)
    r.get("/tokens")(lambda req: token_list(req))
    r.post("/tokens")(token_add)
    r.post("/tokens/{name}/revoke")(token_revoke)
    r.get("/audit")(audit_list)
