"""Self-care in this process: the service layer's self-care functions through the DB pool.

``radbill serve`` mounts the pages with this backend. Every method acts as the
handle's subscriber (``service.selfcare.subscriber_caller``), so the service
layer, not this module, decides what it may see; password checks and hashing
run in the reactor's thread pool.
"""

from __future__ import annotations

import secrets
from collections.abc import Generator
from datetime import timedelta
from typing import Any

from twisted.internet import defer, threads

from aaa.admin.passwords import hash_credentials
from core.db.base import utcnow
from core.db.pool import DBPool
from webadmin.roles import Caller
from webadmin.selfcare.backend import (
    CardCredit,
    CardNotCredited,
    DayRow,
    DocRow,
    DocumentFile,
    DocumentMissing,
    Handle,
    LedgerRow,
    Me,
    UsageRow,
    WrongPassword,
)
from webadmin.selfcare.passwords import check_password
from webadmin.service import selfcare as svc
from webadmin.service.selfcare import price_lines

# The in-process pages are a self-care front end of their own: they may log subscribers in.
FRONT_END = Caller(actor="selfcare:local", role="selfcare-frontend")
__all__ = ["FRONT_END", "LocalSelfcare", "price_lines"]


def _me(handle: Handle) -> Caller:
    return svc.subscriber_caller(handle.login)


class LocalSelfcare:
    def __init__(self, dbpool: DBPool, reactor: Any, currency: str, tz: Any,
                 config: Any = None) -> None:
        self.config = config  # for the document store (billing.documents.DocumentRenderer)
        self.dbpool = dbpool
        self.reactor = reactor
        self.currency = currency
        self.tz = tz

    @defer.inlineCallbacks
    def login(self, login: str, password: str, client: str) -> Generator[Any, Any, Handle | None]:
        found = yield self.dbpool.run(svc.thd_login_secrets, FRONT_END, login)
        ok = yield threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(),
                                             check_password, found, password)
        return Handle(found.login, secrets.token_urlsafe(16)) if ok else None

    def logout(self, handle: Handle) -> defer.Deferred[None]:
        return defer.succeed(None)

    def me(self, handle: Handle) -> defer.Deferred[Me]:
        return self.dbpool.run(svc.thd_me, _me(handle), self.currency)

    def sessions(self, handle: Handle, offset: int, limit: int) -> defer.Deferred[list[UsageRow]]:
        return self.dbpool.run(svc.thd_sessions, _me(handle), offset, limit)

    def calls(self, handle: Handle, offset: int, limit: int) -> defer.Deferred[list[UsageRow]]:
        return self.dbpool.run(svc.thd_calls, _me(handle), offset, limit)

    def ledger(self, handle: Handle, offset: int, limit: int,
               payments_only: bool = False) -> defer.Deferred[list[LedgerRow]]:
        return self.dbpool.run(svc.thd_ledger, _me(handle), self.currency, offset, limit,
                               payments_only)

    def traffic(self, handle: Handle, days: int) -> defer.Deferred[list[DayRow]]:
        now = utcnow()
        return self.dbpool.run(svc.thd_traffic, _me(handle), now - timedelta(days=days), now,
                               self.tz)

    @defer.inlineCallbacks
    def change_password(self, handle: Handle, old: str, new: str) -> Generator[Any, Any, None]:
        caller = _me(handle)
        found = yield self.dbpool.run(svc.thd_own_secrets, caller)
        pool = self.reactor.getThreadPool()
        ok = yield threads.deferToThreadPool(self.reactor, pool, check_password, found, old)
        if not ok:
            raise WrongPassword()
        creds = yield threads.deferToThreadPool(self.reactor, pool, hash_credentials, new)
        yield self.dbpool.run(svc.thd_change_password, caller, creds)

    @defer.inlineCallbacks
    def activate_card(self, handle: Handle, serial: str, pin: str,
                      client: str) -> Generator[Any, Any, CardCredit]:
        from billing.cards import DEFAULT_POLICY, REFUSAL_TEXT, card_policy

        policy = DEFAULT_POLICY if self.config is None else card_policy(self.config.cards)
        caller = svc.subscriber_caller(handle.login, client)
        r = yield self.dbpool.run(svc.thd_activate_card, caller, serial, pin, self.currency,
                                  policy)
        if r.refused is not None:
            raise CardNotCredited(REFUSAL_TEXT[r.refused])
        acct = r.payment.account
        return CardCredit(r.serial, r.payment.entry.amount, acct.balance, acct.currency)

    @defer.inlineCallbacks
    def documents(self, handle: Handle, limit: int) -> Generator[Any, Any, list[DocRow]]:
        rows = yield self.dbpool.run(svc.thd_my_documents, _me(handle), limit)
        return [DocRow(d.id, d.kind, d.title, d.invoice_number, bool(d.pdf_path), d.created_at)
                for d in rows]

    @defer.inlineCallbacks
    def document_file(self, handle: Handle, document_id: int,
                      fmt: str) -> Generator[Any, Any, DocumentFile]:
        from billing.documents import DocumentRenderer
        from core.errors import NotFound

        try:
            d = yield self.dbpool.run(svc.thd_my_document_file, _me(handle), document_id)
        except NotFound:
            raise DocumentMissing() from None
        if fmt == "pdf" and not d.pdf_path:
            raise DocumentMissing()
        renderer = DocumentRenderer(self.config)
        content = yield threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(),
                                                  renderer.read, d, fmt)
        ctype = "application/pdf" if fmt == "pdf" else "text/html; charset=utf-8"
        return DocumentFile(content, ctype, f"document-{d.id}.{fmt}")
