"""A small page router on twisted.web: requests in, rendered pages or redirects out.

Handlers take a :class:`PageRequest` (decoded, size-limited form and query)
and return a :class:`Response` or a Deferred of one. Whatever a handler
raises becomes an error page with a status and a sentence, never a
traceback; every response carries the page security headers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web import resource, server
from twisted.web.static import File

from core.errors import AlreadyExists, InvalidInput, NotFound, RadbillError
from webadmin.errors import Forbidden as ServiceForbidden
from webadmin.pages.security import set_page_headers

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 64 * 1024
MAX_FIELD_CHARS = 4096
STATIC_DIR = __import__("pathlib").Path(__file__).parent / "static"


class PageError(Exception):
    """A refusal the visitor should read: status and a message for the error page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def N_(message: str) -> str:
    """Marks a message for extraction (webadmin.pages.i18n translates it on the error page)."""
    return message


class Forbidden(PageError):
    def __init__(self, message: str = N_("You may not do this.")) -> None:
        super().__init__(403, message)


@dataclass
class PageRequest:
    method: str
    path: str  # below the site's mount point, always starting with "/"
    query: dict[str, str]
    form: dict[str, str]
    cookies: dict[str, str]
    headers: dict[str, str]
    client: str
    secure: bool
    params: dict[str, str] = field(default_factory=dict)  # from the route pattern
    raw: Any = None

    def arg(self, name: str, default: str = "") -> str:
        return self.query.get(name, default)

    def int_arg(self, name: str, default: int = 0, lo: int = 0, hi: int = 10**9) -> int:
        try:
            return max(lo, min(hi, int(self.query.get(name, default))))
        except ValueError:
            return default


@dataclass
class Response:
    body: bytes = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[tuple[bytes, bytes, dict[str, Any]]] = field(default_factory=list)

    @classmethod
    def redirect(cls, location: str) -> Response:
        return cls(status=303, headers={"Location": location})

    def set_cookie(self, name: str, value: str, **kw: Any) -> None:
        self.cookies.append((name.encode(), value.encode(), kw))


Handler = Callable[[PageRequest], "Response | defer.Deferred[Response]"]
ErrorPage = Callable[[PageRequest, int, str], bytes]


def with_query(path: str, query: Mapping[str, Any]) -> str:
    pairs = [(k, str(v)) for k, v in query.items() if v not in (None, "")]
    return path + ("?" + urlencode(pairs) if pairs else "")


