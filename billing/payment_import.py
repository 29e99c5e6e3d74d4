"""Bank and gateway payments from CSV: all-or-nothing, idempotent by the payment's reference.

The file is parsed and every row checked (login known, amount a positive
number with no more decimals than the currency has, reference present and
not used for a different payment) before anything is posted. With errors the
whole file is refused and every bad row is listed by line number; with
``skip_bad`` the good rows are posted and the bad ones returned for a reject
file. Each payment's idempotency key is ``payment:<reference>``, the same as
``radbill payment add --ref``, so a file imported twice, or a payment typed
in by hand and then imported, is booked once; the report says how many rows
were already there.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.errors import BillingError
from billing.ledger import find_entry
from billing.models import BillingAccount, EntryKind
from billing.money import parse_amount
from billing.payments import MAX_REFERENCE, thd_add_payment
from core.db.models import Subscriber
from core.errors import InvalidInput

FIELDS = ("login", "amount", "reference")
IGNORE = ("", "-")
MAX_ROWS = 1_000_000


@dataclass(frozen=True)
class Layout:
    """Which column holds what: ``columns`` names each position (``-`` to ignore one)."""

    columns: tuple[str, ...] = FIELDS
    delimiter: str = ","
    header: bool = False
    decimal_comma: bool = False

    def check(self) -> Layout:
        named = [c for c in self.columns if c not in IGNORE]
        unknown = [c for c in named if c not in FIELDS]
        if unknown:
            raise InvalidInput(f"payment import columns: unknown {unknown[0]!r} "
                               "(use login, amount, reference or - to skip)")
        missing = [f for f in FIELDS if f not in named]
        if missing or len(named) != len(set(named)):
            raise InvalidInput("payment import columns must name login, amount and "
                               "reference once each")
        if len(self.delimiter) != 1:
            raise InvalidInput("payment import delimiter must be one character")
        return self


@dataclass(frozen=True)
class ImportRow:
    line: int
    login: str
    amount: int
    reference: str
    raw: tuple[str, ...]


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str
    raw: tuple[str, ...]


@dataclass(frozen=True)
class ImportReport:
    rows: int
    applied: int
    already: int
    total: int  # minor units newly credited
    bad: tuple[BadRow, ...]
    unblocked: tuple[str, ...] = ()
    committed: bool = True

    @property
    def changed_nothing(self) -> bool:
        return self.applied == 0


@dataclass
class _Parsed:
    rows: list[ImportRow] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)


def parse_payments_csv(text: str, currency: str, layout: Layout = Layout()) -> _Parsed:
    layout.check()
    out = _Parsed()
    reader = csv.reader(io.StringIO(text), delimiter=layout.delimiter)
    index = {name: i for i, name in enumerate(layout.columns) if name not in IGNORE}
    width = max(index.values()) + 1
    for lineno, cells in enumerate(reader, start=1):
        if lineno == 1 and layout.header:
            continue
        if not cells or all(not c.strip() for c in cells):
            continue
        if lineno > MAX_ROWS:
            raise InvalidInput(f"more than {MAX_ROWS} lines: split the file")
        raw = tuple(cells)
        if len(cells) < width:
            out.bad.append(BadRow(lineno, f"expected at least {width} columns, got "
                                          f"{len(cells)}", raw))
            continue
        login = cells[index["login"]].strip()
        amount_text = cells[index["amount"]].strip()
        reference = cells[index["reference"]].strip()
        if layout.decimal_comma:
            amount_text = amount_text.replace(".", "").replace(",", ".")
        if not login:
            out.bad.append(BadRow(lineno, "login is empty", raw))
            continue
        if not reference or len(reference) > MAX_REFERENCE:
            out.bad.append(BadRow(lineno, f"reference must be 1..{MAX_REFERENCE} characters",
                                  raw))
            continue
        try:
            amount = parse_amount(amount_text, currency)
        except InvalidInput as exc:
            out.bad.append(BadRow(lineno, str(exc), raw))
            continue
        if amount <= 0:
            out.bad.append(BadRow(lineno, "amount must be greater than 0", raw))
            continue
        out.rows.append(ImportRow(lineno, login, amount, reference, raw))
    return out


def _check(session: Session, parsed: _Parsed, currency: str) -> tuple[list[ImportRow],
                                                                      list[BadRow]]:
    logins = {r.login for r in parsed.rows}
    known: dict[str, int] = {}
    chunk = sorted(logins)
    for i in range(0, len(chunk), 500):
        known.update(session.execute(select(Subscriber.login, Subscriber.id)
                                     .where(Subscriber.login.in_(chunk[i:i + 500]))).all())
    good: list[ImportRow] = []
    bad = list(parsed.bad)
    seen: dict[str, ImportRow] = {}
    for r in parsed.rows:
        if r.login not in known:
            bad.append(BadRow(r.line, f"unknown account {r.login!r}", r.raw))
            continue
        first = seen.get(r.reference)
        if first is not None:
            if (first.login, first.amount) != (r.login, r.amount):
                bad.append(BadRow(r.line, f"reference {r.reference!r} is also on line "
                                          f"{first.line} with another account or amount",
                                  r.raw))
            continue  # the same payment twice in one file: once is enough
        seen[r.reference] = r
        existing = find_entry(session, f"{EntryKind.PAYMENT.value}:{r.reference}")
        if existing is not None:
            acct = session.get(BillingAccount, existing.account_id)
            if acct is None or acct.subscriber_id != known[r.login] \
                    or existing.amount != r.amount:
                bad.append(BadRow(r.line, f"reference {r.reference!r} was already used for "
                                          "a different account or amount", r.raw))
                continue
        good.append(r)
    bad.sort(key=lambda b: b.line)
    return good, bad


def thd_import_payments(session: Session, parsed: _Parsed, currency: str,
                        skip_bad: bool = False, method: str = "import",
                        now: datetime | None = None) -> ImportReport:
    """Check every row, then post all of them (or, with skip_bad, the good ones)."""
    good, bad = _check(session, parsed, currency)
    if bad and not skip_bad:
        return ImportReport(rows=len(parsed.rows) + len(parsed.bad), applied=0, already=0,
                            total=0, bad=tuple(bad), committed=False)
    applied = already = total = 0
    unblocked: list[str] = []
    for r in good:
        result = thd_add_payment(session, r.login, r.amount, currency, reference=r.reference,
                                 description=f"import {r.reference}", now=now, method=method)
        if result.created:
            applied += 1
            total += r.amount
        else:
            already += 1
        if result.unblocked:
            unblocked.append(r.login)
    return ImportReport(rows=len(parsed.rows) + len(parsed.bad), applied=applied,
                        already=already, total=total, bad=tuple(bad),
                        unblocked=tuple(unblocked))


def write_rejects(bad: Sequence[BadRow], out: io.TextIOBase | io.StringIO,
                  delimiter: str = ",") -> None:
    w = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    w.writerow(["line", "reason", "row"])
    for b in bad:
        w.writerow([b.line, b.reason, delimiter.join(b.raw)])


class ImportRefused(BillingError):
    """The file had bad rows and --skip-bad was not given: nothing was applied."""
