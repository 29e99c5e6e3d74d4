"""A reseller's own statement and revenue by reseller, through the one role table and scope.

A reseller's caller reads only its own statement (another reseller's is the
same NotFound as a missing one) and only its own revenue row; the operator's
roles with ``account.read`` / ``report.read`` read every reseller's.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from billing import reseller_reports as reports
from billing.reports import RevenueRow, thd_revenue
from core.errors import NotFound
from webadmin.errors import Forbidden
from webadmin.roles import Caller
from webadmin.service import scope


def thd_reseller_statement(session: Session, caller: Caller, name: str, period: str,
                           zone: ZoneInfo, currency: str) -> reports.ResellerStatement:
    caller.require("account.read")
    if caller.scoped and name != caller.reseller:
        raise NotFound(f"reseller {name!r} not found")
    return reports.thd_reseller_statement(session, name, period, zone, currency)


def thd_revenue_by_reseller(session: Session, caller: Caller, since: datetime, until: datetime,
                            tz: tzinfo, by: str = "month",
                            reseller: str | None = None) -> list[reports.ResellerRevenueRow]:
    """Every reseller's rows (and the operator's), or one reseller's; a reseller sees its own."""
    caller.require("report.read")
    rid = caller.reseller_id if caller.scoped else None
    if reseller is not None:
        wanted = scope.scoped_reseller(session, caller, reseller)
        rid = wanted
    return reports.thd_revenue_by_reseller(session, since, until, tz, by, reseller_id=rid)


def thd_revenue_by_plan(session: Session, caller: Caller, since: datetime, until: datetime,
                        tz: tzinfo, by: str = "month") -> list[RevenueRow]:
    """billing.reports.thd_revenue for the operator's roles (it is not split by reseller)."""
    caller.require("report.read")
    if caller.scoped:
        raise Forbidden("a reseller reads its revenue with --by reseller")
    return thd_revenue(session, since, until, tz, by)
