"""Payment import from CSV (all-or-nothing, idempotent by reference) and the gateway webhook."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import pytest_twisted
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from billing.gateway_hmac import sign
from billing.models import BillingAccount, EntryKind, LedgerEntry
from billing.money import parse_price
from billing.payment_import import Layout, parse_payments_csv
from billing.payments import thd_add_payment
from core.db.models import Subscriber
from core.errors import InvalidInput
from tests.billing_support import assert_ledger_consistent, cli_runner, make_plan, make_subscriber

Result = tuple[int, str, str]


@pytest.fixture
def cli(tmp_path: Path, db_url: str, engine: Engine,
        capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[..., Result]]:
    """radbill with a config pointing at the test database."""
    yield cli_runner(f'[database]\nurl = {json.dumps(db_url)}\n', tmp_path, capsys)


def _subs(engine: Engine, *logins: str) -> None:
    with Session(engine) as s, s.begin():
        for login in logins:
            make_subscriber(s, login, None)


def _balances(engine: Engine) -> dict[str, int]:
    with Session(engine) as s:
        return dict(s.execute(select(Subscriber.login, BillingAccount.balance)
                              .join(BillingAccount,
                                    BillingAccount.subscriber_id == Subscriber.id)).all())


def test_parse_layouts_and_errors() -> None:
    """Mapped columns, header, decimal comma; bad amounts and short rows carry line numbers."""
    layout = Layout(columns=("reference", "-", "login", "amount"), delimiter=";", header=True,
                    decimal_comma=True)
    parsed = parse_payments_csv("ref;x;login;amt\nR1;;alice;1.234,50\nR2;;bob;abc\nR3\n",
                                "USD", layout)
    assert [(r.line, r.login, r.amount, r.reference) for r in parsed.rows] == [
        (2, "alice", 123450, "R1")]
    assert [b.line for b in parsed.bad] == [3, 4]
    with pytest.raises(InvalidInput, match="unknown 'who'"):
        Layout(columns=("who", "amount", "reference")).check()
    with pytest.raises(InvalidInput, match="once each"):
        Layout(columns=("login", "amount")).check()


def test_import_is_all_or_nothing_and_idempotent(cli: Callable[..., Result], engine: Engine,
                                                 tmp_path: Path) -> None:
    """A file with a bad row applies nothing and lists the lines; fixed, it applies once."""
    _subs(engine, "alice", "bob")
    f = tmp_path / "bank.csv"
    f.write_text("alice,10.00,B-1\nghost,5.00,B-2\nbob,1.005,B-3\nbob,2.50,B-4\n")
    code, out, err = cli("payment", "import", str(f))
    assert code == 1 and "Traceback" not in err
    assert f"{f}:2: unknown account 'ghost'" in err and f"{f}:3:" in err
    assert "nothing was applied" in err
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 0
    f.write_text("alice,10.00,B-1\nbob,2.50,B-4\nalice,10.00,B-1\n")
    code, out, _ = cli("payment", "import", str(f))
    assert code == 0 and "2 payments applied (12.50 USD)" in out
    code, out, _ = cli("payment", "import", str(f))
    assert code == 0 and "already recorded; nothing changed" in out
    assert _balances(engine) == {"alice": 1000, "bob": 250}
    with Session(engine) as s:
        assert set(s.scalars(select(LedgerEntry.method))) == {"import"}
        assert_ledger_consistent(s)


def test_import_refuses_reused_reference(cli: Callable[..., Result], engine: Engine,
                                         tmp_path: Path) -> None:
    """A reference already booked for another amount or account is a bad row, not a skip."""
    _subs(engine, "alice", "bob")
    with Session(engine) as s, s.begin():
        thd_add_payment(s, "alice", 500, "USD", "B-9")
    f = tmp_path / "bank.csv"
    f.write_text("alice,6.00,B-9\n")
    code, _, err = cli("payment", "import", str(f))
    assert code == 1 and "already used for a different account or amount" in err
    f.write_text("alice,5.00,B-9\n")  # the same payment typed in by hand: booked once
    code, out, _ = cli("payment", "import", str(f))
    assert code == 0 and "nothing changed" in out
    f.write_text("alice,1.00,C-1\nbob,2.00,C-1\n")
    code, _, err = cli("payment", "import", str(f))
    assert code == 1 and "also on line 1" in err


def test_skip_bad_writes_rejects(cli: Callable[..., Result], engine: Engine,
                                 tmp_path: Path) -> None:
    """--skip-bad applies the good rows and writes the bad ones with line and reason."""
    _subs(engine, "alice")
    f = tmp_path / "bank.csv"
    f.write_text("alice,1.00,K-1\nnobody,2.00,K-2\nalice,-3,K-3\n")
    code, out, err = cli("payment", "import", str(f), "--skip-bad", "--out", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["applied"] == 1 and report["bad_rows"] == 2
    rejects = Path(report["rejects_file"]).read_text().splitlines()
    assert rejects[0] == "line,reason,row" and rejects[1].startswith("2,unknown account")
    assert rejects[2].startswith("3,")
    assert _balances(engine) == {"alice": 100}


def test_imported_payment_unblocks(cli: Callable[..., Result], engine: Engine,
                                   tmp_path: Path) -> None:
    """A blocked (no money) subscriber paid by import is unblocked in the same transaction."""
    with Session(engine) as s, s.begin():
        plan = make_plan(s, "p", time_price=parse_price("0.01"))
        make_subscriber(s, "carol", plan)
        thd_add_payment(s, "carol", -1, "USD", kind=EntryKind.ADJUSTMENT)
        acct = s.scalars(select(BillingAccount)).one()
        assert acct.status == "blocked"
    f = tmp_path / "bank.csv"
    f.write_text("carol,5.00,U-1\n")
    code, out, _ = cli("payment", "import", str(f))
    assert code == 0 and "unblocked: carol" in out
    with Session(engine) as s:
        assert s.scalars(select(BillingAccount.status)).one() == "active"


# --- gateway webhook over real HTTP ----------------------------------------------------------

SECRET = "0123456789abcdef-gateway"


@pytest.fixture
def web(engine: Engine, db_url: str, tmp_path: Path) -> Iterator[tuple[int, object]]:
    """radbill's web side with the hmac gateway enabled, on 127.0.0.1 port 0."""
    from twisted.internet import reactor

    from core.config import parse_config
    from radbill.app import make_service

    config = parse_config({
        "server": {"data_dir": str(tmp_path)},
        "database": {"url": db_url, "pool_size": 4},
        "radius": {"listen": ["127.0.0.1"], "auth_port": 0, "acct_port": 0},
        "billing": {"loop_interval": 3600},
        "web": {"enabled": True, "listen": "127.0.0.1", "port": 0},
        "gateway": {"enabled": ["hmac"], "hmac_secret": SECRET},
    })
    app = make_service(config, reactor)
    app.root.startService()
    web_service = next(s for s in app.root if type(s).__name__ == "WebService")
    yield web_service.listening.getHost().port, app
    pytest_twisted.blockon(app.root.stopService())


