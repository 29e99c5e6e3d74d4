"""The real server on 127.0.0.1, driven by FreeRADIUS's radclient, on SQLite and MariaDB."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from aaa import mschap
from aaa.pap import hash_password
from core.db import schema
from core.db.engine import make_engine
from core.db.models import Nas, Plan, Subscriber, SubscriberStatus
from tests.conftest import IN_CI, MARIADB_URL, _reset_mariadb
from tests.radclient import (
    RadclientResult,
    free_udp_port,
    parse_output,
    radclient,
    require_radclient,
)

SECRET = "testing123"
AUTHENTICATOR_CHALLENGE = bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628")
PEER_CHALLENGE = bytes.fromhex("21402324255E262A28295F2B3A337C7E")


def populate(url: str) -> None:
    engine = make_engine(url)
    with Session(engine) as s, s.begin():
        plan = Plan(name="home", rate_limit="10M/20M", session_timeout=7200,
                    idle_timeout=600, interim_interval=300)
        s.add(plan)
        s.flush()
        s.add(Nas(name="lo-mikrotik", address="127.0.0.1", secret=SECRET, vendor="mikrotik",
                  require_message_authenticator=False))
        s.add(Nas(name="lo6-strict", address="::1", secret=SECRET, vendor="accel-ppp",
                  require_message_authenticator=True))
        for login, chap, status in (("alice", True, SubscriberStatus.ACTIVE),
                                    ("bob", False, SubscriberStatus.ACTIVE),
                                    ("carol", False, SubscriberStatus.BLOCKED)):
            s.add(Subscriber(login=login, password_hash=hash_password("s3cret!"),
                             nt_hash=mschap.nt_password_hash("s3cret!").hex(),
                             chap_enabled=chap, cleartext_password="s3cret!" if chap else None,
                             status=status, plan_id=plan.id,
                             static_ip="100.64.0.7" if login == "alice" else None))
    engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "mariadb"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[int, subprocess.Popen[str], Path]]:
    """A `radbill serve` process with demo data; yields its auth port, process and config."""
    require_radclient()
    tmp = tmp_path_factory.mktemp(f"serve-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'radbill.sqlite'}"
        engine = make_engine(url)
        schema.upgrade(engine)
        engine.dispose()
    else:
        if not MARIADB_URL:
            if IN_CI:
                pytest.fail("CI=true but RADBILL_TEST_DATABASE_URL is not set")
            pytest.skip("RADBILL_TEST_DATABASE_URL not set")
        url = MARIADB_URL
        engine = make_engine(url)
        _reset_mariadb(engine)
        engine.dispose()
    populate(url)
    auth = free_udp_port()
    acct = free_udp_port()
    config = tmp / "radbill.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp}"\n[database]\nurl = "{url}"\n'
                      f'[radius]\nlisten = ["127.0.0.1", "::1"]\nauth_port = {auth}\n'
                      f'acct_port = {acct}\n')
    log = (tmp / "serve.log").open("w")
    # A file, not a pipe: a server that logs more than a pipe holds must never block on it.
    proc = subprocess.Popen([sys.executable, "-m", "radbill.cli", "--config", str(config),
                             "serve"], stdout=log, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        reply = radclient(f"127.0.0.1:{auth}", "status", SECRET,
                          "Message-Authenticator = 0x00\n", timeout=0.5, tries=1)
        if reply.code is not None or proc.poll() is not None:
            break
    if proc.poll() is not None:
        pytest.fail(f"radbill serve exited: {(tmp / 'serve.log').read_text()}")
    yield auth, proc, config
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    finally:
        log.close()


def mschapv2_attrs(login: str, password: str) -> str:
    nt_response = mschap.generate_nt_response(AUTHENTICATOR_CHALLENGE, PEER_CHALLENGE,
                                              login.encode(), mschap.nt_password_hash(password))
    response = bytes([1, 0]) + PEER_CHALLENGE + bytes(8) + nt_response
    return (f'User-Name = "{login}"\nMS-CHAP-Challenge = 0x{AUTHENTICATOR_CHALLENGE.hex()}\n'
            f"MS-CHAP2-Response = 0x{response.hex()}\n")


def test_pap_accept_carries_plan(server: tuple[int, subprocess.Popen[str], Path]) -> None:
    """PAP with the right password is accepted with the plan's attributes in MikroTik form."""
    auth, _, _ = server
    r = radclient(f"127.0.0.1:{auth}", "auth", SECRET,
                  'User-Name = "alice"\nUser-Password = "s3cret!"\n')
    assert r.code == "Access-Accept", r.output
    assert r.attributes[0][0] == "Message-Authenticator"
    assert r.value("Mikrotik-Rate-Limit") == "10M/20M"
    assert r.value("Session-Timeout") == "7200"
    assert r.value("Idle-Timeout") == "600"
    assert r.value("Acct-Interim-Interval") == "300"
    assert r.value("Framed-IP-Address") == "100.64.0.7"


