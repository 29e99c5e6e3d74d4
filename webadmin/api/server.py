"""The declarations served by klein: authenticate, authorize, validate, run, render.

Every request goes the same way, in this order, so a refused caller learns
nothing from validation: format (``?out``/Accept) -> who (``auth``) -> CSRF for
cookie-authenticated changes -> the declared permission -> query and body
(pydantic) -> the handler (service-layer ``thd_*`` functions in the DB pool)
-> the response model -> the chosen format. Any exception becomes an answer
through ``problems.ERROR_TABLE``; nothing reaches the client as a traceback.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any

from klein import Klein
from pydantic import BaseModel, TypeAdapter, ValidationError
from twisted.internet import threads
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.exceptions import NotFound as RouteNotFound

from billing.cards import card_policy
from core.config import Config
from core.db.pool import DBPool
from core.errors import InvalidInput
from core.formats import plain
from webadmin.api import render
from webadmin.api.auth import CSRF_HEADER, Authenticator, ClientView, Identity, LoginThrottle
from webadmin.api.auth import csrf_token as derive_csrf
from webadmin.api.declare import API, Created, Endpoint, Raw, Registry
from webadmin.api.problems import BadMediaType, BadMethod, NoRoute, Problem, TooLarge, problem_for
from webadmin.errors import Forbidden, Unauthorized
from webadmin.roles import Caller

log = logging.getLogger(__name__)
MAX_BODY = 1 << 20
_SAFE = {"GET", "HEAD", "OPTIONS"}


@dataclass
class Ctx:
    """What a handler gets: the caller and the means to act for it."""

    api: ApiServer
    request: Any
    address: str
    secure: bool
    identity: Identity | None
    idempotency_key: str | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def caller(self) -> Caller:
        if self.identity is None:
            raise Unauthorized("authentication required")
        return self.identity.caller

    @property
    def config(self) -> Config:
        return self.api.config

    @property
    def currency(self) -> str:
        return self.api.config.billing.currency

    def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(session, caller, *args)`` in the DB pool: every service-layer call goes here."""
        return self.api.dbpool.run(fn, self.caller, *args, **kwargs)

    def in_thread(self, fn: Any, *args: Any) -> Any:
        """Slow CPU work (argon2) off the reactor, in the reactor's thread pool."""
        reactor = self.api.reactor
        return threads.deferToThreadPool(reactor, reactor.getThreadPool(), fn, *args)



def to_data(value: Any) -> Any:
    """Service results (dataclasses with as_dict) to plain dicts and lists."""
    as_dict = getattr(value, "as_dict", None)
    if callable(as_dict):
        return as_dict()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, list | tuple):
        return [to_data(v) for v in value]
    return value


