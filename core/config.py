"""radbill's configuration: one TOML file, each default declared once beside its type.

Every section is a frozen dataclass. A field's default lives on the field and
nowhere else; its checks live in the field's metadata (``check=``). The loader
walks the dataclasses, so a key unknown to them, a value of the wrong type or a
value a check refuses is reported with its dotted key before anything binds a
port (the way CGRateS's ``configsanity.go`` refuses a bad config whole).
"""

from __future__ import annotations

import ipaddress
import math
import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from core.errors import ConfigError

ENV_CONFIG = "RADBILL_CONFIG"
DEFAULT_CONFIG_PATHS = (Path("/etc/radbill/radbill.toml"),)

Check = Callable[[Any], str | None]


def _port(v: int) -> str | None:
    return None if 0 <= v <= 65535 else "must be a port number 0..65535"


def _positive(v: int | float) -> str | None:
    # TOML allows inf and nan; neither is a usable duration or size.
    if not math.isfinite(v):
        return "must be a finite number"
    return None if v > 0 else "must be greater than 0"


def _non_negative(v: int | float) -> str | None:
    if not math.isfinite(v):
        return "must be a finite number"
    return None if v >= 0 else "must be 0 or greater"


def _one_of(*choices: str) -> Check:
    def check(v: str) -> str | None:
        return None if v in choices else "must be one of " + ", ".join(choices)

    return check


def _ip_addresses(v: list[str]) -> str | None:
    if not v:
        return "must list at least one address"
    for item in v:
        try:
            ipaddress.ip_address(item)
        except ValueError:
            return f"{item!r} is not an IPv4 or IPv6 address"
    return None


def _db_url(v: str) -> str | None:
    if v == "":
        return None
    if not (v.startswith("sqlite") or v.startswith(("mysql+pymysql://", "mysql+mysqldb://"))
            or v.startswith(("mariadb+pymysql://", "mariadb+mysqldb://"))):
        return "must be a sqlite:///, mysql+pymysql:// or mysql+mysqldb:// URL"
    return None


def opt(default: Any, check: Check | None = None, doc: str = "") -> Any:
    """A config field: its default, an optional check, and its meaning."""
    if isinstance(default, list):
        return field(default_factory=lambda d=default: list(d),
                     metadata={"check": check, "doc": doc})
    return field(default=default, metadata={"check": check, "doc": doc})


def _workers(v: int | str) -> str | None:
    if isinstance(v, str):
        return None if v == "auto" else "must be a number of processes (1..64) or \"auto\""
    return None if 1 <= v <= 64 else "must be 1..64 or \"auto\""


def _node_name(v: str) -> str | None:
    if len(v) > 64:
        return "must be at most 64 characters"
    if any(c.isspace() or c in "/#" or not c.isprintable() for c in v):
        return "must not contain spaces, '/', '#' or control characters"
    return None


@dataclass(frozen=True)
class ServerConfig:
    data_dir: str = opt("/var/lib/radbill", doc="where the SQLite file and the spool live")
    node_name: str = opt("", _node_name,
                         doc="this node's name in a cluster; empty means the host name")
    log_level: str = opt("info", _one_of("debug", "info", "warn", "error"))
    workers: int | str = opt(1, _workers,
                             doc="RADIUS worker processes sharing the ports (SO_REUSEPORT); "
                                 "\"auto\" = one per CPU core")

    @property
    def worker_count(self) -> int:
        if self.workers == "auto":
            try:
                return max(1, len(os.sched_getaffinity(0)))
            except (AttributeError, OSError):
                return os.cpu_count() or 1
        return int(self.workers)

    @property
    def node(self) -> str:
        """The node's name: the configured one, else the host name."""
        import socket

        return self.node_name or socket.gethostname()[:64]


@dataclass(frozen=True)
class ClusterConfig:
    lease_seconds: float = opt(15.0, lambda v: _positive(v) or (
        None if v >= 3 else "must be at least 3"),
        doc="how long a node holds a singleton (billing loop, sweeps) without renewing it; "
            "another node takes over within two lease periods of the holder's death")


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = opt("", _db_url, doc="empty means sqlite:///<data_dir>/radbill.sqlite")
    pool_size: int = opt(8, _positive, doc="connections, and DB threads (SQLite uses 1)")
    pool_recycle: int = opt(3600, _positive, doc="seconds before a MariaDB connection is renewed")
    connect_timeout: int = opt(5, _positive)
    read_timeout: int = opt(30, _positive, doc="seconds a MariaDB statement may take before "
                                               "the connection counts as lost (a hung server)")