def test_pap_reject_says_why(server: tuple[int, subprocess.Popen[str], Path]) -> None:
    """Wrong password, unknown login and blocked subscriber each get their own Reply-Message."""
    auth, _, _ = server
    cases = {("alice", "nope"): "Wrong password", ("mallory", "s3cret!"): "Unknown login",
             ("carol", "s3cret!"): "Account blocked"}
    for (login, password), message in cases.items():
        r = radclient(f"127.0.0.1:{auth}", "auth", SECRET,
                      f'User-Name = "{login}"\nUser-Password = "{password}"\n')
        assert r.code == "Access-Reject", r.output
        assert r.value("Reply-Message") == message
        assert r.attributes[0][0] == "Message-Authenticator"


def test_chap_accept_and_reject(server: tuple[int, subprocess.Popen[str], Path]) -> None:
    """CHAP works for a --chap subscriber, fails on a wrong password and for a non-CHAP one."""
    auth, _, _ = server
    ok = radclient(f"127.0.0.1:{auth}", "auth", SECRET,
                   'User-Name = "alice"\nCHAP-Password = "s3cret!"\n')
    assert ok.code == "Access-Accept", ok.output
    bad = radclient(f"127.0.0.1:{auth}", "auth", SECRET,
                    'User-Name = "alice"\nCHAP-Password = "wrong"\n')
    assert bad.code == "Access-Reject"
    assert bad.value("Reply-Message") == "Wrong password"
    nochap = radclient(f"127.0.0.1:{auth}", "auth", SECRET,
                       'User-Name = "bob"\nCHAP-Password = "s3cret!"\n')
    assert nochap.code == "Access-Reject"
    assert nochap.value("Reply-Message") == "Authentication method not supported"


def test_mschapv2_accept_with_mppe_keys(server: tuple[int, subprocess.Popen[str], Path]) -> None:
    """MS-CHAPv2 is accepted with the RFC 2759 success string and RFC 3079 MPPE keys."""
    auth, _, _ = server
    r = radclient(f"127.0.0.1:{auth}", "auth", SECRET, mschapv2_attrs("bob", "s3cret!"))
    assert r.code == "Access-Accept", r.output
    nt_hash = mschap.nt_password_hash("s3cret!")
    nt_response = mschap.generate_nt_response(AUTHENTICATOR_CHALLENGE, PEER_CHALLENGE, b"bob",
                                              nt_hash)
    expected = mschap.generate_authenticator_response(
        nt_hash, nt_response, PEER_CHALLENGE, AUTHENTICATOR_CHALLENGE, b"bob")
    success = r.value("MS-CHAP2-Success") or ""
    assert success.lower() == "0x01" + expected.hex()
    send_key, recv_key = mschap.mppe_keys(nt_hash, nt_response)
    # radclient decrypts the salt-encrypted keys with the shared secret and prints them.
    assert (r.value("MS-MPPE-Send-Key") or "").lower() == "0x" + send_key.hex()
    assert (r.value("MS-MPPE-Recv-Key") or "").lower() == "0x" + recv_key.hex()


