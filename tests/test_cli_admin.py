"""The admin commands (nas, plan, subscriber) run in-process against SQLite and MariaDB.

Each test writes a config file pointing at the test database and calls
``radbill.cli.main`` the way a shell would; one test runs the installed
console script to prove the entry point itself works.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from aaa.mschap import nt_password_hash
from aaa.pap import hash_password, verify_password
from core.db.models import Nas, Plan, Subscriber
from radbill.cli import main

Result = tuple[int, str, str]
Cli = Callable[..., Result]


@pytest.fixture
def config_file(tmp_path: Path, db_url: str, engine: Engine) -> Path:
    """A radbill.toml whose database.url is the (migrated, empty) test database."""
    path = tmp_path / "radbill.toml"
    path.write_text(f"[database]\nurl = {json.dumps(db_url)}\n", encoding="utf-8")
    return path


@pytest.fixture
def cli(config_file: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run ``radbill --config <test config> ARGS...``; return (exit code, stdout, stderr)."""

    def run(*argv: str, config: bool = True) -> Result:
        args = (["--config", str(config_file)] if config else []) + list(argv)
        capsys.readouterr()
        try:
            code = main(args)
        except SystemExit as exc:  # argparse usage errors
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


def ok(result: Result) -> str:
    code, out, err = result
    assert code == 0, err
    return out


