"""Admin operations on subscribers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aaa.admin.passwords import Credentials
from aaa.admin.rows import delete_row, flush_unique
from aaa.admin.validate import (
    DESCRIPTION_MAX,
    NONE_WORDS,
    nullable,
    text_field,
    validate_login,
    validate_static_ip,
    validate_status,
)
from core.db.models import Plan, Reseller, Subscriber, SubscriberStatus
from core.errors import AlreadyExists, InvalidInput, NotFound


@dataclass(frozen=True)
class SubscriberInfo:
    """What an admin may see: which methods can authenticate, never the secrets themselves."""

    id: int
    login: str
    status: str
    plan: str | None
    static_ip: str | None
    description: str
    pap: bool
    mschap: bool
    chap: bool
    created_at: datetime
    updated_at: datetime
    reseller: str | None = None

    @property
    def auth_methods(self) -> list[str]:
        return [m for m, ok in (("pap", self.pap), ("mschapv2", self.mschap),
                                ("chap", self.chap)) if ok]

    def as_dict(self) -> dict[str, Any]:
        return {"login": self.login, "status": self.status, "plan": self.plan,
                "static_ip": self.static_ip, "auth": self.auth_methods,
                "pap": self.pap, "mschapv2": self.mschap, "chap": self.chap,
                "description": self.description, "reseller": self.reseller,
                "created_at": self.created_at, "updated_at": self.updated_at}





def _subscriber_info(row: Subscriber, plan_name: str | None,
                     reseller: str | None = None) -> SubscriberInfo:
    return SubscriberInfo(id=row.id, login=row.login, status=SubscriberStatus(row.status).value,
                          plan=plan_name, static_ip=row.static_ip,
                          description=row.description or "",
                          pap=bool(row.password_hash or row.nt_hash), mschap=bool(row.nt_hash),
                          chap=bool(row.chap_enabled and row.cleartext_password),
                          created_at=row.created_at, updated_at=row.updated_at,
                          reseller=reseller)


subscriber_info = _subscriber_info  # for the service layer's one-query reads


def _reseller_name(session: Session, reseller_id: int | None) -> str | None:
    if reseller_id is None:
        return None
    return session.scalar(select(Reseller.name).where(Reseller.id == reseller_id))


def _full_info(session: Session, row: Subscriber) -> SubscriberInfo:
    return _subscriber_info(row, _plan_name(session, row.plan_id),
                            _reseller_name(session, row.reseller_id))


def _subscriber_row(session: Session, login: str) -> Subscriber:
    row = session.scalars(select(Subscriber).where(Subscriber.login == login)).one_or_none()
    if row is None:
        raise NotFound(f"subscriber {login!r} not found")
    return row


def _plan_name(session: Session, plan_id: int | None) -> str | None:
    if plan_id is None:
        return None
    return session.scalar(select(Plan.name).where(Plan.id == plan_id))


def _plan_id(session: Session, name: str | None) -> int | None:
    if name is None:
        return None
    plan_id = session.scalar(select(Plan.id).where(Plan.name == name))
    if plan_id is None:
        raise NotFound(f"plan {name!r} not found")
    return plan_id


def _check_static_ip_free(session: Session, ip: str | None, except_id: int | None = None) -> None:
    if ip is None:
        return
    other = session.scalars(select(Subscriber).where(Subscriber.static_ip == ip)).first()
    if other is not None and other.id != except_id:
        raise AlreadyExists(f"static IP {ip} is already assigned to subscriber {other.login!r}")


def _store_credentials(row: Subscriber, creds: Credentials, chap: bool) -> None:
    if chap and not creds.cleartext:
        raise InvalidInput(f"subscriber {row.login!r}: CHAP needs the cleartext password;"
                           " set a password together with CHAP")
    row.password_hash = creds.password_hash
    row.nt_hash = creds.nt_hash
    row.chap_enabled = chap
    row.cleartext_password = creds.cleartext if chap else None


def thd_add_subscriber(session: Session, login: str, credentials: Credentials,
                       plan: str | None = None, chap: bool = False,
                       static_ip: str | None = None, status: str = "active",
                       description: str = "", reseller_id: int | None = None) -> SubscriberInfo:
    """``credentials`` come from :func:`hash_credentials`, outside the transaction."""
    login = validate_login(login)
    row = Subscriber(login=login, status=validate_status(status),
                     plan_id=_plan_id(session, plan), static_ip=validate_static_ip(static_ip),
                     description=text_field(description, "description", DESCRIPTION_MAX,
                                       allow_empty=True, multiline=True),
                     reseller_id=reseller_id)
    _store_credentials(row, credentials, chap)
    if session.scalars(select(Subscriber.id).where(Subscriber.login == login)).first():
        raise AlreadyExists(f"subscriber {login!r} already exists")
    _check_static_ip_free(session, row.static_ip)
    session.add(row)
    flush_unique(session, f"subscriber {login!r}")
    return _full_info(session, row)


def thd_list_subscribers(session: Session, status: str | None = None, plan: str | None = None,
                         login_prefix: str | None = None, limit: int | None = None,
                         offset: int = 0, reseller_id: int | None = None
                         ) -> list[SubscriberInfo]:
    """Ordered by login. ``plan='none'`` lists subscribers without a plan.

    ``reseller_id`` limits the list to one reseller's subscribers (a scoped caller).
    """
    # The page's ids first, from the login index alone, then their rows: a deep page
    # (OFFSET 50000) walks index entries, not 50,000 full rows with their joins.
    page = select(Subscriber.id)
    if reseller_id is not None:
        page = page.where(Subscriber.reseller_id == reseller_id)
    if status is not None:
        page = page.where(Subscriber.status == validate_status(status))
    if plan is not None:
        if plan.lower() in NONE_WORDS:
            page = page.where(Subscriber.plan_id.is_(None))
        else:
            page = page.where(Subscriber.plan_id == _plan_id(session, plan))
    if login_prefix:
        # startswith() alone is case-insensitive on SQLite's LIKE; the substr
        # comparison makes both databases agree on an exact, case-sensitive prefix.
        page = page.where(Subscriber.login.startswith(login_prefix, autoescape=True),
                          func.substr(Subscriber.login, 1, len(login_prefix)) == login_prefix)
    if limit is not None and limit < 0:
        raise InvalidInput(f"limit {limit} must be 0 or greater")
    if offset < 0:
        raise InvalidInput(f"offset {offset} must be 0 or greater")
    page = page.order_by(Subscriber.login).offset(offset)
    if limit is not None:
        page = page.limit(limit)
    ids = page.subquery()
    query = (select(Subscriber, Plan.name, Reseller.name)
             .join(ids, Subscriber.id == ids.c.id)
             .outerjoin(Plan, Subscriber.plan_id == Plan.id)
             .outerjoin(Reseller, Subscriber.reseller_id == Reseller.id)
             .order_by(Subscriber.login))
    return [_subscriber_info(row, name, reseller)
            for row, name, reseller in session.execute(query).all()]


def thd_get_subscriber(session: Session, login: str) -> SubscriberInfo:
    row = _subscriber_row(session, login)
    return _full_info(session, row)


def thd_set_password(session: Session, login: str, credentials: Credentials,
                     chap: bool | None = None) -> SubscriberInfo:
    """New password; ``chap=None`` keeps CHAP as it was (storing the new cleartext if on)."""
    row = _subscriber_row(session, login)
    _store_credentials(row, credentials, row.chap_enabled if chap is None else chap)
    session.flush()
    return _full_info(session, row)


def thd_disable_chap(session: Session, login: str) -> SubscriberInfo:
    """Turn CHAP off and drop the reversible copy of the password."""
    row = _subscriber_row(session, login)
    row.chap_enabled = False
    row.cleartext_password = None
    session.flush()
    return _full_info(session, row)


def thd_set_status(session: Session, login: str, status: str) -> SubscriberInfo:
    row = _subscriber_row(session, login)
    row.status = validate_status(status)
    session.flush()
    return _full_info(session, row)


SUBSCRIBER_FIELDS = frozenset({"plan", "static_ip", "description", "status", "reseller_id"})


def thd_update_subscriber(session: Session, login: str,
                          changes: Mapping[str, Any]) -> SubscriberInfo:
    """Change plan, static IP, description or status; None (or 'none') clears plan/IP."""
    unknown = set(changes) - SUBSCRIBER_FIELDS
    if unknown:
        raise InvalidInput("cannot change subscriber field(s): " + ", ".join(sorted(unknown)))
    row = _subscriber_row(session, login)
    if "plan" in changes:
        row.plan_id = _plan_id(session, nullable(changes["plan"]))
    if "static_ip" in changes:
        row.static_ip = validate_static_ip(nullable(changes["static_ip"]))
        _check_static_ip_free(session, row.static_ip, except_id=row.id)
    if "description" in changes:
        row.description = text_field(changes["description"], "description", DESCRIPTION_MAX,
                                allow_empty=True, multiline=True)
    if "status" in changes:
        row.status = validate_status(changes["status"])
    if "reseller_id" in changes:
        row.reseller_id = changes["reseller_id"]
    session.flush()
    return _full_info(session, row)


def thd_remove_subscriber(session: Session, login: str) -> SubscriberInfo:
    row = _subscriber_row(session, login)
    info = _full_info(session, row)
    # A billing account, its ledger and its sessions are history that must outlive the
    # login (audit, disputes, tax), so the foreign keys refuse; say what to do instead.
    delete_row(session, row, f"subscriber {login!r}",
            f" (ledger, sessions or leases); 'radbill subscriber disable {login}' closes the "
            "account and keeps its history")
    return info


@dataclass(frozen=True)
class LoginSecrets:
    """What checking a subscriber's own password needs (self-care login); never shown."""

    login: str
    status: str
    password_hash: str | None = field(repr=False)
    nt_hash: str | None = field(repr=False)


def thd_login_secrets(session: Session, login: str) -> LoginSecrets | None:
    row = session.execute(select(Subscriber.login, Subscriber.status, Subscriber.password_hash,
                                 Subscriber.nt_hash).where(Subscriber.login == login)).first()
    if row is None:
        return None
    return LoginSecrets(row[0], SubscriberStatus(row[1]).value, row[2], row[3])
