"""Statements, invoices (numbering, VAT), documents (HTML/PDF, hashes, reissue) and exports."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

import pytest
import pytest_twisted
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from billing.accounts import ensure_account
from billing.exports import thd_export, to_csv, to_xml
from billing.ledger import post
from billing.models import BillingAccount, EntryKind, LedgerEntry
from billing.money import parse_price
from billing.payments import thd_add_payment
from billing.statement_models import Document, Invoice, Statement
from billing.statements import (
    StatementSettings,
    closed_period,
    month_bounds,
    tax_included,
    thd_issue_statements,
)
from core.db.pool import run_in_session
from tests.billing_support import cli_runner, make_plan, make_subscriber

APRIL = datetime(2024, 4, 10, 12, 0, tzinfo=UTC)
MAY = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)
AFTER_MAY = datetime(2024, 6, 2, 0, 0, tzinfo=UTC)
Result = tuple[int, str, str]


def settings(batch: int = 1000, vat: str = "20") -> StatementSettings:
    return StatementSettings(zone=ZoneInfo("UTC"), delay=timedelta(hours=1), batch=batch,
                             issuer="main", number_format="INV-{year}-{number:05d}",
                             vat_rate=Decimal(vat), due_days=14)


def seed(engine: Engine, n_post: int = 2, n_pre: int = 1) -> None:
    """Postpaid subscribers with session/call/fee charges and payments in April and May."""
    with Session(engine) as s, s.begin():
        post_plan = make_plan(s, "biz", time_price=parse_price("0.01"),
                              credit_limit=5000)
        pre_plan = make_plan(s, "home", time_price=parse_price("0.01"))
        subs = [(f"p{i}", post_plan) for i in range(n_post)] + [
            (f"h{i}", pre_plan) for i in range(n_pre)]
        for login, plan in subs:
            sid = make_subscriber(s, login, plan)
            acct = ensure_account(s, sid, "USD")
            acct.created_at = APRIL - timedelta(days=30)
            thd_add_payment(s, login, 2000, "USD", f"{login}-mar",
                            now=APRIL - timedelta(days=20))
            for when, tag in ((APRIL, "apr"), (MAY, "may")):
                post(s, acct, EntryKind.CHARGE, 700, f"{login}-s-{tag}",
                     description="session +700s in 0 out 0", now=when)
                post(s, acct, EntryKind.CHARGE, 300, f"{login}-c-{tag}",
                     description="call 4930 +60s @49", now=when)
                post(s, acct, EntryKind.FEE, 200, f"{login}-f-{tag}",
                     description="monthly fee", now=when)
                thd_add_payment(s, login, 500, "USD", f"{login}-{tag}", now=when,
                                method="import")


def test_month_bounds_and_closed_period() -> None:
    """Months are [start, end) in the zone; a month closes only after the delay."""
    z = ZoneInfo("Europe/Moscow")
    start, end = month_bounds("2024-02", z)
    assert (start.isoformat(), end.isoformat()) == ("2024-02-01T00:00:00+03:00",
                                                    "2024-03-01T00:00:00+03:00")
    s = settings()
    assert closed_period(datetime(2024, 5, 1, 0, 30, tzinfo=UTC), s) == "2024-03"
    assert closed_period(datetime(2024, 5, 1, 1, 30, tzinfo=UTC), s) == "2024-04"


def test_tax_included_rounds_once_half_up() -> None:
    """VAT contained in a gross total: 12.00 at 20% is 2.00; 0.05 at 20% rounds 0.0083 to 0.01."""
    assert tax_included(1200, Decimal("20"), "USD") == 200
    assert tax_included(5, Decimal("20"), "USD") == 1
    assert tax_included(1200, Decimal("0"), "USD") == 0


def test_statements_group_and_chain(engine: Engine) -> None:
    """April's lines by service, opening from the ledger, May's opening = April's closing."""
    seed(engine)
    with Session(engine) as s, s.begin():
        r = thd_issue_statements(s, settings(), "2024-04", now=MAY)
    assert (r.statements, r.invoices, r.done) == (3, 2, True)
    with Session(engine) as s, s.begin():
        thd_issue_statements(s, settings(), "2024-05", now=AFTER_MAY)
    with Session(engine) as s:
        rows = {(st.account_id, st.period): st for st in s.scalars(select(Statement))}
        for aid in {a for a, _ in rows}:
            apr, may = rows[(aid, "2024-04")], rows[(aid, "2024-05")]
            assert apr.opening == 2000
            assert apr.lines == {"sessions": [1, -700], "calls": [1, -300], "fees": [1, -200],
                                 "payments": [1, 500]}
            assert apr.closing == 2000 - 1200 + 500 == may.opening
            assert may.closing == may.opening - 700
            ledger = s.scalar(select(func.sum(LedgerEntry.amount)).where(
                LedgerEntry.account_id == aid, LedgerEntry.created_at < AFTER_MAY))
            assert may.closing == ledger
        invoices = s.execute(select(Invoice.number, Invoice.number_text, Invoice.total,
                                    Invoice.tax, Invoice.net, Invoice.period)
                             .order_by(Invoice.number)).all()
    assert [i[0] for i in invoices] == [1, 2, 3, 4]  # per issuer, no gaps
    assert invoices[0][1] == "INV-2024-00001" and invoices[0][2:5] == (1200, 200, 1000)


