"""Reports: revenue by plan or reseller, traffic per day, calls per prefix, top subscribers.

Each report is one page with a server-side SVG chart and a table, and the
same figures as CSV (``?format=csv``): plain decimal amounts in the billing
currency, UTF-8, cells that a spreadsheet would take for a formula prefixed
with an apostrophe (plan and reseller names are operator text).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable, Generator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from billing.money import exponent
from core.db.base import utcnow
from webadmin.admin.site import Ctx, require
from webadmin.admin.subscribers import sub_href
from webadmin.admin.views import Cell, Column, Field, Link, Table
from webadmin.pages.app import inline
from webadmin.pages.charts import Series, bar_chart, line_chart
from webadmin.pages.i18n import N_
from webadmin.pages.site import PageRequest, Response
from webadmin.service import reports

if TYPE_CHECKING:
    from webadmin.admin.site import AdminSite

DAYS = ("7", "30", "90", "365")
REPORTS = ((N_("Revenue"), "revenue"), (N_("Traffic per day"), "traffic"),
           (N_("Calls per destination"), "calls"), (N_("Top subscribers by traffic"), "top"),
           (N_("Pool usage"), "pools"))
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) and not _number(text) else text


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_response(name: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Response:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    for row in rows:
        w.writerow([csv_cell(v) for v in row])
    return Response(body=buf.getvalue().encode("utf-8"), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


def install(site: AdminSite) -> None:
    r = site.router
    home = site.home

    def window(req: PageRequest) -> tuple[Any, Any, str]:
        days = req.arg("days", "30")
        days = days if days in DAYS else "30"
        until = utcnow()
        return until - timedelta(days=int(days)), until, days

    def options(ctx: Ctx, extra: list[Field] | None = None) -> list[Field]:
        _ = ctx._
        return [Field("days", _("Period"), choices=[(d, _("last %(n)s days", n=d))
                                                    for d in DAYS]), *(extra or [])]

    def page(req: PageRequest, ctx: Ctx, title: str, chart: Any, table: Table,
             filters: list[Field]) -> Response:
        query = {**req.query, "format": "csv"}
        from webadmin.pages.site import with_query

        return site.render(req, ctx, "admin/report.html", title=title, chart=chart,
                           table=table, filters=filters, query=req.query,
                           csv_href=with_query(home + req.path.lstrip("/"), query),
                           reports=[Link(ctx._(label), home + "reports/" + slug)
                                    for label, slug in REPORTS
                                    if slug != "pools" or ctx.may("pool.read")])

    def money_fmt(ctx: Ctx) -> Callable[[float], str]:
        return lambda v: ctx.fmt.number(round(v, 2))

    @inline
    def index(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "report.read")
        return Response.redirect(home + "reports/revenue")

    @inline
    def revenue(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "report.read")
        _ = ctx._
        since, until, _days = window(req)
        by = "month" if req.arg("by") == "month" else "day"
        group = "reseller" if req.arg("group") == "reseller" else "plan"
        cur = site.settings.currency
        labels, rows = yield site.run(ctx, reports.thd_revenue, since, until, site.settings.tz,
                                      cur, by, group)
        none = _("(no plan)") if group == "plan" else _("(operator)")
        if req.arg("format") == "csv":
            return csv_response(f"revenue-{by}-{group}", ["period", group, "currency",
                                                           "revenue", "payments"],
                                [(x.period, x.group, cur, ctx.fmt.amount(x.revenue, cur),
                                  ctx.fmt.amount(x.payments, cur)) for x in rows])
        groups = sorted({x.group for x in rows})
        per: dict[str, dict[str, int]] = defaultdict(dict)
        for x in rows:
            per[x.group][x.period] = x.revenue
        exp = 10 ** exponent(cur)
        series = [Series(g or none, [per[g].get(p, 0) / exp for p in labels]) for g in groups]
        chart = bar_chart([p[5:] if by == "day" else p for p in labels],
                          series or [Series(_("revenue"), [0] * len(labels))],
                          title=_("Revenue per %(by)s", by=_(by)), unit=cur,
                          x_caption=_("day") if by == "day" else _("month"),
                          value_format=money_fmt(ctx))
        table = Table([Column(_("Period")), Column(_("Plan") if group == "plan"
                                                   else _("Reseller")),
                       Column(_("Revenue"), True), Column(_("Payments"), True)], id="report")
        for x in rows:
            table.rows.append([Cell(x.period), Cell(x.group or none),
                               Cell(ctx.fmt.money(x.revenue, cur), num=True),
                               Cell(ctx.fmt.money(x.payments, cur), num=True)])
        return page(req, ctx, _("Revenue"), chart, table, options(ctx, [
            Field("by", _("Per"), choices=[("day", _("day")), ("month", _("month"))]),
            Field("group", _("By"), choices=[("plan", _("plan")),
                                             ("reseller", _("reseller"))])]))

    @inline
    def traffic(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "report.read")
        _ = ctx._
        since, until, _days = window(req)
        rows = yield site.run(ctx, reports.thd_traffic_per_day, since, until, site.settings.tz)
        if req.arg("format") == "csv":
            return csv_response("traffic-per-day", ["day", "octets_in", "octets_out",
                                                    "seconds"],
                                [(x.day, x.octets_in, x.octets_out, x.seconds) for x in rows])
        chart = bar_chart([x.day[5:] for x in rows],
                          [Series(_("download"), [x.octets_out / 1e6 for x in rows]),
                           Series(_("upload"), [x.octets_in / 1e6 for x in rows])],
                          title=_("Traffic per day"), unit=_("MB"), x_caption=_("day"),
                          value_format=lambda v: ctx.fmt.number(round(v, 1)))
        table = Table([Column(_("Day")), Column(_("Download"), True), Column(_("Upload"), True),
                       Column(_("Time online"), True)], id="report")
        for x in rows:
            table.rows.append([Cell(x.day), Cell(ctx.fmt.bytes(x.octets_out), num=True),
                               Cell(ctx.fmt.bytes(x.octets_in), num=True),
                               Cell(ctx.fmt.duration(x.seconds), num=True)])
        return page(req, ctx, _("Traffic per day"), chart, table, options(ctx))

    @inline
    def calls(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "report.read")
        _ = ctx._
        since, until, _days = window(req)
        digits = req.int_arg("digits", 3, lo=1, hi=12)
        rows = yield site.run(ctx, reports.thd_calls_per_prefix, since, until, digits)
        cur = site.settings.currency
        if req.arg("format") == "csv":
            return csv_response("calls-per-prefix", ["prefix", "calls", "minutes", "cost"],
                                [(x.prefix, x.calls, f"{x.seconds / 60:.1f}",
                                  ctx.fmt.amount(x.cost, cur)) for x in rows])
        shown = rows[:20]
        chart = bar_chart([x.prefix or "?" for x in shown],
                          [Series(_("minutes"), [x.seconds / 60 for x in shown])],
                          title=_("Minutes per destination prefix"), unit=_("minutes"),
                          x_caption=_("prefix"),
                          value_format=lambda v: ctx.fmt.number(round(v, 1)))
        table = Table([Column(_("Prefix")), Column(_("Calls"), True),
                       Column(_("Minutes"), True), Column(_("Cost"), True)], id="report")
        for x in rows:
            table.rows.append([Cell(x.prefix, cls="mono"), Cell(ctx.fmt.number(x.calls), num=True),
                               Cell(ctx.fmt.number(round(x.seconds / 60, 1)), num=True),
                               Cell(ctx.fmt.money(x.cost, cur), num=True)])
        return page(req, ctx, _("Calls per destination"), chart, table, options(ctx, [
            Field("digits", _("Prefix digits"), choices=[(str(n), str(n))
                                                          for n in range(1, 9)])]))

    @inline
    def top(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "report.read")
        _ = ctx._
        since, until, _days = window(req)
        rows = yield site.run(ctx, reports.thd_top_traffic, since, until, 20)
        if req.arg("format") == "csv":
            return csv_response("top-traffic", ["login", "octets_in", "octets_out", "seconds"],
                                [(x.login, x.octets_in, x.octets_out, x.seconds) for x in rows])
        chart = bar_chart([x.login[:12] for x in rows],
                          [Series(_("download"), [x.octets_out / 1e6 for x in rows]),
                           Series(_("upload"), [x.octets_in / 1e6 for x in rows])],
                          title=_("Top subscribers by traffic"), unit=_("MB"),
                          x_caption=_("subscriber"),
                          value_format=lambda v: ctx.fmt.number(round(v, 1)))
        table = Table([Column(_("Login")), Column(_("Download"), True), Column(_("Upload"), True),
                       Column(_("Time online"), True)], id="report")
        for x in rows:
            table.rows.append([Cell(x.login, sub_href(site, x.login)
                                    if ctx.may("subscriber.read") else ""),
                               Cell(ctx.fmt.bytes(x.octets_out), num=True),
                               Cell(ctx.fmt.bytes(x.octets_in), num=True),
                               Cell(ctx.fmt.duration(x.seconds), num=True)])
        return page(req, ctx, _("Top subscribers by traffic"), chart, table, options(ctx))

    @inline
    def pools(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "report.read")
        require(ctx, "pool.read")
        _ = ctx._
        since, until, days = window(req)
        by = "hour" if days == "7" else "day"
        rows = yield site.run(ctx, reports.thd_pool_usage, since, until, site.settings.tz, by)
        if req.arg("format") == "csv":
            return csv_response("pool-usage", [by, "pool", "used", "size"],
                                [(x.period, x.pool, x.used, x.size) for x in rows])
        labels = sorted({x.period for x in rows})
        names = sorted({x.pool for x in rows})
        per = {(x.pool, x.period): x for x in rows}
        series = [Series(n, [100 * per[(n, p)].used / per[(n, p)].size
                             if (n, p) in per and per[(n, p)].size else None for p in labels])
                  for n in names]
        chart = line_chart([p[11:16] if by == "hour" else p[5:] for p in labels],
                           series or [Series(_("pool"), [])],
                           title=_("Pool usage over time"), unit="%",
                           x_caption=_("hour") if by == "hour" else _("day"),
                           value_format=lambda v: ctx.fmt.number(round(v, 1)))
        table = Table([Column(_("Period")), Column(_("Pool")), Column(_("Used"), True),
                       Column(_("Size"), True), Column(_("Utilization"), True)], id="report")
        for x in reversed(rows[-200:]):
            table.rows.append([Cell(x.period), Cell(x.pool), Cell(ctx.fmt.number(x.used), num=True),
                               Cell(ctx.fmt.number(x.size), num=True),
                               Cell(ctx.fmt.percent(x.used / x.size) if x.size else "", num=True)])
        return page(req, ctx, _("Pool usage"), chart, table, options(ctx))

    r.get("/reports")(index)
    r.get("/reports/pools")(pools)
    r.get("/reports/revenue")(revenue)
    r.get("/reports/traffic")(traffic)
    r.get("/reports/calls")(calls)
    r.get("/reports/top")(top)
