"""`radbill import freeradius|daloradius` against a MariaDB built from FreeRADIUS's own schema.

The source database is created with Debian's FreeRADIUS schema files (the ones an operator
has in /etc/freeradius/3.0/mods-config/sql/), filled the way FreeRADIUS and daloRADIUS fill
it; the target is radbill's test database on SQLite and on MariaDB.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from passlib.hash import md5_crypt
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session

from aaa.mschap import nt_password_hash
from accounting.models import AcctSession
from core.db.models import Nas, Plan, Subscriber
from pools.models import Pool, PoolItem
from radbill.cli import main
from tests.conftest import IN_CI, MARIADB_URL
from tests.radclient import free_udp_port, parse_output, radclient, require_radclient

SCHEMA_DIR = Path("/etc/freeradius/3.0/mods-config/sql")
SCHEMAS = [SCHEMA_DIR / "main/mysql/schema.sql", SCHEMA_DIR / "ippool/mysql/schema.sql"]
SOURCE_DB = "h_migrate_fr"
SECRET = "fr-secret-1"
SALT = b"saltsalt"

# daloRADIUS's own columns for the two tables it adds that the import reads
# (contrib/db/mysql-daloradius.sql), trimmed to what matters here.
DALORADIUS_TABLES = """
CREATE TABLE userinfo (id int(8) unsigned NOT NULL auto_increment, username varchar(128),
  firstname varchar(200), lastname varchar(200), email varchar(200), department varchar(200),
  company varchar(200), workphone varchar(200), homephone varchar(200),
  mobilephone varchar(200), address varchar(200), city varchar(200), state varchar(200),
  country varchar(100), zip varchar(200), notes varchar(200), changeuserinfo varchar(128),
  portalloginpassword varchar(128), enableportallogin int(32) DEFAULT 0,
  creationdate datetime, creationby varchar(128), updatedate datetime, updateby varchar(128),
  PRIMARY KEY (id), KEY username (username));
CREATE TABLE userbillinfo (id int(8) unsigned NOT NULL auto_increment, username varchar(128),
  planName varchar(128), hotspot_id int(32), hotspotlocation varchar(32),
  contactperson varchar(200), company varchar(200), email varchar(200), phone varchar(200),
  address varchar(200), city varchar(200), state varchar(200), country varchar(100),
  zip varchar(200), paymentmethod varchar(200), cash varchar(200),
  creditcardname varchar(200), creditcardnumber varchar(200),
  creditcardverification varchar(200), creditcardtype varchar(200),
  creditcardexp varchar(200), notes varchar(200), changeuserbillinfo varchar(128),
  `lead` varchar(200), coupon varchar(200), ordertaker varchar(200), billstatus varchar(200),
  lastbill date, nextbill date, nextinvoicedue int(32), billdue int(32),
  postalinvoice varchar(8), faxinvoice varchar(8), emailinvoice varchar(8),
  batch_id int(32), creationdate datetime, creationby varchar(128), updatedate datetime,
  updateby varchar(128), PRIMARY KEY (id), KEY username (username));
