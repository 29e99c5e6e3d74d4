"""radbill pool ... and radbill login generate: output, progress, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.db.pool import DBPool
from pools.lease import thd_allocate
from tests.pools_support import cli_main, thd_demo_rows, thd_states


@pytest.fixture
def config(engine: Engine, db_url: str, tmp_path: Path) -> str:
    """A config file pointing at the test database, with demo plan/NAS/subscribers."""
    with Session(engine) as s, s.begin():
        thd_demo_rows(s)
    path = tmp_path / "radbill.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path}"\n[database]\nurl = "{db_url}"\n'
                    "[pools]\nwarn_utilization = 50\n")
    return str(path)


def run(config: str, *argv: str) -> int:
    return cli_main(["--config", config, *argv])


def test_add_list_show_with_warning(config: str, engine: Engine,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """pool list shows size, used, free, percent and marks pools over warn_utilization."""
    assert run(config, "pool", "add", "p", "--kind", "ipv4", "--range", "10.0.0.1-10.0.0.4") == 0
    assert "pool p added: ipv4, 4 identifiers" in capsys.readouterr().out
    pool = DBPool(engine)
    for login in ("alice", "bob"):
        pool.run_sync(thd_allocate, "p", login)
    assert run(config, "pool", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "SIZE", "USED", "FREE", "PERCENT", "WARN"]
    assert lines[1].split() == ["p", "ipv4", "4", "2", "2", "50.0%", "over", "50%"]
    assert run(config, "pool", "list", "--out", "json") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["size"], row["used"], row["free"], row["warning"]) == (4, 2, 2, True)
    assert run(config, "pool", "show", "p", "--out", "json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["ranges"] == ["10.0.0.1-10.0.0.4"] and shown["offered"] == 2
    assert run(config, "pool", "leases", "p") == 0
    out = capsys.readouterr().out
    assert "10.0.0.1" in out and "alice" in out and "offered" in out


def test_errors_are_one_line_and_change_nothing(config: str, engine: Engine,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Overlap, unparsable network, removal with live leases: exit 1, one line, no change."""
    assert run(config, "pool", "add", "p", "--kind", "ipv4", "--range", "10.0.0.0/24") == 0
    DBPool(engine).run_sync(thd_allocate, "p", "alice")
    before = DBPool(engine).run_sync(thd_states)
    capsys.readouterr()
    cases = [
        (["pool", "add", "q", "--kind", "ipv4", "--range", "10.0.0.128/25"], "overlaps pool p"),
        (["pool", "add", "q", "--kind", "ipv4", "--range", "10.0.300.0/24"],
         "is not an IPv4 address, CIDR or A-B range"),
        (["pool", "add", "q", "--kind", "pd", "--range", "2001:db8::/48"], "--prefix-length"),
        (["pool", "remove", "p"], "live lease"),
        (["pool", "show", "nope"], "no pool named 'nope'"),
        (["pool", "attach", "nope", "p"], "no plan named 'nope'"),
        (["login", "generate", "--pool", "p", "--count", "2"], "not a login pool"),
    ]
    for argv, message in cases:
        assert run(config, *argv) == 1, argv
        captured = capsys.readouterr()
        assert captured.err.count("\n") == 1 and message in captured.err, captured.err
        assert "Traceback" not in captured.err
    assert DBPool(engine).run_sync(thd_states) == before
    assert run(config, "pool", "list", "--out", "json") == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["p"]


def test_bad_arguments_are_usage_errors(config: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown --kind or a missing argument exits 2 with argparse's message."""
    with pytest.raises(SystemExit) as exc:
        run(config, "pool", "add", "p", "--kind", "ipv5", "--range", "10.0.0.0/24")
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_big_pool_shows_progress(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Adding 65,536 prefixes draws a progress bar on stderr and stores them all."""
    assert run(config, "pool", "add", "pd", "--kind", "pd", "--range", "2001:db8::/40",
               "--prefix-length", "56") == 0
    captured = capsys.readouterr()
    assert "65536 identifiers" in captured.out
    assert "pool pd" in captured.err and "item" in captured.err  # tqdm's bar
    assert run(config, "pool", "show", "pd", "--out", "json") == 0
    assert json.loads(capsys.readouterr().out)["size"] == 65536


def test_assign_release_attach_and_file(config: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Static assign/release, attach/detach and --file work from the command line."""
    ranges = tmp_path / "did.txt"
    ranges.write_text("+15551230000-+15551230009  # block A\n+15551239999\n")
    assert run(config, "pool", "add", "did", "--kind", "phone", "--file", str(ranges)) == 0
    assert run(config, "pool", "assign", "did", "alice", "+15551239999") == 0
    assert "+15551239999 of pool did is assigned to alice" in capsys.readouterr().out
    assert run(config, "pool", "assign", "did", "bob", "+15551239999") == 1
    assert "static to alice" in capsys.readouterr().err
    assert run(config, "pool", "release", "did", "alice") == 0
    assert "released from alice" in capsys.readouterr().out
    assert run(config, "pool", "add", "v4", "--kind", "ipv4", "--range", "10.9.0.0/30") == 0
    assert run(config, "pool", "attach", "home", "v4", "--on-exhausted", "framed-pool") == 0
    assert "Framed-Pool when full" in capsys.readouterr().out
    assert run(config, "pool", "show", "v4") == 0
    assert "home (priority 100, Framed-Pool when full)" in capsys.readouterr().out
    assert run(config, "pool", "detach", "home", "v4") == 0
    assert run(config, "pool", "nas-group", "nas1", "north") == 0
    assert run(config, "pool", "nas-group") == 0
    assert "north\tnas1" in capsys.readouterr().out


def test_login_generate_outputs(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    """login generate prints new logins as text, or with --out json or xml."""
    assert run(config, "pool", "add", "v", "--kind", "login", "--range", "alice{0}") == 0
    capsys.readouterr()
    assert run(config, "login", "generate", "--pool", "v", "--count", "2") == 0
    assert capsys.readouterr().out.split() == ["alice1", "alice2"]
    assert run(config, "login", "generate", "--pool", "v", "--count", "1", "--out", "json") == 0
    assert json.loads(capsys.readouterr().out) == [{"login": "alice3"}]
    assert run(config, "login", "generate", "--pool", "v", "--count", "1", "--out", "xml") == 0
    assert "<login>alice4</login>" in capsys.readouterr().out
