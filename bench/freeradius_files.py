#!/usr/bin/env python3
"""A throw-away FreeRADIUS 3 configuration: the bench's users in the ``files`` module.

Only what an Access-Request needs: one loopback client, one auth listener,
``authorize { files; pap }`` and ``authenticate { pap }``, the users with
Cleartext-Password and the same reply attributes radbill sends for the bench
plan on a MikroTik NAS. No accounting, no proxy, no EAP, no logging per
request, reject_delay 0. The directory is self-contained: run it with
``freeradius -f -n radiusd -d DIR``.

Usage: python bench/freeradius_files.py DIR --port N [--users 10000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import login_for, password_for

FREERADIUS = "/usr/sbin/freeradius"

RADIUSD_CONF = """\
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {dir}/log
raddbdir = {dir}
radacctdir = {dir}/log/radacct
name = radiusd
confdir = ${{raddbdir}}
modconfdir = ${{confdir}}/mods-config
certdir = ${{confdir}}/certs
cadir = ${{confdir}}/certs
run_dir = {dir}/run
db_dir = ${{raddbdir}}
libdir = /usr/lib/freeradius
pidfile = ${{run_dir}}/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 65536
hostname_lookups = no
log {{
    destination = files
    file = ${{logdir}}/radius.log
    auth = no
    auth_badpass = no
    auth_goodpass = no
}}
security {{
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = yes
}}
proxy_requests = no
$INCLUDE clients.conf
thread pool {{
    start_servers = 5
    max_servers = 32
    min_spare_servers = 3
    max_spare_servers = 10
    max_requests_per_server = 0
    auto_limit_acct = no
}}
modules {{
    $INCLUDE mods-enabled/
}}
instantiate {{
}}
policy {{
}}
$INCLUDE sites-enabled/
"""

CLIENTS_CONF = """\
client bench {{
    ipaddr = 127.0.0.1
    secret = {secret}
    require_message_authenticator = yes
    nas_type = other
}}
"""

SITE = """\
server default {{
    listen {{
        type = auth
        ipaddr = 127.0.0.1
        port = {port}
    }}
    authorize {{
        files
        pap
    }}
    authenticate {{
        Auth-Type PAP {{
            pap
        }}
    }}
    post-auth {{
    }}
}}
"""

FILES_MODULE = """\
files {
    filename = ${confdir}/users
    acctusersfile = ${confdir}/acct_users
    preproxy_usersfile = ${confdir}/preproxy_users
}
"""

PAP_MODULE = "pap {\n}\n"

USER_ENTRY = """\
{login} Cleartext-Password := "{password}"
\tService-Type = Framed-User,
\tFramed-Protocol = PPP,
\tSession-Timeout = 86400,
\tIdle-Timeout = 600,
\tAcct-Interim-Interval = 300,
\tMikrotik-Rate-Limit = "10M/10M"

"""


def write_config(directory: Path, port: int, users: int = 10_000, prefix: str = "bench",
                 secret: str = "testing123") -> Path:  # noqa: S107 - the bench's NAS secret
    """Write the configuration under ``directory`` and return it (the ``-d`` argument)."""
    d = directory
    for sub in ("log/radacct", "run", "mods-enabled", "sites-enabled", "mods-config"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "radiusd.conf").write_text(RADIUSD_CONF.format(dir=d))
    (d / "clients.conf").write_text(CLIENTS_CONF.format(secret=secret))
    (d / "dictionary").write_text("# the system dictionaries are loaded first\n")
    (d / "sites-enabled" / "default").write_text(SITE.format(port=port))
    (d / "mods-enabled" / "files").write_text(FILES_MODULE)
    (d / "mods-enabled" / "pap").write_text(PAP_MODULE)
    (d / "acct_users").write_text("")
    (d / "preproxy_users").write_text("")
    with (d / "users").open("w") as fh:
        for i in range(users):
            fh.write(USER_ENTRY.format(login=login_for(prefix, i),
                                       password=password_for(prefix, i)))
    return d


def command(directory: Path) -> list[str]:
    """Foreground, no debug output, this directory only."""
    return [FREERADIUS, "-f", "-n", "radiusd", "-d", str(directory)]


def main() -> int:
    p = argparse.ArgumentParser(description="write a FreeRADIUS config for the auth bench")
    p.add_argument("directory", type=Path)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--secret", default="testing123")
    args = p.parse_args()
    d = write_config(args.directory.resolve(), args.port, args.users, secret=args.secret)
    print(" ".join(command(d)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
