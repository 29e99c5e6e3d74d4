"""Prepaid card batches and their cards, read-only (``card.read``); PINs are never shown.

Only the hash of a PIN is stored and only the API's batch-creation answer
carries the PINs, so nothing here could show one anyway; the pages list what
an operator checks: how many cards of a batch are used or blocked, and each
card's status and who activated it.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from webadmin.admin.site import require
from webadmin.admin.subscribers import sub_href
from webadmin.admin.views import Cell, Column, Field, Paging, Table
from webadmin.pages.app import inline
from webadmin.pages.i18n import N_
from webadmin.pages.site import PageRequest, Response
from webadmin.service import cards

if TYPE_CHECKING:
    from webadmin.admin.site import AdminSite

STATUSES = {"active": N_("active"), "blocked": N_("blocked"), "used": N_("used")}


def install(site: AdminSite) -> None:
    @inline
    def batches(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "card.read")
        _ = ctx._
        rows = yield site.run(ctx, cards.thd_list_batches)
        table = Table([Column(_("Batch")), Column(_("Cards"), True), Column(_("Used"), True),
                       Column(_("Blocked"), True), Column(_("Value"), True),
                       Column(_("Plan")), Column(_("Expires")), Column(_("Created"))],
                      id="batches")
        for b in rows:
            table.rows.append([
                Cell(b.name, f"{site.home}cards/list?batch={quote(b.name, safe='')}"),
                Cell(b.count, num=True), Cell(b.used, num=True), Cell(b.blocked, num=True),
                Cell(ctx.fmt.money(b.value, b.currency), num=True), Cell(b.plan or ""),
                Cell(ctx.fmt.datetime(b.expires_at) if b.expires_at else ""),
                Cell(ctx.fmt.datetime(b.created_at))])
        return site.render(req, ctx, "admin/list.html", title=_("Card batches"), table=table,
                           filters=[], query=req.query, links=[], paging=None)

    @inline
    def card_list(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "card.read")
        _ = ctx._
        paging = Paging.of(req, site.page_size)
        batch = req.arg("batch").strip()[:64] or None
        status = req.arg("status") if req.arg("status") in STATUSES else None
        rows = yield site.run(ctx, cards.thd_list_cards, batch, status,
                              paging.offset + paging.size + 1)
        rows = rows[paging.offset:]
        table = Table([Column(_("Serial")), Column(_("Batch")), Column(_("Value"), True),
                       Column(_("Status")), Column(_("Login")), Column(_("Activated"))],
                      id="cards")
        for c in rows[:paging.size]:
            table.rows.append([
                Cell(c.serial, cls="mono"), Cell(c.batch),
                Cell(ctx.fmt.money(c.value, c.currency), num=True),
                Cell(_(STATUSES.get(c.status, c.status)), cls=f"status-{c.status}"),
                Cell(c.login or "", sub_href(site, c.login) if c.login else ""),
                Cell(ctx.fmt.datetime(c.activated_at) if c.activated_at else "")])
        filters = [Field("batch", _("Batch")),
                   Field("status", _("Status"), choices=[("", _("any"))]
                         + [(k, _(v)) for k, v in STATUSES.items()])]
        return site.render(req, ctx, "admin/list.html", title=_("Cards"), table=table,
                           filters=filters, query=req.query, links=[],
                           paging=paging.done(req, site.home + "cards/list", len(rows)))

    site.router.get("/cards")(batches)
    site.router.get("/cards/list")(card_list)
