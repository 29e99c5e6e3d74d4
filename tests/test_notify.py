"""Notifications: outbox rows in the event's transaction; SMTP (AUTH, STARTTLS) and signed
webhooks delivered at least once with stable ids, backoff, dead letters and restarts."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from twisted.internet import reactor
from twisted.web import resource, server

from billing.accounts import thd_set_credit_limit
from billing.models import EntryKind
from billing.money import parse_price
from billing.notify import thd_low_balance_scan
from billing.notify_delivery import NotificationService, RetryPolicy, thd_claim, thd_finish
from billing.notify_models import (
    LowBalanceThreshold,
    Notification,
    NotifyContact,
    WebhookEndpoint,
)
from billing.payments import thd_add_payment
from core.config import parse_config
from core.db.models import Plan
from tests.billing_support import make_plan, make_subscriber

HOOK_SECRET = "webhook-secret-0123456789"


def _alice(engine: Engine, email: str | None = "alice@example.net", hook: str | None = None,
           plan: bool = False) -> None:
    with Session(engine) as s, s.begin():
        plan_id = make_plan(s, "p", time_price=parse_price("0.01")) if plan else None
        sid = make_subscriber(s, "alice", plan_id)
        if email:
            s.add(NotifyContact(subscriber_id=sid, email=email, language="en"))
        if hook:
            s.add(WebhookEndpoint(name="crm", url=hook, secret=HOOK_SECRET, events="*"))


def _rows(engine: Engine) -> list[tuple[str, str, str]]:
    with Session(engine) as s:
        return [tuple(r) for r in s.execute(select(Notification.event, Notification.channel,
                                                   Notification.status)
                                            .order_by(Notification.id))]  # type: ignore[misc]


def test_outbox_rows_share_the_event_transaction(engine: Engine) -> None:
    """A payment writes its notification rows; a rolled-back payment writes none."""
    _alice(engine, hook="http://127.0.0.1:9/x")
    with Session(engine) as s:
        with s.begin():
            thd_add_payment(s, "alice", 500, "USD", "R-1")
            s.rollback()
    assert _rows(engine) == []
    with Session(engine) as s, s.begin():
        thd_add_payment(s, "alice", 500, "USD", "R-1")
        thd_add_payment(s, "alice", 500, "USD", "R-1")  # a replay: no new notification
    assert _rows(engine) == [("payment_received", "email", "pending"),
                             ("payment_received", "webhook", "pending")]
    with Session(engine) as s:
        uids = list(s.scalars(select(Notification.uid)))
        payload = s.scalars(select(Notification.payload)).first()
    assert len(set(uids)) == 2 and payload["amount"] == "5.00" and payload["login"] == "alice"


def test_cut_off_and_restored_events(engine: Engine) -> None:
    """Blocking for money and the payment that lifts it each queue their event."""
    _alice(engine, plan=True)
    with Session(engine) as s, s.begin():
        thd_add_payment(s, "alice", -1, "USD", kind=EntryKind.ADJUSTMENT)
    with Session(engine) as s, s.begin():
        thd_add_payment(s, "alice", 100, "USD", "R-2")
    assert [e for e, _, _ in _rows(engine)] == ["cut_off", "payment_received", "restored"]


def test_low_balance_once_until_rearmed(engine: Engine) -> None:
    """Below the plan's threshold notifies once; back above re-arms the warning."""
    _alice(engine, plan=True)
    with Session(engine) as s, s.begin():
        s.add(LowBalanceThreshold(plan_id=s.scalar(select(Plan.id)), amount=500))
        thd_add_payment(s, "alice", 300, "USD", "R-3")
    for _ in range(2):
        with Session(engine) as s, s.begin():
            thd_low_balance_scan(s)
    assert [e for e, _, _ in _rows(engine)].count("low_balance") == 1
    with Session(engine) as s, s.begin():
        thd_add_payment(s, "alice", 1000, "USD", "R-4")
        thd_low_balance_scan(s)
    with Session(engine) as s, s.begin():
        thd_set_credit_limit(s, "alice", 0, "USD")
        thd_add_payment(s, "alice", -1200, "USD", kind=EntryKind.ADJUSTMENT)
        thd_low_balance_scan(s)
    assert [e for e, _, _ in _rows(engine)].count("low_balance") == 2


