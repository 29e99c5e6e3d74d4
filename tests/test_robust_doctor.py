"""radbill doctor (issue 12 point 4): each check fails on what it is there to catch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from core.db import schema
from core.db.engine import make_engine
from radbill.cli import doctor, main
from radbill.cli.doctor import FAIL, OK, WARN

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def config(tmp_path: Path, extra: str = "", url: str | None = None) -> Path:
    """A config on a migrated SQLite database in tmp_path (ports 0: always free)."""
    if url is None:
        db = tmp_path / "radbill.sqlite"
        if not db.exists():
            engine = make_engine(f"sqlite:///{db}")
            schema.upgrade(engine)
            engine.dispose()
        url = f"sqlite:///{db}"
    path = tmp_path / "radbill.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path}"\n[database]\nurl = "{url}"\n'
                    f'connect_timeout = 1\n[radius]\nlisten = ["127.0.0.1"]\nauth_port = 0\n'
                    f"acct_port = 0\n{extra}")
    return path


def by_name(checks: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {c.name: c for c in checks}


def test_a_good_setup_passes_and_prints_json(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A migrated database and free ports: exit 0; --out json lists every check."""
    path = config(tmp_path)
    assert main(["doctor", "--config", str(path), "--out", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = {c["name"]: c["status"] for c in out["checks"]}
    assert out["ok"] is True and names["database"] == OK and names["schema"] == OK
    assert names["dictionaries"] == OK and names["clock"] == OK
    # No NAS yet is only a warning, and --strict turns warnings into a failure.
    assert names["NAS secrets"] == WARN
    assert main(["doctor", "--config", str(path), "--strict"]) == 1


def test_invalid_config_fails_naming_the_key(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown key: one failed check naming it, exit 1, no traceback."""
    path = config(tmp_path, "bogus_key = 1\n")
    assert main(["doctor", "--config", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL    config" in out and "radius.bogus_key" in out


def test_missing_data_dir_and_database_file_fail(tmp_path: Path) -> None:
    """A data_dir that does not exist fails; so does a SQLite file doctor must not create."""
    path = config(tmp_path, url=f"sqlite:///{tmp_path / 'none.sqlite'}")
    text = path.read_text().replace(f'data_dir = "{tmp_path}"',
                                    f'data_dir = "{tmp_path / "missing"}"')
    path.write_text(text)
    checks = by_name(doctor.run_checks(str(path)))
    assert checks["data_dir"].status == FAIL
    assert checks["database"].status == FAIL and "does not exist" in checks["database"].detail
    assert not (tmp_path / "none.sqlite").exists()
    assert checks["schema"].status == doctor.SKIP


def test_unreachable_database_fails(tmp_path: Path) -> None:
    """A database URL on a closed port: the database check fails, dependants are skipped."""
    path = config(tmp_path, url="mysql+pymysql://radbill@127.0.0.1:1/none")
    checks = by_name(doctor.run_checks(str(path)))
    assert checks["database"].status == FAIL and "2003" in checks["database"].detail
    assert checks["NAS secrets"].status == doctor.SKIP


def test_outdated_schema_fails(tmp_path: Path) -> None:
    """A database one branch behind: the schema check says to run 'radbill db upgrade'."""
    path = config(tmp_path)
    engine = make_engine(f"sqlite:///{tmp_path / 'radbill.sqlite'}")
    schema.downgrade(engine, "aaa@0001")
    engine.dispose()
    check = by_name(doctor.run_checks(str(path)))["schema"]
    assert check.status == FAIL and check.fix == "run 'radbill db upgrade'"


def test_mariadb_isolation_and_flush_are_judged() -> None:
    """REPEATABLE-READ fails; innodb_flush_log_at_trx_commit other than 1 warns."""
    good = doctor.judge_mariadb({"isolation": "READ-COMMITTED",
                                 "innodb_flush_log_at_trx_commit": "1"})
    assert [c.status for c in good] == [OK, OK]
    bad = doctor.judge_mariadb({"isolation": "REPEATABLE-READ",
                                "innodb_flush_log_at_trx_commit": "2"})
    assert [c.status for c in bad] == [FAIL, WARN]
    assert "lose commits" in bad[1].detail


def test_mariadb_settings_are_read_from_the_server(engine: Engine) -> None:
    """On MariaDB radbill's connections report READ-COMMITTED; SQLite needs no such check."""
    checks = doctor.check_database_settings(engine)
    if engine.dialect.name == "mysql":
        assert checks[0].status == OK and "READ-COMMITTED" in checks[0].detail
        assert checks[1].name == "innodb_flush_log_at_trx_commit"
        assert doctor.database_now(engine) is not None
    else:
        assert checks[0].status == OK


def test_clock_checks() -> None:
    """An unset clock or a minute of skew fails; seconds of skew or no NTP warn."""
    assert doctor.check_clock(None, lambda: datetime(2001, 1, 1, tzinfo=UTC),
                              lambda: None).status == FAIL
    assert doctor.check_clock(NOW - timedelta(seconds=120), lambda: NOW,
                              lambda: "yes").status == FAIL
    assert doctor.check_clock(NOW - timedelta(seconds=5), lambda: NOW,
                              lambda: "yes").status == WARN
    assert doctor.check_clock(NOW, lambda: NOW, lambda: "no").status == WARN
    ok = doctor.check_clock(NOW - timedelta(seconds=0.3), lambda: NOW, lambda: "yes")
    assert ok.status == OK and "NTP synchronised" in ok.detail


def test_port_in_use_fails() -> None:
    """A UDP port another socket holds is reported in use."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        check = doctor.check_port("127.0.0.1", port, socket.SOCK_DGRAM, "RADIUS auth")
    assert check.status == FAIL and "in use" in check.detail
    assert doctor.check_port("127.0.0.1", port, socket.SOCK_DGRAM, "x").status == OK
    assert doctor.check_port("192.0.2.1", 0, socket.SOCK_DGRAM, "x").status == FAIL


def test_dictionaries_that_do_not_load_or_lack_attributes_fail(tmp_path: Path) -> None:
    """A broken dictionary file fails; one without radbill's attributes fails too."""
    broken = tmp_path / "dictionary"
    broken.write_text("ATTRIBUTE\tUser-Name\n")
    assert doctor.check_dictionaries(str(broken)).status == FAIL
    small = tmp_path / "small"
    small.write_text("ATTRIBUTE\tUser-Name\t1\tstring\n")
    check = doctor.check_dictionaries(str(small))
    assert check.status == FAIL and "Message-Authenticator" in check.detail
    assert doctor.check_dictionaries().status == OK


def test_weak_nas_secrets_are_named_without_printing_them() -> None:
    """A known example secret fails, a short or repetitive one warns; the secret is not shown."""
    checks = doctor.check_nas_secrets([("a", "testing123"), ("b", "aaaaaaaaaaaaaaaaaaaa"),
                                       ("c", "Zk3#pQ9!vL2@xR7$wM4%")])
    status = {c.name: c.status for c in checks}
    assert status == {"NAS a secret": FAIL, "NAS b secret": WARN}
    assert not any("testing123" in c.detail + c.fix for c in checks)
    assert doctor.check_nas_secrets([("c", "Zk3#pQ9!vL2@xR7$wM4%")])[0].status == OK


def test_tls_files_and_the_pap_key(tmp_path: Path) -> None:
    """An unreadable or mismatched TLS pair fails; a good one passes; a shared PAP key warns."""
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
                    "/CN=radbill", "-days", "1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    assert doctor.check_tls_pair("web TLS", str(cert), str(key)).status == OK
    other = tmp_path / "other.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(other), "2048"], check=True,
                   capture_output=True)
    assert doctor.check_tls_pair("web TLS", str(cert), str(other)).status == FAIL
    assert doctor.check_tls_pair("web TLS", str(tmp_path / "nope.pem"), str(key)).status == FAIL
    path = config(tmp_path, f'[web]\ntls_certificate = "{cert}"\ntls_key = "{tmp_path}/x"\n')
    checks = by_name(doctor.run_checks(str(path), ports=False))
    assert checks["web TLS"].status == FAIL
    keyfile = tmp_path / "pap.key"
    keyfile.write_bytes(os.urandom(32))
    keyfile.chmod(0o644)
    assert by_name(doctor.run_checks(str(path), ports=False))["PAP key"].status == WARN
    keyfile.write_bytes(b"short")
    assert by_name(doctor.run_checks(str(path), ports=False))["PAP key"].status == FAIL
