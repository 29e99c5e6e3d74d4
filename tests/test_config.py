"""core.config: defaults, a full file, and errors that name the dotted key and the bad value."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from core import config as config_module
from core.config import (
    Config,
    RadiusConfig,
    describe_defaults,
    find_config_path,
    load_config,
    parse_config,
)
from core.errors import ConfigError, RadbillError

EXAMPLE = Path(__file__).resolve().parent.parent / "conf" / "radbill.example.toml"

FULL_TOML = """
[server]
data_dir = "/srv/radbill"
node_name = "node-a"
log_level = "debug"
workers = 2

[cluster]
lease_seconds = 9.0

[database]
url = "mysql+pymysql://radbill:pw@127.0.0.1:3306/radbill"
pool_size = 16
pool_recycle = 1800
connect_timeout = 3
read_timeout = 20

[radius]
listen = ["127.0.0.1", "::1"]
auth_port = 11812
acct_port = 11813
max_packet_size = 8192
duplicate_window = 7
unknown_client_log_interval = 30.5
credential_cache_ttl = 0
credential_poll_interval = 0.5
receive_buffer = 0
max_in_flight = 100
pap_key_file = "/etc/radbill/pap.key"
slow_checks = 3
slow_queue = 10
max_failures = 7
failure_window = 30.0
failure_lockout = 120.0
on_database_down = "cache"

[accounting]
stale_after_intervals = 4
default_interim_interval = 600
group_commit_ms = 0
spool_file = "/srv/radbill/acct.spool"
stale_call_minutes = 90
keep_days = 400
keep_call_days = 800
retention = "delete"
retention_batch = 250
retention_interval = 600

[billing]
loop_interval = 10
pending_poll_interval = 0.5
currency = "EUR"
reserve_seconds = 120
reserve_octets = 1000000
keep_usage_days = 60
traffic_interim_interval = 30

[cards]
pin_digits = 10
max_failures = 3
window_minutes = 5
lockout_minutes = 30
voucher_login = false

[payment_import]
columns = ["reference", "-", "login", "amount"]
delimiter = ";"
header = true
decimal_comma = true

[gateway]
enabled = ["hmac"]
hmac_secret = "s"
hmac_secret_file = "/etc/radbill/gw"
hmac_tolerance = 60

[statements]
enabled = false
time_zone = "Europe/Berlin"
delay_minutes = 5
batch = 100
render_per_pass = 0

[invoices]
issuer = "north"
issuer_name = "Net Co"
issuer_address = "1 Main St"
issuer_tax_id = "DE123"
issuer_email = "billing@example.net"
number_format = "N-{number}"
vat_rate = "19"
due_days = 30

[documents]
templates = "/etc/radbill/templates"
store = "/srv/radbill/documents"
pdf = false
language = "de"

[export]
delimiter = ";"
payments = ["login", "amount"]
charges = ["login", "amount"]
invoices = ["number", "total"]
balances = ["login", "balance"]

[notify]
enabled = false
poll_interval = 1.0
batch = 10
max_attempts = 3
backoff_base = 5.0
backoff_max = 60.0
lease = 30.0
webhook_timeout = 2.0
admin_emails = ["noc@example.net"]

[notify.email]
host = "smtp.example.net"
port = 587
starttls = true
username = "radbill"
password = "x"
password_file = "/etc/radbill/smtp"
ca_file = "/etc/ssl/ca.pem"
from_address = "billing@example.net"

[coa]
timeout = 1.5
retries = 0
captive_attributes = ["Mikrotik-Address-List=unpaid"]
restore_attributes = ["Mikrotik-Address-List=paid"]

[pools]
offer_lease_seconds = 30
lease_seconds = 7200
warn_utilization = 80
expiry_interval = 5.0
routes_ttl = 0

[web]
enabled = true
listen = "::1"
port = 8443
tls_certificate = ""
tls_key = ""
behind_proxy = true
trusted_proxies = ["10.0.0.0/8"]
session_idle = 600
session_lifetime = 3600
login_failures = 3
token_cache = 0
max_page = 200