"""


def _ssha(password: str) -> str:
    return base64.b64encode(hashlib.sha1(password.encode() + SALT).digest() + SALT).decode()  # noqa: S324


def _rows() -> str:
    """What an operator's FreeRADIUS + daloRADIUS database typically holds."""
    crypt = md5_crypt.hash("crypt-pw")
    md5 = hashlib.md5(b"md5-pw").hexdigest()  # noqa: S324 - FreeRADIUS's MD5-Password
    return f"""
INSERT INTO nas (nasname, shortname, type, secret, description) VALUES
  ('127.0.0.1', 'lo-bras', 'mikrotik', '{SECRET}', 'test BRAS'),
  ('10.0.0.0/24', 'core nets', 'cisco', 's2', ''),
  ('bras.example.net', 'named', 'other', 's3', '');
INSERT INTO radgroupreply (groupname, attribute, op, value) VALUES
  ('home-20', 'Mikrotik-Rate-Limit', ':=', '20M/20M'),
  ('home-20', 'Session-Timeout', ':=', '86400'),
  ('home-20', 'Acct-Interim-Interval', ':=', '300'),
  ('home-20', 'Framed-MTU', ':=', '1480'),
  ('home-20', 'Service-Type', ':=', 'Framed-User'),
  ('home-20', 'Framed-Pool', ':=', 'main'),
  ('biz', 'Mikrotik-Rate-Limit', ':=', '50M/50M 60M/60M 40M/40M 10/10'),
  ('biz', 'Idle-Timeout', ':=', '600'),
  ('biz', 'Totally-Made-Up', ':=', 'x');
INSERT INTO radgroupcheck (groupname, attribute, op, value) VALUES
  ('home-20', 'Simultaneous-Use', ':=', '1'),
  ('home-20', 'Pool-Name', ':=', 'main'),
  ('biz', 'Max-Daily-Session', ':=', '3600'),
  ('daloRADIUS-Disabled-Users', 'Auth-Type', ':=', 'Reject');
INSERT INTO radcheck (username, attribute, op, value) VALUES
  ('clear', 'Cleartext-Password', ':=', 'clear-pw'),
  ('nt', 'NT-Password', ':=', '{nt_password_hash("nt-pw").hex().upper()}'),
  ('ssha', 'SSHA-Password', ':=', '{_ssha("ssha-pw")}'),
  ('md5', 'MD5-Password', ':=', '{md5}'),
  ('crypt', 'Crypt-Password', ':=', '{crypt}'),
  ('header', 'Password-With-Header', ':=', '{{SSHA}}{_ssha("hdr-pw")}'),
  ('gone', 'Cleartext-Password', ':=', 'gone-pw'),
  ('clear', 'Expiration', ':=', '01 Jan 2030'),
  ('weird', 'PBKDF2-Password', ':=', 'HMACSHA2+256:AAAnEA==:c2FsdA==:aGFzaA==');
INSERT INTO radreply (username, attribute, op, value) VALUES
  ('clear', 'Framed-IP-Address', ':=', '100.64.0.9'),
  ('ssha', 'Mikrotik-Rate-Limit', ':=', '1M/1M');
INSERT INTO radusergroup (username, groupname, priority) VALUES
  ('clear', 'home-20', 1), ('nt', 'home-20', 1), ('ssha', 'home-20', 1),
  ('md5', 'biz', 1), ('crypt', 'biz', 1), ('header', 'home-20', 1), ('gone', 'home-20', 1),
  ('gone', 'daloRADIUS-Disabled-Users', 0), ('md5', 'home-20', 2);
INSERT INTO radippool (pool_name, framedipaddress, username) VALUES
  ('main', '100.64.0.1', ''), ('main', '100.64.0.2', 'nt'), ('main', '100.64.0.3', ''),
  ('main', '100.64.0.4', ''), ('main', '100.64.0.9', ''), ('main', '100.64.0.10', '');
INSERT INTO radacct (acctsessionid, acctuniqueid, username, nasipaddress, nasportid,
  acctstarttime, acctupdatetime, acctstoptime, acctinterval, acctsessiontime,
  acctinputoctets, acctoutputoctets, calledstationid, callingstationid, acctterminatecause,
  framedipaddress) VALUES
  ('81000001', '{"a" * 32}', 'clear', '127.0.0.1', 'ether1', '2026-11-01 10:00:00',
   '2026-11-01 11:00:00', '2026-11-01 11:00:00', 300, 3600, 1000, 2000, 'srv', 'AA:BB',
   'User-Request', '100.64.0.9'),
  ('81000002', '{"b" * 32}', 'nt', '127.0.0.1', 'ether1', '2026-11-02 10:00:00',
   '2026-11-02 10:05:00', NULL, 300, 300, 10, 20, 'srv', 'AA:CC', '', '100.64.0.2');
INSERT INTO userinfo (username, firstname, lastname, email, mobilephone, city) VALUES
  ('clear', 'Ada', 'Lovelace', 'ada@example.net', '+44 20 1234', 'London'),
  ('dalo-only', 'No', 'Password', '', '', '');
INSERT INTO userbillinfo (username, planName, paymentmethod, cash, creditcardnumber) VALUES
  ('clear', 'home-20', 'cash', '10.00', '4111111111111111');
"""


