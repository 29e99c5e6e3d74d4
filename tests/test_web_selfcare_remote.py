"""`radbill selfcare` as its own process over the API (no database URL), in a real Chromium."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.test_web_selfcare import server  # noqa: F401 - the seeded radbill serve fixture
from tests.web_support import ServerProcess, free_tcp_port, seed, wait_http
from webadmin.roles import cli_caller
from webadmin.service import tokens

pytestmark = pytest.mark.browser


@pytest.fixture
def front(server: ServerProcess, engine: Engine, tmp_path: Path  # noqa: F811
          ) -> Iterator[str]:
    """`radbill selfcare --api ... --token-file ...` with a config that names no database."""
    new = seed(engine, tokens.thd_add_token, cli_caller("test"), "front", "selfcare-frontend")
    token_file = tmp_path / "selfcare.token"
    token_file.write_text(new.token + "\n")
    token_file.chmod(0o600)
    port = free_tcp_port()
    cfg = tmp_path / "front.toml"
    cfg.write_text(f'[server]\ndata_dir = "{tmp_path}/front"\nlog_level = "warn"\n'
                   f'[selfcare]\nlisten = "127.0.0.1"\nport = {port}\n')
    log = tmp_path / "front.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "radbill.cli", "--config", str(cfg),
                                 "selfcare", "--api", server.base, "--token-file",
                                 str(token_file)], stdout=fh, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base, proc, timeout=60)
    except RuntimeError as exc:
        proc.kill()
        proc.wait()
        pytest.fail(f"{exc}: {log.read_text()}")
    yield base
    proc.terminate()
    proc.wait(timeout=15)


def test_separate_selfcare_process_over_the_api(page: Any, front: str) -> None:
    """Login through the API, own balance, sessions and payments; wrong password refused."""
    page.goto(front + "/my/login")
    page.fill("#f-login", "carol")
    page.fill("#f-password", "wrong")
    page.click("main button[type=submit]")
    assert "Wrong login or password" in page.inner_text(".flash.error")
    page.fill("#f-login", "carol")
    page.fill("#f-password", "carol-pw")
    page.click("main button[type=submit]")
    page.wait_for_url(front + "/my/")
    assert page.inner_text("#balance") == "$2.35"
    assert page.inner_text("#plan") == "home"
    assert page.locator("svg.chart").count() == 1
    page.click("nav >> text=Sessions")
    assert page.locator("main table tbody tr").count() == 2
    assert "35 MB" in page.inner_text("main table")
    page.click("nav >> text=Payments")
    assert "$12.34" in page.inner_text("main table") and "$999" not in page.content()
    page.goto(front + "/my/password")
    page.fill("#f-old", "nope-nope")
    page.fill("#f-new", "carol-new-pw")
    page.fill("#f-again", "carol-new-pw")
    page.click("main button[type=submit]")
    assert "not your current password" in page.inner_text("#e-old")
    page.fill("#f-old", "carol-pw")
    page.fill("#f-new", "carol-new-pw")
    page.fill("#f-again", "carol-new-pw")
    page.click("main button[type=submit]")
    page.wait_for_url(front + "/my/")
    assert "password has been changed" in page.inner_text(".flash.ok")
    page.goto(front + "/admin/")
    assert page.locator("#balance").count() == 0  # only /my/ is served here
    page.goto(front + "/my/")
    page.click("#who button")
    page.wait_for_url(front + "/my/login")
    page.goto(front + "/my/")
    assert page.url == front + "/my/login"
    page.fill("#f-login", "carol")
    page.fill("#f-password", "carol-new-pw")
    page.click("main button[type=submit]")
    page.wait_for_url(front + "/my/")


def test_selfcare_command_refuses_bad_arguments(tmp_path: Path) -> None:
    """A missing token file or a bad API URL is one clear line, no traceback."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[server]\ndata_dir = "{tmp_path}"\n')
    for extra, word in ((["--api", "http://127.0.0.1:1", "--token-file",
                          str(tmp_path / "none")], "cannot read"),
                        (["--api", "ftp://x", "--token-file", str(cfg)], "http://")):
        proc = subprocess.run([sys.executable, "-m", "radbill.cli", "--config", str(cfg),
                               "selfcare", *extra], capture_output=True, text=True, timeout=60,
                              check=False)
        assert proc.returncode != 0
        assert word in proc.stderr and "Traceback" not in proc.stderr
