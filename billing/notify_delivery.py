"""Delivering the outbox: e-mail over SMTP and signed webhooks, at least once, with retries.

A sender claims due rows (``pending`` and due, or ``sending`` whose claim
expired because a sender died mid-delivery) by marking them ``sending``
until ``now + lease`` (``FOR UPDATE SKIP LOCKED`` on MariaDB, so senders on
several nodes never claim the same row); delivers each; and marks it
``sent``, or back to ``pending`` with an exponential backoff
(``backoff_base * 2**(attempts-1)``, at most ``backoff_max``), or ``dead``
after ``max_attempts``. A crash between delivery and marking re-delivers:
receivers de-duplicate on the notification's ``uid`` (``Message-ID`` of an
e-mail, ``X-Radbill-Delivery`` and ``id`` of a webhook).

Webhooks: ``POST`` of ``{"id", "event", "created_at", "data"}`` as JSON with
``X-Radbill-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``
(the format of billing.gateway_hmac), ``X-Radbill-Event`` and
``X-Radbill-Delivery``. Any 2xx is delivered; anything else is retried.
E-mail: Jinja2 text templates ``notify/<language>/<event>.txt`` (first line
``Subject: ...``), English when the language has none.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session
from twisted.application import service
from twisted.internet import defer, task

from billing.notify import enqueue_admin
from billing.notify_models import Channel, Notification, NotificationStatus, WebhookEndpoint
from core.config import Config
from core.db.base import utcnow
from core.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates") / "notify"


@dataclass(frozen=True)
class Claimed:
    id: int
    uid: str
    event: str
    channel: str
    target: str
    language: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base: float = 30.0
    cap: float = 3600.0

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.base * 2 ** max(attempts - 1, 0), self.cap))


def thd_claim(session: Session, now: datetime, limit: int, lease: float) -> list[Claimed]:
    n = Notification
    due = or_(and_(n.status == NotificationStatus.PENDING.value, n.next_attempt_at <= now),
              and_(n.status == NotificationStatus.SENDING.value, n.claimed_until < now))
    q = select(n).where(due).order_by(n.id).limit(limit)
    if session.get_bind().dialect.name == "mysql":
        q = q.with_for_update(skip_locked=True)
    rows = session.scalars(q).all()
    out = []
    for r in rows:
        r.status = NotificationStatus.SENDING.value
        r.claimed_until = now + timedelta(seconds=lease)
        out.append(Claimed(r.id, r.uid, r.event, r.channel, r.target, r.language,
                           dict(r.payload), r.attempts, r.created_at))
    return out


def thd_finish(session: Session, notification_id: int, error: str | None,
               policy: RetryPolicy, now: datetime | None = None) -> str:
    now = now or utcnow()
    r = session.get(Notification, notification_id)
    if r is None:
        return "gone"
    r.attempts += 1
    r.claimed_until = None
    if error is None:
        r.status, r.sent_at, r.last_error = NotificationStatus.SENT.value, now, ""
    elif r.attempts >= policy.max_attempts:
        r.status, r.last_error = NotificationStatus.DEAD.value, error[:255]
        log.warning("notification %s (%s to %s) is dead after %d attempts: %s", r.uid, r.event,
                    r.target or r.channel, r.attempts, error)
    else:
        r.status, r.last_error = NotificationStatus.PENDING.value, error[:255]
        r.next_attempt_at = now + policy.delay(r.attempts)
    return r.status


def thd_endpoint(session: Session, name: str) -> tuple[str, str] | None:
    row = session.execute(select(WebhookEndpoint.url, WebhookEndpoint.secret)
                          .where(WebhookEndpoint.name == name,
                                 WebhookEndpoint.enabled.is_(True))).one_or_none()
    return None if row is None else (row[0], row[1])


def webhook_signature(secret: bytes, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def webhook_body(n: Claimed) -> bytes:
    return json.dumps({"id": n.uid, "event": n.event, "created_at": n.created_at.isoformat(),
                       "data": n.payload}, sort_keys=True).encode()


class MailRenderer:
    def __init__(self) -> None:
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                                      autoescape=False)  # noqa: S701 (plain-text mail)

    def render(self, n: Claimed) -> tuple[str, str]:
        names = [f"{n.language}/{n.event}.txt", f"en/{n.event}.txt", "en/generic.txt"]
        values = {k: v for k, v in n.payload.items() if k not in ("event", "uid")}
        text = self.env.select_template(names).render(values, event=n.event, uid=n.uid)
        first, _, body = text.partition("\n")
        subject = first.removeprefix("Subject:").strip() or f"radbill: {n.event}"
        return subject, body.lstrip("\n")


class NotificationService(service.Service):
    """Polls the outbox and delivers; a Twisted Service like every long-running part."""

    name: str = "notifications"  # type: ignore[assignment]

    def __init__(self, config: Config, dbpool: Any, reactor: Any) -> None:
        self.config, self.dbpool, self.reactor = config, dbpool, reactor
        c = config.notify
        self.policy = RetryPolicy(c.max_attempts, c.backoff_base, c.backoff_max)
        self.mail = MailRenderer()
        self._loop: task.LoopingCall | None = None
        self._outage_since: float | None = None
        self._smtp_password: str | None = None
        self.delivered = 0

    def startService(self) -> None:
        super().startService()
        self._loop = task.LoopingCall(self.run_once)
        self._loop.clock = self.reactor
        self._loop.start(self.config.notify.poll_interval, now=True).addErrback(
            lambda f: log.error("notification loop stopped: %s", f.getTraceback()))

    def stopService(self) -> Any:
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return None

    @defer.inlineCallbacks
    def run_once(self) -> Generator[Any, Any, int]:
        """Claim and deliver one batch; returns how many were delivered."""
        c = self.config.notify
        try:
            claimed = yield self.dbpool.run(thd_claim, utcnow(), c.batch, c.lease)
        except DatabaseUnavailable:
            if self._outage_since is None:
                self._outage_since = time.time()
                log.error("notifications: the database is unreachable")
            return 0
        except Exception:
            log.exception("notifications: claiming failed")
            return 0
        if self._outage_since is not None:
            seconds = round(time.time() - self._outage_since)
            self._outage_since = None
            try:
                yield self.dbpool.run(_thd_outage, seconds)
            except Exception:
                log.exception("notifications: cannot record the database outage")
        results = yield defer.DeferredList([self._deliver(n) for n in claimed],
                                           consumeErrors=True)
        sent = sum(1 for ok, r in results if ok and r)
        self.delivered += sent
        return sent

    @defer.inlineCallbacks
    def _deliver(self, n: Claimed) -> Generator[Any, Any, bool]:
        error: str | None
        try:
            if n.channel == Channel.WEBHOOK.value:
                yield self._webhook(n)
            else:
                to = [n.target] if n.channel == Channel.EMAIL.value else list(
                    self.config.notify.admin_emails)
                if to:
                    yield self._email(n, to)
                else:
                    log.warning("admin notification %s %s: no [notify] admin_emails; "
                                "logged only: %s", n.uid, n.event, n.payload)
            error = None
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:255]
            log.info("notification %s (%s) attempt %d failed: %s", n.uid, n.event,
                     n.attempts + 1, error)
        yield self.dbpool.run(thd_finish, n.id, error, self.policy)
        return error is None

    @defer.inlineCallbacks
    def _webhook(self, n: Claimed) -> Generator[Any, Any, None]:
        import io

        from twisted.web.client import Agent, FileBodyProducer, readBody
        from twisted.web.http_headers import Headers

        endpoint = yield self.dbpool.run(thd_endpoint, n.target)
        if endpoint is None:
            raise RuntimeError(f"webhook endpoint {n.target!r} is gone or disabled")
        url, secret = endpoint
        body = webhook_body(n)
        headers = Headers({b"content-type": [b"application/json"],
                           b"user-agent": [b"radbill-notify"],
                           b"x-radbill-event": [n.event.encode()],
                           b"x-radbill-delivery": [n.uid.encode()],
                           b"x-radbill-signature": [webhook_signature(
                               secret.encode(), body, int(time.time())).encode()]})
        agent = Agent(self.reactor, connectTimeout=self.config.notify.webhook_timeout)
        d = agent.request(b"POST", url.encode(), headers, FileBodyProducer(io.BytesIO(body)))
        d.addTimeout(self.config.notify.webhook_timeout, self.reactor)
        response = yield d
        yield readBody(response)
        if not 200 <= response.code < 300:
            raise RuntimeError(f"HTTP {response.code} from {url}")

    def _password(self) -> str | None:
        e = self.config.notify.email
        if self._smtp_password is None:
            self._smtp_password = (Path(e.password_file).read_text(encoding="utf-8").strip()
                                   if e.password_file else e.password)
        return self._smtp_password or None

    def _email(self, n: Claimed, to: list[str]) -> Any:
        from twisted.mail import smtp

        e = self.config.notify.email
        if not e.host:
            raise RuntimeError("no [notify.email] host configured")
        subject, text = self.mail.render(n)
        msg = EmailMessage()
        msg["From"] = e.from_address
        msg["To"] = ", ".join(to)
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = f"<{n.uid}@radbill>"
        msg["X-Radbill-Notification"] = n.uid
        msg["X-Radbill-Event"] = n.event
        msg.set_content(text)
        username = e.username or None
        password = self._password() if username else None
        context = None
        if e.ca_file:
            from twisted.internet.ssl import Certificate, optionsForClientTLS

            root = Certificate.loadPEM(Path(e.ca_file).read_bytes())
            context = optionsForClientTLS(e.host, trustRoot=root)
        from io import BytesIO

        d: defer.Deferred[Any] = defer.Deferred()
        factory = smtp.ESMTPSenderFactory(
            username.encode() if username else None,
            password.encode() if password else None, e.from_address, to,
            BytesIO(msg.as_bytes()), d, retries=0, timeout=60, contextFactory=context,
            heloFallback=True, requireAuthentication=username is not None,
            requireTransportSecurity=e.starttls, hostname=e.host)
        self.reactor.connectTCP(e.host, e.port, factory)
        return d


def _thd_outage(session: Session, seconds: int) -> int:
    return enqueue_admin(session, "db_outage", {"seconds": seconds})
