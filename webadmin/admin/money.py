"""Payments, refunds and adjustments: the list across subscribers (posting is on the subscriber)."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from core.db.base import utcnow
from webadmin.admin.site import require
from webadmin.admin.subscribers import PAYMENT_KINDS, sub_href
from webadmin.admin.views import Cell, Column, Field, Paging, Table
from webadmin.pages.app import inline
from webadmin.pages.site import PageRequest, Response
from webadmin.service import money
from webadmin.service.dashboard import thd_list_accounts

if TYPE_CHECKING:
    from webadmin.admin.site import AdminSite


def install(site: AdminSite) -> None:
    @inline
    def payments(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "payment.read")
        _ = ctx._
        paging = Paging.of(req, site.page_size)
        kind = req.arg("kind") or None
        if kind not in (None, "payment", "refund", "adjustment"):
            kind = None
        days = req.arg("days")
        since = utcnow() - timedelta(days=int(days)) if days in ("1", "7", "31") else None
        login = req.arg("login").strip() or None
        rows = yield site.run(ctx, money.thd_list_payments, login=login, kind=kind,
                              since=since, limit=paging.size + 1, offset=paging.offset)
        table = Table([Column(_("When")), Column(_("Login")), Column(_("Kind")),
                       Column(_("Amount"), True), Column(_("Reference")),
                       Column(_("Description"))], id="payments")
        for p in rows[:paging.size]:
            e = p.entry
            table.rows.append([Cell(ctx.fmt.datetime(e.created_at)),
                               Cell(p.login, sub_href(site, p.login)), Cell(_(e.kind)),
                               Cell(ctx.fmt.money(e.amount, p.currency), num=True),
                               Cell(e.reference or "", cls="mono"), Cell(e.description)])
        filters = [Field("login", _("Login")),
                   Field("kind", _("Kind"), choices=[("", _("any"))]
                         + [(v, _(t)) for v, t in PAYMENT_KINDS]),
                   Field("days", _("Since"), choices=[("", _("any time")), ("1", _("today")),
                                                      ("7", _("last 7 days")),
                                                      ("31", _("last 31 days"))])]
        return site.render(req, ctx, "admin/list.html", title=_("Payments"), table=table,
                           filters=filters, query=req.query, links=[],
                           paging=paging.done(req, site.home + "payments", len(rows)))

    @inline
    def accounts(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "account.read")
        _ = ctx._
        paging = Paging.of(req, site.page_size)
        status = req.arg("status") if req.arg("status") in ("active", "blocked") else None
        below = 0 if req.arg("balance") == "negative" else None
        rows = yield site.run(ctx, thd_list_accounts, status=status, below=below,
                              limit=paging.size + 1, offset=paging.offset)
        table = Table([Column(_("Login")), Column(_("Plan")), Column(_("Balance"), True),
                       Column(_("Credit limit"), True), Column(_("Money status")),
                       Column(_("Reason"))], id="accounts")
        for a in rows[:paging.size]:
            table.rows.append([Cell(a.login, sub_href(site, a.login)), Cell(a.plan or ""),
                               Cell(ctx.fmt.money(a.balance, a.currency), num=True),
                               Cell(_("plan's") if a.credit_limit is None
                                    else ctx.fmt.money(a.credit_limit, a.currency), num=True),
                               Cell(_(a.status), cls=f"status-{a.status}"),
                               Cell(a.status_reason)])
        filters = [Field("status", _("Money status"), choices=[
                       ("", _("any")), ("active", _("active")),
                       ("blocked", _("blocked for no money"))]),
                   Field("balance", _("Balance"), choices=[("", _("any")),
                                                           ("negative", _("below zero"))])]
        return site.render(req, ctx, "admin/list.html", title=_("Accounts"), table=table,
                           filters=filters, query=req.query, links=[],
                           paging=paging.done(req, site.home + "accounts", len(rows)))

    site.router.get("/payments")(payments)
    site.router.get("/accounts")(accounts)
