"""Import a FreeRADIUS SQL database (and daloRADIUS's tables) into radbill.

Reads Debian's FreeRADIUS 3 schema (``mods-config/sql/main/mysql/schema.sql``: ``nas``,
``radcheck``, ``radreply``, ``radgroupcheck``, ``radgroupreply``, ``radusergroup``; the
ippool schema's ``radippool``; optionally ``radacct``) and daloRADIUS's ``userinfo`` and
``userbillinfo``, and turns them into radbill's NAS clients, plans (one per group),
subscribers, pools and closed-session history.

Three steps, so a dry run is the real thing minus the writes: :func:`read_source` reads
the source into plain rows, :func:`plan_import` maps them (pure, no database) into what
radbill would hold plus every attribute it could not map and why, and
:func:`thd_apply_import` creates, in one transaction, whatever does not exist yet. Running
it again creates nothing: NAS entries, plans, subscribers and pools are matched by name
(and NAS address), history by FreeRADIUS's acctuniqueid.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import netaddr
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from aaa.admin.importing import ImportRow, thd_import_subscribers
from aaa.admin.nas import thd_add_nas
from aaa.admin.plans import thd_add_plan
from aaa.admin.validate import (
    DESCRIPTION_MAX,
    validate_address,
    validate_login,
    validate_name,
    validate_rate_limit,
    validate_reply_attributes,
    validate_static_ip,
)
from aaa.legacy_passwords import LEGACY_ATTRIBUTES, UnmappablePassword, from_freeradius
from aaa.legacy_passwords import split_header as split_password_header
from aaa.mschap import nt_password_hash
from accounting.models import AcctSession
from core.db.models import Nas, Plan, Subscriber, SubscriberStatus, Vendor
from core.errors import InvalidInput, RadbillError
from pools.manage import NewPool, thd_add_pool, thd_assign_static, thd_attach
from pools.models import Pool, PoolKind

#: FreeRADIUS nas.type -> radbill vendor (anything else is generic, and reported).
NAS_TYPES = {"cisco": Vendor.CISCO, "mikrotik": Vendor.MIKROTIK, "juniper": Vendor.JUNIPER,
             "accel-ppp": Vendor.ACCEL_PPP, "accel": Vendor.ACCEL_PPP, "other": Vendor.GENERIC}
#: Group reply attributes that become plan fields (lower case).
PLAN_REPLY = {"mikrotik-rate-limit": "rate_limit", "session-timeout": "session_timeout",
              "idle-timeout": "idle_timeout", "acct-interim-interval": "interim_interval",
              "framed-protocol": "framed_protocol"}
#: Reply attributes radbill sends by itself: mapped by being dropped.
IMPLIED_REPLY = {"service-type"}
#: daloRADIUS disables a user by putting them in this group (with Auth-Type := Reject).
DALO_DISABLED_GROUP = "daloRADIUS-Disabled-Users"
HISTORY_BATCH = 1000


class SourceError(RadbillError):
    """The source database cannot be read as a FreeRADIUS schema."""


@dataclass(frozen=True)
class Unmapped:
    """Something in the source radbill does not carry over, and why."""

    where: str  # "user alice", "group gold", "nas 10.0.0.1", "pool main", "radacct"
    attribute: str
    value: str
    reason: str


@dataclass(frozen=True)
class NasSpec:
    name: str
    address: str
    secret: str = field(repr=False)
    vendor: Vendor
    description: str


@dataclass(frozen=True)
class PlanSpec:
    name: str
    rate_limit: str | None = None
    session_timeout: int | None = None
    idle_timeout: int | None = None
    interim_interval: int | None = None
    simultaneous_use: int | None = None
    framed_protocol: str | None = "PPP"
    reply_attributes: tuple[str, ...] = ()
    pools: tuple[str, ...] = ()


@dataclass(frozen=True)
class PoolSpec:
    name: str
    ranges: tuple[str, ...]
    size: int


@dataclass(frozen=True)
class SubscriberSpec:
    login: str
    plan: str | None
    status: SubscriberStatus
    methods: tuple[str, ...]  # "cleartext", "nt", "legacy" - for the report
    static_ip: str | None
    description: str
    password: str | None = field(default=None, repr=False)
    nt_hash: str | None = field(default=None, repr=False)
    legacy_hash: str | None = field(default=None, repr=False)


@dataclass
class Source:
    """The source tables as plain rows (dicts with lower-case keys); absent tables empty."""

    nas: list[dict[str, Any]] = field(default_factory=list)
    radcheck: list[dict[str, Any]] = field(default_factory=list)
    radreply: list[dict[str, Any]] = field(default_factory=list)
    radgroupcheck: list[dict[str, Any]] = field(default_factory=list)
    radgroupreply: list[dict[str, Any]] = field(default_factory=list)
    radusergroup: list[dict[str, Any]] = field(default_factory=list)
    radippool: list[dict[str, Any]] = field(default_factory=list)
    userinfo: list[dict[str, Any]] = field(default_factory=list)
    userbillinfo: list[dict[str, Any]] = field(default_factory=list)
    history: int = 0  # closed radacct rows (read in batches when applied)
    open_sessions: int = 0
    missing: list[str] = field(default_factory=list)


@dataclass
class ImportPlan:
    nas: list[NasSpec] = field(default_factory=list)
    plans: list[PlanSpec] = field(default_factory=list)
    pools: list[PoolSpec] = field(default_factory=list)
    subscribers: list[SubscriberSpec] = field(default_factory=list)
    history: int = 0
    unmapped: list[Unmapped] = field(default_factory=list)

    def skip(self, where: str, attribute: str, value: object, reason: str) -> None:
        self.unmapped.append(Unmapped(where, attribute, str(value), reason))


@dataclass(frozen=True)
class ImportReport:
    """What the import created (or, dry-run, would create) and what it left out."""

    dry_run: bool
    created: Mapping[str, Sequence[str]]  # kind -> names created
    existing: Mapping[str, Sequence[str]]  # kind -> names already in radbill
    history: int
    unmapped: Sequence[Unmapped]


# -- reading ------------------------------------------------------------------------------

REQUIRED = ("radcheck", "radreply", "radgroupcheck", "radgroupreply", "radusergroup")
OPTIONAL = ("nas", "radippool", "userinfo", "userbillinfo")


def read_source(engine: Engine, history: bool = False, daloradius: bool = False) -> Source:
    """Every table the import reads, as plain rows; radacct is only counted here."""
    try:
        names = set(inspect(engine).get_table_names())
    except Exception as exc:
        raise SourceError(f"cannot read the source database: {exc}") from None
    missing = [t for t in REQUIRED if t not in names]
    if missing:
        raise SourceError("not a FreeRADIUS SQL database: no table " + ", ".join(missing))
    src = Source()
    wanted = list(REQUIRED) + [t for t in OPTIONAL
                               if daloradius or t not in ("userinfo", "userbillinfo")]
    with engine.connect() as conn:
        for table in wanted:
            if table not in names:
                src.missing.append(table)
                continue
            rows = conn.execute(text(f"SELECT * FROM {table} ORDER BY 1")).mappings()
            setattr(src, table, [{k.lower(): v for k, v in r.items()} for r in rows])
        if "radacct" in names:
            src.open_sessions = int(conn.execute(text(
                "SELECT COUNT(*) FROM radacct WHERE acctstoptime IS NULL")).scalar_one())
            if history:
                src.history = int(conn.execute(text(
                    "SELECT COUNT(*) FROM radacct WHERE acctstoptime IS NOT NULL")).scalar_one())
        elif history:
            src.missing.append("radacct")
    return src


# -- mapping ------------------------------------------------------------------------------


def _int(value: object) -> int | None:
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if number > 0 else None


def _map_nas(src: Source, out: ImportPlan) -> None:
    seen: set[str] = set()
    for row in src.nas:
        where = f"nas {row.get('nasname')}"
        try:
            address = validate_address(str(row.get("nasname") or ""))
        except InvalidInput as exc:
            out.skip(where, "nasname", row.get("nasname"), f"{exc} (host names are not "
                     "supported: use the NAS's address)")
            continue
        name = str(row.get("shortname") or address).strip()
        try:
            name = validate_name(name.replace(" ", "-"), "NAS")
        except InvalidInput:
            name = validate_name(address.replace("/", "_").replace(":", "-"), "NAS")
        if name in seen:
            name = validate_name(f"{name}-{row.get('id')}", "NAS")
        seen.add(name)
        kind = str(row.get("type") or "other").lower()
        vendor = NAS_TYPES.get(kind)
        if vendor is None:
            out.skip(where, "type", kind, "no radbill vendor profile; imported as generic "
                     "(set it with 'radbill nas set --vendor')")
            vendor = Vendor.GENERIC
        for column in ("ports", "server", "community"):
            if row.get(column) not in (None, "", 0):
                out.skip(where, column, row.get(column), "not used by radbill")
        out.nas.append(NasSpec(name=name, address=address, secret=str(row.get("secret") or ""),
                               vendor=vendor,
                               description=str(row.get("description") or "")[:DESCRIPTION_MAX]))


def _plan_from_group(group: str, checks: list[dict[str, Any]], replies: list[dict[str, Any]],
                     out: ImportPlan) -> PlanSpec | None:
    where = f"group {group}"
    try:
        name = validate_name(group, "plan")
    except InvalidInput as exc:
        out.skip(where, "groupname", group, str(exc))
        return None
    fields: dict[str, Any] = {}
    extra: list[tuple[str, str]] = []
    pools: list[str] = []
    for row in replies:
        attr, value = str(row["attribute"]), str(row["value"])
        key = attr.lower()
        if key in PLAN_REPLY:
            target = PLAN_REPLY[key]
            if target == "rate_limit":
                try:
                    fields[target] = validate_rate_limit(value)
                except InvalidInput as exc:
                    out.skip(where, attr, value, f"{exc}; only 'RX/TX' carries over")
                    continue
            elif target == "framed_protocol":
                fields[target] = value
            else:
                number = _int(value)
                if number is None:
                    out.skip(where, attr, value, "not a positive number of seconds")
                    continue
                fields[target] = number
        elif key in IMPLIED_REPLY:
            continue
        elif key == "framed-pool":
            pools.append(value)
            extra.append((attr, value))
        else:
            try:
                validate_reply_attributes([(attr, value)])
            except InvalidInput as exc:
                out.skip(where, attr, value, str(exc))
                continue
            extra.append((attr, value))
    for row in checks:
        attr, value, op = str(row["attribute"]), str(row["value"]), str(row.get("op") or "")
        key = attr.lower()
        if key == "simultaneous-use":
            fields["simultaneous_use"] = _int(value)
        elif key == "pool-name":
            pools.append(value)
        elif key == "auth-type" and value.lower() == "reject":
            continue  # handled as subscriber status (disabled)
        else:
            out.skip(where, attr, f"{op} {value}".strip(), "check item not supported on plans")
    return PlanSpec(name=name, reply_attributes=tuple(f"{a}={v}" for a, v in extra),
                    pools=tuple(dict.fromkeys(pools)), **fields)


def _rows_by(rows: Iterable[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[str(row.get(key) or "")].append(row)
    return grouped


def _map_pools(src: Source, out: ImportPlan) -> dict[str, netaddr.IPSet]:
    addresses: dict[str, list[str]] = defaultdict(list)
    for row in src.radippool:
        name, ip = str(row.get("pool_name") or ""), str(row.get("framedipaddress") or "")
        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            out.skip(f"pool {name}", "framedipaddress", ip, "not an IPv4 address")
            continue
        addresses[name].append(ip)
    sets: dict[str, netaddr.IPSet] = {}
    for name, ips in sorted(addresses.items()):
        try:
            validate_name(name, "pool")
        except InvalidInput as exc:
            out.skip(f"pool {name}", "pool_name", name, str(exc))
            continue
        ipset = netaddr.IPSet(ips)
        sets[name] = ipset
        ranges = tuple(str(r.cidrs()[0]) if len(r.cidrs()) == 1 else f"{r[0]}-{r[-1]}"
                       for r in ipset.iter_ipranges())
        out.pools.append(PoolSpec(name=name, ranges=ranges, size=len(ipset)))
    leased = sum(1 for r in src.radippool if r.get("username"))
    if leased:
        out.skip("radippool", "username", f"{leased} leases",
                 "live leases are not copied: each session gets its address again from "
                 "radbill's pool at its next login (static addresses come from radreply)")
    return sets


def _description(info: dict[str, Any] | None, bill: dict[str, Any] | None) -> str:
    if not info and not bill:
        return ""
    merged = {**(bill or {}), **{k: v for k, v in (info or {}).items() if v}}
    name = " ".join(str(merged.get(k) or "").strip() for k in ("firstname", "lastname")).strip()
    parts = [name or str(merged.get("contactperson") or "").strip()]
    for key in ("company", "email", "mobilephone", "workphone", "homephone", "phone",
                "address", "city", "zip", "country", "notes"):
        value = str(merged.get(key) or "").strip()
        if value:
            parts.append(value)
    return ", ".join(p for p in parts if p)[:DESCRIPTION_MAX]


BILLING_COLUMNS = ("paymentmethod", "cash", "creditcardname", "creditcardnumber",
                   "creditcardverification", "creditcardtype", "creditcardexp", "billstatus",
                   "lastbill", "nextbill", "nextinvoicedue", "billdue", "coupon")


def _map_subscribers(src: Source, out: ImportPlan, plans: dict[str, PlanSpec]) -> None:
    checks = _rows_by(src.radcheck, "username")
    replies = _rows_by(src.radreply, "username")
    groups = _rows_by(src.radusergroup, "username")
    info = {str(r.get("username")): r for r in src.userinfo}
    bill = {str(r.get("username")): r for r in src.userbillinfo}
    reject_groups = {str(r["groupname"]) for r in src.radgroupcheck
                     if str(r["attribute"]).lower() == "auth-type"
                     and str(r["value"]).lower() == "reject"} | {DALO_DISABLED_GROUP}
    logins = sorted((set(checks) | set(replies) | set(groups) | set(info)) - {""})
    for login in logins:
        where = f"user {login}"
        try:
            validate_login(login)
        except InvalidInput as exc:
            out.skip(where, "username", login, str(exc))
            continue
        status = SubscriberStatus.ACTIVE
        password: str | None = None
        nt_hash: str | None = None
        legacy: str | None = None
        methods: list[str] = []
        for row in checks.get(login, []):
            attr, value = str(row["attribute"]), str(row["value"])
            key = attr.lower()
            if key == "password-with-header":
                try:
                    key, value = split_password_header(value)
                except UnmappablePassword as exc:
                    out.skip(where, attr, "(hidden)", str(exc))
                    continue
                if key not in ("cleartext-password", "nt-password"):
                    key = "password-with-header"
                    value = str(row["value"])
            if key in ("cleartext-password", "user-password"):
                password = value
            elif key == "nt-password":
                candidate = value.lower().removeprefix("0x")
                if len(candidate) == 32 and all(c in "0123456789abcdef" for c in candidate):
                    nt_hash = candidate
                else:
                    out.skip(where, attr, "(hidden)", "not 32 hexadecimal digits")
            elif key in LEGACY_ATTRIBUTES:
                try:
                    legacy = from_freeradius(attr, value)
                except UnmappablePassword as exc:
                    out.skip(where, attr, "(hidden)", str(exc))
            elif key == "auth-type" and value.lower() == "reject":
                status = SubscriberStatus.DISABLED
            elif key == "lm-password":
                out.skip(where, attr, "(hidden)", "LM hashes are not kept (breakable in seconds)")
            else:
                out.skip(where, attr, f"{row.get('op') or ''} {value}".strip(),
                         "per-user check items are not supported (put them on the plan)")
        if password is not None:
            methods.append("cleartext")
            nt_hash = nt_hash or nt_password_hash(password).hex()
        if nt_hash is not None:
            methods.append("nt")
        if legacy is not None:
            methods.append("legacy")
        if not methods:
            out.skip(where, "password", "", "no usable password: imported, but cannot log in "
                     "until 'radbill subscriber passwd'")
        plan = None
        for row in sorted(groups.get(login, []), key=lambda r: int(r.get("priority") or 0)):
            group = str(row["groupname"])
            if group in reject_groups:
                status = SubscriberStatus.DISABLED
            elif group in plans and plan is None:
                plan = plans[group].name
            elif group in plans:
                out.skip(where, "group", group, f"one plan per subscriber; kept {plan!r} "
                         "(lowest priority number)")
        billed = bill.get(login) or {}
        dalo_plan = str(billed.get("planname") or "").strip()
        if dalo_plan and plan is None and dalo_plan in plans:
            plan = plans[dalo_plan].name
        elif dalo_plan and dalo_plan not in plans:
            out.skip(where, "userbillinfo.planName", dalo_plan, "no group of that name")
        for column in BILLING_COLUMNS:
            if str(billed.get(column) or "").strip() not in ("", "0", "0000-00-00"):
                out.skip(where, f"userbillinfo.{column}", "(not shown)",
                         "daloRADIUS billing data is not imported (set balances with "
                         "'radbill payment add')")
        static_ip = None
        for row in replies.get(login, []):
            attr, value = str(row["attribute"]), str(row["value"])
            if attr.lower() == "framed-ip-address":
                try:
                    static_ip = validate_static_ip(value)
                except InvalidInput as exc:
                    out.skip(where, attr, value, str(exc))
            else:
                out.skip(where, attr, value, "per-user reply attributes are not supported "
                         "(put them on the plan)")
        out.subscribers.append(SubscriberSpec(
            login=login, plan=plan, status=status, methods=tuple(methods), static_ip=static_ip,
            description=_description(info.get(login), billed or None),
            password=password, nt_hash=nt_hash, legacy_hash=legacy))


def plan_import(src: Source) -> ImportPlan:
    """Map the source onto radbill (pure); everything left out is in ``unmapped``."""
    out = ImportPlan(history=src.history)
    _map_nas(src, out)
    _map_pools(src, out)
    pool_names = {p.name for p in out.pools}
    checks = _rows_by(src.radgroupcheck, "groupname")
    replies = _rows_by(src.radgroupreply, "groupname")
    plans: dict[str, PlanSpec] = {}
    for group in sorted((set(checks) | set(replies) | {str(r["groupname"])
                                                        for r in src.radusergroup}) - {""}):
        if group == DALO_DISABLED_GROUP:
            continue
        spec = _plan_from_group(group, checks.get(group, []), replies.get(group, []), out)
        if spec is None:
            continue
        for pool in spec.pools:
            if pool not in pool_names:
                out.skip(f"group {group}", "Pool-Name", pool, "no radippool rows of that pool")
        plans[group] = spec
        out.plans.append(spec)
    _map_subscribers(src, out, plans)
    if src.open_sessions:
        out.skip("radacct", "acctstoptime", f"{src.open_sessions} open sessions",
                 "not copied: the NAS's next Interim-Update or Stop starts them in radbill")
    for table in src.missing:
        out.skip("source", table, "", "table absent")
    return out


# -- applying -----------------------------------------------------------------------------


def _existing(session: Session, column: Any, names: Iterable[str]) -> set[str]:
    wanted = list(names)
    found: set[str] = set()
    for i in range(0, len(wanted), 500):
        found.update(session.scalars(select(column).where(column.in_(wanted[i:i + 500]))))
    return found


def thd_apply_import(session: Session, plan: ImportPlan, *, dry_run: bool,
                     chap: bool = True, source: Engine | None = None) -> ImportReport:
    """Create what does not exist yet, all in this transaction (rolled back on error)."""
    created: dict[str, list[str]] = defaultdict(list)
    existing: dict[str, list[str]] = defaultdict(list)
    nas_names = _existing(session, Nas.name, [n.name for n in plan.nas])
    nas_addresses = _existing(session, Nas.address, [n.address for n in plan.nas])
    for n in plan.nas:
        if n.name in nas_names or n.address in nas_addresses:
            existing["nas"].append(n.name)
            continue
        created["nas"].append(n.name)
        if not dry_run:
            # FreeRADIUS 3 does not require Message-Authenticator by default; NASes that
            # never sent it would be dropped. The report says how to turn it on.
            thd_add_nas(session, n.name, n.address, n.secret, vendor=n.vendor.value,
                        require_message_authenticator=False, description=n.description)
    pool_names = _existing(session, Pool.name, [p.name for p in plan.pools])
    for p in plan.pools:
        if p.name in pool_names:
            existing["pool"].append(p.name)
            continue
        created["pool"].append(p.name)
        if not dry_run:
            thd_add_pool(session, NewPool(name=p.name, kind=PoolKind.IPV4, ranges=p.ranges,
                                          description="imported from FreeRADIUS radippool"))
    plan_names = _existing(session, Plan.name, [p.name for p in plan.plans])
    for p in plan.plans:
        if p.name in plan_names:
            existing["plan"].append(p.name)
            continue
        created["plan"].append(p.name)
        if not dry_run:
            thd_add_plan(session, p.name, rate_limit=p.rate_limit,
                         session_timeout=p.session_timeout, idle_timeout=p.idle_timeout,
                         interim_interval=p.interim_interval,
                         simultaneous_use=p.simultaneous_use,
                         framed_protocol=p.framed_protocol,
                         reply_attributes=p.reply_attributes)
            for pool in p.pools:
                if pool in created["pool"] or pool in existing["pool"]:
                    thd_attach(session, p.name, pool)
    logins = _existing(session, Subscriber.login, [s.login for s in plan.subscribers])
    rows: list[ImportRow] = []
    for line, s in enumerate(plan.subscribers, start=1):
        if s.login in logins:
            existing["subscriber"].append(s.login)
            continue
        created["subscriber"].append(s.login)
        keep_clear = chap and s.password is not None
        rows.append(ImportRow(line=line, login=s.login, plan=s.plan, status=s.status,
                              static_ip=s.static_ip, chap=keep_clear, description=s.description,
                              password=s.password if keep_clear else None,
                              nt_hash=s.nt_hash, legacy_hash=s.legacy_hash))
    if not dry_run and rows:
        thd_import_subscribers(session, rows)
        _reserve_static(session, plan, {r.login for r in rows})
    history = 0
    if plan.history and source is not None:
        history = _copy_history(session, source, dry_run)
    return ImportReport(dry_run=dry_run, created=dict(created), existing=dict(existing),
                        history=history, unmapped=plan.unmapped)


def _reserve_static(session: Session, plan: ImportPlan, logins: set[str]) -> None:
    """A static address inside an imported pool is reserved there, so no one else gets it."""
    sets = {p.name: netaddr.IPSet(netaddr.IPRange(*r.split("-")) if "-" in r
                                  else netaddr.IPNetwork(r) for r in p.ranges)
            for p in plan.pools}
    for s in plan.subscribers:
        if s.login not in logins or s.static_ip is None:
            continue
        for name, ipset in sets.items():
            if s.static_ip in ipset:
                thd_assign_static(session, name, s.login, s.static_ip)


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    # FreeRADIUS's queries.conf writes FROM_UNIXTIME() in the server's time zone; Debian's
    # MariaDB runs in UTC by default, and radbill stores UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _copy_history(session: Session, source: Engine, dry_run: bool) -> int:
    """Closed radacct rows become closed sessions (idempotent on acctuniqueid)."""
    nas_ids = dict(session.execute(select(Nas.address, Nas.id)).all())
    subs = dict(session.execute(select(Subscriber.login, Subscriber.id)).all())
    table = AcctSession.__table__
    copied = 0
    last = 0
    with source.connect() as conn:
        while True:
            batch = conn.execute(text(
                "SELECT * FROM radacct WHERE acctstoptime IS NOT NULL AND radacctid > :last "
                "ORDER BY radacctid LIMIT :n"), {"last": last, "n": HISTORY_BATCH}).mappings().all()
            if not batch:
                return copied
            last = int(batch[-1]["radacctid"])
            uids = [str(r["acctuniqueid"]) for r in batch]
            have = _existing(session, table.c.unique_id, uids)
            values = []
            for r in batch:
                uid = str(r["acctuniqueid"])
                start, stop = _utc(r["acctstarttime"]), _utc(r["acctstoptime"])
                if uid in have or not uid or start is None or stop is None:
                    continue
                have.add(uid)
                values.append({
                    "unique_id": uid[:32], "session_key": None,
                    "nas_id": nas_ids.get(str(r["nasipaddress"])),
                    "nas_identity": str(r["nasipaddress"])[:64],
                    "subscriber_id": subs.get(str(r["username"])),
                    "user_name": str(r["username"])[:128],
                    "session_id": str(r["acctsessionid"])[:128], "started_at": start,
                    "updated_at": _utc(r["acctupdatetime"]) or stop, "stopped_at": stop,
                    "last_seen_at": stop, "stale_deadline": None,
                    "interim_interval": int(r["acctinterval"] or 0),
                    "start_seen": True, "session_time": int(r["acctsessiontime"] or 0),
                    "input_octets": int(r["acctinputoctets"] or 0),
                    "output_octets": int(r["acctoutputoctets"] or 0),
                    "input_packets": 0, "output_packets": 0,
                    "framed_ip": r["framedipaddress"] or None,
                    "framed_ipv6_address": r.get("framedipv6address") or None,
                    "framed_ipv6_prefix": r.get("framedipv6prefix") or None,
                    "delegated_ipv6_prefix": r.get("delegatedipv6prefix") or None,
                    "calling_station_id": (r["callingstationid"] or None),
                    "called_station_id": (r["calledstationid"] or None),
                    "nas_port_id": r["nasportid"], "nas_port_type": r["nasporttype"],
                    "terminate_cause": r["acctterminatecause"] or None, "closed_by": "stop",
                    "created_at": datetime.now(UTC)})
            copied += len(values)
            if values and not dry_run:
                session.execute(table.insert(), values)