def _post(port: int, body: bytes, signature: str | None):
    import io

    from twisted.internet import reactor
    from twisted.web.client import Agent, FileBodyProducer, readBody
    from twisted.web.http_headers import Headers

    headers = Headers({b"content-type": [b"application/json"]})
    if signature is not None:
        headers.addRawHeader(b"x-radbill-signature", signature.encode())
    d = Agent(reactor).request(b"POST", f"http://127.0.0.1:{port}/hooks/gateway/hmac".encode(),
                               headers, FileBodyProducer(io.BytesIO(body)))

    def read(resp):
        return readBody(resp).addCallback(lambda b: (resp.code, json.loads(b)))

    return d.addCallback(read)


@pytest_twisted.inlineCallbacks
def test_gateway_webhook_books_once(web: tuple[int, object], engine: Engine):
    """A signed webhook books a payment; its retry is 'already_booked'; bad signatures 401."""
    port, _ = web
    _subs(engine, "alice")
    body = json.dumps({"login": "alice", "amount": "7.25", "currency": "USD",
                       "reference": "PSP-1"}).encode()
    now = int(time.time())
    code, reply = yield _post(port, body, sign(SECRET.encode(), body, now))
    assert code == 200 and reply["status"] == "booked" and reply["amount"] == "7.25"
    code, reply = yield _post(port, body, sign(SECRET.encode(), body, now))
    assert code == 200 and reply["status"] == "already_booked"
    code, _ = yield _post(port, body, sign(b"wrong-secret-wrong-secret", body, now))
    assert code == 401
    code, _ = yield _post(port, body, sign(SECRET.encode(), body, now - 3600))
    assert code == 401
    code, _ = yield _post(port, body, None)
    assert code == 401
    bad = b'{"login": "alice", "amount": 7.25, "currency": "USD", "reference": "X"}'
    code, reply = yield _post(port, bad, sign(SECRET.encode(), bad, now))
    assert code == 400 and "decimal string" in reply["error"]["message"]
    ghost = json.dumps({"login": "ghost", "amount": "1", "currency": "USD",
                        "reference": "PSP-2"}).encode()
    code, _ = yield _post(port, ghost, sign(SECRET.encode(), ghost, now))
    assert code == 404
    garbage = b"\xff\x00not json"
    code, _ = yield _post(port, garbage, sign(SECRET.encode(), garbage, now))
    assert code == 400
    with Session(engine) as s:
        rows = s.execute(select(LedgerEntry.amount, LedgerEntry.method,
                                LedgerEntry.reference)).all()
    assert rows == [(725, "gateway:hmac", "hmac:PSP-1")]


def test_gateway_config_errors(tmp_path: Path) -> None:
    """An unknown gateway name and a short secret are config errors naming the key."""
    from billing.gateways import load_gateways
    from core.config import parse_config
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"gateway\.enabled: no gateway 'nope'"):
        load_gateways(parse_config({"gateway": {"enabled": ["nope"]}}))
    with pytest.raises(ConfigError, match=r"gateway\.hmac_secret"):
        load_gateways(parse_config({"gateway": {"enabled": ["hmac"], "hmac_secret": "x"}}))
