"""Prepaid cards: batches, PIN hashing, activation exactly once, lockout, vouchers over RADIUS."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_twisted
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from billing.card_models import Card, CardAttempt
from billing.cards import (
    CardPolicy,
    CardRefused,
    Refusal,
    hash_pin,
    pin_matches,
    thd_activate,
    thd_create_batch,
    thd_expire_vouchers,
    thd_set_blocked,
)
from billing.models import LedgerEntry
from billing.money import parse_price
from core.db.models import Nas, Plan, Subscriber, SubscriberStatus
from core.db.pool import run_in_session
from tests.billing_support import assert_ledger_consistent, cli_runner, make_plan, make_subscriber

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
Result = tuple[int, str, str]


def _batch(engine: Engine, name: str = "B1", count: int = 3, value: int = 1000,
           **kw: object) -> list[tuple[str, str]]:
    with Session(engine) as s, s.begin():
        created = thd_create_batch(s, name, count, value, "USD", now=NOW, **kw)  # type: ignore[arg-type]
    return [(c.serial, c.pin) for c in created.cards]


def _alice(engine: Engine, login: str = "alice") -> None:
    with Session(engine) as s, s.begin():
        make_subscriber(s, login, None)


def test_pin_hash_is_salted_and_verifies() -> None:
    """The same PIN hashes differently each time and only the right PIN matches."""
    a, b = hash_pin("123456789012"), hash_pin("123456789012")
    assert a != b and a.startswith("sha256$")
    assert pin_matches(a, "123456789012") and not pin_matches(a, "123456789013")
    assert not pin_matches("garbage", "123456789012")


def test_batch_stores_only_hashes(engine: Engine) -> None:
    """A batch makes unique 12-digit serials and PINs, and the PIN is nowhere in the database."""
    cards = _batch(engine, count=50)
    assert len({s for s, _ in cards}) == 50
    assert all(len(s) == 12 and s.isdigit() and len(p) == 12 for s, p in cards)
    with Session(engine) as s:
        stored = dict(s.execute(select(Card.serial, Card.pin_hash)).all())
    for serial, pin in cards:
        assert pin not in stored[serial] and pin_matches(stored[serial], pin)


def test_activation_books_card_payment_once(engine: Engine) -> None:
    """Activation credits the value as a 'card' payment; a second try is refused as used."""
    (serial, pin), *_ = _batch(engine)
    _alice(engine)
    with Session(engine) as s, s.begin():
        r = thd_activate(s, serial, pin, "alice", "USD", now=NOW)
    assert r.ok and r.payment is not None and r.payment.account.balance == 1000
    with Session(engine) as s, s.begin():
        again = thd_activate(s, serial, pin, "alice", "USD", now=NOW)
    assert again.refused is Refusal.USED
    with pytest.raises(CardRefused, match="already been used"):
        again.raise_if_refused()
    with Session(engine) as s:
        entries = s.execute(select(LedgerEntry.amount, LedgerEntry.method,
                                   LedgerEntry.reference)).all()
        assert entries == [(1000, "card", f"card:{serial}")]
        assert_ledger_consistent(s)


def test_blocked_and_expired_cards_are_refused(engine: Engine) -> None:
    """A blocked card is refused until unblocked; an expired batch is refused with its reason."""
    (serial, pin), *_ = _batch(engine)
    (old, old_pin), *_ = _batch(engine, "OLD", expires_at=NOW + timedelta(days=1))
    _alice(engine)
    with Session(engine) as s, s.begin():
        thd_set_blocked(s, [serial], True, "stolen")
    with Session(engine) as s, s.begin():
        assert thd_activate(s, serial, pin, "alice", "USD", now=NOW).refused is Refusal.BLOCKED
        later = NOW + timedelta(days=2)
        assert thd_activate(s, old, old_pin, "alice", "USD", now=later).refused is \
            Refusal.EXPIRED
    with Session(engine) as s, s.begin():
        thd_set_blocked(s, [serial], False)
    with Session(engine) as s, s.begin():
        assert thd_activate(s, serial, pin, "alice", "USD", now=NOW).ok


def test_wrong_pins_lock_out_subscriber_and_address(engine: Engine) -> None:
    """Three wrong PINs lock the subscriber and the address; the right PIN is refused meanwhile."""
    (serial, pin), *_ = _batch(engine)
    _alice(engine)
    _alice(engine, "bob")
    policy = CardPolicy(max_failures=3, window=timedelta(minutes=10),
                        lockout=timedelta(minutes=5))
    for i in range(3):
        with Session(engine) as s, s.begin():
            r = thd_activate(s, serial, "000000000000", "alice", "USD", address="10.0.0.1",
                             policy=policy, now=NOW + timedelta(seconds=i))
            assert r.refused is Refusal.WRONG_PIN
    with Session(engine) as s, s.begin():
        assert thd_activate(s, serial, pin, "alice", "USD", address="10.9.9.9", policy=policy,
                            now=NOW + timedelta(minutes=1)).refused is Refusal.LOCKED_OUT
        assert thd_activate(s, serial, pin, "bob", "USD", address="10.0.0.1", policy=policy,
                            now=NOW + timedelta(minutes=1)).refused is Refusal.LOCKED_OUT
    with Session(engine) as s, s.begin():
        assert thd_activate(s, serial, pin, "alice", "USD", address="10.0.0.1", policy=policy,
                            now=NOW + timedelta(minutes=6)).ok
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 1


def test_unknown_serial_counts_as_wrong_pin(engine: Engine) -> None:
    """An unknown serial is answered like a wrong PIN and counted (no probing for serials)."""
    _alice(engine)
    with Session(engine) as s, s.begin():
        r = thd_activate(s, "999999999999", "1", "alice", "USD", address="a", now=NOW)
    assert r.refused is Refusal.WRONG_PIN
    with Session(engine) as s:
        alice = s.scalar(select(Subscriber.id).where(Subscriber.login == "alice"))
        assert {a.scope: a.failures for a in s.scalars(select(CardAttempt))} == {
            f"sub:{alice}": 1, "addr:a": 1}


def test_concurrent_activations_credit_once(engine: Engine, db_url: str) -> None:
    """Eight threads activating the same card at once: exactly one succeeds, one ledger entry."""
    (serial, pin), *_ = _batch(engine)
    for i in range(8):
        _alice(engine, f"u{i}")
    factory = sessionmaker(engine, expire_on_commit=False)
    barrier = threading.Barrier(8)
    results: list[object] = []

    def go(i: int) -> None:
        barrier.wait()
        try:
            results.append(run_in_session(factory, thd_activate, serial, pin, f"u{i}", "USD",
                                          now=NOW, retries=5))
        except Exception as exc:  # a lock timeout would show here
            results.append(exc)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    oks = [r for r in results if getattr(r, "ok", False)]
    used = [r for r in results if getattr(r, "refused", None) is Refusal.USED]
    assert len(oks) == 1 and len(used) == 7, results
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 1
        assert_ledger_consistent(s)


def test_voucher_becomes_subscriber_and_expires(engine: Engine) -> None:
    """A card with a plan and --validity creates its own subscriber, disabled after validity."""
    with Session(engine) as s, s.begin():
        make_plan(s, "hotspot", time_price=parse_price("0.01"))
    (serial, pin), *_ = _batch(engine, "HS", plan="hotspot", validity_days=1)
    with Session(engine) as s, s.begin():
        r = thd_activate(s, serial, pin, None, "USD", via="radius", now=NOW,
                         voucher_password_hash="$argon2id$fake")
    assert r.ok and r.created_subscriber and r.login == serial
    with Session(engine) as s, s.begin():
        assert thd_expire_vouchers(s, NOW + timedelta(hours=23)) == []
        assert thd_expire_vouchers(s, NOW + timedelta(days=1, seconds=1)) == [serial]
    with Session(engine) as s:
        sub = s.scalars(select(Subscriber).where(Subscriber.login == serial)).one()
        assert sub.status == SubscriberStatus.DISABLED
        assert s.scalar(select(Plan.name).where(Plan.id == sub.plan_id)) == "hotspot"


def test_card_without_plan_is_not_a_voucher(engine: Engine) -> None:
    """A hotspot login with a plain value card is refused (and creates nothing)."""
    (serial, pin), *_ = _batch(engine)
    with Session(engine) as s, s.begin():
        assert thd_activate(s, serial, pin, None, "USD", now=NOW).refused is Refusal.NO_PLAN
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Subscriber)) == 0


def test_batch_validation(engine: Engine) -> None:
    """Bad counts, values, names and unknown plans are refused with the field's name."""
    from core.errors import AlreadyExists, InvalidInput, NotFound

    with Session(engine) as s:
        for kw, err in (({"count": 0}, InvalidInput), ({"value": 0}, InvalidInput),
                        ({"name": "a b"}, InvalidInput), ({"plan": "nope"}, NotFound)):
            args = {"name": "X", "count": 1, "value": 1, **kw}
            with pytest.raises(err):
                thd_create_batch(s, args.pop("name"), args.pop("count"),  # type: ignore[arg-type]
                                 args.pop("value"), "USD", now=NOW, **args)  # type: ignore[arg-type]
    _batch(engine, "DUP", count=1)
    with Session(engine) as s, pytest.raises(AlreadyExists):
        thd_create_batch(s, "DUP", 1, 1, "USD", now=NOW)