def test_claim_lease_redelivers_after_a_crash(engine: Engine) -> None:
    """A row claimed by a sender that died is claimed again once its lease is over."""
    _alice(engine)
    with Session(engine) as s, s.begin():
        thd_add_payment(s, "alice", 500, "USD", "R-5")
    now = datetime.now(UTC)
    with Session(engine) as s, s.begin():
        first = thd_claim(s, now, 10, lease=60)
    with Session(engine) as s, s.begin():
        assert thd_claim(s, now + timedelta(seconds=30), 10, lease=60) == []
    with Session(engine) as s, s.begin():
        again = thd_claim(s, now + timedelta(seconds=61), 10, lease=60)
    assert [c.uid for c in again] == [c.uid for c in first]


def test_backoff_then_dead(engine: Engine) -> None:
    """Failures back off exponentially and end in 'dead' after max_attempts."""
    _alice(engine)
    with Session(engine) as s, s.begin():
        thd_add_payment(s, "alice", 500, "USD", "R-6")
    policy = RetryPolicy(max_attempts=3, base=10, cap=15)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    statuses = []
    with Session(engine) as s:
        nid = s.scalar(select(Notification.id))
    for _ in range(3):
        with Session(engine) as s, s.begin():
            statuses.append(thd_finish(s, nid, "boom", policy, now))
            row = s.get(Notification, nid)
            assert row is not None
            waits = (row.next_attempt_at - now).total_seconds()
    assert statuses == ["pending", "pending", "dead"]
    assert policy.delay(1).total_seconds() == 10 and policy.delay(2).total_seconds() == 15
    assert waits == 15


# --- real SMTP and HTTP receivers on 127.0.0.1 ---------------------------------------------


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[str, str]:
    """A self-signed certificate for the test SMTP server."""
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(crt), "-days", "1", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True)
    return str(crt), str(key)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.auth: list[tuple[str, str]] = []
        self.got = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.rcpt_tos, envelope.content, session.ssl is not None))
        self.got.set()
        return "250 OK"


