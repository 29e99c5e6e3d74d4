"""Sessions and calls: lists, details, and Disconnect (RFC 5176) with the NAS's answer shown.

A disconnect is the CLI's path (``radbill session disconnect``): the service
layer finds the live sessions, checks the permission and scope and writes
the audit row (``usage.thd_disconnect_targets``); ``aaa.kick`` then sends
each Disconnect-Request through ``aaa.coa`` and closes the records a NAS says
are gone. The page shows what each NAS answered: ACK, NAK (with its
Error-Cause), or no answer.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from accounting.queries import CallFilter, SessionFilter
from core.db.base import utcnow
from webadmin.admin.site import Ctx, require
from webadmin.admin.views import Field, Paging
from webadmin.pages.app import inline
from webadmin.pages.i18n import N_
from webadmin.pages.site import PageRequest, Response
from webadmin.service import usage

if TYPE_CHECKING:
    from webadmin.admin.site import AdminSite

OUTCOME_WORDS = {"ack": N_("Disconnect-ACK: the NAS ended the session"),
                 "gone": N_("Disconnect-NAK 503: the NAS no longer had the session; closed here"),
                 "nak": N_("Disconnect-NAK: the NAS refused"),
                 "timeout": N_("no answer from the NAS"),
                 "no-route": N_("no way to reach the NAS for this session")}
SINCE = (("", N_("any time")), ("1", N_("last hour")), ("24", N_("last 24 hours")),
         ("168", N_("last 7 days")))


def describe_result(_: Any, r: Any) -> tuple[bool, str]:
    outcome = r.result.outcome.value
    text = _(OUTCOME_WORDS.get(outcome, outcome))
    if r.result.error_cause:
        text += f" (Error-Cause {r.result.error_cause})"
    return r.ended, f"{r.session.user_name}: {text}"


@defer.inlineCallbacks
def send(site: AdminSite, targets: list[Any]) -> Generator[Any, Any, list[Any]]:
    from aaa.kick import disconnect_sessions

    if not targets:
        return []
    sender = site.sender()
    return (yield defer.ensureDeferred(disconnect_sessions(site.dbpool, sender, targets)))


@defer.inlineCallbacks
def disconnect_all(site: AdminSite, ctx: Ctx, login: str) -> Generator[Any, Any, list[str]]:
    """Every live session of a subscriber (after a block); lines to flash."""
    targets = yield site.run(ctx, usage.thd_disconnect_targets, login=login)
    results = yield send(site, targets)
    return [describe_result(ctx._, r)[1] for r in results]


def _since(req: PageRequest) -> Any:
    hours = req.arg("since")
    return utcnow() - timedelta(hours=int(hours)) if hours in ("1", "24", "168") else None


def install(site: AdminSite) -> None:
    r = site.router
    home = site.home

    def filters(ctx: Ctx, calls: bool = False) -> list[Field]:
        _ = ctx._
        out = [Field("login", _("Login")), Field("nas", _("NAS")),
               Field("since", _("Since"), choices=[(v, _(t)) for v, t in SINCE])]
        if calls:
            out.append(Field("callee", _("Called number")))
        else:
            out.insert(0, Field("online", _("Which"), choices=[("", _("all")),
                                                                ("1", _("online only"))]))
        return out

    @inline
    def sessions(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "session.read")
        paging = Paging.of(req, site.page_size)
        f = SessionFilter(online=req.arg("online") == "1",
                          subscriber=req.arg("login").strip() or None,
                          nas=req.arg("nas").strip() or None, since=_since(req),
                          limit=paging.size + 1, offset=paging.offset)
        rows = yield site.run(ctx, usage.thd_list_sessions, f)
        return site.render(req, ctx, "admin/usage_list.html", title=ctx._("Sessions"),
                           kind="sessions", rows=rows[:paging.size], filters=filters(ctx),
                           query=req.query, paging=paging.done(req, home + "sessions",
                                                               len(rows)))

    @inline
    def calls(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "call.read")
        paging = Paging.of(req, site.page_size)
        f = CallFilter(subscriber=req.arg("login").strip() or None,
                       nas=req.arg("nas").strip() or None, since=_since(req),
                       callee=req.arg("callee").strip() or None,
                       limit=paging.size + 1, offset=paging.offset)
        rows = yield site.run(ctx, usage.thd_list_calls, f)
        return site.render(req, ctx, "admin/usage_list.html", title=ctx._("Calls"),
                           kind="calls", rows=rows[:paging.size], filters=filters(ctx, True),
                           query=req.query, paging=paging.done(req, home + "calls", len(rows)))

    @inline
    def session_page(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "session.read")
        s = yield site.run(ctx, usage.thd_show_session, req.params["ident"])
        return site.render(req, ctx, "admin/session.html", s=s, kind="session")

    @inline
    def call_page(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req)
        require(ctx, "call.read")
        c = yield site.run(ctx, usage.thd_show_call, req.params["ident"])
        return site.render(req, ctx, "admin/session.html", s=c, kind="call")

    @inline
    def disconnect(req: PageRequest) -> Generator[Any, Any, Response]:
        ctx = yield site.ctx(req, post=True)
        ident = req.params["ident"]
        targets = yield site.run(ctx, usage.thd_disconnect_targets, session_ident=ident)
        results = yield send(site, targets)
        shown = [describe_result(ctx._, x) for x in results]
        return site.render(req, ctx, "admin/disconnected.html", shown=shown,
                           back=home + "sessions/" + ident, ident=ident)

    r.get("/sessions")(sessions)
    r.get("/sessions/{ident}")(session_page)
    r.post("/sessions/{ident}/disconnect")(disconnect)
    r.get("/calls")(calls)
    r.get("/calls/{ident}")(call_page)
