"""radbill doctor: check a server's setup before (or while) it runs, and say what to fix.

Every check gives ``ok``, ``warn`` or ``fail`` with what it saw and, unless ok, how to fix
it. The exit status is 1 when a check failed (``--strict``: or warned), else 0, so the
command fits a deployment script or a systemd ``ExecStartPre``. Checks that need
something an earlier one could not get (the database, a valid config) are reported as
skipped, not failed twice. Secrets are never printed.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import socket
import ssl
import stat
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.config import Config, load_config
from core.errors import RadbillError

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skipped"

#: Shared secrets shipped as examples by RADIUS software and tutorials.
KNOWN_SECRETS = frozenset({"testing123", "secret", "radius", "password", "changeme", "cisco",
                           "mikrotik", "test", "12345678", "radsec"})
MIN_SECRET_LENGTH = 16
MIN_SECRET_BITS = 64.0
CLOCK_WARN_SECONDS = 2.0
CLOCK_FAIL_SECONDS = 60.0
EARLIEST_SANE_YEAR = 2024


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from radbill.cli import common_parent

    p = sub.add_parser("doctor", help="check config, database, ports, dictionaries, secrets "
                                      "and TLS files; exit 1 on a failure",
                       parents=[common_parent()])
    p.add_argument("--out", choices=("text", "json"), default="text", help="output format")
    p.add_argument("--strict", action="store_true", help="warnings fail too (exit 1)")
    p.add_argument("--skip-ports", action="store_true",
                   help="do not try to bind the ports (radbill serve is running)")
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    checks = run_checks(args.config, ports=not args.skip_ports)
    if args.out == "json":
        from core.formats import to_json

        print(to_json({"ok": not failed(checks, args.strict),
                       "checks": [asdict(c) for c in checks]}))
    else:
        for c in checks:
            print(f"{c.status.upper():7} {c.name}: {c.detail}")
            if c.fix:
                print(f"        fix: {c.fix}")
        bad = [c for c in checks if c.status == FAIL or (args.strict and c.status == WARN)]
        print(f"{len(bad)} to fix" if bad else "all checks passed")
    return 1 if failed(checks, args.strict) else 0


def failed(checks: list[Check], strict: bool = False) -> bool:
    return any(c.status == FAIL or (strict and c.status == WARN) for c in checks)


def run_checks(config_path: str | None, *, ports: bool = True) -> list[Check]:
    try:
        config = load_config(config_path)
    except RadbillError as exc:
        return [Check("config", FAIL, str(exc), "fix the file (the message names the key)")]
    out = [Check("config", OK, f"{config.source} is valid")]
    out.append(check_data_dir(config))
    engine, db_check = connect(config)
    out.append(db_check)
    if engine is None:
        out += [Check(name, SKIP, "the database is not reachable")
                for name in ("schema", "database settings", "NAS secrets")]
        out.append(check_clock(None))
    else:
        try:
            schema_check = check_schema(engine)
            out.append(schema_check)
            out += check_database_settings(engine)
            out.append(check_clock(database_now(engine)))
            if schema_check.status == OK:
                out += check_nas_secrets(nas_secrets(engine))
            else:
                out.append(Check("NAS secrets", SKIP, "the schema is not current"))
        finally:
            engine.dispose()
    if ports:
        out += check_ports(config)
    out.append(check_dictionaries())
    out += check_files(config)
    return out


# -- config and files ----------------------------------------------------------------------

def check_data_dir(config: Config) -> Check:
    path = Path(config.server.data_dir)
    if not path.is_dir():
        return Check("data_dir", FAIL, f"server.data_dir = {str(path)!r} does not exist",
                     "create it, owned by the user radbill runs as")
    if not os.access(path, os.W_OK | os.X_OK):
        return Check("data_dir", FAIL, f"{path} is not writable by this user (uid "
                     f"{os.getuid()})", "chown it to the user radbill runs as")
    return Check("data_dir", OK, f"{path} is writable")


def check_files(config: Config) -> list[Check]:
    """TLS files parse and match; other files radbill reads are readable; the PAP key private."""
    out: list[Check] = []
    w = config.web
    if w.tls_certificate:
        out.append(check_tls_pair("web TLS", w.tls_certificate, w.tls_key))
    for key, value in (("notify.email.ca_file", config.notify.email.ca_file),
                       ("notify.email.password_file", config.notify.email.password_file),
                       ("gateway.hmac_secret_file", config.gateway.hmac_secret_file),
                       ("selfcare.token_file", config.selfcare.token_file)):
        if value:
            out.append(check_readable(key, value))
    out.append(check_pap_key(config))
    return out


def check_readable(name: str, path: str) -> Check:
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        return Check(name, FAIL, f"{path}: {exc.strerror}",
                     "make it readable by the user radbill runs as, or fix the path")
    return Check(name, OK, f"{path} is readable")


def check_tls_pair(name: str, cert: str, key: str) -> Check:
    for path in (cert, key):
        readable = check_readable(name, path)
        if readable.status != OK:
            return readable
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, ValueError) as exc:
        return Check(name, FAIL, f"{cert} / {key}: {exc}",
                     "give a PEM certificate chain and the private key that belongs to it")
    return Check(name, OK, f"{cert} and its key load")


def check_pap_key(config: Config) -> Check:
    path = Path(config.radius.pap_key_file or Path(config.server.data_dir) / "pap.key")
    if not path.exists():
        parent = path.parent
        if parent.is_dir() and os.access(parent, os.W_OK):
            return Check("PAP key", OK, f"{path} will be made at the first start")
        return Check("PAP key", FAIL, f"{path} does not exist and {parent} is not writable",
                     "fix radius.pap_key_file or the directory's owner")
    try:
        mode = path.stat().st_mode
        size = len(path.read_bytes())
    except OSError as exc:
        return Check("PAP key", FAIL, f"{path}: {exc.strerror}",
                     "make it readable by the user radbill runs as (and nobody else)")
    if size < 32:
        return Check("PAP key", FAIL, f"{path} holds {size} octets, not 32",
                     "delete it; radbill makes a new one (logins pay argon2 once more)")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return Check("PAP key", WARN, f"{path} has mode {stat.S_IMODE(mode):o}",
                     f"chmod 600 {path}")
    return Check("PAP key", OK, f"{path} is private")


# -- database ------------------------------------------------------------------------------

def connect(config: Config) -> tuple[Any, Check]:
    from sqlalchemy import text

    from core.db.engine import make_engine

    url = config.database_url
    where = url.split("@")[-1]
    if url.startswith("sqlite:///"):
        file = Path(url.removeprefix("sqlite:///"))
        if not file.is_file():  # connecting would create an empty one
            return None, Check("database", FAIL, f"{file} does not exist",
                               "run 'radbill db upgrade' to create it, or fix database.url "
                               "or server.data_dir")
    try:
        engine = make_engine(url, pool_size=1, connect_timeout=config.database.connect_timeout)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        reason = getattr(exc, "orig", None) or exc
        return None, Check("database", FAIL, f"{where}: {reason}",
                           "start the database, or fix database.url (host, port, user, "
                           "password) and the network between them")
    return engine, Check("database", OK, f"{where} answers")


def check_schema(engine: Any) -> Check:
    from core.db import schema

    try:
        schema.check_current(engine)
    except RadbillError as exc:
        return Check("schema", FAIL, str(exc), "run 'radbill db upgrade'")
    return Check("schema", OK, schema.describe(schema.current_revisions(engine)))


def mariadb_settings(engine: Any) -> dict[str, str]:
    from sqlalchemy import text

    with engine.connect() as conn:
        isolation = conn.execute(text("SELECT @@SESSION.tx_isolation")).scalar_one()
        flush = conn.execute(text("SELECT @@GLOBAL.innodb_flush_log_at_trx_commit")).scalar_one()
    return {"isolation": str(isolation), "innodb_flush_log_at_trx_commit": str(flush)}


def check_database_settings(engine: Any) -> list[Check]:
    if engine.dialect.name != "mysql":
        return [Check("database settings", OK, "SQLite: WAL, synchronous=FULL (set by radbill)")]
    return judge_mariadb(mariadb_settings(engine))


def judge_mariadb(settings: dict[str, str]) -> list[Check]:
    """What radbill's connections get, and whether a commit is durable."""
    out = []
    isolation = settings["isolation"].upper().replace(" ", "-")
    if isolation == "READ-COMMITTED":
        out.append(Check("isolation level", OK, "READ-COMMITTED on radbill's connections"))
    else:
        out.append(Check("isolation level", FAIL, f"radbill's connections run at {isolation}",
                         "radbill sets READ COMMITTED itself; something (a proxy, an init_connect)"
                         " overrides it: remove that"))
    flush = settings["innodb_flush_log_at_trx_commit"]
    if flush == "1":
        out.append(Check("innodb_flush_log_at_trx_commit", OK, "1: every commit is durable"))
    else:
        out.append(Check("innodb_flush_log_at_trx_commit", WARN,
                         f"{flush}: a crash of the database server can lose commits radbill "
                         "already acknowledged to a NAS (accounting) or a payer",
                         "set innodb_flush_log_at_trx_commit = 1 in the MariaDB config"))
    return out


