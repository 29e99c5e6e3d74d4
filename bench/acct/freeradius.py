"""A minimal FreeRADIUS 3 (Debian package) writing accounting through rlm_sql to MariaDB.

The config directory is generated under a temporary directory: radiusd.conf
with one client (127.0.0.1), one virtual server whose accounting section is
``sql``, and the sql module with the mysql dialect and the stock
``queries.conf`` of the package. Acct-Unique-Session-Id is computed in
preacct from the same inputs as radbill's (NAS, Acct-Session-Id, User-Name),
as the stock ``acct_unique`` policy does.
"""

from __future__ import annotations

import shutil
from pathlib import Path

CONF_ROOT = Path("/etc/freeradius/3.0")
MODS_CONFIG = CONF_ROOT / "mods-config"
SCHEMA = MODS_CONFIG / "sql/main/mysql/schema.sql"
DICT_DIR = Path("/usr/share/freeradius")
DRIVER = Path("/usr/lib/freeradius/rlm_sql_mysql.so")


def binary() -> str | None:
    return shutil.which("freeradius") or shutil.which("radiusd")


def missing() -> str | None:
    """Why FreeRADIUS cannot be benchmarked here, or None."""
    if binary() is None:
        return "freeradius is not installed (apt-get install freeradius)"
    if not DRIVER.exists():
        return "rlm_sql_mysql is not installed (apt-get install freeradius-mysql)"
    if not SCHEMA.exists():
        return f"{SCHEMA} is missing"
    return None


def write_config(directory: Path, port: int, secret: str, database: str, *,
                 host: str = "127.0.0.1", db_port: int = 3306, login: str = "root",
                 password: str = "", threads: int = 32) -> Path:
    # One SQL connection per thread: with fewer, a thread that finds no free connection
    # fails the request at once (no reply), which would measure retransmissions, not SQL.
    connections = threads
    directory.mkdir(parents=True, exist_ok=True)
    for sub in ("log", "run", "radacct"):
        (directory / sub).mkdir(exist_ok=True)
    (directory / "dictionary").write_text(f"$INCLUDE {DICT_DIR}/dictionary\n")
    (directory / "radiusd.conf").write_text(f"""
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {directory}/log
raddbdir = {directory}
radacctdir = {directory}/radacct
name = freeradius
confdir = {directory}
modconfdir = {MODS_CONFIG}
run_dir = {directory}/run
db_dir = {directory}
libdir = /usr/lib/freeradius
pidfile = {directory}/run/radiusd.pid
correct_escapes = true
max_request_time = 30
cleanup_delay = 5
max_requests = 65536
hostname_lookups = no
log {{
    destination = files
    file = {directory}/log/radius.log
    colourise = no
    stripped_names = no
    auth = no
}}
checkrad = /usr/sbin/checkrad
security {{
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = no
}}
thread pool {{
    start_servers = {threads}
    max_servers = {threads}
    min_spare_servers = {threads}
    max_spare_servers = {threads}
    max_requests_per_server = 0
    auto_limit_acct = no
    max_queue_size = 65536
}}
client bench {{
    ipaddr = 127.0.0.1
    secret = {secret}
    require_message_authenticator = no
}}
modules {{
    # %{{tolower:}} and %{{md5:}} used by queries.conf and preacct
    expr {{
        safe_characters = "@abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_: /"
    }}
    sql {{
        driver = "rlm_sql_mysql"
        dialect = "mysql"
        server = "{host}"
        port = {db_port}
        login = "{login}"
        password = "{password}"
        radius_db = "{database}"
        acct_table1 = "radacct"
        acct_table2 = "radacct"
        postauth_table = "radpostauth"
        authcheck_table = "radcheck"
        groupcheck_table = "radgroupcheck"
        authreply_table = "radreply"
        groupreply_table = "radgroupreply"
        usergroup_table = "radusergroup"
        read_groups = no
        delete_stale_sessions = no
        client_table = "nas"
        group_attribute = "SQL-Group"
        mysql {{
            warnings = auto
        }}
        pool {{
            start = {connections}
            min = {connections}
            max = {connections}
            spare = {connections}
            uses = 0
            retry_delay = 1
            lifetime = 0
            idle_timeout = 0
        }}
        $INCLUDE ${{modconfdir}}/sql/main/${{dialect}}/queries.conf
    }}
}}
server bench {{
    listen {{
        type = acct
        ipaddr = 127.0.0.1
        port = {port}
    }}
    preacct {{
        update request {{
            &Acct-Unique-Session-Id := \
                "%{{md5:%{{NAS-IP-Address}} %{{Acct-Session-Id}} %{{User-Name}}}}"
        }}
    }}
    accounting {{
        sql
    }}
}}
""")
    return directory