class ApiServer:
    def __init__(self, config: Config, dbpool: DBPool, reactor: Any,
                 registry: Registry = API, *, tls: bool | None = None,
                 disconnect: Any = None) -> None:
        import webadmin.api.endpoints  # noqa: F401  (the declarations register themselves)

        w = config.web
        self.config, self.dbpool, self.reactor, self.registry = config, dbpool, reactor, registry
        self.tls = bool(w.tls_certificate) if tls is None else tls
        self.auth = Authenticator(dbpool, w.session_idle, w.token_cache)
        self.throttle = LoginThrottle(w.login_failures)
        self.view = ClientView(self.tls, w.behind_proxy, list(w.trusted_proxies))
        self.disconnect = disconnect  # async (dbpool, sessions) -> results; see endpoints.usage
        self.card_policy = card_policy(config.cards)
        self.app = Klein()
        self._adapters: dict[type[BaseModel], TypeAdapter[Any]] = {}
        for ep in registry.endpoints:
            self._route(ep)
        self.app.handle_errors(HTTPException)(self._routing_error)

    def resource(self) -> Any:
        return self.app.resource()

    def _route(self, ep: Endpoint) -> None:
        async def route(request: Any, **params: str) -> bytes:
            return await self.handle(ep, request, params)

        route.__name__ = ep.name
        self.app.route(ep.klein_path, methods=[ep.method], endpoint=ep.name,
                       strict_slashes=False)(route)

    def _routing_error(self, request: Any, failure: Any) -> bytes:
        exc = failure.value
        err: Exception
        if isinstance(exc, RouteNotFound):
            err = NoRoute("no such endpoint (see /api/v1/openapi.json)")
        elif isinstance(exc, MethodNotAllowed):
            err = BadMethod("method not allowed here")
        else:
            err = InvalidInput(exc.description or "bad request")
        return self._error(request, problem_for(err), self._format_or_json(request))

    # -- the one request path ----------------------------------------------------------------

    async def handle(self, ep: Endpoint, request: Any, params: dict[str, str]) -> bytes:
        body = await self._handle(ep, request, params)
        # A known length, not chunked: smaller answers, simpler clients, keep-alive.
        request.setHeader(b"content-length", str(len(body)).encode())
        return body

    async def _handle(self, ep: Endpoint, request: Any, params: dict[str, str]) -> bytes:
        fmt = self._format_or_json(request)
        try:
            fmt = render.choose(_arg(request, "out"), _header(request, b"accept"))
            address = self.view.address(request)
            identity = None
            if not ep.public:
                identity = await self.auth.identify(request, address)
                if identity.cookie and ep.changes:
                    sent = request.getHeader(CSRF_HEADER) or ""
                    if not hmac.compare_digest(sent.encode("latin-1", "replace")
                                               if isinstance(sent, str) else sent,
                                               derive_csrf(identity.secret).encode()):
                        raise Forbidden("missing or wrong X-CSRF-Token for a cookie session")
                if ep.permission is not None and not identity.caller.may(ep.permission):
                    raise Forbidden(f"{identity.caller.role} may not use {ep.method} "
                                    f"/api/v1{ep.path}")
            kwargs: dict[str, Any] = dict(params)
            if ep.query is not None:
                kwargs["query"] = self._query(ep, request)
            if ep.body is not None:
                kwargs["body"] = self._body(ep, request)
            ctx = Ctx(self, request, address, self.view.secure(request), identity)
            if ep.idempotent:
                key = _header(request, b"idempotency-key")
                if key is not None and not 1 <= len(key) <= 128:
                    raise InvalidInput("Idempotency-Key must be 1..128 characters",
                                       field="Idempotency-Key")
                ctx.idempotency_key = key
            result = await ep.handler(ctx, **kwargs)
            status = ep.status
            if isinstance(result, Created):
                result, status = result.data, result.status
            if isinstance(result, Raw):
                return self._raw(request, result, ctx)
            data = self._shape(ep, result, kwargs.get("query"))
            body = render.render(data, fmt, ep.tag if ep.paged else ep.item, ep.item)
        except Exception as exc:
            if isinstance(exc, InvalidInput) and exc.field is None:
                exc.field = guess_field(ep, str(exc))
            return self._error(request, problem_for(exc), fmt)
        request.setResponseCode(status)
        self._headers(request, fmt)
        for k, v in ctx.extra_headers.items():
            request.setHeader(k.encode(), v.encode())
        return body

    def _format_or_json(self, request: Any) -> str:
        try:
            return render.choose(_arg(request, "out"), _header(request, b"accept"))
        except Exception:
            return "json"

    def _query(self, ep: Endpoint, request: Any) -> Any:
        assert ep.query is not None
        values: dict[str, str] = {}
        for k, v in (request.args or {}).items():
            try:
                name, value = k.decode("utf-8"), v[0].decode("utf-8") if v else ""
            except UnicodeDecodeError:
                raise InvalidInput("query parameters must be UTF-8") from None
            if name != "out":
                values[name] = value
        q = ep.query.model_validate(values)
        limit = getattr(q, "limit", None)
        if ep.paged and limit is not None and limit > self.config.web.max_page:
            raise InvalidInput(f"limit must be 1..{self.config.web.max_page}", field="limit")
        return q

    def _body(self, ep: Endpoint, request: Any) -> Any:
        assert ep.body is not None
        raw = request.content.read(MAX_BODY + 1) if request.content is not None else b""
        if len(raw) > MAX_BODY:
            raise TooLarge(f"request body over {MAX_BODY} bytes")
        ctype = (_header(request, b"content-type") or "").split(";")[0].strip().lower()
        if raw.strip() and ctype not in ("", "application/json") and not ctype.endswith("+json"):
            raise BadMediaType("the request body must be JSON (Content-Type: application/json)")
        if not raw.strip():
            data: Any = {}
        else:
            try:
                data = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise InvalidInput("the request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise InvalidInput("the request body must be a JSON object")
        return ep.body.model_validate(data)

    def _adapter(self, model: type[BaseModel]) -> TypeAdapter[Any]:
        a = self._adapters.get(model)
        if a is None:
            a = self._adapters[model] = TypeAdapter(model)
        return a

    def _item(self, ep: Endpoint, value: Any) -> Any:
        value = plain(to_data(value))
        if ep.response is None:
            return value
        try:
            return self._adapter(ep.response).dump_python(
                ep.response.model_validate(value), mode="json")
        except ValidationError as exc:  # our bug, not the client's: log it, answer 500
            raise RuntimeError(f"{ep.name}: response does not match its model: {exc}") from exc

    def _shape(self, ep: Endpoint, result: Any, query: Any) -> Any:
        if not ep.paged:
            if isinstance(result, list):
                return [self._item(ep, r) for r in result]
            return None if result is None else self._item(ep, result)
        limit, offset = query.limit, query.offset
        rows = list(result)
        more = len(rows) > limit
        return {"items": [self._item(ep, r) for r in rows[:limit]], "limit": limit,
                "offset": offset, "next_offset": offset + limit if more else None}

    def _headers(self, request: Any, fmt: str) -> None:
        request.setHeader(b"content-type", render.content_type(fmt))
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-content-type-options", b"nosniff")
        if fmt == "html":
            request.setHeader(b"content-security-policy", b"default-src 'none'")

    def _raw(self, request: Any, raw: Raw, ctx: Ctx) -> bytes:
        request.setResponseCode(200)
        request.setHeader(b"content-type", raw.content_type.encode())
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-content-type-options", b"nosniff")
        if raw.filename:
            safe = "".join(c for c in raw.filename if c.isalnum() or c in "._-") or "download"
            request.setHeader(b"content-disposition",
                              f'attachment; filename="{safe}"'.encode())
        return raw.body

    def _error(self, request: Any, p: Problem, fmt: str) -> bytes:
        request.setResponseCode(p.status)
        self._headers(request, fmt)
        for k, v in p.headers:
            request.setHeader(k.encode(), v.encode())
        return render.render(p.body() if fmt in ("json", "xml") else p.body()["error"],
                             fmt, "response" if fmt == "xml" else "error")


def guess_field(ep: Endpoint, message: str) -> str | None:
    """The field a domain validator's message names ('rate limit ...' -> rate_limit).

    The domain packages validate (and say what is wrong in words) without knowing the
    API's field names; the longest declared field named in the message is the one.
    """
    text = message.lower()
    names = [n for model in (ep.body, ep.query) if model is not None
             for n in model.model_fields]
    for name in sorted(names, key=len, reverse=True):
        if name in text or name.replace("_", " ") in text or name.replace("_", "-") in text:
            return name
    return None


def _arg(request: Any, name: str) -> str | None:
    v = (request.args or {}).get(name.encode())
    if not v:
        return None
    try:
        return str(v[0].decode("utf-8"))
    except UnicodeDecodeError:
        return "?"


def _header(request: Any, name: bytes) -> str | None:
    v = request.getHeader(name)
    if v is None:
        return None
    return v if isinstance(v, str) else v.decode("latin-1")
