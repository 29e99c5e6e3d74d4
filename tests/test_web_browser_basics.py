"""The page foundations in a real Chromium: CSP blocks inline code, styles load, text escapes."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from webadmin.pages.charts import Series, bar_chart
from webadmin.pages.render import TEMPLATE_DIR, Renderer
from webadmin.pages.security import PAGE_HEADERS

pytestmark = pytest.mark.browser

ORIGIN = "http://radbill.test"
STYLE = (TEMPLATE_DIR.parent / "static" / "style.css").read_bytes()
EVIL = "<script>window.pwned=1</script>\"'><img src=x onerror=window.pwned=2>"


def site(**kw: Any) -> SimpleNamespace:
    base = dict(static="/static", home="/admin/", nav=[], path="/admin/", who=None, csrf="t",
                flashes=[])
    base.update(kw)
    return SimpleNamespace(**base)


def serve(page: Any, html: bytes) -> None:
    headers = {k.decode(): v.decode() for k, v in PAGE_HEADERS.items()}

    def handle(route: Any) -> None:
        url = route.request.url
        if url.endswith("/static/style.css"):
            route.fulfill(status=200, body=STYLE, content_type="text/css")
        else:
            route.fulfill(status=200, body=html, headers=headers,
                          content_type="text/html; charset=utf-8")

    page.route(f"{ORIGIN}/**", handle)


def test_inline_script_blocked_by_csp(page: Any) -> None:
    """Even markup that escaped escaping could not run: CSP refuses inline script and style."""
    html = (b"<!doctype html><html><head><link rel=stylesheet href=/static/style.css></head>"
            b"<body><header class=top>x</header><p id=p style='color: red'>t</p>"
            b"<script>window.pwned = 1</script></body></html>")
    serve(page, html)
    page.goto(f"{ORIGIN}/admin/")
    assert page.evaluate("window.pwned") is None
    assert page.evaluate("getComputedStyle(document.getElementById('p')).color") != \
        "rgb(255, 0, 0)"
    # the stylesheet from 'self' does apply
    assert page.evaluate("getComputedStyle(document.querySelector('header.top'))"
                         ".backgroundColor") == "rgb(20, 38, 63)"
    assert any("Content Security Policy" in m for m in page.problems.messages)
    page.problems.messages.clear()  # expected here; any other page must log none


def test_layout_escapes_operator_text_and_draws_chart(page: Any) -> None:
    """Hostile login and chart labels render as text; nothing executes; the SVG chart draws."""
    r = Renderer("UTC")
    chart = bar_chart([EVIL, "b"], [Series(EVIL, [3, 4])], title=EVIL, unit="USD")
    env = r._envs["en"]
    tpl = env.from_string('{% extends "base.html" %}{% block title %}{{ t }}{% endblock %}'
                          "{% block content %}<h1>{{ t }}</h1>{{ chart }}{% endblock %}")
    html = tpl.render(site=site(who=SimpleNamespace(name=EVIL, role_label=EVIL),
                                nav=[SimpleNamespace(href="/admin/x", label=EVIL,
                                                     current=True)]),
                      t=EVIL, chart=chart, fmt=r.formatter("en"), lang="en",
                      languages={"en": "English"}).encode()
    serve(page, html)
    page.goto(f"{ORIGIN}/admin/")
    assert page.evaluate("window.pwned") is None
    assert page.inner_text("h1") == EVIL
    assert page.inner_text("#who .login") == EVIL
    assert page.locator("svg.chart rect.bar").count() == 2
    assert page.locator("img").count() == 0
    assert page.title().startswith(EVIL)
