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

    site.router.get("/payments")(payments)