[pages]
time_zone = "Europe/Moscow"
default_language = "ru"
page_size = 25

[selfcare]
listen = "192.0.2.1"
port = 8443
api_url = "http://10.0.0.5:8080"
token_file = "/etc/radbill/selfcare.token"
behind_proxy = true

[metrics]
enabled = true
listen = "127.0.0.1"
port = 9100

[logging]
scheduler = "info"
reject_lines_per_minute = 10
"""


def parse(text: str) -> Config:
    return parse_config(tomllib.loads(text), "test.toml")


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as exc:
        parse(text)
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith("test.toml: ")
    return message


@pytest.fixture
def no_default_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No $RADBILL_CONFIG and no /etc/radbill/radbill.toml, whatever the machine has."""
    monkeypatch.delenv(config_module.ENV_CONFIG, raising=False)
    monkeypatch.setattr(config_module, "DEFAULT_CONFIG_PATHS", (tmp_path / "absent.toml",))


# -- valid configurations -------------------------------------------------------------------


def test_defaults_load_without_a_file(no_default_config: None) -> None:
    """With no file anywhere, load_config returns the declared defaults."""
    cfg = load_config()
    assert cfg == Config()
    assert cfg.radius.auth_port == 1812 and cfg.radius.acct_port == 1813
    assert cfg.radius.listen == ["0.0.0.0"]
    assert cfg.database_url == "sqlite:////var/lib/radbill/radbill.sqlite"


def test_empty_document_is_the_defaults() -> None:
    """An empty TOML document gives the defaults, with the source recorded."""
    cfg = parse("")
    assert cfg == Config() and cfg.source == "test.toml"


def test_full_config_parses_every_value() -> None:
    """A file setting every key of every section yields exactly those values."""
    cfg = parse(FULL_TOML)
    assert cfg.server.data_dir == "/srv/radbill" and cfg.server.log_level == "debug"
    assert cfg.database.pool_size == 16
    assert cfg.database_url == "mysql+pymysql://radbill:pw@127.0.0.1:3306/radbill"
    assert cfg.radius.listen == ["127.0.0.1", "::1"]
    assert (cfg.radius.auth_port, cfg.radius.acct_port) == (11812, 11813)
    assert cfg.radius.duplicate_window == 7.0 and isinstance(cfg.radius.duplicate_window, float)
    assert cfg.radius.credential_cache_ttl == 0.0 and cfg.radius.max_in_flight == 100
    assert (cfg.radius.pap_key_file, cfg.radius.slow_checks, cfg.radius.slow_queue) == (
        "/etc/radbill/pap.key", 3, 10)
    assert (cfg.radius.max_failures, cfg.radius.failure_window, cfg.radius.failure_lockout,
            cfg.radius.on_database_down) == (7, 30.0, 120.0, "cache")
    assert cfg.database.read_timeout == 20
    assert cfg.accounting.spool_file == "/srv/radbill/acct.spool"
    assert (cfg.accounting.keep_days, cfg.accounting.keep_call_days, cfg.accounting.retention,
            cfg.accounting.retention_batch, cfg.accounting.retention_interval,
            cfg.accounting.stale_call_minutes, cfg.billing.keep_usage_days) == (
        400, 800, "delete", 250, 600, 90, 60)
    assert cfg.billing.currency == "EUR" and cfg.coa.retries == 0 and cfg.coa.timeout == 1.5
    assert (cfg.coa.captive_attributes, cfg.coa.restore_attributes) == (
        ["Mikrotik-Address-List=unpaid"], ["Mikrotik-Address-List=paid"])
    assert (cfg.server.worker_count, cfg.cluster.lease_seconds,
            cfg.billing.pending_poll_interval) == (2, 9.0, 0.5)
    assert cfg.pools.warn_utilization == 80
    assert (cfg.invoices.vat_rate, cfg.statements.time_zone, cfg.export.delimiter) == (
        "19", "Europe/Berlin", ";")
    assert (cfg.cards.pin_digits, cfg.cards.max_failures, cfg.cards.voucher_login) == (
        10, 3, False)
    assert (cfg.web.enabled, cfg.web.listen, cfg.web.port) == (True, "::1", 8443)
    assert cfg.web.behind_proxy and cfg.web.trusted_proxies == ["10.0.0.0/8"]
    assert (cfg.web.session_idle, cfg.web.login_failures, cfg.web.max_page) == (600, 3, 200)
    assert (cfg.metrics.enabled, cfg.metrics.port) == (True, 9100)
    assert (cfg.pages.time_zone, cfg.pages.default_language, cfg.pages.page_size) == (
        "Europe/Moscow", "ru", 25)
    assert (cfg.selfcare.api_url, cfg.selfcare.behind_proxy) == ("http://10.0.0.5:8080", True)
    set_keys = {(s, k) for s, table in tomllib.loads(FULL_TOML).items() for k in table}
    declared = {(s, k) for s, keys in describe_defaults().items() for k in keys}
    assert set_keys == declared  # FULL_TOML really is full