def one_line_error(result: Result, code: int = 1) -> str:
    """The command failed with one 'radbill: ...' line on stderr and no traceback."""
    got, out, err = result
    assert got == code, (got, out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("radbill: "), err
    return lines[0]


def parse_xml(text: str) -> ET.Element:
    return ET.fromstring(text)  # noqa: S314 - radbill's own output, not untrusted input


def subscriber_row(engine: Engine, login: str) -> Subscriber:
    with Session(engine) as s:
        row = s.scalars(select(Subscriber).where(Subscriber.login == login)).one()
        s.expunge(row)
        return row


def count(engine: Engine, model: type) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# --------------------------------------------------------------------------- NAS


def test_nas_add_list_show_remove(cli: Cli, engine: Engine) -> None:
    """A NAS can be added, listed, shown (secret masked), and removed."""
    out = ok(cli("nas", "add", "gw1", "--address", "192.0.2.1", "--secret", "s3cret",
                 "--vendor", "mikrotik", "--coa-port", "1700", "--description", "core"))
    assert "gw1" in out
    listing = ok(cli("nas", "list"))
    assert "gw1" in listing and "192.0.2.1" in listing and "s3cret" not in listing
    shown = ok(cli("nas", "show", "gw1"))
    assert "s3cret" not in shown and "********" in shown
    data = json.loads(ok(cli("nas", "show", "gw1", "--show-secret", "--out", "json")))
    assert data["secret"] == "s3cret"
    assert data["vendor"] == "mikrotik" and data["coa_port"] == 1700
    assert data["require_message_authenticator"] is True
    ok(cli("nas", "remove", "gw1"))
    assert count(engine, Nas) == 0
    assert "not found" in one_line_error(cli("nas", "show", "gw1"))


def test_nas_list_json_and_xml(cli: Cli) -> None:
    """nas list --out json/xml parse and hold every NAS without its secret."""
    ok(cli("nas", "add", "a", "--address", "10.0.0.0/24", "--secret", "x1",
           "--no-require-message-authenticator"))
    ok(cli("nas", "add", "b", "--address", "2001:db8::1", "--secret", "x2"))
    data = json.loads(ok(cli("nas", "list", "--out", "json")))
    assert [d["name"] for d in data] == ["a", "b"]
    assert data[0]["require_message_authenticator"] is False
    assert all("secret" not in d for d in data)
    root = parse_xml(ok(cli("nas", "list", "--out", "xml")))
    assert [el.findtext("address") for el in root.iter("nas")] == ["10.0.0.0/24", "2001:db8::1"]


def test_nas_secret_from_stdin(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """--secret - reads the secret from standard input, without the newline."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("from-stdin\n"))
    ok(cli("nas", "add", "gw", "--address", "192.0.2.9", "--secret", "-"))
    data = json.loads(ok(cli("nas", "show", "gw", "--show-secret", "--out", "json")))
    assert data["secret"] == "from-stdin"


def test_nas_set_changes_fields(cli: Cli) -> None:
    """nas set changes only the options given."""
    ok(cli("nas", "add", "gw", "--address", "192.0.2.1", "--secret", "old"))
    ok(cli("nas", "set", "gw", "--address", "198.51.100.0/28", "--vendor", "cisco",
           "--no-require-message-authenticator"))
    data = json.loads(ok(cli("nas", "show", "gw", "--show-secret", "--out", "json")))
    assert data["address"] == "198.51.100.0/28" and data["vendor"] == "cisco"
    assert data["require_message_authenticator"] is False and data["secret"] == "old"


@pytest.mark.parametrize(("argv", "expected"), [
    (["nas", "add", "gw1", "--address", "192.0.2.2", "--secret", "s"], "already exists"),
    (["nas", "add", "gw2", "--address", "10.0.0.0/33", "--secret", "s"], "10.0.0.0/33"),
    (["nas", "add", "gw2", "--address", "not-an-ip", "--secret", "s"], "not-an-ip"),
    (["nas", "add", "gw2", "--address", "192.0.2.1", "--secret", "s"], "already belongs"),
    (["nas", "add", "gw2", "--address", "192.0.2.3", "--secret", ""], "secret"),
    (["nas", "add", "gw2", "--address", "192.0.2.3", "--secret", "s" * 129], "128"),
    (["nas", "add", "n" * 65, "--address", "192.0.2.3", "--secret", "s"], "64"),
    (["nas", "add", "gw2", "--address", "192.0.2.3", "--secret", "s", "--coa-port", "0"],
     "1..65535"),
    (["nas", "show", "nope"], "NAS 'nope' not found"),
    (["nas", "remove", "nope"], "NAS 'nope' not found"),
])
def test_nas_errors(cli: Cli, argv: list[str], expected: str) -> None:
    """Bad NAS input fails with one line naming the problem and adds nothing."""
    ok(cli("nas", "add", "gw1", "--address", "192.0.2.1", "--secret", "s"))
    line = one_line_error(cli(*argv))
    assert expected in line
    assert len(json.loads(ok(cli("nas", "list", "--out", "json")))) == 1


def test_nas_unknown_vendor_is_usage_error(cli: Cli) -> None:
    """An unknown --vendor is an argparse error: exit 2, one line."""
    one_line_error(cli("nas", "add", "gw", "--address", "192.0.2.1", "--secret", "s",
                       "--vendor", "acme"), code=2)


# --------------------------------------------------------------------------- plans


def test_plan_add_show_list(cli: Cli) -> None:
    """A plan keeps its service fields and reply attributes; json and xml parse."""
    ok(cli("plan", "add", "gold", "--rate-limit", "10M/20M", "--session-timeout", "86400",
           "--idle-timeout", "600", "--interim", "300", "--simultaneous-use", "1",
           "--reply-attribute", "Filter-Id=gold", "--reply-attribute",
           "mikrotik-address-list=paid"))
    data = json.loads(ok(cli("plan", "show", "gold", "--out", "json")))
    assert data["rate_limit"] == "10M/20M"
    assert (data["session_timeout"], data["idle_timeout"], data["interim_interval"],
            data["simultaneous_use"]) == (86400, 600, 300, 1)
    assert data["framed_protocol"] == "PPP"
    assert data["reply_attributes"] == ["Filter-Id=gold", "Mikrotik-Address-List=paid"]
    root = parse_xml(ok(cli("plan", "show", "gold", "--out", "xml")))
    assert root.tag == "plan" and root.findtext("rate_limit") == "10M/20M"
    assert [i.text for i in root.iterfind("reply_attributes/item")] == [
        "Filter-Id=gold", "Mikrotik-Address-List=paid"]
    ok(cli("plan", "add", "hotspot", "--framed-protocol", "none"))
    plans = json.loads(ok(cli("plan", "list", "--out", "json")))
    assert [(p["name"], p["framed_protocol"]) for p in plans] == [("gold", "PPP"),
                                                                   ("hotspot", None)]
    assert "gold" in ok(cli("plan", "list"))
    assert len(parse_xml(ok(cli("plan", "list", "--out", "xml"))).findall("plan")) == 2


def test_plan_show_lists_its_pools_in_order(cli: Cli) -> None:
    """plan show names the pools a plan draws from, in the order they are tried."""
    ok(cli("pool", "add", "v4b", "--kind", "ipv4", "--range", "10.9.1.0/30"))
    ok(cli("pool", "add", "v4a", "--kind", "ipv4", "--range", "10.9.0.0/30"))
    ok(cli("plan", "add", "gold", "--pool", "v4b", "--pool", "v4a"))
    assert json.loads(ok(cli("plan", "show", "gold", "--out", "json")))["pools"] == [
        "v4b", "v4a"]
    root = parse_xml(ok(cli("plan", "show", "gold", "--out", "xml")))
    assert [i.text for i in root.iterfind("pools/item")] == ["v4b", "v4a"]
    ok(cli("plan", "set", "gold", "--pool", ""))
    assert json.loads(ok(cli("plan", "show", "gold", "--out", "json")))["pools"] == []


def test_plan_set_changes_and_clears(cli: Cli) -> None:
    """plan set changes the given fields, 'none' clears one, the rest stay."""
    ok(cli("plan", "add", "gold", "--rate-limit", "10M/10M", "--session-timeout", "3600",
           "--reply-attribute", "Filter-Id=a"))
    ok(cli("plan", "set", "gold", "--session-timeout", "none", "--rate-limit", "2M/4M",
           "--reply-attribute", "Filter-Id=b", "--reply-attribute", "Class=x"))
    data = json.loads(ok(cli("plan", "show", "gold", "--out", "json")))
    assert data["session_timeout"] is None and data["rate_limit"] == "2M/4M"
    assert data["reply_attributes"] == ["Filter-Id=b", "Class=x"]
    ok(cli("plan", "set", "gold", "--clear-reply-attributes"))
    data = json.loads(ok(cli("plan", "show", "gold", "--out", "json")))
    assert data["reply_attributes"] == [] and data["rate_limit"] == "2M/4M"


@pytest.mark.parametrize(("argv", "expected"), [
    (["--rate-limit", "10X/1M"], "10X"),
    (["--rate-limit", "10M"], "10M"),
    (["--reply-attribute", "No-Such-Attribute=1"], "No-Such-Attribute"),
    (["--reply-attribute", "Service-Type=Bogus"], "Service-Type"),
    (["--reply-attribute", "Framed-IP-Address=300.1.1.1"], "Framed-IP-Address"),
    (["--reply-attribute", "Filter-Id"], "Attr=Value"),
    (["--reply-attribute", "Message-Authenticator=x"], "set by the server"),
    (["--session-timeout", "0"], "session timeout"),
    (["--simultaneous-use", "-1"], "simultaneous use"),
    (["--framed-protocol", "carrier-pigeon"], "carrier-pigeon"),
])
def test_plan_errors(cli: Cli, engine: Engine, argv: list[str], expected: str) -> None:
    """A bad plan option fails with one line naming the value and adds no plan."""
    line = one_line_error(cli("plan", "add", "p", *argv))
    assert expected in line
    assert count(engine, Plan) == 0


def test_plan_duplicate_and_reserved_names(cli: Cli) -> None:
    """Plan names are unique, and 'none' is reserved for 'no plan'."""
    ok(cli("plan", "add", "gold"))
    assert "already exists" in one_line_error(cli("plan", "add", "gold"))
    assert "reserved" in one_line_error(cli("plan", "add", "none"))


def test_plan_remove_refused_while_in_use(cli: Cli, engine: Engine) -> None:
    """A plan with subscribers cannot be removed; once they are gone it can."""
    ok(cli("plan", "add", "gold"))
    ok(cli("subscriber", "add", "bob", "--password", "pw", "--plan", "gold"))
    line = one_line_error(cli("plan", "remove", "gold"))
    assert "used by 1 subscriber" in line
    assert count(engine, Plan) == 1
    ok(cli("subscriber", "remove", "bob"))
    ok(cli("plan", "remove", "gold"))
    assert count(engine, Plan) == 0


# --------------------------------------------------------------------------- subscribers


def test_subscriber_with_ledger_history_is_kept(cli: Cli, engine: Engine) -> None:
    """A subscriber with a ledger cannot be removed; the error says to disable instead."""
    ok(cli("subscriber", "add", "carol", "--password", "pw"))
    ok(cli("payment", "add", "carol", "5.00", "--ref", "bank-1"))
    line = one_line_error(cli("subscriber", "remove", "carol"))
    assert "radbill subscriber disable carol" in line
    assert count(engine, Subscriber) == 1
    ok(cli("subscriber", "disable", "carol"))
    assert "disabled" in ok(cli("subscriber", "show", "carol"))


def test_subscriber_passwords_are_argon2_and_nt_hash(cli: Cli, engine: Engine) -> None:
    """A password is stored as argon2 (verifies) plus its NT hash, and no cleartext."""
    ok(cli("subscriber", "add", "bob", "--password", "pässword"))
    row = subscriber_row(engine, "bob")
    assert row.password_hash is not None and row.password_hash.startswith("$argon2id$")
    assert verify_password(row.password_hash, "pässword".encode())
    assert not verify_password(row.password_hash, b"password")
    assert row.nt_hash == nt_password_hash("pässword").hex()
    assert row.cleartext_password is None and row.chap_enabled is False


def test_subscriber_chap_cleartext_only_with_chap(cli: Cli, engine: Engine) -> None:
    """Cleartext is kept only while CHAP is on, and follows password changes."""
    ok(cli("subscriber", "add", "carol", "--password", "pw1", "--chap"))
    row = subscriber_row(engine, "carol")
    assert row.chap_enabled and row.cleartext_password == "pw1"
    ok(cli("subscriber", "passwd", "carol", "--password", "pw2"))  # keeps CHAP on
    row = subscriber_row(engine, "carol")
    assert row.chap_enabled and row.cleartext_password == "pw2"
    assert verify_password(row.password_hash or "", b"pw2")
    ok(cli("subscriber", "set", "carol", "--no-chap"))
    row = subscriber_row(engine, "carol")
    assert not row.chap_enabled and row.cleartext_password is None
    assert row.nt_hash == nt_password_hash("pw2").hex()
    ok(cli("subscriber", "passwd", "carol", "--password", "pw3", "--chap"))
    assert subscriber_row(engine, "carol").cleartext_password == "pw3"
    ok(cli("subscriber", "passwd", "carol", "--password", "pw4", "--no-chap"))
    assert subscriber_row(engine, "carol").cleartext_password is None


def test_subscriber_show_and_list_never_print_passwords(cli: Cli, engine: Engine) -> None:
    """show/list say which methods work, never the password or its hashes."""
    ok(cli("plan", "add", "gold"))
    ok(cli("subscriber", "add", "dave", "--password", "Sekr1tPw", "--plan", "gold",
           "--chap", "--static-ip", "100.64.0.7"))
    row = subscriber_row(engine, "dave")
    outputs = [ok(cli("subscriber", "show", "dave", "--out", fmt)) for fmt in
               ("text", "json", "xml")]
    outputs += [ok(cli("subscriber", "list", "--out", fmt)) for fmt in ("text", "json", "xml")]
    for out in outputs:
        assert "Sekr1tPw" not in out
        assert str(row.password_hash) not in out and str(row.nt_hash) not in out
    data = json.loads(outputs[1])
    assert data["auth"] == ["pap", "mschapv2", "chap"]
    assert (data["plan"], data["static_ip"], data["status"]) == ("gold", "100.64.0.7", "active")
    root = parse_xml(outputs[2])
    assert root.tag == "subscriber" and root.findtext("login") == "dave"
    assert parse_xml(outputs[5]).findtext("subscriber/login") == "dave"


def test_subscriber_password_from_stdin(cli: Cli, engine: Engine,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """--password - reads the password from standard input."""
    ok(cli("subscriber", "add", "erin", "--password", "first"))
    monkeypatch.setattr(sys, "stdin", io.StringIO("second pw\r\n"))
    ok(cli("subscriber", "passwd", "erin", "--password", "-"))
    assert verify_password(subscriber_row(engine, "erin").password_hash or "", b"second pw")


def test_subscriber_block_unblock_disable(cli: Cli) -> None:
    """block/unblock/disable set the status that show and list report."""
    ok(cli("subscriber", "add", "fay", "--password", "pw"))
    ok(cli("subscriber", "block", "fay"))
    assert json.loads(ok(cli("subscriber", "show", "fay", "--out", "json")))["status"] == \
        "blocked"
    assert [s["login"] for s in json.loads(ok(cli("subscriber", "list", "--status", "blocked",
                                                  "--out", "json")))] == ["fay"]
    ok(cli("subscriber", "unblock", "fay"))
    assert json.loads(ok(cli("subscriber", "show", "fay", "--out", "json")))["status"] == \
        "active"
    ok(cli("subscriber", "disable", "fay"))
    assert json.loads(ok(cli("subscriber", "show", "fay", "--out", "json")))["status"] == \
        "disabled"


def test_subscriber_list_filters(cli: Cli) -> None:
    """list filters by status, plan (or no plan), case-sensitive login prefix, limit/offset."""
    ok(cli("plan", "add", "gold"))
    for login, extra in [("Bob", []), ("bob1", ["--plan", "gold"]),
                         ("bob2", ["--plan", "gold", "--status", "blocked"]),
                         ("bo_x", []), ("carl", ["--plan", "gold"])]:
        ok(cli("subscriber", "add", login, "--password", "pw", *extra))

    def logins(*argv: str) -> list[str]:
        return [s["login"] for s in json.loads(ok(cli("subscriber", "list", "--out", "json",
                                                       *argv)))]

    assert logins() == ["Bob", "bo_x", "bob1", "bob2", "carl"]
    assert logins("--plan", "gold") == ["bob1", "bob2", "carl"]
    assert logins("--plan", "none") == ["Bob", "bo_x"]
    assert logins("--plan", "gold", "--status", "active") == ["bob1", "carl"]
    assert logins("--login-prefix", "bob") == ["bob1", "bob2"]
    assert logins("--login-prefix", "bo_") == ["bo_x"]
    assert logins("--limit", "2") == ["Bob", "bo_x"]
    assert logins("--limit", "2", "--offset", "2") == ["bob1", "bob2"]
    assert "not found" in one_line_error(cli("subscriber", "list", "--plan", "silver"))


def test_subscriber_set_plan_and_static_ip(cli: Cli) -> None:
    """set moves a subscriber between plans and sets/clears its static IP."""
    ok(cli("plan", "add", "gold"))
    ok(cli("subscriber", "add", "gil", "--password", "pw"))
    ok(cli("subscriber", "set", "gil", "--plan", "gold", "--static-ip", "100.64.1.1"))
    data = json.loads(ok(cli("subscriber", "show", "gil", "--out", "json")))
    assert (data["plan"], data["static_ip"]) == ("gold", "100.64.1.1")
    ok(cli("subscriber", "set", "gil", "--plan", "none", "--static-ip", "none"))
    data = json.loads(ok(cli("subscriber", "show", "gil", "--out", "json")))
    assert (data["plan"], data["static_ip"]) == (None, None)


@pytest.mark.parametrize(("argv", "expected"), [
    (["subscriber", "add", "new", "--password", "pw", "--plan", "nope"], "plan 'nope'"),
    (["subscriber", "add", "new", "--password", "pw", "--static-ip", "10.0.0.256"],
     "10.0.0.256"),
    (["subscriber", "add", "new", "--password", "pw", "--static-ip", "2001:db8::1"], "IPv4"),
    (["subscriber", "add", "new", "--password", "pw", "--static-ip", "100.64.0.1"],
     "already assigned"),
    (["subscriber", "add", "new", "--password", ""], "password"),
    (["subscriber", "add", "taken", "--password", "pw"], "already exists"),
    (["subscriber", "add", " padded", "--password", "pw"], "blanks"),
    (["subscriber", "add", "x" * 129, "--password", "pw"], "128"),
    (["subscriber", "add", "tab\tlogin", "--password", "pw"], "control"),
    (["subscriber", "show", "ghost"], "subscriber 'ghost' not found"),
    (["subscriber", "block", "ghost"], "subscriber 'ghost' not found"),
    (["subscriber", "remove", "ghost"], "subscriber 'ghost' not found"),
    (["subscriber", "passwd", "ghost", "--password", "pw"], "subscriber 'ghost' not found"),
    (["subscriber", "set", "taken"], "nothing to change"),
])
def test_subscriber_errors(cli: Cli, engine: Engine, argv: list[str], expected: str) -> None:
    """Bad subscriber input fails with one line naming the problem; nothing is added."""
    ok(cli("subscriber", "add", "taken", "--password", "pw", "--static-ip", "100.64.0.1"))
    line = one_line_error(cli(*argv))
    assert expected in line
    assert count(engine, Subscriber) == 1


# --------------------------------------------------------------------------- usage errors


def test_wrong_out_value_is_usage_error(cli: Cli) -> None:
    """--out yaml is refused by argparse with exit 2 and one line."""
    line = one_line_error(cli("subscriber", "list", "--out", "yaml"), code=2)
    assert "yaml" in line


def test_missing_config_file(cli: Cli, tmp_path: Path) -> None:
    """A --config path that does not exist is one line naming the file, exit 1."""
    missing = tmp_path / "absent.toml"
    line = one_line_error(cli("nas", "list", "--config", str(missing), config=False))
    assert str(missing) in line and "not found" in line


def test_config_option_after_the_command(cli: Cli, config_file: Path) -> None:
    """--config works wherever it stands on the command line."""
    ok(cli("plan", "add", "--config", str(config_file), "anywhere", config=False))
    assert "anywhere" in ok(cli("plan", "list"))


# --------------------------------------------------------------------------- import


IMPORT_HEADER = ["login", "password", "plan", "chap", "static_ip", "status"]


def test_import_argon2_now_hashes_during_import(cli: Cli, engine: Engine,
                                                tmp_path: Path) -> None:
    """--argon2-now stores a verifying argon2 hash at import time, with the NT hash."""
    path = write_csv(tmp_path / "subs.csv", ["login", "password"], [["ann", "pw-a"],
                                                                     ["ben", "pw-b"]])
    out = ok(cli("subscriber", "import", str(path), "--argon2-now", "--workers", "2"))
    assert "imported 2 subscribers" in out
    ann = subscriber_row(engine, "ann")
    assert verify_password(ann.password_hash or "", b"pw-a")
    assert ann.nt_hash == nt_password_hash("pw-a").hex()


def test_import_200_rows(cli: Cli, engine: Engine, tmp_path: Path) -> None:
    """200 rows import in one go: plain passwords hashed, pre-hashed ones taken as given.

    Every tenth row has a plain password (argon2 is slow on purpose); the rest
    carry password_hash/nt_hash, which is how large imports stay fast.
    """
    ok(cli("plan", "add", "gold"))
    shared_hash = hash_password("prehashed")
    shared_nt = nt_password_hash("prehashed").hex()
    rows = []
    for i in range(200):
        plain = i % 10 == 0
        rows.append([f"user{i:03d}", f"pw{i}" if plain else "", "" if plain else shared_hash,
                     "" if plain else shared_nt, "gold" if i % 2 else "",
                     "yes" if i == 0 else "no", f"100.64.{i // 200}.{i % 200 + 1}",
                     "blocked" if i == 199 else ""])
    path = write_csv(tmp_path / "subs.csv", ["login", "password", "password_hash", "nt_hash",
                                             "plan", "chap", "static_ip", "status"], rows)
    out = ok(cli("subscriber", "import", str(path), "--workers", "2"))
    assert "imported 200 subscribers" in out and "20 passwords hashed" in out
    assert count(engine, Subscriber) == 200
    first = subscriber_row(engine, "user000")
    # Plain passwords: NT hash now, argon2 at the first PAP login (aaa.password_upgrade).
    assert first.password_hash is None
    assert first.chap_enabled and first.cleartext_password == "pw0"
    assert first.nt_hash == nt_password_hash("pw0").hex()
    tenth = subscriber_row(engine, "user010")
    assert tenth.password_hash is None and tenth.nt_hash == nt_password_hash("pw10").hex()
    assert not tenth.chap_enabled and tenth.cleartext_password is None
    pre = subscriber_row(engine, "user001")
    assert verify_password(pre.password_hash or "", b"prehashed")
    assert pre.nt_hash == shared_nt and pre.cleartext_password is None
    data = json.loads(ok(cli("subscriber", "show", "user199", "--out", "json")))
    assert (data["plan"], data["status"], data["static_ip"]) == ("gold", "blocked",
                                                                 "100.64.0.200")
    assert len(json.loads(ok(cli("subscriber", "list", "--plan", "gold", "--out",
                                 "json")))) == 100


def _good_rows(n: int) -> list[list[str]]:
    return [[f"u{i}", f"pw{i}", "gold", "no", f"100.64.0.{i + 1}", "active"]
            for i in range(n)]


@pytest.mark.parametrize(("bad_index", "column", "value", "expected"), [
    (3, 4, "100.64.0.999", "static_ip"),
    (5, 2, "platinum", "plan"),
    (2, 0, "u0", "login"),            # duplicate of line 2 within the file
    (6, 0, "existing", "login"),      # already in the database
    (4, 1, "", "password"),
    (7, 5, "frozen", "status"),
    (1, 3, "maybe", "chap"),
    (8, 4, "100.64.0.1", "static_ip"),  # duplicate IP within the file
])
def test_import_bad_row_writes_nothing(cli: Cli, engine: Engine, tmp_path: Path,
                                       bad_index: int, column: int, value: str,
                                       expected: str) -> None:
    """One bad row stops the whole import; the error names its line and column."""
    ok(cli("plan", "add", "gold"))
    ok(cli("subscriber", "add", "existing", "--password", "pw"))
    rows = _good_rows(10)
    rows[bad_index][column] = value
    path = write_csv(tmp_path / "bad.csv", IMPORT_HEADER, rows)
    line = one_line_error(cli("subscriber", "import", str(path)))
    file_line = bad_index + 2  # line 1 is the header
    assert f"line {file_line}, {expected}" in line, line
    assert str(path) in line and "nothing was imported" in line
    assert count(engine, Subscriber) == 1


@pytest.mark.parametrize(("content", "expected"), [
    ("", "empty"),
    ("name,password\nbob,pw\n", "unknown column 'name'"),
    ("login,plan\nbob,gold\n", "password"),
    ("login,password\n", "no subscribers"),
    ("login,password\nbob,pw,extra\n", "line 2, row"),
    ('login,password\n"bob,pw\n', "line"),
])
def test_import_malformed_files(cli: Cli, engine: Engine, tmp_path: Path, content: str,
                                expected: str) -> None:
    """Header problems and broken CSV give one line and import nothing."""
    path = tmp_path / "in.csv"
    path.write_text(content, encoding="utf-8")
    line = one_line_error(cli("subscriber", "import", str(path)))
    assert expected in line, line
    assert count(engine, Subscriber) == 0


def test_import_missing_file(cli: Cli, tmp_path: Path) -> None:
    """A CSV path that does not exist is one line naming it."""
    line = one_line_error(cli("subscriber", "import", str(tmp_path / "nope.csv")))
    assert "nope.csv" in line


def test_import_line_numbers_count_multiline_fields(cli: Cli, engine: Engine,
                                                    tmp_path: Path) -> None:
    """A quoted description spanning lines does not shift the reported line number."""
    path = tmp_path / "ml.csv"
    path.write_text('login,password,description\nann,pw,"two\nlines"\nbad login ,pw,\n',
                    encoding="utf-8")
    line = one_line_error(cli("subscriber", "import", str(path)))
    assert "line 4, login" in line, line
    assert count(engine, Subscriber) == 0


# --------------------------------------------------------------------------- entry point


def test_console_script_lists_subscribers(config_file: Path, cli: Cli) -> None:
    """The installed `radbill` script runs `subscriber list --out json` end to end."""
    ok(cli("subscriber", "add", "script-user", "--password", "pw"))
    script = shutil.which("radbill") or str(Path(sys.executable).parent / "radbill")
    assert Path(script).exists(), script
    env = {k: v for k, v in os.environ.items() if k != "RADBILL_CONFIG"}
    proc = subprocess.run([script, "--config", str(config_file), "subscriber", "list",
                           "--out", "json"], capture_output=True, text=True, timeout=60,
                          env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert [s["login"] for s in json.loads(proc.stdout)] == ["script-user"]
