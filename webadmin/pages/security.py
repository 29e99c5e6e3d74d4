"""Response headers every page carries: a strict CSP, no framing, no sniffing, no caching.

The Content-Security-Policy has no ``unsafe-inline`` anywhere: scripts and
styles come only from /static/ files, so an injected ``<script>`` or
``style=`` would not run even if escaping failed somewhere. Pages show
balances and sessions, so they are never cached by a browser or a proxy.
"""

from __future__ import annotations

from twisted.web.iweb import IRequest

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

PAGE_HEADERS: dict[bytes, bytes] = {
    b"Content-Security-Policy": CONTENT_SECURITY_POLICY.encode(),
    b"X-Frame-Options": b"DENY",
    b"X-Content-Type-Options": b"nosniff",
    b"Referrer-Policy": b"same-origin",
    b"Cache-Control": b"no-store",
}


def set_page_headers(request: IRequest) -> None:
    for name, value in PAGE_HEADERS.items():
        request.setHeader(name, value)