def test_load_config_reads_file_and_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--config wins over $RADBILL_CONFIG, which wins over the default path."""
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("[radius]\nauth_port = 2000\nacct_port = 2001\n")
    from_env = tmp_path / "env.toml"
    from_env.write_text("[radius]\nauth_port = 3000\nacct_port = 3001\n")
    monkeypatch.setenv(config_module.ENV_CONFIG, str(from_env))
    assert load_config(str(explicit)).radius.auth_port == 2000
    cfg = load_config()
    assert cfg.radius.auth_port == 3000 and cfg.source == str(from_env)
    assert find_config_path(None) == from_env


def test_ports_zero_are_allowed_and_may_be_equal() -> None:
    """Port 0 (pick a free port, used by tests) is valid for both RADIUS ports."""
    cfg = parse("[radius]\nauth_port = 0\nacct_port = 0\n")
    assert (cfg.radius.auth_port, cfg.radius.acct_port) == (0, 0)


def test_integer_accepted_for_float_but_not_bool_for_int() -> None:
    """An integer is a fine number for a float key; true is not an integer."""
    assert parse("[coa]\ntimeout = 2\n").coa.timeout == 2.0
    message = error_of("[coa]\nretries = true\n")
    assert "coa.retries" in message and "True" in message


# -- errors ---------------------------------------------------------------------------------


def test_unknown_key_is_named() -> None:
    """An unknown key inside a section is reported with its dotted name."""
    message = error_of("[radius]\nauth_prot = 1812\n")
    assert "radius.auth_prot: unknown key" in message


def test_unknown_section_is_named() -> None:
    """An unknown section is reported by name."""
    assert "radious: unknown key" in error_of("[radious]\nauth_port = 1\n")


def test_section_that_is_not_a_table() -> None:
    """A section given a scalar is refused, naming it."""
    assert "radius: must be a table" in error_of('radius = "yes"\n')


@pytest.mark.parametrize(("toml", "key", "value"), [
    ('[radius]\nauth_port = "1812"\n', "radius.auth_port", "'1812'"),
    ("[radius]\nlisten = \"0.0.0.0\"\n", "radius.listen", "'0.0.0.0'"),
    ("[radius]\nlisten = [1, 2]\n", "radius.listen", "[1, 2]"),
    ("[web]\nenabled = 1\n", "web.enabled", "1"),
    ("[server]\nnode_name = 5\n", "server.node_name", "5"),
    ("[coa]\ntimeout = \"3s\"\n", "coa.timeout", "'3s'"),
])
def test_wrong_type_names_key_and_value(toml: str, key: str, value: str) -> None:
    """A value of the wrong type is reported with the dotted key, the type and the value."""
    message = error_of(toml)
    assert f"{key}: expected" in message and value in message


@pytest.mark.parametrize(("toml", "key", "value"), [
    ("[radius]\nauth_port = 70000\n", "radius.auth_port", "70000"),
    ("[radius]\nacct_port = -1\n", "radius.acct_port", "-1"),
    ("[web]\nport = 65536\n", "web.port", "65536"),
])
def test_bad_port_names_key_and_value(toml: str, key: str, value: str) -> None:
    """A port outside 0..65535 is refused with key and value."""
    message = error_of(toml)
    assert f"{key} = {value}" in message and "port number" in message


@pytest.mark.parametrize("address", ["not-an-ip", "256.1.1.1", "10.0.0.0/8", "localhost", ""])
def test_bad_ip_in_radius_listen_names_key_and_value(address: str) -> None:
    """A listen entry that is not an IP address is refused, naming the key and the entry."""
    message = error_of(f'[radius]\nlisten = ["127.0.0.1", "{address}"]\n')
    assert "radius.listen" in message and f"{address!r} is not an IPv4 or IPv6 address" in message


def test_same_auth_and_acct_port_is_refused() -> None:
    """auth_port == acct_port cannot both be bound: the cross-check names both keys."""
    message = error_of("[radius]\nauth_port = 1812\nacct_port = 1812\n")
    assert "radius.acct_port = 1812" in message and "radius.auth_port" in message


@pytest.mark.parametrize(("toml", "key"), [
    ("[radius]\nduplicate_window = 0\n", "radius.duplicate_window"),
    ("[radius]\nmax_in_flight = 0\n", "radius.max_in_flight"),
    ("[radius]\ncredential_cache_ttl = -1\n", "radius.credential_cache_ttl"),
    ("[radius]\nmax_packet_size = 19\n", "radius.max_packet_size"),
    ("[server]\nlog_level = \"verbose\"\n", "server.log_level"),
    ("[pools]\nwarn_utilization = 101\n", "pools.warn_utilization"),
    ("[database]\nurl = \"postgres://x\"\n", "database.url"),
])
def test_checks_name_key_and_value(toml: str, key: str) -> None:
    """Each field check reports the dotted key and the refused value."""
    value = toml.split("=", 1)[1].strip()
    message = error_of(toml)
    assert f"{key} = " in message
    assert value.strip('"') in message


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
@pytest.mark.parametrize("key", ["duplicate_window", "unknown_client_log_interval",
                                 "credential_cache_ttl"])
def test_non_finite_numbers_are_refused(key: str, value: str) -> None:
    """inf and nan are valid TOML floats but not valid durations."""
    message = error_of(f"[radius]\n{key} = {value}\n")
    assert f"radius.{key} = " in message


def test_multiple_errors_are_reported_together() -> None:
    """Every problem in the file is listed in one error, not just the first."""
    message = error_of('[radius]\nauth_port = 70000\nlisten = ["x"]\nbogus = 1\n'
                       '[web]\nport = "80"\n[nonsense]\n')
    for part in ("radius.auth_port = 70000", "radius.listen", "'x'", "radius.bogus",
                 "web.port", "'80'", "nonsense"):
        assert part in message, part
    assert message.count(";") >= 4


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    """A --config path that does not exist gives a one-line error naming it."""
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as exc:
        load_config(str(path))
    assert str(exc.value) == f"{path}: config file not found"


def test_invalid_toml_is_one_line(tmp_path: Path) -> None:
    """A file that is not TOML gives a one-line error with the file name and position."""
    path = tmp_path / "bad.toml"
    path.write_text("[radius\nauth_port = = 1\n")
    with pytest.raises(ConfigError) as exc:
        load_config(str(path))
    message = str(exc.value)
    assert message.startswith(f"{path}: not valid TOML") and "line 1" in message
    assert "\n" not in message


def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    """A path that cannot be read (a directory) gives a one-line error."""
    with pytest.raises(ConfigError) as exc:
        load_config(str(tmp_path))
    assert str(exc.value).startswith(f"{tmp_path}: cannot read config file")
    assert "\n" not in str(exc.value)


def test_config_error_is_a_radbill_error() -> None:
    """ConfigError derives from RadbillError so the CLI prints it as one line."""
    assert issubclass(ConfigError, RadbillError)


def test_invalid_value_never_reaches_the_dataclass() -> None:
    """A refused config raises; nothing half-validated is returned."""
    with pytest.raises(ConfigError):
        parse_config({"radius": {"auth_port": 99999}})
    assert RadiusConfig().auth_port == 1812


# -- describe_defaults and the example file ---------------------------------------------------


def test_describe_defaults_matches_dataclasses() -> None:
    """describe_defaults lists every section and key with the dataclass default."""
    described = describe_defaults()
    cfg = Config()
    for section, keys in described.items():
        for key, (default, _doc) in keys.items():
            assert getattr(getattr(cfg, section), key) == default, f"{section}.{key}"


def _example() -> dict[str, Any]:
    if not EXAMPLE.exists():
        pytest.skip(f"{EXAMPLE} does not exist yet (the lead is writing it)")
    with EXAMPLE.open("rb") as fh:
        return tomllib.load(fh)


def test_example_file_lists_every_key() -> None:
    """Every key radbill knows appears in conf/radbill.example.toml, so operators can find it."""
    example = _example()
    missing = [f"{section}.{key}" for section, keys in describe_defaults().items()
               for key in keys if key not in example.get(section, {})]
    assert missing == []


def test_example_file_is_valid_and_shows_defaults() -> None:
    """The example parses cleanly and, as its header says, shows the default values."""
    example = _example()
    assert parse_config(example, str(EXAMPLE)) == Config()


@pytest.mark.parametrize(("toml", "message"), [
    ('[pages]\ntime_zone = "Mars/Olympus"', "pages.time_zone = 'Mars/Olympus': must be an IANA"),
    ('[pages]\ndefault_language = "de"', "pages.default_language = 'de': must be one of en, ru"),
    ('[pages]\npage_size = 0', "pages.page_size = 0: must be 1..500"),
])
def test_pages_keys_checked(toml: str, message: str) -> None:
    """A bad page time zone, language or page size is refused naming its key."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(tomllib.loads(toml))