def database_now(engine: Any) -> datetime | None:
    """The database's UTC clock (MariaDB); None for SQLite (same host, same clock)."""
    if engine.dialect.name != "mysql":
        return None
    from sqlalchemy import text

    with engine.connect() as conn:
        value = conn.execute(text("SELECT UTC_TIMESTAMP(6)")).scalar_one()
    return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


def check_clock(db_now: datetime | None, now: Callable[[], datetime] | None = None,
                ntp: Callable[[], str | None] | None = None) -> Check:
    """This host's clock is plausible, agrees with the database's, and NTP keeps it."""
    local = (now or (lambda: datetime.now(UTC)))()
    if local.year < EARLIEST_SANE_YEAR:
        return Check("clock", FAIL, f"this host's clock says {local:%Y-%m-%d %H:%M} UTC",
                     "set the clock and enable NTP (timedatectl set-ntp true)")
    notes = []
    if db_now is not None:
        skew = abs((local - db_now).total_seconds())
        if skew > CLOCK_FAIL_SECONDS:
            return Check("clock", FAIL, f"this host and the database differ by {skew:.0f} s",
                         "run NTP on both: sessions, stale sweeps and leases compare the two")
        if skew > CLOCK_WARN_SECONDS:
            return Check("clock", WARN, f"this host and the database differ by {skew:.1f} s",
                         "run NTP on both hosts")
        notes.append(f"within {skew:.2f} s of the database")
    synced = (ntp or ntp_synchronized)()
    if synced == "no":
        return Check("clock", WARN, "NTP is not synchronised on this host",
                     "timedatectl set-ntp true (or run chrony/ntpd)")
    if synced == "yes":
        notes.append("NTP synchronised")
    return Check("clock", OK, ", ".join(notes) or "plausible")