@dataclass(frozen=True)
class RadiusConfig:
    listen: list[str] = opt(["0.0.0.0"], _ip_addresses,
                            doc="addresses to bind; add '::' for IPv6")
    auth_port: int = opt(1812, _port)
    acct_port: int = opt(1813, _port)
    max_packet_size: int = opt(4096, lambda v: None if 20 <= v <= 65535
                               else "must be 20..65535")
    duplicate_window: float = opt(5.0, _positive,
                                  doc="seconds a reply is kept to answer retransmissions")
    unknown_client_log_interval: float = opt(60.0, _positive)
    credential_cache_ttl: float = opt(300.0, _non_negative,
                                      doc="seconds subscriber credentials are cached; 0 = off")
    credential_poll_interval: float = opt(
        1.0, _non_negative, doc="seconds between polls for subscriber/plan changes; 0 = off")
    receive_buffer: int = opt(4 * 1024 * 1024, _non_negative,
                              doc="SO_RCVBUF of each RADIUS socket in bytes (capped by "
                                  "net.core.rmem_max); 0 keeps the system default")
    max_in_flight: int = opt(2048, _positive,
                             doc="requests being processed at once before new ones are dropped")
    pap_key_file: str = opt("", doc="key of the PAP verifiers (0600, made at first start); "
                                    "empty means <data_dir>/pap.key")
    slow_checks: int = opt(2, _positive, doc="password checks (argon2, legacy hashes) running "
                                             "at once")
    slow_queue: int = opt(64, _non_negative, doc="password checks waiting; beyond, the newest "
                                                 "or least deserving is dropped (logged, counted)")
    max_failures: int = opt(5, _positive, doc="wrong PAP passwords per login, and per NAS port, "
                                              "before slow checks for it are refused")
    failure_window: float = opt(60.0, _positive, doc="seconds over which failures are counted")
    failure_lockout: float = opt(60.0, _positive, doc="seconds a throttled login or port waits")
    on_database_down: str = opt("drop", _one_of("drop", "reject", "cache"),
                                doc="Access-Requests while the database is unreachable: drop "
                                    "(no reply, the NAS fails over), reject, or cache (answer "
                                    "from memory what needs no database write)")


def _keep_days(v: int) -> str | None:
    # accounting.retention.MIN_AGE: a late or replayed record must still find its session.
    return None if v == 0 or v >= 7 else "must be 0 (keep forever) or at least 7"


@dataclass(frozen=True)
class AccountingConfig:
    stale_after_intervals: int = opt(3, _positive,
                                     doc="missed Interim-Updates before a session is stale")
    default_interim_interval: int = opt(300, _positive)
    group_commit_ms: float = opt(5.0, _non_negative)
    spool_file: str = opt("", doc="empty means <data_dir>/accounting.spool")
    stale_call_minutes: int = opt(
        240, _positive, doc="an open call not heard of for this long is closed as stale "
                            "(voice gateways seldom send Interim-Updates: set it above the "
                            "longest call)")
    keep_days: int = opt(0, _keep_days,
                         doc="closed sessions older than this many days are archived or "
                             "deleted (see retention); 0 = keep forever")
    keep_call_days: int = opt(0, _keep_days,
                              doc="the same for calls; 0 = keep forever")
    retention: str = opt("archive", _one_of("archive", "delete"),
                         doc="archive: move old rows into acct_session_archive_YYYYMM / "
                             "acct_call_archive_YYYYMM; delete: drop them")
    retention_batch: int = opt(500, lambda v: None if 1 <= v <= 10000 else "must be 1..10000",
                               doc="rows per retention transaction (each holds its row "
                                   "locks only for that batch)")
    retention_interval: int = opt(3600, _positive,
                                  doc="seconds between the billing leader's retention runs")


