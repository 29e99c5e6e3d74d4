"""Subscribers through the service layer: permission, reseller scope, audit, then aaa.admin."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from aaa.admin import importing
from aaa.admin import subscribers as admin
from aaa.admin.passwords import Credentials
from core.db.models import Plan, Reseller, Subscriber
from core.errors import InvalidInput, NotFound
from webadmin.roles import Caller
from webadmin.service import audit, scope


def thd_add(session: Session, caller: Caller, login: str, credentials: Credentials,
            plan: str | None = None, chap: bool = False, static_ip: str | None = None,
            status: str = "active", description: str = "",
            reseller: str | None = None) -> admin.SubscriberInfo:
    caller.require("subscriber.write")
    scope.plan(session, caller, plan)
    rid = scope.scoped_reseller(session, caller, reseller)
    info = admin.thd_add_subscriber(session, login, credentials, plan, chap, static_ip, status,
                                    description, reseller_id=rid)
    audit.record(session, caller, "subscriber.add", "subscriber", info.login, None,
                 info.as_dict())
    return info


def thd_list(session: Session, caller: Caller, status: str | None = None,
             plan: str | None = None, login_prefix: str | None = None,
             limit: int | None = None, offset: int = 0,
             reseller: str | None = None) -> list[admin.SubscriberInfo]:
    caller.require("subscriber.read")
    if plan is not None:
        scope.plan(session, caller, plan)
    rid = scope.scoped_reseller(session, caller, reseller) if (reseller or caller.scoped) \
        else None
    return admin.thd_list_subscribers(session, status, plan, login_prefix, limit, offset,
                                      reseller_id=rid)


# Built once: composing a select() costs more CPU than MariaDB spends answering it.
_GET = (select(Subscriber, Plan.name, Reseller.name)
        .outerjoin(Plan, Plan.id == Subscriber.plan_id)
        .outerjoin(Reseller, Reseller.id == Subscriber.reseller_id)
        .where(Subscriber.login == bindparam("login")))


def thd_get(session: Session, caller: Caller, login: str) -> admin.SubscriberInfo:
    """One query (subscriber, plan and reseller names): the API's hottest read."""
    caller.require("subscriber.read")
    found = session.execute(_GET, {"login": login}).one_or_none()
    if found is None or (caller.scoped and found[0].reseller_id != caller.reseller_id):
        raise NotFound(f"subscriber {login!r} not found")  # the same either way (scope)
    row, plan_name, reseller_name = found
    return admin.subscriber_info(row, plan_name, reseller_name)


UPDATE_FIELDS = frozenset({"plan", "static_ip", "description", "status", "reseller", "chap"})


def thd_update(session: Session, caller: Caller, login: str,
               changes: Mapping[str, Any]) -> admin.SubscriberInfo:
    """plan, static_ip, description, status, reseller; ``chap: false`` drops CHAP."""
    caller.require("subscriber.write")
    unknown = set(changes) - UPDATE_FIELDS
    if unknown:
        raise InvalidInput("cannot change subscriber field(s): " + ", ".join(sorted(unknown)),
                           field=sorted(unknown)[0])
    scope.subscriber(session, caller, login)
    before = admin.thd_get_subscriber(session, login)
    domain = {k: v for k, v in changes.items() if k not in ("reseller", "chap")}
    if "plan" in domain:
        scope.plan(session, caller, domain["plan"])
    if "reseller" in changes:
        if caller.scoped:
            raise InvalidInput("a reseller cannot move subscribers to another reseller",
                               field="reseller")
        domain["reseller_id"] = scope.reseller_id(session, changes["reseller"])
    if "chap" in changes:
        if changes["chap"] is not False:
            raise InvalidInput("chap can only be turned off here; set a new password with "
                               "chap to turn it on", field="chap")
    info = admin.thd_update_subscriber(session, login, domain) if domain else before
    if changes.get("chap") is False:
        info = admin.thd_disable_chap(session, login)
    audit.record(session, caller, "subscriber.set", "subscriber", login, before.as_dict(),
                 info.as_dict())
    return info


def thd_set_password(session: Session, caller: Caller, login: str, credentials: Credentials,
                     chap: bool | None = None) -> admin.SubscriberInfo:
    caller.require("subscriber.password")
    scope.subscriber(session, caller, login)
    info = admin.thd_set_password(session, login, credentials, chap)
    audit.record(session, caller, "subscriber.passwd", "subscriber", login,
                 {"password": "old"}, {"password": "new", "chap": info.chap})
    return info


def thd_set_status(session: Session, caller: Caller, login: str,
                   status: str) -> admin.SubscriberInfo:
    caller.require("subscriber.write")
    scope.subscriber(session, caller, login)
    before = admin.thd_get_subscriber(session, login)
    info = admin.thd_set_status(session, login, status)
    audit.record(session, caller, f"subscriber.{info.status}", "subscriber", login,
                 {"status": before.status}, {"status": info.status})
    return info


def thd_remove(session: Session, caller: Caller, login: str) -> admin.SubscriberInfo:
    caller.require("subscriber.write")
    scope.subscriber(session, caller, login)
    info = admin.thd_remove_subscriber(session, login)
    audit.record(session, caller, "subscriber.remove", "subscriber", login, info.as_dict(),
                 None)
    return info


def thd_check_import(session: Session, caller: Caller,
                     rows: Sequence[importing.ImportRow]) -> dict[str, int]:
    caller.require("subscriber.write")
    if caller.scoped:
        raise InvalidInput("bulk import is for the operator's own staff, not resellers")
    return importing.thd_check_import(session, rows)


def thd_import(session: Session, caller: Caller,
               rows: Sequence[importing.ImportRow]) -> importing.ImportResult:
    """One audit row for the whole file (a 100k-row import is one change, not 100k)."""
    thd_check_import(session, caller, rows)
    result = importing.thd_import_subscribers(session, rows)
    logins = [r.login for r in rows]
    audit.record(session, caller, "subscriber.import", "subscriber",
                 f"{logins[0]}..{logins[-1]}" if logins else "-", None,
                 {"imported": result.imported, "first": logins[:1], "last": logins[-1:]})
    return result