def _decode_pairs(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in parse_qsl(data.decode("utf-8", "replace"), keep_blank_values=True,
                          max_num_fields=200):
        out.setdefault(k[:100], v[:MAX_FIELD_CHARS].replace("\x00", ""))
    return out


class Router:
    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """``pattern`` like ``/subscribers/{login}``; a segment matches anything but '/'."""
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$"
        self.routes.append((method, re.compile(regex), handler))

    def get(self, pattern: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.add("GET", pattern, fn)
            return fn
        return deco

    def post(self, pattern: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.add("POST", pattern, fn)
            return fn
        return deco

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | bool | None:
        """(handler, params); False when the path exists with another method; None: no page."""
        seen = False
        for m, regex, handler in self.routes:
            found = regex.match(path)
            if found:
                if m == method or (method == "HEAD" and m == "GET"):
                    from urllib.parse import unquote

                    return handler, {k: unquote(v) for k, v in found.groupdict().items()}
                seen = True
        return False if seen else None


def status_of(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, PageError):
        return exc.status, exc.message
    if isinstance(exc, ServiceForbidden):  # the service layer refused the caller's role
        return 403, N_("You may not do this.")
    if isinstance(exc, NotFound):
        return 404, str(exc)
    if isinstance(exc, InvalidInput | AlreadyExists):
        return 400, str(exc)
    if isinstance(exc, RadbillError):
        return 400, str(exc)
    return 500, N_("Something went wrong on the server; it has been logged.")


class PagesResource(resource.Resource):
    """One mounted site (/admin/ or /my/): routes, static files, errors, security headers."""

    isLeaf = True

    def __init__(self, router: Router, error_page: ErrorPage, *, login_url: str = "/",
                 secure_cookies: Callable[[PageRequest], bool] | None = None) -> None:
        super().__init__()
        self.login_url = login_url
        self.router = router
        self.error_page = error_page
        self.static = File(str(STATIC_DIR))
        self.secure_cookies = secure_cookies

    def _page_request(self, request: server.Request) -> PageRequest:
        path = "/" + "/".join(p.decode("utf-8", "replace") for p in request.postpath)
        form: dict[str, str] = {}
        if request.method == b"POST":
            length = int(request.getHeader("content-length") or 0)
            if length > MAX_FORM_BYTES:
                raise PageError(413, N_("The form is too large."))
            request.content.seek(0)
            form = _decode_pairs(request.content.read(MAX_FORM_BYTES))
        query = _decode_pairs(request.uri.partition(b"?")[2])
        cookies = {}
        for raw in request.requestHeaders.getRawHeaders(b"cookie", [])[:5]:
            for part in raw.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k:
                    cookies.setdefault(k, v)
        headers = {k.decode("latin-1").lower(): v[0].decode("latin-1")
                   for k, v in request.requestHeaders.getAllRawHeaders()}
        client = request.getClientAddress()
        return PageRequest(method=request.method.decode(), path=path, query=query, form=form,
                           cookies=cookies, headers=headers,
                           client=getattr(client, "host", "") or "",
                           secure=request.isSecure(), raw=request)

    def render(self, request: server.Request) -> Any:
        set_page_headers(request)
        if not request.postpath:  # /my -> /my/, so relative links resolve below the site
            request.redirect(request.path + b"/")
            return b""
        if request.postpath[:1] == [b"static"] and request.method in (b"GET", b"HEAD"):
            request.setHeader(b"Cache-Control", b"public, max-age=3600")
            child = self.static
            for seg in request.postpath[1:]:
                child = child.getChild(seg, request)
            return child.render(request)
        try:
            preq = self._page_request(request)
        except PageError as exc:
            request.setResponseCode(exc.status)
            return exc.message.encode()
        found = self.router.match(preq.method, preq.path)
        if found is None:
            self._finish(request, preq, self._error(preq, 404, N_("No such page.")))
            return server.NOT_DONE_YET
        if found is False:
            self._finish(request, preq, self._error(preq, 405, N_("Method not allowed.")))
            return server.NOT_DONE_YET
        handler, preq.params = found  # type: ignore[misc]
        d = defer.maybeDeferred(handler, preq)
        d.addErrback(self._failed, preq)
        d.addCallback(lambda resp: self._finish(request, preq, resp))
        d.addErrback(self._broken, request)
        return server.NOT_DONE_YET

    def _broken(self, failure: Failure, request: server.Request) -> None:
        """A bug while writing the response: log it, and still answer (never hang a browser)."""
        log.error("page response failed: %s", failure.getTraceback())
        if not request.finished and not getattr(request, "_disconnected", False):
            try:
                request.setResponseCode(500)
                request.write(b"Internal error; it has been logged.")
                request.finish()
            except Exception:
                log.exception("could not finish the request")

    def _error(self, preq: PageRequest, status: int, message: str) -> Response:
        try:
            body = self.error_page(preq, status, message)
        except Exception:
            log.exception("error page failed")
            body = message.encode()
        return Response(body=body, status=status)

    def _failed(self, failure: Failure, preq: PageRequest) -> Response:
        status, message = status_of(failure.value)
        if status == 401:  # not logged in (or the session expired): to the login form
            return Response.redirect(self.login_url)
        if status >= 500:
            log.error("page %s %s failed: %s", preq.method, preq.path, failure.getTraceback())
        return self._error(preq, status, message)

    def _finish(self, request: server.Request, preq: PageRequest, resp: Response) -> None:
        if request.finished or getattr(request, "_disconnected", False):
            return
        request.setResponseCode(resp.status)
        request.setHeader(b"Content-Type", resp.content_type.encode())
        for k, v in resp.headers.items():
            request.setHeader(k.encode(), v.encode())
        secure = self.secure_cookies(preq) if self.secure_cookies else preq.secure
        for name, value, kw in resp.cookies:
            request.addCookie(name, value, path=kw.get("path", b"/"),
                              max_age=None if kw.get("max_age") is None
                              else str(kw["max_age"]), httpOnly=True, secure=secure,
                              sameSite="lax")
        if request.method != b"HEAD":
            request.write(resp.body)
        request.finish()
