"""802.1X the standard way: FreeRADIUS terminates PEAP / EAP-TTLS, radbill answers inside.

A real FreeRADIUS (its own config in a temp dir, certificates made with openssl,
ports picked free on 127.0.0.1) proxies the inner MS-CHAPv2 of PEAP and the inner
PAP of EAP-TTLS to a real ``radbill serve``, and accounting too; wpa_supplicant's
``eapol_test`` plays the access point and the supplicant (issue 14 point 2).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from aaa import mschap
from aaa.pap import hash_password
from accounting.models import AcctSession
from core.db import schema
from core.db.engine import make_engine
from core.db.models import Nas, Plan, Subscriber
from tests.conftest import IN_CI
from tests.radclient import free_udp_port, radclient

pytestmark = pytest.mark.slow

FREERADIUS = "/usr/sbin/freeradius"
RADBILL_SECRET = "fr-to-radbill"  # FreeRADIUS -> radbill (radbill's NAS entry)
AP_SECRET = "ap-to-freeradius"  # the access point (eapol_test) -> FreeRADIUS
PASSWORD = "s3cret!"
STEP_TIMEOUT = 30  # seconds for any one process step: the whole test stays bounded


def binaries() -> dict[str, str]:
    found = {"freeradius": FREERADIUS if os.access(FREERADIUS, os.X_OK) else None,
             "eapol_test": shutil.which("eapol_test"), "openssl": shutil.which("openssl"),
             "radclient": shutil.which("radclient")}
    missing = [k for k, v in found.items() if v is None]
    if missing:
        if IN_CI:
            pytest.fail(f"missing in CI: {', '.join(missing)} (freeradius, eapol_test, "
                        "openssl, freeradius-utils are installed by scripts/test)")
        pytest.skip(f"not installed: {', '.join(missing)}")
    return {k: v for k, v in found.items() if v is not None}


def port_pair() -> int:
    """A free UDP port p with p + 1 free too (FreeRADIUS sends accounting to port + 1)."""
    for _ in range(50):
        p = free_udp_port()
        if p < 65535:
            try:
                import socket

                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.bind(("127.0.0.1", p + 1))
                return p
            except OSError:
                continue
    raise RuntimeError("no free UDP port pair")


def make_certs(openssl: str, d: Path) -> None:
    """A test CA and a server certificate it signed (serverAuth), like FreeRADIUS's bootstrap."""
    d.mkdir()

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True,
                       timeout=STEP_TIMEOUT)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=radbill test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=radius.test")
    (d / "ext.cnf").write_text("extendedKeyUsage = serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")


RADIUSD_CONF = """\
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = {tmp}
sbindir = /usr/sbin
logdir = {tmp}/log
raddbdir = {tmp}/raddb
radacctdir = {tmp}/log/radacct
name = freeradius
confdir = ${{raddbdir}}
modconfdir = ${{confdir}}/mods-config
certdir = {tmp}/certs
cadir = {tmp}/certs
run_dir = {tmp}/run
db_dir = {tmp}
libdir = /usr/lib/freeradius
pidfile = ${{run_dir}}/${{name}}.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 1024
hostname_lookups = no
log {{
    destination = files
    file = ${{logdir}}/radius.log
    auth = yes
}}
security {{
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = yes
}}
proxy_requests = yes
$INCLUDE proxy.conf
$INCLUDE clients.conf
thread pool {{
    start_servers = 2
    max_servers = 4
    min_spare_servers = 1
    max_spare_servers = 3
    max_requests_per_server = 0
}}
modules {{
    $INCLUDE mods-enabled/
}}
$INCLUDE sites-enabled/
"""

PROXY_CONF = """\
proxy server {{
    default_fallback = no
}}
home_server radbill {{
    type = auth+acct
    ipaddr = 127.0.0.1
    port = {radbill_auth}
    secret = {secret}
    response_window = 10
    zombie_period = 40
    status_check = none
}}
home_server_pool radbill_pool {{
    type = fail-over
    home_server = radbill
}}
realm radbill {{
    auth_pool = radbill_pool
    acct_pool = radbill_pool
}}
"""

