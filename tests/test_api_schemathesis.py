"""Schemathesis against the served openapi.json of a real ``radbill web``: no server errors,
every answer documented and matching its schema (bounded in examples and time)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.web_support import free_tcp_port, seed
from webadmin.roles import cli_caller
from webadmin.service import catalog, resellers, tokens

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")
# Ending the fuzzer's own credentials, or long whole-database passes, are not what it tests.
EXCLUDED = ("revoke_token", "logout", "billing_run", "issue_statements")


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail("radbill web exited:\n" + log.read_text())
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 - 127.0.0.1
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail("radbill web did not answer:\n" + log.read_text())


@pytest.mark.timeout(240)
def test_schemathesis_finds_no_server_error(engine: Engine, db_url: str, tmp_path: Path) -> None:
    """``radbill web`` alone (no RADIUS) serves the API; fuzzing every operation gives no
    5xx and only documented statuses and schemas."""
    if not SCHEMATHESIS.exists() and shutil.which("schemathesis") is None:
        pytest.fail("schemathesis is not installed (it is in the test extra)")
    admin = cli_caller("test")
    token = seed(engine, tokens.thd_add_token, admin, "fuzz", "admin", None, None).token
    seed(engine, resellers.thd_add_reseller, admin, "r1", "")
    seed(engine, catalog.thd_add_nas, admin, "nas1", "192.0.2.1", "secret-123")
    port = free_tcp_port()
    cfg = tmp_path / "radbill.toml"
    cfg.write_text(f'[server]\ndata_dir = "{tmp_path}"\nlog_level = "warn"\n'
                   f'[database]\nurl = "{db_url}"\n[web]\nlisten = "127.0.0.1"\nport = {port}\n')
    log = tmp_path / "web.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "radbill.cli", "--config", str(cfg),
                                 "web"], stdout=fh, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = f"http://127.0.0.1:{port}/api/v1/openapi.json"
        _wait(url, proc, log)
        cmd = [str(SCHEMATHESIS if SCHEMATHESIS.exists() else "schemathesis"), "run", url,
               "-H", f"Authorization: Bearer {token}", "--max-examples", "4",
               "--max-time", "40", "--seed", "7", "--checks", CHECKS, "--no-color",
               "--request-timeout", "10", "--warnings", "off"]
        for op in EXCLUDED:
            cmd += ["--exclude-operation-id", op]
        # cwd: schemathesis keeps its crash cache in ./.schemathesis, never in the checkout.
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=200, check=False,
                             cwd=tmp_path)
        out = run.stdout[-6000:] + run.stderr[-2000:]
        assert run.returncode == 0, out + "\n--- server log ---\n" + log.read_text()[-3000:]
        assert "ERROR" not in log.read_text(), log.read_text()[-3000:]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