@pytest.fixture
def smtp(tls_files: tuple[str, str]) -> Iterator[tuple[int, Mailbox]]:
    """aiosmtpd on 127.0.0.1 requiring STARTTLS and AUTH (user radbill / pw)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    box = Mailbox()

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                      data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"radbill", b"pw-smtp")
        if ok:
            box.auth.append((mechanism, data.login.decode()))
        return AuthResult(success=ok)

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*tls_files)
    controller = Controller(box, hostname="127.0.0.1", port=_free_port(), tls_context=ctx,
                            require_starttls=True, authenticator=authenticator,
                            auth_required=True)
    controller.start()
    yield controller.port, box
    controller.stop()


class Receiver(resource.Resource):
    isLeaf = True

    def __init__(self, codes: list[int]) -> None:
        super().__init__()
        self.codes = codes
        self.requests: list[tuple[dict[str, str], bytes]] = []

    def render_POST(self, request: Any) -> bytes:
        headers = {k.decode().lower(): v[0].decode()
                   for k, v in request.requestHeaders.getAllRawHeaders()}
        self.requests.append((headers, request.content.read()))
        request.setResponseCode(self.codes.pop(0) if self.codes else 200)
        return b"ok"


@pytest.fixture
def receiver() -> Iterator[tuple[str, Receiver]]:
    """A real HTTP webhook receiver on 127.0.0.1: answers 500 once, then 200."""
    r = Receiver([500])
    port = reactor.listenTCP(0, server.Site(r), interface="127.0.0.1")
    yield f"http://127.0.0.1:{port.getHost().port}/hook", r
    pytest_twisted.blockon(port.stopListening())


@pytest_twisted.inlineCallbacks
def test_smtp_starttls_auth_and_webhook_retry(engine: Engine, dbpool, smtp, receiver,
                                              tmp_path: Path, tls_files):
    """E-mail over STARTTLS with AUTH; the webhook's 500 is retried with the same id and a
    valid HMAC signature; nothing is left pending."""
    port, box = smtp
    url, hook = receiver
    _alice(engine, hook=url)
    with Session(engine) as s, s.begin():
        thd_add_payment(s, "alice", 1250, "USD", "R-7")
    config = parse_config({
        "server": {"data_dir": str(tmp_path)},
        "notify": {"backoff_base": 0.2, "backoff_max": 0.2, "poll_interval": 0.1,
                   "email": {"host": "127.0.0.1", "port": port, "starttls": True,
                             "ca_file": tls_files[0],
                             "username": "radbill", "password": "pw-smtp",
                             "from_address": "billing@example.net"}}})
    svc = NotificationService(config, dbpool, reactor)
    from twisted.internet import task

    for _ in range(50):
        yield svc.run_once()
        if len(hook.requests) >= 2 and box.messages:
            with Session(engine) as s:
                if not s.scalar(select(func.count()).select_from(Notification).where(
                        Notification.status != "sent")):
                    break
        yield task.deferLater(reactor, 0.1, lambda: None)
    (rcpt, content, tls), = box.messages
    assert rcpt == ["alice@example.net"] and tls and box.auth[0][1] == "radbill"
    text = content.decode()
    assert "Subject: Payment received: 12.50 USD" in text and "R-7" in text
    (first_h, first_b), (second_h, second_b) = hook.requests[:2]
    assert json.loads(first_b)["id"] == json.loads(second_b)["id"]
    assert first_h["x-radbill-delivery"] == second_h["x-radbill-delivery"]
    body = json.loads(second_b)
    assert body["id"] == second_h["x-radbill-delivery"] and body["event"] == "payment_received"
    sig = dict(p.split("=", 1) for p in second_h["x-radbill-signature"].split(","))
    expected = hmac.new(HOOK_SECRET.encode(), sig["t"].encode() + b"." + second_b,
                        hashlib.sha256).hexdigest()
    assert sig["v1"] == expected
    with Session(engine) as s:
        rows = s.execute(select(Notification.channel, Notification.status,
                                Notification.attempts)).all()
    assert sorted(rows) == [("email", "sent", 1), ("webhook", "sent", 2)]
    assert f"<{body['id']}@radbill>" not in text  # the e-mail has its own uid
    with Session(engine) as s:
        mail_uid = s.scalar(select(Notification.uid).where(Notification.channel == "email"))
    assert f"Message-ID: <{mail_uid}@radbill>" in text


@pytest_twisted.inlineCallbacks
def test_plaintext_smtp_is_refused_when_starttls_required(engine: Engine, dbpool,
                                                          tmp_path: Path):
    """A server without STARTTLS fails the attempt (kept for retry), never sends in clear."""
    from aiosmtpd.controller import Controller

    box = Mailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        _alice(engine)
        with Session(engine) as s, s.begin():
            thd_add_payment(s, "alice", 100, "USD", "R-8")
        config = parse_config({"notify": {"email": {"host": "127.0.0.1", "port": port,
                                                    "starttls": True}}})
        sent = yield NotificationService(config, dbpool, reactor).run_once()
    finally:
        controller.stop()
    assert sent == 0 and box.messages == []
    with Session(engine) as s:
        row = s.scalars(select(Notification)).one()
    assert row.status == "pending" and row.attempts == 1 and row.last_error


def test_example_notification_templates_render() -> None:
    """Every event has an English template that renders with its payload keys."""
    from billing.notify import EVENTS
    from billing.notify_delivery import Claimed, MailRenderer

    m = MailRenderer()
    payload = {"login": "a", "amount": "1", "currency": "USD", "reference": "r", "balance": "2",
               "threshold": "3", "serial": "1", "value": "1", "period": "2024-05",
               "opening": "0", "closing": "1", "error": "e", "action": "disconnect",
               "nas_id": 1, "outcome": "timeout", "session": "s", "account_id": 1,
               "detail": "", "seconds": 5, "pool": "p", "percent": 95, "used": 1, "size": 2}
    for event in EVENTS:
        subject, body = m.render(Claimed(1, "u", event, "email", "", "en", payload, 0,
                                         dt.datetime.now(UTC)))
        assert subject and "{{" not in subject + body, event
    ru = m.render(Claimed(1, "u", "payment_received", "email", "", "ru", payload, 0,
                          dt.datetime.now(UTC)))
    assert ru[0].startswith("Платёж")