def test_mschapv2_reject(server: tuple[int, subprocess.Popen[str], Path]) -> None:
    """MS-CHAPv2 with a wrong password is rejected with MS-CHAP-Error E=691."""
    auth, _, _ = server
    r = radclient(f"127.0.0.1:{auth}", "auth", SECRET, mschapv2_attrs("bob", "wrong"))
    assert r.code == "Access-Reject", r.output
    assert "E=691" in (r.value("MS-CHAP-Error") or "")


def radtest(method: str, login: str, password: str, auth: int) -> RadclientResult:
    """FreeRADIUS's own radtest (radclient underneath), as an operator would run it."""
    radtest_path = shutil.which("radtest")
    if radtest_path is None:
        if IN_CI:
            pytest.fail("radtest is not installed (Debian package freeradius-utils)")
        pytest.skip("radtest not installed")
    proc = subprocess.run([radtest_path, "-t", method, login, password, f"127.0.0.1:{auth}", "0",
                           SECRET], capture_output=True, text=True, timeout=30, check=False)
    return parse_output(proc.stdout + proc.stderr)


def test_radtest_mschap_v1_accept_with_mppe_keys(
        server: tuple[int, subprocess.Popen[str], Path]) -> None:
    """`radtest -t mschap` (MS-CHAPv1) is accepted with RFC 2548 MS-CHAP-MPPE-Keys."""
    auth, _, _ = server
    r = radtest("mschap", "bob", "s3cret!", auth)
    assert r.code == "Access-Accept", r.output
    expected = bytes(8) + mschap.hash_nt_password_hash(mschap.nt_password_hash("s3cret!"))
    # radclient un-hides the encrypt=1 value with the secret and prints it without the padding.
    assert (r.value("MS-CHAP-MPPE-Keys") or "").lower() == "0x" + expected.hex()
    assert r.value("MS-MPPE-Encryption-Policy") == "Encryption-Allowed"
    assert r.value("Mikrotik-Rate-Limit") == "10M/20M"


def test_radtest_mschap_v1_wrong_password(
        server: tuple[int, subprocess.Popen[str], Path]) -> None:
    """MS-CHAPv1 with a wrong password: Access-Reject, MS-CHAP-Error E=691, "Wrong password"."""
    auth, _, _ = server
    r = radtest("mschap", "bob", "wrong", auth)
    assert r.code == "Access-Reject", r.output
    assert "E=691" in (r.value("MS-CHAP-Error") or "")
    assert r.value("Reply-Message") == "Wrong password"


def test_eap_is_rejected_by_name(server: tuple[int, subprocess.Popen[str], Path]) -> None:
    """An EAP request gets an Access-Reject saying the method is not supported."""
    auth, _, _ = server
    # EAP-Response/Identity "bob": code 2, id 1, length 8, type 1
    r = radclient(f"127.0.0.1:{auth}", "auth", SECRET,
                  'User-Name = "bob"\nEAP-Message = 0x0201000801626f62\n'
                  "Message-Authenticator = 0x00\n")
    assert r.code == "Access-Reject", r.output
    assert r.value("Reply-Message") == "Authentication method not supported"


def test_strict_client_over_ipv6(server: tuple[int, subprocess.Popen[str], Path]) -> None:
    """A client requiring Message-Authenticator: answered with it over IPv6, dropped without it."""
    auth, _, _ = server
    ok = radclient(f"[::1]:{auth}", "auth", SECRET,
                   'User-Name = "bob"\nUser-Password = "s3cret!"\nMessage-Authenticator = 0x00\n')
    assert ok.code == "Access-Accept", ok.output
    # Attributes 230/231 (accel-ppp's PPPD-*-Speed-Limit, kbit/s); FreeRADIUS's stock
    # dictionary prints them under Ascend names, so look at the values in reply order.
    values = [v for _, v in ok.attributes]
    assert values[-2:] == ["10000", "20000"]
    dropped = radclient(f"[::1]:{auth}", "auth", SECRET,
                        'User-Name = "bob"\nUser-Password = "s3cret!"\n', timeout=0.7, tries=1)
    assert dropped.code is None