@pytest.fixture
def source() -> Iterator[str]:
    """A MariaDB database made with FreeRADIUS's own schema.sql files, plus daloRADIUS's."""
    if not MARIADB_URL:
        if IN_CI:
            pytest.fail("CI=true but RADBILL_TEST_DATABASE_URL is not set")
        pytest.skip("the FreeRADIUS source database needs MariaDB")
    for schema in SCHEMAS:
        if not schema.exists():
            if IN_CI:
                pytest.fail(f"{schema} missing (Debian package freeradius)")
            pytest.skip(f"{schema} missing (apt-get install freeradius)")
    base = MARIADB_URL.rsplit("/", 1)[0]
    admin = create_engine(base + "/", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {SOURCE_DB}"))
        conn.execute(text(f"CREATE DATABASE {SOURCE_DB}"))
    admin.dispose()
    url = f"{base}/{SOURCE_DB}"
    host = create_engine(url).url
    for script in [*(s.read_text() for s in SCHEMAS), DALORADIUS_TABLES, _rows()]:
        subprocess.run(["mariadb", "-u", host.username or "root", "-h", host.host or "127.0.0.1",
                        "-P", str(host.port or 3306), SOURCE_DB], input=script, text=True,
                       check=True, capture_output=True)
    yield url


@pytest.fixture
def config(tmp_path: Path, db_url: str, engine: Engine) -> Path:
    """radbill.toml for the (migrated, empty) target database."""
    path = tmp_path / "radbill.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path}"\n[database]\nurl = {json.dumps(db_url)}\n')
    return path


def run(capsys: pytest.CaptureFixture[str], config: Path, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--config", str(config), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_dry_run_reports_and_writes_nothing(source: str, config: Path, engine: Engine,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """--dry-run lists what would be created and every unmapped attribute; nothing is written."""
    code, out, err = run(capsys, config, "import", "daloradius", "--url", source, "--dry-run",
                         "--history", "--out", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["dry_run"] is True
    assert sorted(report["created"]["nas"]) == ["core-nets", "lo-bras"]
    assert sorted(report["created"]["plan"]) == ["biz", "home-20"]
    assert report["created"]["pool"] == ["main"]
    assert sorted(report["created"]["subscriber"]) == ["clear", "crypt", "dalo-only", "gone",
                                                       "header", "md5", "nt", "ssha", "weird"]
    assert report["history"] == 1
    reasons = {(u["where"], u["attribute"]): u["reason"] for u in report["unmapped"]}
    assert "host names" in reasons[("nas bras.example.net", "nasname")]
    assert ("group biz", "Mikrotik-Rate-Limit") in reasons  # bursts do not fit RX/TX
    assert ("group biz", "Totally-Made-Up") in reasons
    assert ("group biz", "Max-Daily-Session") in reasons
    assert ("user clear", "Expiration") in reasons
    assert ("user ssha", "Mikrotik-Rate-Limit") in reasons
    assert ("user weird", "PBKDF2-Password") in reasons
    assert ("user md5", "group") in reasons  # a second plan
    assert ("user clear", "userbillinfo.creditcardnumber") in reasons
    assert "4111111111111111" not in out and "clear-pw" not in out
    assert any(u["attribute"] == "acctstoptime" for u in report["unmapped"])  # open session
    with Session(engine) as s:
        assert s.scalars(select(Subscriber)).all() == []
        assert s.scalars(select(Nas)).all() == []


def test_import_creates_everything_once(source: str, config: Path, engine: Engine,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """NAS, plans, pools, subscribers with their hashes and history; a second run adds nothing."""
    code, out, err = run(capsys, config, "import", "daloradius", "--url", source, "--history")
    assert code == 0, err
    assert "subscriber: created 9" in out and "Message-Authenticator" in out
    with Session(engine) as s:
        nas = {n.name: n for n in s.scalars(select(Nas))}
        assert nas["lo-bras"].vendor == "mikrotik" and nas["lo-bras"].secret == SECRET
        assert not nas["lo-bras"].require_message_authenticator
        assert nas["core-nets"].address == "10.0.0.0/24" and nas["core-nets"].vendor == "cisco"
        plans = {p.name: p for p in s.scalars(select(Plan))}
        home = plans["home-20"]
        assert (home.rate_limit, home.session_timeout, home.interim_interval,
                home.simultaneous_use) == ("20M/20M", 86400, 300, 1)
        assert ["Framed-MTU", "1480"] in home.extra_reply
        assert plans["biz"].idle_timeout == 600 and plans["biz"].rate_limit is None
        subs = {x.login: x for x in s.scalars(select(Subscriber))}
        clear = subs["clear"]
        assert clear.chap_enabled and clear.cleartext_password == "clear-pw"
        assert clear.nt_hash == nt_password_hash("clear-pw").hex()
        assert clear.static_ip == "100.64.0.9" and clear.plan_id == home.id
        assert "Ada Lovelace" in clear.description and "London" in clear.description
        assert subs["nt"].nt_hash == nt_password_hash("nt-pw").hex()
        assert subs["nt"].legacy_hash is None and subs["nt"].password_hash is None
        for login in ("ssha", "md5", "crypt", "header"):
            assert subs[login].legacy_hash and subs[login].nt_hash is None, login
        assert subs["md5"].plan_id == plans["biz"].id
        assert subs["gone"].status == "disabled"
        assert subs["weird"].legacy_hash is None and subs["dalo-only"].nt_hash is None
        pool = s.scalars(select(Pool)).one()
        items = {i.value: i for i in s.scalars(select(PoolItem))}
        assert pool.name == "main" and len(items) == 6
        assert items["100.64.0.9"].state == "static" and items["100.64.0.9"].holder == "clear"
        history = s.scalars(select(AcctSession)).all()
        assert [(h.unique_id, h.session_time, h.input_octets, h.closed_by) for h in history] \
            == [("a" * 32, 3600, 1000, "stop")]
        assert history[0].subscriber_id == clear.id and history[0].nas_id == nas["lo-bras"].id
    code, out, err = run(capsys, config, "import", "daloradius", "--url", source, "--history")
    assert code == 0, err
    assert "subscriber: created 0, already present 9" in out
    assert "sessions (radacct history)" not in out
    with Session(engine) as s:
        assert len(s.scalars(select(Subscriber)).all()) == 9
        assert len(s.scalars(select(AcctSession)).all()) == 1


def test_bad_source_is_a_clear_error(config: Path, capsys: pytest.CaptureFixture[str],
                                     engine: Engine, tmp_path: Path) -> None:
    """A database without FreeRADIUS's tables, or a bad URL, is one error line, exit 1."""
    empty = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    code, _, err = run(capsys, config, "import", "freeradius", "--url", empty)
    assert code == 1 and "not a FreeRADIUS SQL database" in err
    code, _, err = run(capsys, config, "import", "freeradius", "--url", "nonsense://x")
    assert code == 1 and "--url" in err and "Traceback" not in err


def test_imported_subscribers_log_in_with_radtest(source: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """radbill serve on the imported data: legacy SSHA by PAP, then MS-CHAPv1 once upgraded."""
    require_radclient()
    url = f"sqlite:///{tmp_path / 'radbill.sqlite'}"
    auth = free_udp_port()
    config = tmp_path / "radbill.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp_path}"\n[database]\nurl = "{url}"\n'
                      f'[radius]\nlisten = ["127.0.0.1"]\nauth_port = {auth}\n'
                      f"acct_port = {free_udp_port()}\n")
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert run(capsys, config, "import", "freeradius", "--url", source)[0] == 0
    with (tmp_path / "serve.log").open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "radbill.cli", "--config", str(config),
                                 "serve"], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(40):
            if radclient(f"127.0.0.1:{auth}", "status", SECRET, "Message-Authenticator = 0x00\n",
                         timeout=0.5, tries=1).code:
                break
        def radtest(*args: str) -> str | None:
            p = subprocess.run(["radtest", *args, f"127.0.0.1:{auth}", "0", SECRET],
                               capture_output=True, text=True, timeout=30, check=False)
            return parse_output(p.stdout + p.stderr).code
        assert radtest("-t", "mschap", "ssha", "ssha-pw") == "Access-Reject"  # no NT hash yet
        assert radtest("ssha", "wrong") == "Access-Reject"
        assert radtest("ssha", "ssha-pw") == "Access-Accept"
        assert radtest("crypt", "crypt-pw") == "Access-Accept"
        assert radtest("-t", "chap", "clear", "clear-pw") == "Access-Accept"
        assert radtest("-t", "mschap", "nt", "nt-pw") == "Access-Accept"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the upgrade runs after the Accept, then a poll
            if radtest("-t", "mschap", "ssha", "ssha-pw") == "Access-Accept":
                break
            time.sleep(0.5)
        else:
            pytest.fail("MS-CHAPv1 never worked after the PAP login upgraded the hashes")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    engine = create_engine(url)
    with Session(engine) as s:
        ssha = s.scalars(select(Subscriber).where(Subscriber.login == "ssha")).one()
        assert ssha.legacy_hash is None and ssha.password_hash is not None
    engine.dispose()
    assert os.path.exists(tmp_path / "serve.log")