def ntp_synchronized() -> str | None:
    """'yes'/'no' from systemd's timedatectl; None where it cannot tell."""
    try:
        out = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                             capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = out.stdout.strip()
    return value if value in ("yes", "no") else None


def nas_secrets(engine: Any) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from core.db.models import Nas

    with engine.connect() as conn:
        return [(str(n), str(s)) for n, s in conn.execute(select(Nas.name, Nas.secret))]


def secret_bits(secret: str) -> float:
    """Shannon entropy of the secret's characters times its length: a rough upper bound."""
    if not secret:
        return 0.0
    counts = Counter(secret)
    per_char = -sum(c / len(secret) * math.log2(c / len(secret)) for c in counts.values())
    return per_char * len(secret)


def check_nas_secrets(nases: list[tuple[str, str]]) -> list[Check]:
    """Weak shared secrets: RFC 2865's MD5 hiding is only as strong as the secret."""
    if not nases:
        return [Check("NAS secrets", WARN, "no NAS clients: every packet will be dropped",
                      "radbill nas add NAME --address IP --secret - (reads it from stdin)")]
    out = []
    for name, secret in nases:
        problems = []
        if secret.lower() in KNOWN_SECRETS:
            out.append(Check(f"NAS {name} secret", FAIL, "a well-known example secret",
                             "set a random secret of 20+ characters on the NAS and with "
                             f"'radbill nas set {name} --secret -'"))
            continue
        if len(secret) < MIN_SECRET_LENGTH:
            problems.append(f"{len(secret)} characters (fewer than {MIN_SECRET_LENGTH})")
        bits = secret_bits(secret)
        if bits < MIN_SECRET_BITS:
            problems.append(f"about {bits:.0f} bits of entropy (less than "
                            f"{MIN_SECRET_BITS:.0f})")
        if problems:
            out.append(Check(f"NAS {name} secret", WARN, "; ".join(problems),
                             "use a random secret of 20+ characters (openssl rand -base64 24)"))
    if not out:
        out.append(Check("NAS secrets", OK, f"{len(nases)} NAS clients, no weak secret"))
    return out


