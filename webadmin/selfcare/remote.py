"""Self-care over radbill's HTTP API: ``radbill selfcare`` on a public host, no database URL.

The front end holds one ``selfcare-frontend`` token, good for nothing but
``POST /api/v1/selfcare/login``; a subscriber's right password there returns
a session token acting as that subscriber only, kept in the page session
(the handle). Every other call is ``/api/v1/me/...`` with that session token,
so even a compromised front end reaches a subscriber's data only with its
password. The subscriber's address goes along as X-Forwarded-For, so radbill
throttles failed logins per subscriber address when it trusts this host
(``[web] behind_proxy`` with this host in ``trusted_proxies``).
"""

from __future__ import annotations

import json
from collections.abc import Generator
from datetime import datetime
from io import BytesIO
from typing import Any
from urllib.parse import urlencode

from twisted.internet import defer
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers

from billing.money import parse_amount
from core.errors import RadbillError
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
    Quota,
    UsageRow,
    WrongPassword,
)

TIMEOUT = 10.0


class ApiUnavailable(RadbillError):
    """radbill's API did not answer, or answered something unexpected."""


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _minor(text: str | None, currency: str) -> int | None:
    return None if text is None else parse_amount(text, currency, allow_negative=True)


class ApiSelfcare:
    def __init__(self, reactor: Any, api_url: str, token: str,
                 timeout: float = TIMEOUT) -> None:
        self.base = api_url.rstrip("/") + "/api/v1"
        self.token = token
        self.agent = Agent(reactor, connectTimeout=timeout)
        self.currency = ""  # learnt from /me/account

    @defer.inlineCallbacks
    def call(self, method: str, path: str, token: str, body: Any = None,
             client: str = "", headers_extra: dict[bytes, bytes] | None = None,
             as_bytes: bool = False) -> Generator[Any, Any, tuple[int, Any]]:
        headers = Headers({b"Authorization": [f"Bearer {token}".encode()],
                           b"Accept": [b"application/json"]})
        if client:
            headers.addRawHeader(b"X-Forwarded-For", client.encode())
        for k, v in (headers_extra or {}).items():
            headers.addRawHeader(k, v)
        producer = None
        if body is not None:
            headers.addRawHeader(b"Content-Type", b"application/json")
            producer = FileBodyProducer(BytesIO(json.dumps(body).encode()))
        try:
            resp = yield self.agent.request(method.encode(), (self.base + path).encode(),
                                            headers, producer)
            raw = yield readBody(resp)
        except Exception as exc:
            raise ApiUnavailable(f"radbill's API at {self.base} did not answer: {exc}") from None
        if as_bytes and resp.code == 200:
            ctype = (resp.headers.getRawHeaders(b"content-type") or [b""])[0].decode()
            return resp.code, (raw, ctype)
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            raise ApiUnavailable(f"radbill's API answered {resp.code} with no JSON") from None
        return resp.code, data

    @defer.inlineCallbacks
    def _get(self, handle: Handle, path: str, **query: Any) -> Generator[Any, Any, Any]:
        code, data = yield self.call("GET", path + ("?" + urlencode(query) if query else ""),
                                     handle.token)
        if code == 401:
            from webadmin.pages.site import PageError

            raise PageError(401, "")  # the session ended at radbill: log in again
        if code != 200:
            raise ApiUnavailable(f"GET {path}: radbill answered {code}")
        return data

    @defer.inlineCallbacks
    def login(self, login: str, password: str, client: str
              ) -> Generator[Any, Any, Handle | None]:
        code, data = yield self.call("POST", "/selfcare/login", self.token,
                                     {"login": login, "password": password}, client)
        if code in (401, 422, 429):
            return None
        if code != 200 or not isinstance(data, dict) or not data.get("token"):
            raise ApiUnavailable(f"self-care login: radbill answered {code}")
        return Handle(data["login"], data["token"])

    @defer.inlineCallbacks
    def logout(self, handle: Handle) -> Generator[Any, Any, None]:
        try:
            yield self.call("POST", "/logout", handle.token, {})
        except ApiUnavailable:
            pass

    @defer.inlineCallbacks
    def me(self, handle: Handle) -> Generator[Any, Any, Me]:
        a = yield self._get(handle, "/me/account")
        c = a["currency"]
        self.currency = c
        q = a.get("quota")
        return Me(login=a["login"], status=a["status"], money_status=a["money_status"],
                  plan=a["plan"], currency=c, balance=_minor(a["balance"], c) or 0,
                  reserved=_minor(a["reserved"], c) or 0,
                  credit_limit=_minor(a["credit_limit"], c) or 0,
                  available=_minor(a["available"], c) or 0,
                  spent_last_week=_minor(a["spent_last_week"], c) or 0,
                  runs_out_at=_when(a.get("runs_out_at")),
                  quota=None if not q else Quota(q["period"], q["seconds_included"],
                                                 q["seconds_left"], q["octets_included"],
                                                 q["octets_left"], q["after"]),
                  prices=tuple((p["what"], p["price"]) for p in a.get("prices", [])))

    @defer.inlineCallbacks
    def _currency(self, handle: Handle) -> Generator[Any, Any, str]:
        if not self.currency:
            yield self.me(handle)
        return self.currency

    @defer.inlineCallbacks
    def _usage(self, handle: Handle, path: str, offset: int,
               limit: int) -> Generator[Any, Any, list[UsageRow]]:
        c = yield self._currency(handle)
        page = yield self._get(handle, path, offset=offset, limit=limit)
        rows = [UsageRow(r["id"], _when(r["started_at"]), _when(r["stopped_at"]),  # type: ignore[arg-type]
                         r["state"], r["seconds"], r["octets_in"], r["octets_out"],
                         _minor(r["cost"], c), r["where"]) for r in page["items"]]
        return rows

    def sessions(self, handle: Handle, offset: int, limit: int) -> defer.Deferred[Any]:
        return self._usage(handle, "/me/sessions", offset, limit)

    def calls(self, handle: Handle, offset: int, limit: int) -> defer.Deferred[Any]:
        return self._usage(handle, "/me/calls", offset, limit)

    @defer.inlineCallbacks
    def ledger(self, handle: Handle, offset: int, limit: int,
               payments_only: bool = False) -> Generator[Any, Any, list[LedgerRow]]:
        c = yield self._currency(handle)
        page = yield self._get(handle, "/me/payments" if payments_only else "/me/ledger",
                               offset=offset, limit=limit)
        rows = [LedgerRow(r["id"], _when(r["created_at"]), r["kind"],  # type: ignore[arg-type]
                          _minor(r["amount"], c) or 0, r["description"], r["reference"])
                for r in page["items"]]
        return rows

    @defer.inlineCallbacks
    def traffic(self, handle: Handle, days: int) -> Generator[Any, Any, list[DayRow]]:
        data = yield self._get(handle, "/me/traffic", days=days)
        items = data["items"] if isinstance(data, dict) else data
        return [DayRow(r["day"], r["seconds"], r["octets_in"], r["octets_out"]) for r in items]

    @defer.inlineCallbacks
    def change_password(self, handle: Handle, old: str, new: str) -> Generator[Any, Any, None]:
        code, data = yield self.call("PUT", "/me/password", handle.token,
                                     {"old_password": old, "password": new})
        if code == 200:
            return
        if code in (400, 422) and "old_password" in json.dumps(data):
            raise WrongPassword()
        if code in (400, 422):
            from core.errors import InvalidInput

            raise InvalidInput(str((data or {}).get("detail") or data), field="new")
        raise ApiUnavailable(f"password change: radbill answered {code}")

    @defer.inlineCallbacks
    def activate_card(self, handle: Handle, serial: str, pin: str,
                      client: str) -> Generator[Any, Any, CardCredit]:
        # No Idempotency-Key: the card itself credits once, and with a key a refusal's
        # wrong-PIN count would roll back with the key's transaction (no lockout).
        code, data = yield self.call("POST", "/me/cards/activate", handle.token,
                                     {"serial": serial, "pin": pin}, client)
        if code in (200, 201):
            c = data["currency"]
            return CardCredit(data["serial"], _minor(data["credited"], c) or 0,
                              _minor(data["balance"], c) or 0, c)
        if code == 409:
            message = str((data or {}).get("error", {}).get("message", ""))
            raise CardNotCredited(message.split(": ", 1)[-1])
        if code in (400, 422):
            raise CardNotCredited("wrong serial or PIN")
        raise ApiUnavailable(f"card activation: radbill answered {code}")

    @defer.inlineCallbacks
    def documents(self, handle: Handle, limit: int) -> Generator[Any, Any, list[DocRow]]:
        page = yield self._get(handle, "/me/documents", limit=limit)
        return [DocRow(d["id"], d["kind"], d["title"], d["invoice"], d["pdf"],
                       _when(d["created_at"]))  # type: ignore[arg-type]
                for d in page["items"]]

    @defer.inlineCallbacks
    def document_file(self, handle: Handle, document_id: int,
                      fmt: str) -> Generator[Any, Any, DocumentFile]:
        code, data = yield self.call("GET", f"/me/documents/{document_id}/file?format={fmt}",
                                     handle.token, as_bytes=True)
        if code == 200:
            content, ctype = data
            return DocumentFile(content, ctype, f"document-{document_id}.{fmt}")
        if code in (400, 404):
            raise DocumentMissing()
        raise ApiUnavailable(f"document download: radbill answered {code}")