CLIENTS_CONF = """\
client ap {{
    ipaddr = 127.0.0.1
    secret = {secret}
    require_message_authenticator = no
}}
"""

# PEAP's inner EAP-MSCHAPv2 is proxied as plain MS-CHAPv2 (proxy_tunneled_request_as_eap
# = no), which is what radbill answers; EAP-TTLS's inner PAP is proxied as it is.
EAP_MODULE = """\
eap {
    default_eap_type = peap
    timer_expire = 60
    ignore_unknown_eap_types = no
    max_sessions = ${max_requests}
    tls-config tls-common {
        private_key_file = ${certdir}/server.key
        certificate_file = ${certdir}/server.pem
        ca_file = ${cadir}/ca.pem
        cipher_list = "DEFAULT"
        tls_min_version = "1.2"
        tls_max_version = "1.2"
        ecdh_curve = ""
        cache {
            enable = no
        }
    }
    ttls {
        tls = tls-common
        default_eap_type = md5
        copy_request_to_tunnel = no
        use_tunneled_reply = no
        virtual_server = "inner-tunnel"
    }
    peap {
        tls = tls-common
        default_eap_type = mschapv2
        copy_request_to_tunnel = no
        use_tunneled_reply = no
        proxy_tunneled_request_as_eap = no
        virtual_server = "inner-tunnel"
    }
    md5 {
    }
    mschapv2 {
    }
}
"""

MSCHAP_MODULE = """\
mschap {
}
"""

ALWAYS_MODULE = """\
always ok {
    rcode = ok
}
"""

DEFAULT_SITE = """\
server default {{
    listen {{
        type = auth
        ipaddr = 127.0.0.1
        port = {auth}
    }}
    listen {{
        type = acct
        ipaddr = 127.0.0.1
        port = {acct}
    }}
    authorize {{
        eap {{
            ok = return
        }}
    }}
    authenticate {{
        eap
    }}
    preacct {{
        update control {{
            &Proxy-To-Realm := "radbill"
        }}
    }}
    accounting {{
        ok
    }}
    post-auth {{
        ok
    }}
    post-proxy {{
        eap
    }}
}}
"""

INNER_SITE = """\
server inner-tunnel {
    authorize {
        eap {
            ok = return
        }
        update control {
            &Proxy-To-Realm := "radbill"
        }
    }
    authenticate {
        Auth-Type MS-CHAP {
            mschap
        }
        eap
    }
    post-auth {
        ok
    }
    post-proxy {
        eap
    }
}
"""


def write_freeradius_config(tmp: Path, auth: int, acct: int, radbill_auth: int) -> Path:
    raddb = tmp / "raddb"
    for sub in ("mods-enabled", "sites-enabled", "mods-config"):
        (raddb / sub).mkdir(parents=True)
    for sub in ("log", "run"):
        (tmp / sub).mkdir()
    shutil.copy("/etc/freeradius/3.0/dictionary", raddb / "dictionary")
    (raddb / "radiusd.conf").write_text(RADIUSD_CONF.format(tmp=tmp))
    (raddb / "proxy.conf").write_text(PROXY_CONF.format(radbill_auth=radbill_auth,
                                                        secret=RADBILL_SECRET))
    (raddb / "clients.conf").write_text(CLIENTS_CONF.format(secret=AP_SECRET))
    (raddb / "mods-enabled" / "eap").write_text(EAP_MODULE)
    (raddb / "mods-enabled" / "mschap").write_text(MSCHAP_MODULE)
    (raddb / "mods-enabled" / "always").write_text(ALWAYS_MODULE)
    (raddb / "sites-enabled" / "default").write_text(DEFAULT_SITE.format(auth=auth, acct=acct))
    (raddb / "sites-enabled" / "inner-tunnel").write_text(INNER_SITE)
    return raddb


