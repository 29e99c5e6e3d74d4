"""Issued statements and invoices: the list, and each stored file as a download.

The list and the record come from the service layer (``document.read``); the
file is read in a thread by the document reader wired in at start
(``billing.documents.DocumentRenderer.read``), which checks the bytes against
the SHA-256 recorded at issue: a changed file is refused (409), never served.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from twisted.internet import threads

from core.errors import RadbillError
from webadmin.admin.site import require
from webadmin.admin.subscribers import sub_href
from webadmin.admin.views import Cell, Column, Field, Paging, Table
from webadmin.pages.app import inline
from webadmin.pages.i18n import N_
from webadmin.pages.site import PageError, PageRequest, Response
from webadmin.service import documents

if TYPE_CHECKING:
    from webadmin.admin.site import AdminSite

PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
TYPES = {"html": "text/html; charset=utf-8", "pdf": "application/pdf"}
KINDS = {"statement": N_("statement"), "invoice": N_("invoice")}


def install(site: AdminSite) -> None:
    @inline
    def listing(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "document.read")
        _ = ctx._
        paging = Paging.of(req, site.page_size)
        login = req.arg("login").strip()[:64] or None
        period = req.arg("period").strip()
        if period and not PERIOD.fullmatch(period):
            ctx.session.flash("error", _("Period must look like 2024-04."))
            period = ""
        rows = yield site.run(ctx, documents.thd_document_page, login, period or None,
                              paging.size + 1, paging.offset)
        table = Table([Column(_("Number")), Column(_("Login")), Column(_("Period")),
                       Column(_("Kind")), Column(_("Issued at")), Column(_("Amount"), True),
                       Column(_("SHA-256")), Column("HTML"), Column("PDF")], id="documents")
        base = site.home + "documents/"
        for r in rows[:paging.size]:
            d = r.doc
            files = [Cell(_("download"), f"{base}{d.id}/file?format=html", cls="html"),
                     Cell(_("download"), f"{base}{d.id}/file?format=pdf", cls="pdf")
                     if d.pdf_path else Cell("")]
            table.rows.append([
                Cell(d.invoice_number or f"#{d.id}", cls="mono"),
                Cell(d.login, sub_href(site, d.login)), Cell(r.period or ""),
                Cell(_(KINDS.get(d.kind, d.kind))), Cell(ctx.fmt.datetime(d.created_at)),
                Cell("" if r.amount is None else ctx.fmt.money(r.amount, r.currency), num=True),
                Cell(d.html_sha256[:12], cls="mono"), *files])
        filters = [Field("login", _("Login")), Field("period", _("Period (YYYY-MM)"))]
        return site.render(req, ctx, "admin/list.html", title=_("Documents"), table=table,
                           filters=filters, query=req.query, links=[],
                           paging=paging.done(req, site.home + "documents", len(rows)))

    @inline
    def download(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "document.read")
        ident = req.params["id"]
        fmt = req.arg("format", "html")
        if not ident.isdigit() or len(ident) > 18 or fmt not in TYPES:
            raise PageError(404, N_("No such document."))
        doc = yield site.run(ctx, documents.thd_get_document, int(ident))
        if fmt == "pdf" and not doc.pdf_path:
            raise PageError(404, N_("This document has no PDF."))
        if site.document_reader is None:
            raise PageError(503, N_("Document files are not wired in this process."))
        try:
            content = yield threads.deferToThreadPool(
                site.reactor, site.reactor.getThreadPool(), site.document_reader, doc, fmt)
        except RadbillError as exc:
            raise PageError(409, str(exc)) from None
        name = f"{doc.invoice_number or 'document-' + str(doc.id)}.{fmt}"
        name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
        return Response(body=content, content_type=TYPES[fmt],
                        headers={"Content-Disposition": f'attachment; filename="{name}"',
                                 "X-Content-Type-Options": "nosniff"})

    site.router.get("/documents")(listing)
    site.router.get("/documents/{id}/file")(download)
