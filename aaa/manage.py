"""Admin operations on NAS clients, plans and subscribers, shared by the CLI and the web admin.

Every ``thd_*`` function takes a Session first, never commits, and returns
frozen dataclasses, so it runs unchanged under ``DBPool.run`` (web admin) and
``CliContext.run`` (CLI). Input is validated here rather than in each front
end, so a bad value gets the same one-line error wherever it was typed.

Password hashing is deliberately *outside* the ``thd_*`` functions
(:func:`hash_credentials`, :func:`hash_import_rows`): one argon2 hash costs
tens of milliseconds and 64 MiB, and holding a database transaction (and a
DB thread) open for that would stall every other writer.
"""

from __future__ import annotations

import csv
import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any, TextIO

import argon2
import pyrad.packet
from sqlalchemy import func, insert, null, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aaa.clients import parse_network
from aaa.dictionary import load_dictionary
from aaa.mschap import nt_password_hash
from aaa.pap import MAX_USER_PASSWORD_LENGTH, hash_password
from aaa.vendors import parse_rate_limit
from core.db.base import utcnow
from core.db.models import Nas, Plan, Subscriber, SubscriberStatus, Vendor
from core.errors import AlreadyExists, InvalidInput, NotFound

NAME_MAX = 64
SECRET_MAX = 128
LOGIN_MAX = 128
#: RFC 2865 5.1: User-Name is at most 253 octets on the wire.
LOGIN_MAX_OCTETS = 253
DESCRIPTION_MAX = 255
#: Integer columns are signed 32-bit on both databases.
INT_MAX = 2**31 - 1
#: Words that mean "no value" in set commands, so no plan may be called that.
NONE_WORDS = frozenset({"none", "-"})
#: Attributes the server itself manages; a plan must not inject them.
RESERVED_REPLY_ATTRIBUTES = frozenset({
    "User-Name", "User-Password", "CHAP-Password", "Message-Authenticator", "Proxy-State",
    "EAP-Message", "State", "MS-CHAP2-Success", "MS-MPPE-Send-Key", "MS-MPPE-Recv-Key",
})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_NT_HASH = re.compile(r"^[0-9a-fA-F]{32}$")
_IN_CHUNK = 500


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class NasInfo:
    id: int
    name: str
    address: str
    secret: str = field(repr=False)
    vendor: str
    require_message_authenticator: bool
    coa_port: int
    description: str
    created_at: datetime
    updated_at: datetime

    def as_dict(self, show_secret: bool = False) -> dict[str, Any]:
        """The secret is masked unless asked for, so it does not leak into logs or screens."""
        return {"name": self.name, "address": self.address,
                "secret": self.secret if show_secret else "********",
                "vendor": self.vendor,
                "require_message_authenticator": self.require_message_authenticator,
                "coa_port": self.coa_port, "description": self.description,
                "created_at": self.created_at, "updated_at": self.updated_at}


@dataclass(frozen=True)
class PlanInfo:
    id: int
    name: str
    rate_limit: str | None
    session_timeout: int | None
    idle_timeout: int | None
    interim_interval: int | None
    simultaneous_use: int | None
    framed_protocol: str | None
    reply_attributes: tuple[tuple[str, str], ...]
    subscribers: int
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rate_limit": self.rate_limit,
                "session_timeout": self.session_timeout, "idle_timeout": self.idle_timeout,
                "interim_interval": self.interim_interval,
                "simultaneous_use": self.simultaneous_use,
                "framed_protocol": self.framed_protocol,
                "reply_attributes": [f"{a}={v}" for a, v in self.reply_attributes],
                "subscribers": self.subscribers,
                "created_at": self.created_at, "updated_at": self.updated_at}


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

    @property
    def auth_methods(self) -> list[str]:
        return [m for m, ok in (("pap", self.pap), ("mschapv2", self.mschap),
                                ("chap", self.chap)) if ok]

    def as_dict(self) -> dict[str, Any]:
        return {"login": self.login, "status": self.status, "plan": self.plan,
                "static_ip": self.static_ip, "auth": self.auth_methods,
                "pap": self.pap, "mschapv2": self.mschap, "chap": self.chap,
                "description": self.description,
                "created_at": self.created_at, "updated_at": self.updated_at}