@dataclass
class Stack:
    fr_auth: int
    fr_acct: int
    ca: Path
    db_url: str
    radbill_log: Path
    fr_log: Path
    tmp: Path
    radbill_auth: int


def wait_for(ok: object, what: str, log: Path, timeout: float = STEP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok():  # type: ignore[operator]
            return
        time.sleep(0.2)
    pytest.fail(f"{what} did not come up in {timeout} s:\n{log.read_text()[-4000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """radbill serve on free ports, FreeRADIUS in front of it with PEAP and EAP-TTLS."""
    tools = binaries()
    tmp = tmp_path_factory.mktemp("eap")
    url = f"sqlite:///{tmp / 'radbill.sqlite'}"
    engine = make_engine(url)
    schema.upgrade(engine)
    with Session(engine) as s, s.begin():
        plan = Plan(name="wifi", session_timeout=3600, interim_interval=300)
        s.add(plan)
        s.flush()
        s.add(Nas(name="freeradius-eap", address="127.0.0.1", secret=RADBILL_SECRET,
                  vendor="generic", require_message_authenticator=False))
        for login in ("bob", "alice"):
            s.add(Subscriber(login=login, password_hash=hash_password(PASSWORD),
                             nt_hash=mschap.nt_password_hash(PASSWORD).hex(), plan_id=plan.id))
    engine.dispose()
    radbill_auth = port_pair()
    config = tmp / "radbill.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp}"\nlog_level = "debug"\n'
                      f'[database]\nurl = "{url}"\n'
                      f'[radius]\nlisten = ["127.0.0.1"]\nauth_port = {radbill_auth}\n'
                      f'acct_port = {radbill_auth + 1}\n')
    radbill_log = tmp / "radbill.log"
    with radbill_log.open("wb") as out:
        radbill = subprocess.Popen([sys.executable, "-m", "radbill.cli", "--config",
                                    str(config), "serve"], stdout=out, stderr=subprocess.STDOUT)
    fr = None
    try:
        wait_for(lambda: radbill.poll() is not None or radclient(
            f"127.0.0.1:{radbill_auth}", "status", RADBILL_SECRET,
            "Message-Authenticator = 0x00\n", timeout=0.5, tries=1).code is not None,
            "radbill serve", radbill_log)
        assert radbill.poll() is None, radbill_log.read_text()
        make_certs(tools["openssl"], tmp / "certs")
        fr_auth = port_pair()
        raddb = write_freeradius_config(tmp, fr_auth, fr_auth + 1, radbill_auth)
        check = subprocess.run([tools["freeradius"], "-C", "-X", "-l", "stdout", "-d", str(raddb)],
                               capture_output=True, text=True, timeout=STEP_TIMEOUT)
        assert check.returncode == 0, (check.stdout + check.stderr)[-3000:]
        fr_log = tmp / "freeradius.log"
        with fr_log.open("wb") as out:
            fr = subprocess.Popen([tools["freeradius"], "-X", "-l", "stdout", "-d", str(raddb)],
                                  stdout=out, stderr=subprocess.STDOUT)
        wait_for(lambda: fr.poll() is not None or "Ready to process requests"
                 in fr_log.read_text(errors="replace"), "freeradius", fr_log)
        assert fr.poll() is None, fr_log.read_text()
        yield Stack(fr_auth=fr_auth, fr_acct=fr_auth + 1, ca=tmp / "certs" / "ca.pem",
                    db_url=url, radbill_log=radbill_log, fr_log=fr_log, tmp=tmp,
                    radbill_auth=radbill_auth)
    finally:
        if fr is not None:
            stop(fr)
        stop(radbill)


def eapol_test(stack: Stack, name: str, network: str) -> subprocess.CompletedProcess[str]:
    conf = stack.tmp / f"{name}.conf"
    conf.write_text("network={\n    key_mgmt=WPA-EAP\n" + network
                    + f'    ca_cert="{stack.ca}"\n}}\n')
    return subprocess.run(["eapol_test", "-c", str(conf), "-a", "127.0.0.1", "-p",
                           str(stack.fr_auth), "-s", AP_SECRET, "-t", "15"],
                          capture_output=True, text=True, timeout=STEP_TIMEOUT)


def radbill_accepted(stack: Stack, text: str) -> bool:
    return text in stack.radbill_log.read_text(errors="replace")


def test_peap_mschapv2_inner_auth_is_answered_by_radbill(stack: Stack) -> None:
    """PEAP/MSCHAPv2 through FreeRADIUS: Access-Accept, and radbill verified the inner MS-CHAPv2."""
    r = eapol_test(stack, "peap", '    eap=PEAP\n    identity="bob"\n'
                   f'    password="{PASSWORD}"\n    phase2="auth=MSCHAPV2"\n')
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout[-3000:]
    assert "Access-Accept" in r.stdout
    assert radbill_accepted(stack, "auth: accept from NAS freeradius-eap (bob mschapv2)"), \
        stack.radbill_log.read_text()[-3000:]


def test_ttls_pap_inner_auth_is_answered_by_radbill(stack: Stack) -> None:
    """EAP-TTLS/PAP through FreeRADIUS: Access-Accept, and radbill verified the inner PAP."""
    r = eapol_test(stack, "ttls", '    eap=TTLS\n    identity="alice"\n'
                   f'    password="{PASSWORD}"\n    phase2="auth=PAP"\n')
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout[-3000:]
    assert radbill_accepted(stack, "auth: accept from NAS freeradius-eap (alice pap)"), \
        stack.radbill_log.read_text()[-3000:]


def test_wrong_inner_password_is_rejected_by_radbill(stack: Stack) -> None:
    """A wrong PEAP password fails: radbill, not FreeRADIUS (it has no users), says no."""
    r = eapol_test(stack, "peap-wrong", '    eap=PEAP\n    identity="bob"\n'
                   '    password="wrong!"\n    phase2="auth=MSCHAPV2"\n')
    assert r.returncode != 0 and "SUCCESS" not in r.stdout.splitlines()[-1:], r.stdout[-2000:]
    assert radbill_accepted(stack, "auth: wrong-password from NAS freeradius-eap"), \
        stack.radbill_log.read_text()[-3000:]


def test_accounting_is_proxied_to_radbill(stack: Stack) -> None:
    """Accounting sent to FreeRADIUS is proxied to radbill, which stores the session."""
    attrs = ('User-Name = "bob"\nAcct-Status-Type = Start\nAcct-Session-Id = "eap-1"\n'
             'NAS-IP-Address = 127.0.0.1\nCalling-Station-Id = "02-00-00-00-00-01"\n'
             "NAS-Port = 1\n")
    r = radclient(f"127.0.0.1:{stack.fr_acct}", "acct", AP_SECRET, attrs, timeout=5, tries=2)
    assert r.code == "Accounting-Response", r.output
    engine = make_engine(stack.db_url)
    try:
        with Session(engine) as s:
            rows = s.execute(select(AcctSession.user_name, AcctSession.session_id,
                                    AcctSession.stopped_at)).all()
    finally:
        engine.dispose()
    assert [(u, sid) for u, sid, _ in rows] == [("bob", "eap-1")]


def test_eap_sent_straight_to_radbill_is_rejected_with_a_reason(stack: Stack) -> None:
    """EAP from a NAS pointed at radbill directly: Access-Reject, Reply-Message, and a log hint."""
    # EAP-Response/Identity "bob": code 2, id 1, length 8, type 1
    r = radclient(f"127.0.0.1:{stack.radbill_auth}", "auth", RADBILL_SECRET,
                  'User-Name = "bob"\nEAP-Message = 0x0201000801626f62\n'
                  "Message-Authenticator = 0x00\n")
    assert r.code == "Access-Reject", r.output
    assert r.value("Reply-Message") == "Authentication method not supported"
    assert radbill_accepted(stack, "EAP-Identity is not supported (terminate EAP in FreeRADIUS "
                                   "and proxy the inner request: docs/migration.md)"), \
        stack.radbill_log.read_text()[-2000:]