def test_issue_twice_is_a_no_op(engine: Engine) -> None:
    """A second run for the same period issues nothing and takes no invoice numbers."""
    seed(engine)
    for _ in range(2):
        with Session(engine) as s, s.begin():
            last = thd_issue_statements(s, settings(), "2024-04", now=MAY)
    assert last.statements == 0
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Statement)) == 3
        assert s.scalar(select(func.max(Invoice.number))) == 2


def test_open_period_is_refused(engine: Engine) -> None:
    """A month that has not ended cannot be issued."""
    from core.errors import InvalidInput

    with Session(engine) as s, pytest.raises(InvalidInput, match="not ended"):
        thd_issue_statements(s, settings(), "2024-05", now=MAY)


def test_two_issuers_at_once_issue_once(engine: Engine) -> None:
    """Two nodes issuing the same month in small batches: one statement each, numbers 1..n."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    seed(engine, n_post=12, n_pre=3)
    factory = sessionmaker(engine, expire_on_commit=False)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def node() -> None:
        barrier.wait()
        for _ in range(50):
            cursor = 0
            try:
                while True:
                    r = run_in_session(factory, thd_issue_statements, settings(batch=4),
                                       "2024-04", cursor, MAY, retries=5)
                    cursor = r.last_account_id
                    if r.done:
                        return
            except (IntegrityError, OperationalError):
                continue  # the other node got there first: start over from the database
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=node) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Statement)) == 15
        numbers = sorted(s.scalars(select(Invoice.number)))
    assert numbers == list(range(1, 13))


# --- documents and the CLI -------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, db_url: str, engine: Engine,
        capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[..., Result]]:
    """radbill with a config pointing at the test database and a document store in tmp."""
    yield cli_runner(f'[server]\ndata_dir = {json.dumps(str(tmp_path))}\n'
        f'[database]\nurl = {json.dumps(db_url)}\n'
        '[invoices]\nissuer = "main"\nissuer_name = "Net <b>&</b> Co"\nvat_rate = "20"\n'
        'issuer_address = "1 Main St\\nSpringfield"\n', tmp_path, capsys)


def test_documents_render_store_verify_reissue(cli: Callable[..., Result], engine: Engine,
                                               tmp_path: Path) -> None:
    """HTML+PDF per statement with hashes; escaped text; tampering detected; reissue links."""
    seed(engine, n_post=1, n_pre=1)
    with Session(engine) as s, s.begin():
        s.execute(update(BillingAccount).values(created_at=APRIL - timedelta(days=30)))
    code, out, err = cli("statement", "issue", "--period", "2024-04")
    assert code == 0 and "2 statements and 1 invoices" in out, err
    code, out, err = cli("statement", "issue", "--period", "2024-04")
    assert "0 statements" in out and "already had" in out
    code, out, err = cli("document", "render", "--pending")
    assert code == 0 and "2 documents rendered" in out, err
    with Session(engine) as s:
        docs = s.scalars(select(Document).order_by(Document.id)).all()
        assert {d.kind for d in docs} == {"invoice", "statement"}
        inv = next(d for d in docs if d.kind == "invoice")
    html = (tmp_path / "documents" / inv.html_path).read_text()
    assert "Invoice INV-2024-000001" in html and "Net &lt;b&gt;&amp;&lt;/b&gt; Co" in html
    assert "VAT 20% (included)" in html and "2.00" in html and "12.00" in html
    assert "1 Main St<br>" in html
    pdf = (tmp_path / "documents" / inv.pdf_path).read_bytes()  # type: ignore[operator]
    assert pdf.startswith(b"%PDF")
    code, out, _ = cli("document", "show", str(inv.id), "--out", "json")
    assert code == 0 and json.loads(out)["verified"] is True
    code, out, _ = cli("document", "render", str(inv.statement_id))
    assert "already has its document" in out
    code, out, _ = cli("document", "reissue", str(inv.id), "--reason", "address fixed")
    assert code == 0 and f"replacing document {inv.id}" in out
    with Session(engine) as s:
        new = s.scalars(select(Document).order_by(Document.id.desc())).first()
        assert new is not None and new.replaces_id == inv.id and new.reason == "address fixed"
        st = s.get(Statement, inv.statement_id)
        assert st is not None and st.document_id == inv.id  # the original stays the issue
    (tmp_path / "documents" / inv.html_path).write_text(html.replace("12.00", "1.00"))
    code, out, _ = cli("document", "show", str(inv.id), "--out", "json")
    assert code == 1 and json.loads(out)["verified"] is False
    code, _, err = cli("document", "get", str(inv.id))
    assert code == 1 and "does not match its recorded SHA-256" in err
    code, out, _ = cli("document", "list", "--login", "p0")
    assert "Invoice INV-2024-000001" in out


def test_exports_match_ledger_in_csv_and_xml(cli: Callable[..., Result], engine: Engine) -> None:
    """payments/charges/balances/invoices: CSV and XML carry the same numbers as the ledger."""
    seed(engine, n_post=2, n_pre=2)
    with Session(engine) as s, s.begin():
        thd_issue_statements(s, settings(), "2024-04", now=MAY)
    start, end = datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 5, 1, tzinfo=UTC)
    with Session(engine) as s:
        ledger_charges = -s.scalar(select(func.sum(LedgerEntry.amount)).where(
            LedgerEntry.kind.in_(["charge", "fee"]), LedgerEntry.created_at >= start,
            LedgerEntry.created_at < end))
        ledger_payments = s.scalar(select(func.sum(LedgerEntry.amount)).where(
            LedgerEntry.kind == "payment", LedgerEntry.created_at >= start,
            LedgerEntry.created_at < end))
        ledger_balance = s.scalar(select(func.sum(LedgerEntry.amount)).where(
            LedgerEntry.created_at < end))
    expected = {"charges": ledger_charges, "payments": ledger_payments,
                "balances": ledger_balance, "invoices": 2 * 1200}
    column = {"charges": "amount", "payments": "amount", "balances": "balance",
              "invoices": "total"}
    for kind, want in expected.items():
        to = "2024-06-01" if kind == "invoices" else "2024-05-01"  # issued in May
        code, out, err = cli("export", kind, "--from", "2024-04-01", "--to", to,
                             "--delimiter", ";")
        assert code == 0, err
        lines = out.splitlines()
        header = lines[0].split(";")
        idx = header.index(column[kind])
        csv_total = sum(int(line.split(";")[idx].replace(".", "")) for line in lines[1:])
        code, out, _ = cli("export", kind, "--from", "2024-04-01", "--to", to,
                           "--out", "xml")
        root = ET.fromstring(out)  # noqa: S314 (our own output)
        assert all(e.text for e in root.iter(column[kind])), (kind, out)
        xml_total = sum(int(e.text.replace(".", "")) for e in root.iter(column[kind]))
        xml_total -= int(root.find("totals").find(column[kind]).text.replace(".", ""))
        assert csv_total == xml_total == want, kind
    code, out, _ = cli("export", "payments", "--from", "2024-04-01", "--to", "2024-05-01",
                       "--columns", "login,amount,method")
    assert out.splitlines()[0] == "login,amount,method" and ",5.00,import" in out
    code, _, err = cli("export", "payments", "--from", "2024-04-01", "--to", "2024-05-01",
                       "--columns", "nope")
    assert code == 1 and "unknown column 'nope'" in err
    code, _, err = cli("export", "payments", "--from", "May", "--to", "2024-05-01")
    assert code == 1 and "--from" in err


def test_export_functions_direct(engine: Engine) -> None:
    """to_csv and to_xml of one export hold identical amounts."""
    seed(engine, n_post=1, n_pre=0)
    with Session(engine) as s:
        e = thd_export(s, "charges", datetime(2024, 4, 1, tzinfo=UTC),
                       datetime(2024, 6, 1, tzinfo=UTC))
    csv_text, xml_text = to_csv(e, "USD"), to_xml(e, "USD")
    assert e.totals == {"amount": 2400}
    assert "12.00" not in csv_text and "14.00" in csv_text  # sessions 7.00 x2
    assert "<totals><amount>24.00</amount></totals>" in xml_text


@pytest_twisted.inlineCallbacks
def test_billing_loop_issues_and_renders_last_closed_month(dbpool, engine: Engine,
                                                           tmp_path: Path):
    """One pass issues the closed month's statements and renders them; the next adds none."""
    from billing.loop import BillingLoop
    from core.config import parse_config

    config = parse_config({"server": {"data_dir": str(tmp_path)},
                           "statements": {"delay_minutes": 0},
                           "documents": {"pdf": False}})
    loop = BillingLoop(config, dbpool)
    period = closed_period(datetime.now(UTC), loop.statement_settings)
    start, _ = month_bounds(period, ZoneInfo("UTC"))
    with Session(engine) as s, s.begin():
        sid = make_subscriber(s, "old", None)
        acct = ensure_account(s, sid, "USD")
        acct.created_at = start - timedelta(days=1)
        thd_add_payment(s, "old", 1234, "USD", "old-1", now=start + timedelta(days=3))
    report = yield loop.run_once()
    assert (report.statements, report.documents) == (1, 1)
    again = yield BillingLoop(config, dbpool).run_once()  # a restarted process
    assert (again.statements, again.documents) == (0, 0)
    with Session(engine) as s:
        st = s.scalars(select(Statement)).one()
        assert (st.period, st.opening, st.closing) == (period, 0, 1234)
        assert st.document_id is not None


def test_invoice_config_is_validated() -> None:
    """A VAT rate that is not a percentage and a broken number format name their keys."""
    from core.config import parse_config
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"invoices\.vat_rate"):
        parse_config({"invoices": {"vat_rate": "twenty"}})
    with pytest.raises(ConfigError, match=r"invoices\.vat_rate"):
        parse_config({"invoices": {"vat_rate": "150"}})
    with pytest.raises(ConfigError, match=r"invoices\.number_format"):
        parse_config({"invoices": {"number_format": "INV-{serial}"}})