@pytest.mark.parametrize("method", ["pap", "chap"])
def test_radtest_sends_message_authenticator(server: tuple[int, subprocess.Popen[str], Path],
                                             method: str) -> None:
    """radtest (freeradius-utils 3.2) is accepted by a NAS entry that requires
    Message-Authenticator, so scripts/demo needs no lenient NAS."""
    auth, _, _ = server
    login = "alice" if method == "chap" else "bob"  # only alice has CHAP enabled
    result = subprocess.run(["radtest", "-t", method, login, "s3cret!", f"[::1]:{auth}", "0",
                             SECRET], capture_output=True, text=True, timeout=30, check=False)
    assert "Access-Accept" in result.stdout, result.stdout + result.stderr


def test_demo_nas_requires_message_authenticator() -> None:
    """scripts/demo keeps the Blast-RADIUS default and no longer claims radtest cannot sign."""
    demo = (Path(__file__).parent.parent / "scripts" / "demo").read_text()
    assert "--no-require-message-authenticator" not in demo
    assert "sends no Message-Authenticator" not in demo


def test_wrong_secret_is_not_accepted(server: tuple[int, subprocess.Popen[str], Path]) -> None:
    """A NAS using the wrong shared secret never gets an Access-Accept."""
    auth, _, _ = server
    r = radclient(f"127.0.0.1:{auth}", "auth", "not-the-secret",
                  'User-Name = "alice"\nUser-Password = "s3cret!"\n', timeout=0.7, tries=1)
    assert r.code != "Access-Accept"


def test_status_server(server: tuple[int, subprocess.Popen[str], Path]) -> None:
    """Status-Server (RFC 5997) is answered with an Access-Accept."""
    auth, _, _ = server
    r = radclient(f"127.0.0.1:{auth}", "status", SECRET, "Message-Authenticator = 0x00\n")
    assert r.code == "Access-Accept", r.output


def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    """radbill serve exits 0 on SIGTERM after binding its ports."""
    require_radclient()
    url = f"sqlite:///{tmp_path / 'radbill.sqlite'}"
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    populate(url)
    auth = free_udp_port()
    config = tmp_path / "radbill.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp_path}"\n[radius]\nlisten = ["127.0.0.1"]\n'
                      f"auth_port = {auth}\nacct_port = {free_udp_port()}\n")
    with (tmp_path / "serve.log").open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "radbill.cli", "--config", str(config),
                                 "serve"], stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        r = None
        for _ in range(40):
            r = radclient(f"127.0.0.1:{auth}", "status", SECRET, "Message-Authenticator = 0x00\n",
                          timeout=0.5, tries=1)
            if r.code:
                break
        assert r is not None and r.code == "Access-Accept"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    out = (tmp_path / "serve.log").read_text()
    assert "radbill stopping" in out
    assert "Traceback" not in out


def test_serve_refuses_outdated_schema(tmp_path: Path) -> None:
    """radbill serve on an empty database exits non-zero naming 'radbill db upgrade'."""
    config = tmp_path / "radbill.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp_path}"\n[radius]\nlisten = ["127.0.0.1"]\n'
                      f"auth_port = {free_udp_port()}\nacct_port = {free_udp_port()}\n")
    proc = subprocess.run([sys.executable, "-m", "radbill.cli", "--config", str(config), "serve"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "RADBILL_CONFIG": ""})
    assert proc.returncode == 1
    assert "radbill db upgrade" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_refuses_bad_config_before_binding(tmp_path: Path) -> None:
    """A config error names the key and value, and serve exits before binding any port."""
    port = free_udp_port()
    config = tmp_path / "radbill.toml"
    config.write_text(f'[radius]\nauth_port = {port}\nacct_port = 70000\n')
    proc = subprocess.run([sys.executable, "-m", "radbill.cli", "--config", str(config), "serve"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert "radius.acct_port = 70000" in proc.stderr
    assert "Traceback" not in proc.stderr