@dataclass(frozen=True)
class BillingConfig:
    loop_interval: int = opt(30, _positive)
    pending_poll_interval: float = opt(
        1.0, _non_negative,
        doc="seconds between the billing leader's checks for usage stored by other "
            "workers or nodes; 0 = only the loop interval")
    currency: str = opt("USD")
    reserve_seconds: int = opt(300, _positive)
    reserve_octets: int = opt(50_000_000, _positive)
    keep_usage_days: int = opt(0, _keep_days,
                               doc="rated usage deltas (usage_delta) older than this many days "
                                   "are deleted by the retention run (their money is in the "
                                   "ledger); 0 = keep forever")
    traffic_interim_interval: int = opt(
        60, _positive, doc="Acct-Interim-Interval (s) at most, for sessions priced by traffic "
                           "on NASes without an octet-quota attribute (docs/billing.md)")


@dataclass(frozen=True)
class CardsConfig:
    pin_digits: int = opt(12, lambda v: None if 8 <= v <= 32 else "must be 8..32",
                          doc="digits of a new card's secret PIN")
    max_failures: int = opt(5, _positive,
                            doc="wrong PINs per subscriber or address before a lockout")
    window_minutes: int = opt(15, _positive, doc="minutes over which wrong PINs are counted")
    lockout_minutes: int = opt(15, _positive, doc="minutes a locked-out party must wait")
    voucher_login: bool = opt(True, doc="an unused card with a plan may log in over RADIUS "
                                        "(PAP, serial as login, PIN as password)")


@dataclass(frozen=True)
class PaymentImportConfig:
    columns: list[str] = opt(["login", "amount", "reference"],
                             doc="what each CSV column holds: login, amount, reference, "
                                 "or - to skip one")
    delimiter: str = opt(",", lambda v: None if len(v) == 1 else "must be one character")
    header: bool = opt(False, doc="the first line names the columns and is skipped")
    decimal_comma: bool = opt(False, doc="amounts are written 1.234,50")


@dataclass(frozen=True)
class GatewayConfig:
    enabled: list[str] = opt([], doc="payment gateways (entry points in radbill.gateways) "
                                     "whose webhooks are served at /hooks/gateway/NAME")
    hmac_secret: str = opt("", doc="the generic 'hmac' gateway's shared secret")
    hmac_secret_file: str = opt("", doc="...or a file holding it (wins over hmac_secret)")
    hmac_tolerance: int = opt(300, _positive,
                              doc="seconds a signed webhook's timestamp may be off")


def _time_zone(v: str) -> str | None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        return "must be an IANA time zone such as UTC or Europe/Moscow"
    return None


def _decimal_percent(v: str) -> str | None:
    from decimal import Decimal, InvalidOperation

    try:
        d = Decimal(v)
    except InvalidOperation:
        return "must be a percentage like \"20\" or \"7.7\""
    return None if d.is_finite() and 0 <= d < 100 else "must be 0 up to (not including) 100"


@dataclass(frozen=True)
class StatementsConfig:
    enabled: bool = opt(True, doc="the billing loop issues monthly statements")
    time_zone: str = opt("UTC", _time_zone, doc="months begin and end at midnight here")
    delay_minutes: int = opt(60, _non_negative,
                             doc="wait this long after a month ends before issuing (lets "
                                 "late usage of the month be rated first)")
    batch: int = opt(2000, _positive, doc="accounts per statement transaction")
    render_per_pass: int = opt(200, _non_negative,
                               doc="documents rendered per billing pass; 0 = only on demand")


@dataclass(frozen=True)
class InvoicesConfig:
    issuer: str = opt("default", doc="numbering series: numbers are sequential per issuer")
    issuer_name: str = opt("", doc="printed on invoices")
    issuer_address: str = opt("")
    issuer_tax_id: str = opt("")
    issuer_email: str = opt("")
    number_format: str = opt("INV-{year}-{number:06d}",
                             doc="Python format; {issuer} {year} {month} {number}")
    vat_rate: str = opt("0", _decimal_percent,
                        doc="VAT percent included in prices; \"0\" = no tax lines")
    due_days: int = opt(14, _non_negative, doc="days from issue to due date")


@dataclass(frozen=True)
class DocumentsConfig:
    templates: str = opt("", doc="directory of Jinja2 templates (statement.html, "
                                 "invoice.html); empty = the built-in ones")
    store: str = opt("", doc="where issued documents are written; empty = <data_dir>/documents")
    pdf: bool = opt(True, doc="also render PDF (WeasyPrint) beside the HTML")
    language: str = opt("en", doc="language passed to the templates")