# -- ports and dictionaries ------------------------------------------------------------------

def check_ports(config: Config) -> list[Check]:
    wanted: list[tuple[str, int, int, str]] = []  # (address, port, socket type, what)
    for address in config.radius.listen:
        wanted.append((address, config.radius.auth_port, socket.SOCK_DGRAM, "RADIUS auth"))
        wanted.append((address, config.radius.acct_port, socket.SOCK_DGRAM, "RADIUS acct"))
    if config.web.enabled:
        wanted.append((config.web.listen, config.web.port, socket.SOCK_STREAM, "web"))
    if config.metrics.enabled:
        wanted.append((config.metrics.listen, config.metrics.port, socket.SOCK_STREAM,
                       "metrics"))
    return [check_port(*w) for w in wanted]


def check_port(address: str, port: int, kind: int, what: str) -> Check:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    proto = "udp" if kind == socket.SOCK_DGRAM else "tcp"
    name = f"{what} port {address}:{port}/{proto}"
    try:
        with socket.socket(family, kind) as s:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((address, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return Check(name, FAIL, "in use by another process",
                         "stop it (or radbill serve, if that is what holds it; then use "
                         "--skip-ports), or choose another port")
        if exc.errno == errno.EACCES:
            return Check(name, FAIL, "permission denied (a port below 1024)",
                         "run with CAP_NET_BIND_SERVICE (systemd/radbill.service has it)")
        if exc.errno == errno.EADDRNOTAVAIL:
            return Check(name, FAIL, f"{address} is not an address of this host",
                         "fix the listen address")
        return Check(name, FAIL, exc.strerror or str(exc), "fix the listen address or port")
    return Check(name, OK, "free")


def check_dictionaries(path: str | None = None) -> Check:
    from aaa.dictionary import load_dictionary
    from aaa.errors import DictionaryError

    try:
        dictionary = load_dictionary.__wrapped__(path)  # not the cached copy
    except DictionaryError as exc:
        return Check("dictionaries", FAIL, str(exc),
                     "reinstall radbill, or fix the dictionary file named")
    needed = ("Message-Authenticator", "Mikrotik-Rate-Limit", "Acct-Interim-Interval",
              "MS-CHAP2-Response", "Mikrotik-Total-Limit")
    missing = [a for a in needed if a not in dictionary.attributes]
    if missing:
        return Check("dictionaries", FAIL, f"missing attributes: {', '.join(missing)}",
                     "use the dictionaries radbill ships (conf/dictionaries)")
    return Check("dictionaries", OK, f"{len(dictionary.attributes)} attributes")
