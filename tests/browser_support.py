"""Browser fixtures: one headless Debian Chromium per test session, driven by Playwright.

Chromium is the system one (``/usr/bin/chromium``, installed by scripts/test)
launched through ``executable_path``; nothing is downloaded at run time
(``playwright install`` is never run). Each test gets a fresh context (own
cookies) and, when it ends, pass or fail, a full-page screenshot of its last
page under ``test-results/``. A page that logs a Content-Security-Policy
violation or a JavaScript error fails its test: CSP must hold on every page.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("RADBILL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]
RESULTS = Path(__file__).resolve().parent.parent / "test-results"
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """The session's Chromium (skipped locally without it, failed in CI)."""
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"CI=true but {CHROMIUM} is missing (scripts/test installs chromium)")
        pytest.skip(f"{CHROMIUM} not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if IN_CI:
            raise
        pytest.skip("playwright not installed")
    pw = sync_playwright().start()
    try:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=CHROMIUM_ARGS)
    except Exception:
        pw.stop()
        raise
    yield chromium
    chromium.close()
    pw.stop()


def page_shot(page: Any, name: str) -> Path:
    """A named screenshot of the page as it is now (docs/web.md's pictures come from these)."""
    path = RESULTS / "pages" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def screenshot_name(nodeid: str, suffix: str = "") -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("/")[-1]).strip("_")
    return RESULTS / f"{name}{suffix}.png"


class PageProblems:
    """Console errors and CSP violations a page reported; a test ends with none."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def console(self, msg: Any) -> None:
        # An error status the test asked for (401 on a wrong password, 403 on a forged form)
        # is logged as a failed resource load; that is the page working, not a problem.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            self.messages.append(msg.text)

    def page_error(self, exc: Any) -> None:
        self.messages.append(f"uncaught: {exc}")


def new_page(browser: Any, request: pytest.FixtureRequest, *, locale: str = "en-US",
             name_suffix: str = "") -> Iterator[Any]:
    context = browser.new_context(locale=locale, timezone_id="UTC",
                                  viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems = PageProblems()
    page.on("console", problems.console)
    page.on("pageerror", problems.page_error)
    page.problems = problems
    try:
        yield page
    finally:
        RESULTS.mkdir(exist_ok=True)
        try:
            page.screenshot(path=str(screenshot_name(request.node.nodeid, name_suffix)),
                            full_page=True)
        except Exception:  # noqa: S110 - a closed page has nothing to show; keep the real error
            pass
        context.close()
    failed = getattr(request.node, "rep_call", None)
    if problems.messages and not (failed is not None and failed.failed):
        pytest.fail("page reported errors: " + "; ".join(problems.messages[:5]))


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context and page; screenshot of the last page kept in test-results/."""
    yield from new_page(browser, request)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
