"""Bulk import of subscribers from CSV: validate everything, then insert in chunks.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aaa.admin.passwords import validate_nt_hash, validate_password_hash
from aaa.admin.validate import (
    DESCRIPTION_MAX,
    IN_CHUNK,
    text_field,
    validate_login,
    validate_password,
    validate_static_ip,
    validate_status,
)
from aaa.mschap import nt_password_hash
from aaa.pap import hash_password
from core.db.base import utcnow
from core.db.models import Plan, Subscriber, SubscriberStatus
from core.errors import AlreadyExists, InvalidInput


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
    legacy_hash: str | None = field(default=None, repr=False)  # aaa.legacy_passwords form

    @property
    def needs_hashing(self) -> bool:
        return self.password is not None and self.password_hash is None and self.nt_hash is None


@dataclass(frozen=True)
class ImportResult:
    imported: int
    hashed: int




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
        description=check("description", lambda: text_field(cell("description"), "description",
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


def _chunks(values: Sequence[str], size: int = IN_CHUNK) -> Iterable[Sequence[str]]:
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
            "legacy_hash": r.legacy_hash, "chap_enabled": r.chap,
            "cleartext_password": r.password if r.chap else None,
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