@dataclass(frozen=True)
class ExportConfig:
    delimiter: str = opt(",", lambda v: None if len(v) == 1 else "must be one character",
                         doc="CSV separator of 'radbill export'")
    payments: list[str] = opt([], doc="CSV columns of the payments export; [] = all")
    charges: list[str] = opt([], doc="...of the charges export")
    invoices: list[str] = opt([], doc="...of the invoices export")
    balances: list[str] = opt([], doc="...of the balances export")


@dataclass(frozen=True)
class NotifyEmailConfig:
    host: str = opt("", doc="SMTP server; empty = no e-mail (rows wait in the outbox)")
    port: int = opt(25, _port)
    starttls: bool = opt(True, doc="require STARTTLS before authenticating and sending")
    username: str = opt("", doc="SMTP AUTH user; empty = no authentication")
    password: str = opt("")
    password_file: str = opt("", doc="file holding the SMTP password (wins over password)")
    ca_file: str = opt("", doc="PEM CA to verify the server with; empty = the system's CAs")
    from_address: str = opt("radbill@localhost")


@dataclass(frozen=True)
class NotifyConfig:
    enabled: bool = opt(True, doc="run the outbox sender in this process")
    poll_interval: float = opt(2.0, _positive, doc="seconds between outbox scans")
    batch: int = opt(50, _positive, doc="notifications claimed per scan")
    max_attempts: int = opt(8, _positive, doc="attempts before a notification is dead")
    backoff_base: float = opt(30.0, _positive,
                              doc="seconds before the first retry; doubles each time")
    backoff_max: float = opt(3600.0, _positive, doc="longest wait between attempts")
    lease: float = opt(300.0, _positive,
                       doc="seconds a claimed notification is reserved for its sender")
    webhook_timeout: float = opt(10.0, _positive)
    admin_emails: list[str] = opt([], doc="where admin events (loop errors, ...) are mailed")
    email: NotifyEmailConfig = field(default_factory=NotifyEmailConfig)


def _attribute_pairs(v: list[str]) -> str | None:
    for item in v:
        name, eq, value = item.partition("=")
        if not eq or not name.strip() or not value.strip():
            return f"{item!r} is not Attribute=value"
    return None


@dataclass(frozen=True)
class CoaConfig:
    timeout: float = opt(3.0, _positive)
    retries: int = opt(3, _non_negative)
    captive_attributes: list[str] = opt(
        [], _attribute_pairs,
        doc="Attribute=value pairs of the CoA-Request that moves a session cut off for no "
            "money to a captive 'pay first' profile instead of disconnecting it; empty = "
            "disconnect")
    restore_attributes: list[str] = opt(
        [], _attribute_pairs,
        doc="added to the CoA-Request (with the plan's rate limit) that puts a captive "
            "session back once a payment covers the account")


@dataclass(frozen=True)
class PoolsConfig:
    offer_lease_seconds: int = opt(60, _positive,
                                   doc="how long an address offered in an Accept waits for Start")
    lease_seconds: int = opt(3600, _positive)
    warn_utilization: int = opt(90, lambda v: None if 1 <= v <= 100 else "must be 1..100")
    expiry_interval: float = opt(10.0, _positive,
                                 doc="seconds between sweeps returning lapsed offers and leases")
    routes_ttl: float = opt(10.0, _non_negative,
                            doc="seconds a running server caches which pools a plan uses")


def _networks(v: list[str]) -> str | None:
    for item in v:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            return f"{item!r} is not an IP address or network"
    return None


@dataclass(frozen=True)
class WebConfig:
    enabled: bool = opt(False, doc="serve the HTTP API (and the pages) in 'radbill serve'")
    listen: str = opt("127.0.0.1", lambda v: _ip_addresses([v]),
                      doc="address of the web side; a non-loopback one needs TLS or "
                          "behind_proxy")
    port: int = opt(8080, _port)
    tls_certificate: str = opt("", doc="PEM certificate (chain) file: serve HTTPS directly")
    tls_key: str = opt("", doc="PEM private key file of tls_certificate")
    behind_proxy: bool = opt(False, doc="a TLS proxy is in front: trust its X-Forwarded-For/"
                                        "-Proto (only from trusted_proxies)")
    trusted_proxies: list[str] = opt(["127.0.0.1", "::1"], _networks,
                                     doc="addresses/networks whose X-Forwarded-* are believed")
    session_idle: int = opt(1800, _positive,
                            doc="seconds without a request before a login session ends")
    session_lifetime: int = opt(43200, _positive,
                                doc="seconds after login when a session ends whatever")
    login_failures: int = opt(5, _positive,
                              doc="failed logins per minute from one address or for one "
                                  "login before further attempts are refused for a minute")
    token_cache: float = opt(2.0, _non_negative,
                             doc="seconds a checked token or session is trusted before it is "
                                 "looked up again (a revocation takes at most this long)")
    max_page: int = opt(1000, _positive, doc="largest ?limit= a list request may ask for")


