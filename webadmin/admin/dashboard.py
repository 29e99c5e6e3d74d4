"""The dashboard: sessions online, RADIUS rates, money today and this month, pools, billing."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from core.db.base import utcnow
from webadmin.admin.site import require
from webadmin.pages.app import inline
from webadmin.pages.charts import Series, line_chart
from webadmin.pages.site import PageRequest, Response
from webadmin.service.dashboard import thd_dashboard

if TYPE_CHECKING:
    from webadmin.admin.site import AdminSite


def install(site: AdminSite) -> None:
    @inline
    def dashboard(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "dashboard.read")
        s = site.settings
        d = yield site.run(ctx, thd_dashboard, s.currency, s.tz, utcnow())
        _, fmt = ctx._, ctx.fmt
        labels = [fmt.time(h) for h in d.hours]
        online_chart = line_chart(labels, [Series(_("sessions"), d.online_per_hour)],
                                  title=_("Sessions online, last 24 hours"),
                                  unit=_("sessions"), x_caption=_("hour"),
                                  value_format=lambda v: fmt.number(round(v, 1)))
        traffic_chart = line_chart(labels, [Series(_("traffic"),
                                                   [v / 1e6 for v in d.octets_per_hour])],
                                   title=_("Traffic per hour, last 24 hours"), unit=_("MB"),
                                   x_caption=_("hour"),
                                   value_format=lambda v: fmt.number(round(v, 1)))
        rates = None if ctx.caller.scoped else site.rates.rates()
        billing = site.billing_status() if ctx.may("billing.read") else None
        return site.render(req, ctx, "admin/dashboard.html", d=d, rates=rates,
                           billing=billing, online_chart=online_chart,
                           traffic_chart=traffic_chart)

    site.router.get("/")(dashboard)