# --- CLI ------------------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, db_url: str, engine: Engine,
        capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[..., Result]]:
    """radbill with a config pointing at the test database."""
    yield cli_runner(f'[database]\nurl = {json.dumps(db_url)}\n', tmp_path, capsys)


def test_cli_card_lifecycle(cli: Callable[..., Result], engine: Engine, tmp_path: Path) -> None:
    """batch writes PINs once (0600 file), export/list/show omit them, activate credits once."""
    pins = tmp_path / "pins.csv"
    code, out, err = cli("card", "batch", "SPRING", "--count", "4", "--value", "5.00",
                         "--expires", "2999-12-31", "--pins", str(pins))
    assert code == 0 and "shown only this once" in out, (out, err)
    assert pins.stat().st_mode & 0o777 == 0o600
    lines = pins.read_text().splitlines()
    assert lines[0] == "serial,pin,value,currency,expires_at" and len(lines) == 5
    serial, pin = lines[1].split(",")[:2]
    assert cli("card", "batch", "SPRING2", "--count", "1", "--value", "1",
               "--pins", str(pins))[0] == 1  # refuses to overwrite
    code, out, _ = cli("card", "export", "SPRING")
    assert code == 0 and serial in out and pin not in out and out.count("\n") == 5
    _alice(engine)
    code, out, err = cli("card", "activate", "alice", serial, pin)
    assert code == 0 and "credited 5.00 USD to alice" in out, (out, err)
    code, _, err = cli("card", "activate", "alice", serial, pin)
    assert code == 1 and "already been used" in err and "Traceback" not in err
    code, out, _ = cli("card", "show", serial, "--out", "json")
    assert json.loads(out)["status"] == "used" and json.loads(out)["login"] == "alice"
    code, out, _ = cli("card", "list")
    assert "SPRING" in out and " 1 " in out
    second = lines[2].split(",")[0]
    assert cli("card", "block", second, "--reason", "lost")[0] == 0
    code, _, err = cli("card", "activate", "alice", second, lines[2].split(",")[1])
    assert code == 1 and "blocked" in err
    assert cli("card", "block", "--batch", "SPRING")[1].startswith("batch SPRING: 2 cards")
    code, _, err = cli("card", "batch", "X", "--count", "1", "--value", "1.001")
    assert code == 1 and "decimal places" in err
    code, _, err = cli("card", "batch", "X", "--count", "1", "--value", "1",
                       "--expires", "tomorrow")
    assert code == 1 and "--expires" in err