@dataclass(frozen=True)
class PagesConfig:
    time_zone: str = opt("UTC", _time_zone,
                         doc="time zone the admin and self-care pages show times in")
    default_language: str = opt("en", _one_of("en", "ru"),
                                doc="page language until a visitor picks one (en, ru)")
    page_size: int = opt(50, lambda v: None if 1 <= v <= 500 else "must be 1..500",
                         doc="rows per page in lists")


@dataclass(frozen=True)
class SelfcareConfig:
    listen: str = opt("127.0.0.1", lambda v: _ip_addresses([v]),
                      doc="address of a separate 'radbill selfcare' process")
    port: int = opt(8081, _port)
    api_url: str = opt("", doc="radbill's API, e.g. http://10.0.0.5:8080 (or --api)")
    token_file: str = opt("", doc="file holding a selfcare-frontend token (or --token-file)")
    behind_proxy: bool = opt(False, doc="trust X-Forwarded-Proto from the TLS proxy in front")


@dataclass(frozen=True)
class LoggingConfig:
    scheduler: str = opt("warn", _one_of("debug", "info", "warn", "error"),
                         doc="level of APScheduler's own lines (its per-run INFO lines "
                             "every billing tick appear only with \"info\")")
    reject_lines_per_minute: int = opt(
        60, _non_negative, doc="per-reason Access-Reject and drop lines logged per minute "
                               "before the rest are only counted (0 = no limit)")


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = opt(False)
    listen: str = opt("127.0.0.1", lambda v: _ip_addresses([v]))
    port: int = opt(9812, _port)


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    radius: RadiusConfig = field(default_factory=RadiusConfig)
    accounting: AccountingConfig = field(default_factory=AccountingConfig)
    billing: BillingConfig = field(default_factory=BillingConfig)
    coa: CoaConfig = field(default_factory=CoaConfig)
    cards: CardsConfig = field(default_factory=CardsConfig)
    payment_import: PaymentImportConfig = field(default_factory=PaymentImportConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    statements: StatementsConfig = field(default_factory=StatementsConfig)
    invoices: InvoicesConfig = field(default_factory=InvoicesConfig)
    documents: DocumentsConfig = field(default_factory=DocumentsConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    pools: PoolsConfig = field(default_factory=PoolsConfig)
    web: WebConfig = field(default_factory=WebConfig)
    pages: PagesConfig = field(default_factory=PagesConfig)
    selfcare: SelfcareConfig = field(default_factory=SelfcareConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    source: str = field(default="(defaults)", compare=False)

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{Path(self.server.data_dir) / 'radbill.sqlite'}"


def _type_ok(annotation: Any, value: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation)
        return isinstance(value, list) and all(_type_ok(item, v) for v in value)
    if origin in (types.UnionType, typing.Union):
        return any(_type_ok(a, value) for a in typing.get_args(annotation))
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _type_name(annotation: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    if typing.get_origin(annotation) is list:
        return "a list of " + _type_name(typing.get_args(annotation)[0]).split(" ", 1)[1] + "s"
    return names.get(annotation, str(annotation))


def _build(cls: type, data: Mapping[str, Any], prefix: str, errors: list[str]) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if f.name != "source"}
    values: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in known:
            errors.append(f"{dotted}: unknown key")
            continue
        annotation = hints[key]
        if is_dataclass(annotation):
            if not isinstance(value, dict):
                errors.append(f"{dotted}: must be a table [{dotted}]")
                continue
            values[key] = _build(annotation, value, dotted + ".", errors)  # type: ignore[arg-type]
            continue
        if not _type_ok(annotation, value):
            errors.append(f"{dotted}: expected {_type_name(annotation)}, got {value!r}")
            continue
        check = known[key].metadata.get("check")
        problem = check(value) if check else None
        if problem:
            errors.append(f"{dotted} = {value!r}: {problem}")
            continue
        values[key] = float(value) if annotation is float else value
    return cls(**values)


def _cross_check(cfg: Config, errors: list[str]) -> None:
    r = cfg.radius
    if cfg.server.worker_count > 1:
        for key in ("auth_port", "acct_port"):
            if getattr(r, key) == 0:
                errors.append(f"radius.{key} = 0: several workers need a fixed port "
                              f"(server.workers = {cfg.server.workers!r})")
    if r.auth_port and r.auth_port == r.acct_port:
        errors.append(f"radius.acct_port = {r.acct_port}: must differ from radius.auth_port")
    w = cfg.web
    if bool(w.tls_certificate) != bool(w.tls_key):
        errors.append("web.tls_key: tls_certificate and tls_key go together")
    if w.enabled:
        errors.extend(web_errors(w))
    if cfg.web.enabled and cfg.metrics.enabled and (cfg.web.listen, cfg.web.port) == (
            cfg.metrics.listen, cfg.metrics.port) and cfg.web.port:
        errors.append(f"metrics.port = {cfg.metrics.port}: must differ from web.port")


def web_errors(w: WebConfig) -> list[str]:
    """What keeps the web side from listening: missing TLS files, plain HTTP exposed."""
    errors = []
    for key in ("tls_certificate", "tls_key"):
        path = getattr(w, key)
        if path and not Path(path).is_file():
            errors.append(f"web.{key} = {path!r}: no such file")
    if (not w.tls_certificate and not w.behind_proxy
            and not ipaddress.ip_address(w.listen).is_loopback):
        errors.append(f"web.listen = {w.listen!r}: refusing plain HTTP on a non-loopback "
                      "address; set web.tls_certificate/tls_key, or web.behind_proxy = true "
                      "behind a TLS proxy")
    return errors


def check_web(cfg: Config) -> None:
    """``radbill web`` serves whatever ``[web] enabled`` says: check the web keys for it."""
    errors = web_errors(cfg.web)
    if errors:
        raise ConfigError(f"{cfg.source}: " + "; ".join(errors))


def _check_number_format(cfg: Config, errors: list[str]) -> None:
    try:
        cfg.invoices.number_format.format(issuer="x", year=2024, month=1, number=1)
    except (KeyError, ValueError, IndexError) as exc:
        errors.append(f"invoices.number_format = {cfg.invoices.number_format!r}: {exc}")


def parse_config(data: Mapping[str, Any], source: str = "(inline)") -> Config:
    """Validate a whole TOML document; raise one ConfigError listing every problem."""
    errors: list[str] = []
    cfg: Config = _build(Config, data, "", errors)
    if not errors:
        _cross_check(cfg, errors)
        _check_number_format(cfg, errors)
    if errors:
        raise ConfigError(f"{source}: " + "; ".join(errors))
    return replace(cfg, source=source)


def find_config_path(explicit: str | None) -> Path | None:
    """--config wins, then $RADBILL_CONFIG, then /etc/radbill/radbill.toml if it exists."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env)
    for candidate in DEFAULT_CONFIG_PATHS:
        if candidate.exists():
            return candidate
    return None


def load_config(explicit: str | None = None) -> Config:
    path = find_config_path(explicit)
    if path is None:
        return Config()
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 (octet 0x{exc.object[exc.start]:02x} at "
                          f"offset {exc.start}); TOML files must be UTF-8") from None
    return parse_config(data, str(path))


def require_data_dir(cfg: Config) -> None:
    """Refuse a ``server.data_dir`` that is missing instead of creating it empty.

    A missing directory is nearly always a typo or an unmounted volume; making
    it silently would start radbill on a fresh, empty SQLite database and
    spool, as if every subscriber had been deleted.
    """
    path = Path(cfg.server.data_dir)
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise ConfigError(f"{cfg.source}: server.data_dir = {str(path)!r}: {what}; create it "
                          "(owned by the user radbill runs as) or fix the path")


def describe_defaults() -> dict[str, dict[str, tuple[Any, str]]]:
    """Every section's keys with their defaults and meaning, for docs and tests."""
    out: dict[str, dict[str, tuple[Any, str]]] = {}
    for section in fields(Config):
        if section.name == "source":
            continue
        cls = typing.get_type_hints(Config)[section.name]
        entries: dict[str, tuple[Any, str]] = {}
        for f in fields(cls):
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
            entries[f.name] = (default, f.metadata.get("doc", ""))
        out[section.name] = entries
    return out