def test_workers_values_and_port_zero() -> None:
    """server.workers takes 1..64 or "auto"; several workers refuse port 0, naming the key."""
    assert parse_config({"server": {"workers": "auto"}}).server.worker_count >= 1
    assert parse_config({}).server.worker_count == 1
    for bad in (0, 65, "many", 2.5, True):
        with pytest.raises(ConfigError, match=r"server\.workers"):
            parse_config({"server": {"workers": bad}})
    with pytest.raises(ConfigError, match=r"radius\.acct_port = 0: several workers"):
        parse_config({"server": {"workers": 2}, "radius": {"auth_port": 1812, "acct_port": 0}})
    with pytest.raises(ConfigError, match=r"cluster\.lease_seconds"):
        parse_config({"cluster": {"lease_seconds": 1}})
    with pytest.raises(ConfigError, match=r"server\.node_name"):
        parse_config({"server": {"node_name": "a/b"}})


def test_web_section_refuses_plain_http_off_loopback(tmp_path: Path) -> None:
    """[web]: a public address needs TLS or behind_proxy; TLS files go together and exist."""
    with pytest.raises(ConfigError, match=r"web\.listen"):
        parse_config({"web": {"enabled": True, "listen": "0.0.0.0"}})
    parse_config({"web": {"enabled": True, "listen": "0.0.0.0", "behind_proxy": True}})
    with pytest.raises(ConfigError, match=r"web\.tls_key"):
        parse_config({"web": {"tls_certificate": "/x.pem"}})
    with pytest.raises(ConfigError, match="no such file"):
        parse_config({"web": {"enabled": True, "tls_certificate": str(tmp_path / "c"),
                              "tls_key": str(tmp_path / "k")}})
    with pytest.raises(ConfigError, match=r"web\.trusted_proxies"):
        parse_config({"web": {"trusted_proxies": ["10.0.0.0/8", "proxy"]}})
    cfg = parse_config({"web": {"trusted_proxies": ["10.0.0.0/8"]}})
    assert cfg.web.trusted_proxies == ["10.0.0.0/8"]