# --- hotspot voucher over RADIUS -------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_voucher_login_over_radius(engine: Engine, db_url: str, tmp_path: Path):
    """radclient logs in with serial/PIN: Accept, a subscriber and a card payment exist; a
    wrong PIN is rejected and a second login with the same card authenticates normally."""
    from tests.radclient import require_radclient
    from tests.test_billing_e2e import SECRET, Stack, radclient

    require_radclient()
    assert shutil.which("radclient")
    with Session(engine) as s, s.begin():
        s.add(Nas(name="hs", address="127.0.0.1", secret=SECRET,
                  require_message_authenticator=False))
        make_plan(s, "hotspot", time_price=parse_price("0.01"))
    (serial, pin), (serial2, pin2) = _batch(engine, "HS", count=2, plan="hotspot",
                                            validity_days=7)
    from core.config import parse_config

    config = parse_config({
        "server": {"data_dir": str(tmp_path)},
        "database": {"url": db_url, "pool_size": 4},
        "radius": {"listen": ["127.0.0.1"], "auth_port": 0, "acct_port": 0,
                   "credential_cache_ttl": 0},
        "billing": {"loop_interval": 3600, "currency": "USD"},
    })
    stack = Stack(config)
    yield stack.start()
    try:
        auth = stack.radius.bound_port("auth")
        login = 'User-Name = "{u}"\nUser-Password = "{p}"\nCalling-Station-Id = "aa-bb"\n'
        bad = yield radclient(auth, "auth", login.format(u=serial2, p="000000000000"))
        assert bad.code == "Access-Reject", bad.output
        ok = yield radclient(auth, "auth", login.format(u=serial, p=pin))
        assert ok.code == "Access-Accept", ok.output
        again = yield radclient(auth, "auth", login.format(u=serial, p=pin))
        assert again.code == "Access-Accept", again.output
        wrong = yield radclient(auth, "auth", login.format(u=serial, p=pin2))
        assert wrong.code == "Access-Reject", wrong.output
    finally:
        yield stack.stop()
    with Session(engine) as s:
        sub = s.scalars(select(Subscriber).where(Subscriber.login == serial)).one()
        assert sub.password_hash and sub.password_hash.startswith("$argon2")
        assert s.execute(select(LedgerEntry.amount, LedgerEntry.method)).all() == [
            (1000, "card")]
        card = s.scalars(select(Card).where(Card.serial == serial)).one()
        assert card.activated_via == "radius" and card.valid_until is not None
        assert s.get(CardAttempt, "addr:station:aa-bb").failures == 1  # type: ignore[union-attr]