@dataclass(frozen=True)
class Credentials:
    """A password made storable: argon2 for PAP, NT hash for MS-CHAPv2, cleartext for CHAP.

    The cleartext rides along (hidden from repr) so the ``thd_*`` function
    can keep it exactly when CHAP is on for the subscriber, and drop it
    otherwise.
    """

    password_hash: str | None = field(default=None, repr=False)
    nt_hash: str | None = field(default=None, repr=False)
    cleartext: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ImportRow:
    """One validated CSV row; ``line`` is its line number in the file, for error messages."""

    line: int
    login: str
    plan: str | None = None
    status: SubscriberStatus = SubscriberStatus.ACTIVE
    static_ip: str | None = None
    chap: bool = False
    description: str = ""
    password: str | None = field(default=None, repr=False)
    password_hash: str | None = field(default=None, repr=False)
    nt_hash: str | None = field(default=None, repr=False)

    @property
    def needs_hashing(self) -> bool:
        return self.password is not None and self.password_hash is None and self.nt_hash is None


@dataclass(frozen=True)
class ImportResult:
    imported: int
    hashed: int


# --------------------------------------------------------------------------- validation


def _text(value: str, what: str, max_len: int, *, allow_empty: bool = False,
          multiline: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text")
    if not value and not allow_empty:
        raise InvalidInput(f"{what} must not be empty")
    if len(value) > max_len:
        raise InvalidInput(f"{what} {_short(value)} is longer than {max_len} characters")
    if (_CONTROL_BUT_LINES if multiline else _CONTROL).search(value):
        raise InvalidInput(f"{what} {_short(value)} contains control characters")
    return value


def _short(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def validate_name(value: str, what: str) -> str:
    """A NAS or plan name: 1..64 characters, printable, no surrounding blanks."""
    _text(value, f"{what} name", NAME_MAX)
    if value != value.strip():
        raise InvalidInput(f"{what} name {value!r} must not start or end with blanks")
    return value


def validate_login(login: str) -> str:
    """1..128 characters, printable, no surrounding blanks (MariaDB pads, so 'a ' == 'a')."""
    _text(login, "login", LOGIN_MAX)
    if login != login.strip():
        raise InvalidInput(f"login {login!r} must not start or end with blanks")
    if len(login.encode("utf-8", "surrogatepass")) > LOGIN_MAX_OCTETS:
        raise InvalidInput(f"login {_short(login)} is longer than {LOGIN_MAX_OCTETS} octets"
                           " in UTF-8 (RADIUS User-Name limit)")
    return login


def validate_password(password: str) -> str:
    if not isinstance(password, str) or not password:
        raise InvalidInput("password must not be empty")
    if "\x00" in password:
        raise InvalidInput("password must not contain NUL characters")
    try:
        octets = len(password.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput("password is not valid Unicode text") from None
    if octets > MAX_USER_PASSWORD_LENGTH:
        raise InvalidInput(f"password is {octets} octets; RADIUS PAP carries at most "
                           f"{MAX_USER_PASSWORD_LENGTH}")
    return password


def validate_address(address: str) -> str:
    """An IP or CIDR, normalised so equal networks compare equal."""
    if not isinstance(address, str) or not address.strip():
        raise InvalidInput("NAS address must not be empty")
    try:
        net = parse_network(address)
    except ValueError as exc:
        raise InvalidInput(f"NAS address {exc}") from None
    return str(net.network_address) if net.num_addresses == 1 else str(net)


def validate_secret(secret: str) -> str:
    if not isinstance(secret, str) or not secret:
        raise InvalidInput("NAS secret must not be empty")
    if len(secret) > SECRET_MAX:
        raise InvalidInput(f"NAS secret is longer than {SECRET_MAX} characters")
    return secret


def validate_vendor(vendor: str) -> Vendor:
    try:
        return Vendor(str(vendor).lower())
    except ValueError:
        raise InvalidInput(f"vendor {vendor!r} is not one of "
                           + ", ".join(v.value for v in Vendor)) from None


def validate_port(port: int, what: str = "CoA port") -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidInput(f"{what} {port!r} must be 1..65535")
    return port


def validate_positive(value: int | None, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= INT_MAX:
        raise InvalidInput(f"{what} {value!r} must be a whole number 1..{INT_MAX}")
    return value


def validate_rate_limit(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        up, down, _, _ = parse_rate_limit(value)
    except ValueError as exc:
        raise InvalidInput(f"rate limit {exc}") from None
    return f"{up}/{down}"


def validate_framed_protocol(value: str | None) -> str | None:
    """A Framed-Protocol value name from the dictionary (PPP, SLIP, ...), or none."""
    if value is None or value.strip().lower() in NONE_WORDS:
        return None
    names = list(load_dictionary().attributes["Framed-Protocol"].values.forward)
    for name in names:
        if name.lower() == value.strip().lower():
            return str(name)
    raise InvalidInput(f"framed protocol {value!r} is not one of none, " + ", ".join(names))


def validate_static_ip(value: str | None) -> str | None:
    """Framed-IP-Address is an IPv4 attribute, so a static address must be IPv4."""
    if value is None:
        return None
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        raise InvalidInput(f"static IP {value!r} is not an IP address") from None
    if ip.version != 4:
        raise InvalidInput(f"static IP {value!r}: Framed-IP-Address is IPv4 only")
    return str(ip)


def validate_status(value: str | SubscriberStatus) -> SubscriberStatus:
    try:
        return SubscriberStatus(str(value).lower())
    except ValueError:
        raise InvalidInput(f"status {value!r} is not one of "
                           + ", ".join(s.value for s in SubscriberStatus)) from None


def parse_reply_attribute(text: str) -> tuple[str, str]:
    """'Attr=Value' checked the way the server will send it: it must encode in a reply."""
    attr, sep, value = text.partition("=")
    attr, value = attr.strip(), value.strip()
    if not sep or not attr:
        raise InvalidInput(f"reply attribute {_short(text)} is not of the form Attr=Value")
    validate_reply_attributes([(attr, value)])
    return attr, value


def validate_reply_attributes(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    dictionary = load_dictionary()
    request = pyrad.packet.AuthPacket(code=pyrad.packet.AccessRequest, secret=b"validate",
                                      dict=dictionary, authenticator=bytes(16))
    reply = request.CreateReply()
    reply.code = pyrad.packet.AccessAccept
    out: list[tuple[str, str]] = []
    names = _attribute_names()
    for attr, value in pairs:
        base, colon, tag = attr.partition(":")
        if base.lower() not in names:
            raise InvalidInput(f"reply attribute {attr!r} is not in the RADIUS dictionary")
        base = names[base.lower()]
        attr = base + colon + tag
        if base in RESERVED_REPLY_ATTRIBUTES:
            raise InvalidInput(f"reply attribute {attr!r} is set by the server itself")
        if value == "":
            raise InvalidInput(f"reply attribute {attr!r} has an empty value")
        try:
            reply.AddAttribute(attr, value)
        except Exception as exc:  # pyrad raises TypeError/ValueError/KeyError/... per type
            raise InvalidInput(f"reply attribute {attr}={_short(value)} cannot be encoded "
                               f"({dictionary.attributes[base].type}): {exc}") from None
        out.append((attr, value))
    try:
        reply.ReplyPacket()
    except Exception as exc:
        raise InvalidInput(f"reply attributes do not fit in a RADIUS packet: {exc}") from None
    return tuple(out)


@lru_cache(maxsize=1)
def _attribute_names() -> dict[str, str]:
    """Lower-case name -> dictionary spelling, so 'session-timeout' is accepted as typed."""
    return {name.lower(): name for name in load_dictionary().attributes}


def _nullable(value: Any) -> Any:
    """'none' / '' from a form or the command line mean: clear this field."""
    if isinstance(value, str) and (value.strip().lower() in NONE_WORDS or not value.strip()):
        return None
    return value


# --------------------------------------------------------------------------- credentials


def hash_credentials(password: str) -> Credentials:
    """Hash a new password for every method radbill can verify (slow: ~70 ms of argon2)."""
    validate_password(password)
    return Credentials(password_hash=hash_password(password),
                       nt_hash=nt_password_hash(password).hex(),
                       cleartext=password)


def validate_password_hash(value: str) -> str:
    try:
        argon2.extract_parameters(value)
    except Exception:
        raise InvalidInput("password_hash is not an argon2 hash ($argon2id$...)") from None
    return value


def validate_nt_hash(value: str) -> str:
    if not _NT_HASH.match(value):
        raise InvalidInput("nt_hash must be 32 hexadecimal digits (MD4 of the UTF-16LE password)")
    return value.lower()


# --------------------------------------------------------------------------- NAS


def _nas_info(row: Nas) -> NasInfo:
    return NasInfo(id=row.id, name=row.name, address=row.address, secret=row.secret,
                   vendor=Vendor(row.vendor).value,
                   require_message_authenticator=row.require_message_authenticator,
                   coa_port=row.coa_port, description=row.description,
                   created_at=row.created_at, updated_at=row.updated_at)


def _nas_row(session: Session, name: str) -> Nas:
    row = session.scalars(select(Nas).where(Nas.name == name)).one_or_none()
    if row is None:
        raise NotFound(f"NAS {name!r} not found")
    return row


def _check_address_free(session: Session, address: str, except_id: int | None = None) -> None:
    other = session.scalars(select(Nas).where(Nas.address == address)).first()
    if other is not None and other.id != except_id:
        raise AlreadyExists(f"address {address} already belongs to NAS {other.name!r}")


def _flush(session: Session, what: str) -> None:
    try:
        session.flush()
    except IntegrityError:
        raise AlreadyExists(f"{what} already exists") from None


def thd_add_nas(session: Session, name: str, address: str, secret: str,
                vendor: str = Vendor.GENERIC.value, coa_port: int = 3799,
                require_message_authenticator: bool = True, description: str = "") -> NasInfo:
    name = validate_name(name, "NAS")
    row = Nas(name=name, address=validate_address(address), secret=validate_secret(secret),
              vendor=validate_vendor(vendor), coa_port=validate_port(coa_port),
              require_message_authenticator=bool(require_message_authenticator),
              description=_text(description, "description", DESCRIPTION_MAX, allow_empty=True,
                              multiline=True))
    if session.scalars(select(Nas.id).where(Nas.name == name)).first() is not None:
        raise AlreadyExists(f"NAS {name!r} already exists")
    _check_address_free(session, row.address)
    session.add(row)
    _flush(session, f"NAS {name!r}")
    return _nas_info(row)


NAS_FIELDS = frozenset({"address", "secret", "vendor", "coa_port",
                        "require_message_authenticator", "description"})


def thd_update_nas(session: Session, name: str, changes: Mapping[str, Any]) -> NasInfo:
    """Change only the fields present in ``changes``."""
    unknown = set(changes) - NAS_FIELDS
    if unknown:
        raise InvalidInput("cannot change NAS field(s): " + ", ".join(sorted(unknown)))
    row = _nas_row(session, name)
    if "address" in changes:
        row.address = validate_address(changes["address"])
        _check_address_free(session, row.address, except_id=row.id)
    if "secret" in changes:
        row.secret = validate_secret(changes["secret"])
    if "vendor" in changes:
        row.vendor = validate_vendor(changes["vendor"])
    if "coa_port" in changes:
        row.coa_port = validate_port(changes["coa_port"])
    if "require_message_authenticator" in changes:
        row.require_message_authenticator = bool(changes["require_message_authenticator"])
    if "description" in changes:
        row.description = _text(changes["description"], "description", DESCRIPTION_MAX,
                                allow_empty=True, multiline=True)
    session.flush()
    return _nas_info(row)


def thd_list_nas(session: Session) -> list[NasInfo]:
    return [_nas_info(r) for r in session.scalars(select(Nas).order_by(Nas.name))]


def thd_get_nas(session: Session, name: str) -> NasInfo:
    return _nas_info(_nas_row(session, name))


def _delete(session: Session, row: Any, what: str, instead: str = "") -> None:
    session.delete(row)
    try:
        session.flush()
    except IntegrityError:
        raise InvalidInput(f"cannot remove {what}: other records still refer to it"
                           f"{instead}") from None


def thd_remove_nas(session: Session, name: str) -> NasInfo:
    row = _nas_row(session, name)
    info = _nas_info(row)
    _delete(session, row, f"NAS {name!r}")
    return info


# --------------------------------------------------------------------------- plans


def _plan_info(row: Plan, subscribers: int) -> PlanInfo:
    return PlanInfo(id=row.id, name=row.name, rate_limit=row.rate_limit,
                    session_timeout=row.session_timeout, idle_timeout=row.idle_timeout,
                    interim_interval=row.interim_interval,
                    simultaneous_use=row.simultaneous_use,
                    framed_protocol=row.framed_protocol,
                    reply_attributes=tuple((str(a), str(v)) for a, v in row.extra_reply or []),
                    subscribers=subscribers,
                    created_at=row.created_at, updated_at=row.updated_at)


def _plan_row(session: Session, name: str) -> Plan:
    row = session.scalars(select(Plan).where(Plan.name == name)).one_or_none()
    if row is None:
        raise NotFound(f"plan {name!r} not found")
    return row


def _plan_users(session: Session, plan_id: int) -> int:
    return int(session.scalar(select(func.count()).select_from(Subscriber)
                              .where(Subscriber.plan_id == plan_id)) or 0)


PLAN_FIELDS = frozenset({"rate_limit", "session_timeout", "idle_timeout", "interim_interval",
                         "simultaneous_use", "framed_protocol", "reply_attributes"})
_PLAN_INTS = {"session_timeout": "session timeout", "idle_timeout": "idle timeout",
              "interim_interval": "interim interval", "simultaneous_use": "simultaneous use"}


def _apply_plan(row: Plan, changes: Mapping[str, Any]) -> None:
    unknown = set(changes) - PLAN_FIELDS
    if unknown:
        raise InvalidInput("cannot change plan field(s): " + ", ".join(sorted(unknown)))
    if "rate_limit" in changes:
        row.rate_limit = validate_rate_limit(_nullable(changes["rate_limit"]))
    for key, what in _PLAN_INTS.items():
        if key in changes:
            setattr(row, key, validate_positive(_nullable(changes[key]), what))
    if "framed_protocol" in changes:
        protocol = validate_framed_protocol(changes["framed_protocol"])
        # The column defaults to PPP, and the ORM lets an INSERT default replace a
        # plain None; null() writes the NULL that means "not a framed service".
        row.framed_protocol = protocol if protocol is not None else null()
    if "reply_attributes" in changes:
        pairs = [parse_reply_attribute(p) if isinstance(p, str) else (str(p[0]), str(p[1]))
                 for p in changes["reply_attributes"] or ()]
        row.extra_reply = [list(p) for p in validate_reply_attributes(pairs)]


def thd_add_plan(session: Session, name: str, rate_limit: str | None = None,
                 session_timeout: int | None = None, idle_timeout: int | None = None,
                 interim_interval: int | None = None, simultaneous_use: int | None = None,
                 framed_protocol: str | None = "PPP",
                 reply_attributes: Sequence[str] = ()) -> PlanInfo:
    """``reply_attributes`` are 'Attr=Value' strings, checked against the dictionary."""
    name = validate_name(name, "plan")
    if name.lower() in NONE_WORDS:
        raise InvalidInput(f"plan name {name!r} is reserved (it means 'no plan')")
    row = Plan(name=name)
    _apply_plan(row, {"rate_limit": rate_limit, "session_timeout": session_timeout,
                      "idle_timeout": idle_timeout, "interim_interval": interim_interval,
                      "simultaneous_use": simultaneous_use, "framed_protocol": framed_protocol,
                      "reply_attributes": list(reply_attributes)})
    if session.scalars(select(Plan.id).where(Plan.name == name)).first() is not None:
        raise AlreadyExists(f"plan {name!r} already exists")
    session.add(row)
    _flush(session, f"plan {name!r}")
    return _plan_info(row, 0)


def thd_update_plan(session: Session, name: str, changes: Mapping[str, Any]) -> PlanInfo:
    """Change only the fields present; None (or 'none') clears a field."""
    row = _plan_row(session, name)
    _apply_plan(row, changes)
    session.flush()
    return _plan_info(row, _plan_users(session, row.id))


def thd_list_plans(session: Session) -> list[PlanInfo]:
    counts = dict(session.execute(select(Subscriber.plan_id, func.count())
                                  .where(Subscriber.plan_id.is_not(None))
                                  .group_by(Subscriber.plan_id)).all())
    return [_plan_info(r, int(counts.get(r.id, 0)))
            for r in session.scalars(select(Plan).order_by(Plan.name))]


def thd_get_plan(session: Session, name: str) -> PlanInfo:
    row = _plan_row(session, name)
    return _plan_info(row, _plan_users(session, row.id))


def thd_remove_plan(session: Session, name: str) -> PlanInfo:
    row = _plan_row(session, name)
    users = _plan_users(session, row.id)
    if users:
        raise InvalidInput(f"plan {name!r} is used by {users} subscriber"
                           f"{'s' if users != 1 else ''}; move them to another plan first")
    info = _plan_info(row, 0)
    _delete(session, row, f"plan {name!r}")
    return info


# --------------------------------------------------------------------------- subscribers


def _subscriber_info(row: Subscriber, plan_name: str | None) -> SubscriberInfo:
    return SubscriberInfo(id=row.id, login=row.login, status=SubscriberStatus(row.status).value,
                          plan=plan_name, static_ip=row.static_ip,
                          description=row.description or "",
                          pap=bool(row.password_hash or row.nt_hash), mschap=bool(row.nt_hash),
                          chap=bool(row.chap_enabled and row.cleartext_password),
                          created_at=row.created_at, updated_at=row.updated_at)


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
                       description: str = "") -> SubscriberInfo:
    """``credentials`` come from :func:`hash_credentials`, outside the transaction."""
    login = validate_login(login)
    row = Subscriber(login=login, status=validate_status(status),
                     plan_id=_plan_id(session, plan), static_ip=validate_static_ip(static_ip),
                     description=_text(description, "description", DESCRIPTION_MAX,
                                       allow_empty=True, multiline=True))
    _store_credentials(row, credentials, chap)
    if session.scalars(select(Subscriber.id).where(Subscriber.login == login)).first():
        raise AlreadyExists(f"subscriber {login!r} already exists")
    _check_static_ip_free(session, row.static_ip)
    session.add(row)
    _flush(session, f"subscriber {login!r}")
    return _subscriber_info(row, plan)


def thd_list_subscribers(session: Session, status: str | None = None, plan: str | None = None,
                         login_prefix: str | None = None, limit: int | None = None,
                         offset: int = 0) -> list[SubscriberInfo]:
    """Ordered by login. ``plan='none'`` lists subscribers without a plan."""
    query = select(Subscriber, Plan.name).outerjoin(Plan, Subscriber.plan_id == Plan.id)
    if status is not None:
        query = query.where(Subscriber.status == validate_status(status))
    if plan is not None:
        if plan.lower() in NONE_WORDS:
            query = query.where(Subscriber.plan_id.is_(None))
        else:
            query = query.where(Subscriber.plan_id == _plan_id(session, plan))
    if login_prefix:
        # startswith() alone is case-insensitive on SQLite's LIKE; the substr
        # comparison makes both databases agree on an exact, case-sensitive prefix.
        query = query.where(Subscriber.login.startswith(login_prefix, autoescape=True),
                            func.substr(Subscriber.login, 1, len(login_prefix)) == login_prefix)
    if limit is not None and limit < 0:
        raise InvalidInput(f"limit {limit} must be 0 or greater")
    if offset < 0:
        raise InvalidInput(f"offset {offset} must be 0 or greater")
    query = query.order_by(Subscriber.login).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [_subscriber_info(row, name) for row, name in session.execute(query).all()]


def thd_get_subscriber(session: Session, login: str) -> SubscriberInfo:
    row = _subscriber_row(session, login)
    return _subscriber_info(row, _plan_name(session, row.plan_id))


def thd_set_password(session: Session, login: str, credentials: Credentials,
                     chap: bool | None = None) -> SubscriberInfo:
    """New password; ``chap=None`` keeps CHAP as it was (storing the new cleartext if on)."""
    row = _subscriber_row(session, login)
    _store_credentials(row, credentials, row.chap_enabled if chap is None else chap)
    session.flush()
    return _subscriber_info(row, _plan_name(session, row.plan_id))


def thd_disable_chap(session: Session, login: str) -> SubscriberInfo:
    """Turn CHAP off and drop the reversible copy of the password."""
    row = _subscriber_row(session, login)
    row.chap_enabled = False
    row.cleartext_password = None
    session.flush()
    return _subscriber_info(row, _plan_name(session, row.plan_id))


def thd_set_status(session: Session, login: str, status: str) -> SubscriberInfo:
    row = _subscriber_row(session, login)
    row.status = validate_status(status)
    session.flush()
    return _subscriber_info(row, _plan_name(session, row.plan_id))


SUBSCRIBER_FIELDS = frozenset({"plan", "static_ip", "description", "status"})


def thd_update_subscriber(session: Session, login: str,
                          changes: Mapping[str, Any]) -> SubscriberInfo:
    """Change plan, static IP, description or status; None (or 'none') clears plan/IP."""
    unknown = set(changes) - SUBSCRIBER_FIELDS
    if unknown:
        raise InvalidInput("cannot change subscriber field(s): " + ", ".join(sorted(unknown)))
    row = _subscriber_row(session, login)
    if "plan" in changes:
        row.plan_id = _plan_id(session, _nullable(changes["plan"]))
    if "static_ip" in changes:
        row.static_ip = validate_static_ip(_nullable(changes["static_ip"]))
        _check_static_ip_free(session, row.static_ip, except_id=row.id)
    if "description" in changes:
        row.description = _text(changes["description"], "description", DESCRIPTION_MAX,
                                allow_empty=True, multiline=True)
    if "status" in changes:
        row.status = validate_status(changes["status"])
    session.flush()
    return _subscriber_info(row, _plan_name(session, row.plan_id))


def thd_remove_subscriber(session: Session, login: str) -> SubscriberInfo:
    row = _subscriber_row(session, login)
    info = _subscriber_info(row, _plan_name(session, row.plan_id))
    # A billing account, its ledger and its sessions are history that must outlive the
    # login (audit, disputes, tax), so the foreign keys refuse; say what to do instead.
    _delete(session, row, f"subscriber {login!r}",
            f" (ledger, sessions or leases); 'radbill subscriber disable {login}' closes the "
            "account and keeps its history")
    return info


# --------------------------------------------------------------------------- bulk import

IMPORT_REQUIRED = ("login",)
IMPORT_COLUMNS = ("login", "password", "password_hash", "nt_hash", "plan", "chap",
                  "static_ip", "status", "description")
_TRUE = {"1", "yes", "y", "true", "t", "on"}
_FALSE = {"", "0", "no", "n", "false", "f", "off"}


class _RowProblem(Exception):
    """A bad cell: which column, and what is wrong with it."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


class _Problems:
    """Collects row errors so one run reports the first one and how many more there are."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, line: int, column: str, message: str) -> None:
        self.items.append(f"line {line}, {column}: {message}")

    def raise_if_any(self) -> None:
        if self.items:
            more = len(self.items) - 1
            suffix = f" (and {more} more problem{'s' if more != 1 else ''})" if more else ""
            raise InvalidInput(self.items[0] + suffix + "; nothing was imported")


def _bool_cell(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InvalidInput(f"{value!r} is not yes/no")


def _import_row(line: int, cells: Mapping[str, str]) -> ImportRow:
    """One CSV row to an ImportRow, or _RowProblem naming the bad column."""

    def cell(name: str) -> str:
        return (cells.get(name) or "").strip()

    def check(column: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except InvalidInput as exc:
            raise _RowProblem(column, str(exc)) from None

    login = check("login", lambda: validate_login(cells.get("login") or ""))
    password = cells.get("password") or None  # passwords are taken verbatim, blanks included
    password_hash = cell("password_hash") or None
    nt_hash = cell("nt_hash") or None
    if password is not None:
        check("password", lambda: validate_password(password))
        if password_hash or nt_hash:
            raise _RowProblem("password", "give either password or password_hash/nt_hash,"
                               " not both")
    elif password_hash is None and nt_hash is None:
        raise _RowProblem("password", "must not be empty")
    if password_hash is not None:
        check("password_hash", lambda: validate_password_hash(password_hash))
    if nt_hash is not None:
        given_nt = nt_hash
        nt_hash = check("nt_hash", lambda: validate_nt_hash(given_nt))
    chap = check("chap", lambda: _bool_cell(cell("chap")))
    if chap and password is None:
        raise _RowProblem("chap", "CHAP needs the cleartext password column")
    return ImportRow(
        line=line, login=login, plan=cell("plan") or None,
        status=check("status", lambda: validate_status(cell("status") or "active")),
        static_ip=check("static_ip", lambda: validate_static_ip(cell("static_ip") or None)),
        chap=chap,
        description=check("description", lambda: _text(cell("description"), "description",
                                                        DESCRIPTION_MAX, allow_empty=True,
                                                        multiline=True)),
        password=password, password_hash=password_hash, nt_hash=nt_hash)


def read_import_csv(stream: TextIO) -> list[ImportRow]:
    """Parse and check every row of a subscriber CSV before anything touches the database.

    The header row names the columns (any order): ``login`` and ``password``
    (or pre-hashed ``password_hash`` and/or ``nt_hash``), optionally ``plan``,
    ``chap``, ``static_ip``, ``status``, ``description``. Logins and static IPs
    must be unique within the file. Errors name the line and the column.
    """
    reader = csv.reader(stream)
    try:
        header = next(reader, None)
        if header is None:
            raise InvalidInput("line 1: the file is empty; expected a header row"
                               " (login,password,...)")
        columns = [h.strip().lower() for h in header]
        unknown = [c for c in columns if c not in IMPORT_COLUMNS]
        if unknown:
            raise InvalidInput(f"line 1: unknown column {unknown[0]!r}; columns are "
                               + ", ".join(IMPORT_COLUMNS))
        duplicated = {c for c in columns if columns.count(c) > 1}
        if duplicated:
            raise InvalidInput(f"line 1: column {sorted(duplicated)[0]!r} appears twice")
        if "login" not in columns or not {"password", "password_hash", "nt_hash"} & set(columns):
            raise InvalidInput("line 1: the header must name at least the columns login"
                               " and password (or password_hash)")
        problems = _Problems()
        rows: list[ImportRow] = []
        first_line: dict[str, int] = {}
        first_ip: dict[str, int] = {}
        for record in reader:
            line = reader.line_num - record_lines(record) + 1
            if not record or all(not c.strip() for c in record):
                continue
            if len(record) != len(columns):
                problems.add(line, "row", f"has {len(record)} fields, the header has "
                             f"{len(columns)} (quote values that contain commas, such as"
                             " argon2 hashes)")
                continue
            try:
                row = _import_row(line, dict(zip(columns, record, strict=True)))
            except _RowProblem as exc:
                problems.add(line, exc.column, exc.message)
                continue
            if row.login in first_line:
                problems.add(line, "login", f"{row.login!r} is already on line "
                             f"{first_line[row.login]}")
                continue
            first_line[row.login] = line
            if row.static_ip is not None:
                if row.static_ip in first_ip:
                    problems.add(line, "static_ip", f"{row.static_ip} is already on line "
                                 f"{first_ip[row.static_ip]}")
                    continue
                first_ip[row.static_ip] = line
            rows.append(row)
    except csv.Error as exc:
        raise InvalidInput(f"line {reader.line_num}: not valid CSV: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"near line {reader.line_num + 1}: not valid UTF-8 text"
                           f" ({exc.reason})") from None
    problems.raise_if_any()
    if not rows:
        raise InvalidInput("no subscribers in the file (only a header row)")
    return rows


def record_lines(record: Sequence[str]) -> int:
    """How many physical lines a parsed record spanned (quoted fields may hold newlines)."""
    return 1 + sum(value.count("\n") for value in record)


def _chunks(values: Sequence[str], size: int = _IN_CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def thd_check_import(session: Session, rows: Sequence[ImportRow]) -> dict[str, int]:
    """Check rows against the database (plans exist, logins and static IPs free).

    Read-only, so the CLI can run it before spending minutes on argon2; the
    import transaction runs it again. Returns plan name -> id.
    """
    problems = _Problems()
    plan_names = sorted({r.plan for r in rows if r.plan is not None})
    plans: dict[str, int] = {}
    for chunk in _chunks(plan_names):
        plans.update(session.execute(select(Plan.name, Plan.id)
                                     .where(Plan.name.in_(chunk))).all())
    taken: set[str] = set()
    logins = [r.login for r in rows]
    for chunk in _chunks(logins):
        taken.update(session.scalars(select(Subscriber.login)
                                     .where(Subscriber.login.in_(chunk))))
    ips = [r.static_ip for r in rows if r.static_ip is not None]
    ip_owner: dict[str, str] = {}
    for chunk in _chunks(ips):
        for ip, owner in session.execute(select(Subscriber.static_ip, Subscriber.login)
                                         .where(Subscriber.static_ip.in_(chunk))).all():
            ip_owner[str(ip)] = owner
    for r in rows:
        if r.plan is not None and r.plan not in plans:
            problems.add(r.line, "plan", f"plan {r.plan!r} not found")
        if r.login in taken:
            problems.add(r.line, "login", f"subscriber {r.login!r} already exists")
        if r.static_ip is not None and r.static_ip in ip_owner:
            problems.add(r.line, "static_ip", f"{r.static_ip} is already assigned to "
                         f"subscriber {ip_owner[r.static_ip]!r}")
    problems.raise_if_any()
    return plans


def _hash_row(row: ImportRow, argon2_now: bool = False) -> ImportRow:
    """The NT hash always (microseconds); argon2 only with ``argon2_now`` (~70 ms a row).

    Without argon2_now the subscriber's argon2 hash is stored at its first
    successful PAP login (aaa.password_upgrade), so 10,000 rows import in
    seconds instead of a quarter of an hour.
    """
    if not row.needs_hashing:
        return row
    assert row.password is not None
    validate_password(row.password)
    return replace(row, nt_hash=nt_password_hash(row.password).hex(),
                   password_hash=hash_password(row.password) if argon2_now else None)


def hash_import_rows(rows: Sequence[ImportRow], workers: int | None = None,
                     progress: Callable[[int], None] | None = None,
                     argon2_now: bool = False) -> list[ImportRow]:
    """Hash every plain password, in parallel threads when argon2 is computed now.

    ``workers`` defaults to the CPU count: each argon2 hash already uses several
    lanes and 64 MiB, so more threads than cores only add memory.
    ``progress(n)`` is called as passwords are hashed (for a progress bar).
    """
    workers = workers or os.cpu_count() or 1
    pending = [r for r in rows if r.needs_hashing]
    done: dict[int, ImportRow] = {}
    if pending:
        with ThreadPoolExecutor(max_workers=workers if argon2_now else 1,
                                thread_name_prefix="radbill-hash") as pool:
            for hashed in pool.map(lambda r: _hash_row(r, argon2_now), pending):
                done[hashed.line] = hashed
                if progress:
                    progress(1)
    return [done.get(r.line, r) for r in rows]


def thd_import_subscribers(session: Session, rows: Sequence[ImportRow]) -> ImportResult:
    """Insert all rows or none, with one bulk INSERT.

    Rows come from :func:`read_import_csv`; run :func:`hash_import_rows`
    first for speed (rows still holding only a plain password are hashed
    here, serially, which suits a handful of rows from a web form).
    """
    plans = thd_check_import(session, rows)
    hashed = sum(1 for r in rows if r.needs_hashing)
    now = utcnow()
    values: list[dict[str, Any]] = []
    for r in rows:
        r = _hash_row(r)
        values.append({
            "login": r.login, "status": r.status,
            "plan_id": plans[r.plan] if r.plan is not None else None,
            "password_hash": r.password_hash, "nt_hash": r.nt_hash,
            "chap_enabled": r.chap, "cleartext_password": r.password if r.chap else None,
            "static_ip": r.static_ip, "description": r.description,
            "created_at": now, "updated_at": now,
        })
    if values:
        try:
            session.execute(insert(Subscriber), values)
        except IntegrityError:
            raise AlreadyExists("the database refused the import (a login was added or a plan"
                                " removed meanwhile); nothing was imported") from None
    return ImportResult(imported=len(values), hashed=hashed)

