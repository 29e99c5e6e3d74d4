"""radbill session/call list|show on SQLite and MariaDB, in text, JSON and XML."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from accounting.records import AcctStatus
from accounting.store import AcctPolicy, thd_apply_records
from core.errors import InvalidInput
from radbill import cli
from radbill.cli.session import parse_since
from tests.test_accounting_store import call
from tests.test_accounting_support import T0, rec, seed

START, INTERIM, STOP = AcctStatus.START, AcctStatus.INTERIM, AcctStatus.STOP


@pytest.fixture
def config(engine: Engine, db_url: str, tmp_path: Path) -> str:
    """A config file for the test database, with sessions and a call stored in it."""
    with Session(engine) as s, s.begin():
        ids = seed(s)
        n = ids["nas1"]
        records = [rec(START, nas_id=n, sid="a1", t=0, framed_ip="100.64.0.1"),
                   rec(STOP, nas_id=n, sid="a1", t=100, session_time=100, octets_in=5,
                       octets_out=6, terminate_cause="User-Request"),
                   rec(START, nas_id=n, sid="a2", t=200),
                   rec(START, nas_id=n, sid="b1", user="bob", t=300),
                   rec(START, nas_id=ids["nas2"], sid="c1", user="bob", t=400,
                       identity="10.0.0.2"),
                   call(STOP, nas_id=ids["cube"], call_id="k1", leg="originate",
                        billable=True, t=500, duration=42, connect=458)]
        thd_apply_records(s, records, AcctPolicy())
    path = tmp_path / "radbill.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path}"\n[database]\nurl = "{db_url}"\n')
    return str(path)


def run(capsys: pytest.CaptureFixture[str], config: str, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["--config", config, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_session_list_filters(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--subscriber, --nas, --online, --since and --limit pick the right sessions, newest first."""
    code, out, _ = run(capsys, config, "session", "list", "--out", "json")
    assert code == 0
    assert [s["session_id"] for s in json.loads(out)] == ["c1", "b1", "a2", "a1"]
    _, out, _ = run(capsys, config, "session", "list", "--subscriber", "alice", "--out", "json")
    assert [s["session_id"] for s in json.loads(out)] == ["a2", "a1"]
    _, out, _ = run(capsys, config, "session", "list", "--online", "--nas", "nas1",
                    "--out", "json")
    assert [s["session_id"] for s in json.loads(out)] == ["b1", "a2"]
    since = (T0 + timedelta(seconds=250)).isoformat()
    _, out, _ = run(capsys, config, "session", "list", "--since", since, "--limit", "1",
                    "--out", "json")
    (only,) = json.loads(out)
    assert only["session_id"] == "c1" and only["nas"] == "nas2" and only["login"] == "bob"


def test_session_list_text_and_xml(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The text table has a header and one line per session; XML parses with one element each."""
    code, out, _ = run(capsys, config, "session", "list", "--subscriber", "alice")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:4] == ["ID", "LOGIN", "NAS", "STATE"]
    assert len(lines) == 3 and "User-Request" in out
    _, out, _ = run(capsys, config, "session", "list", "--out", "xml")
    root = ET.fromstring(out.split("?>", 1)[1])  # noqa: S314 (our own output)
    assert root.tag == "sessions" and len(root.findall("session")) == 4


def test_session_show(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    """show by id gives every field, including the closing cause."""
    _, out, _ = run(capsys, config, "session", "list", "--subscriber", "alice", "--out", "json")
    closed = next(s for s in json.loads(out) if s["session_id"] == "a1")
    code, out, _ = run(capsys, config, "session", "show", str(closed["id"]), "--out", "json")
    shown = json.loads(out)
    assert code == 0 and shown["state"] == "closed" and shown["closed_by"] == "stop"
    assert shown["input_octets"] == 5 and shown["framed_ip"] == "100.64.0.1"
    code, out, _ = run(capsys, config, "session", "show", shown["unique_id"])
    assert code == 0 and "terminate_cause" in out and "User-Request" in out


def test_call_list_and_show(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Calls list by subscriber and callee prefix, and show their times and duration."""
    code, out, _ = run(capsys, config, "call", "list", "--subscriber", "4930123456",
                       "--callee", "4940", "--out", "json")
    (c,) = json.loads(out)
    assert code == 0 and c["duration"] == 42 and c["caller"] == "4930123456"
    _, out, _ = run(capsys, config, "call", "list", "--callee", "33", "--out", "json")
    assert json.loads(out) == []
    code, out, _ = run(capsys, config, "call", "show", str(c["id"]), "--out", "xml")
    root = ET.fromstring(out.split("?>", 1)[1])  # noqa: S314 (our own output)
    assert code == 0 and root.findtext("duration") == "42" and root.findtext("state") == "ended"


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["session", "list", "--subscriber", "nobody"], 1, "no subscriber with login 'nobody'"),
    (["session", "list", "--nas", "nowhere"], 1, "no NAS named 'nowhere'"),
    (["session", "list", "--since", "yesterday"], 1, "--since 'yesterday'"),
    (["session", "show", "999999"], 1, "no session '999999'"),
    (["call", "show", "nope"], 1, "no call 'nope'"),
    (["session", "list", "--limit", "0"], 2, "must be 1 or more"),
])
def test_errors_are_one_line(config: str, capsys: pytest.CaptureFixture[str],
                             argv: list[str], code: int, message: str) -> None:
    """Unknown names, bad times and bad limits print one line and exit non-zero, no traceback."""
    if code == 2:
        with pytest.raises(SystemExit) as exc:
            cli.main(["--config", config, *argv])
        assert exc.value.code == 2
        _, err = capsys.readouterr()
    else:
        got, _, err = run(capsys, config, *argv)
        assert got == code
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_parse_since() -> None:
    """--since takes ISO dates (UTC unless an offset is given) and ages."""
    now = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("2024-03-01") == datetime(2024, 3, 1, tzinfo=UTC)
    assert parse_since("2024-03-01T10:00+02:00") == datetime(2024, 3, 1, 8, tzinfo=UTC)
    with pytest.raises(InvalidInput):
        parse_since("soon")
