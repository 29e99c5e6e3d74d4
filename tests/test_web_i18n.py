"""Page i18n: catalogs complete, translations used, locale formatting, time zones."""

from __future__ import annotations

import typing
from datetime import UTC, datetime

import pytest

from core.config import PagesConfig, parse_config
from webadmin.pages.i18n import LANGUAGES, Formatter, negotiate, translations
from webadmin.pages.messages import extract, missing
from webadmin.pages.render import Renderer


def plain(text: str) -> str:
    """CLDR separates with no-break spaces; compare with plain ones."""
    return text.replace("\xa0", " ").replace("\u202f", " ")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalog_complete(lang: str) -> None:
    """Every message the pages use has a non-fuzzy translation (run scripts/i18n to update)."""
    assert len(extract()) > 10
    assert missing(lang) == []


def test_russian_is_really_russian() -> None:
    """The compiled Russian catalog translates; English passes the source text through."""
    assert translations("ru").gettext("Log out") != "Log out"
    assert translations("en").gettext("Log out") == "Log out"


def test_config_languages_match_catalogs() -> None:
    """pages.default_language accepts exactly the languages that have catalogs."""
    for lang in LANGUAGES:
        assert parse_config({"pages": {"default_language": lang}}).pages.default_language == lang
    hints = typing.get_type_hints(PagesConfig)
    assert hints["default_language"] is str


@pytest.mark.parametrize(("chosen", "accept", "expected"), [
    ("ru", "en-US,en;q=0.9", "ru"),
    (None, "ru-RU,ru;q=0.9,en;q=0.8", "ru"),
    (None, "de-DE,de;q=0.9,en;q=0.5", "en"),
    (None, "de, ru;q=0.1, en;q=0.5", "en"),
    ("xx", None, "en"),
    (None, ";;;q=abc,,", "en"),
])
def test_negotiate(chosen: str | None, accept: str | None, expected: str) -> None:
    """The visitor's choice wins, then Accept-Language by weight, then the default."""
    assert negotiate(chosen, accept) == expected


def test_money_numbers_dates_per_locale() -> None:
    """Money from minor units with the currency's exponent; separators and dates per locale."""
    en = Formatter.of("en", "UTC")
    ru = Formatter.of("ru", "Europe/Moscow")
    assert en.money(123450, "USD") == "$1,234.50"
    assert plain(ru.money(123450, "RUB")) == "1 234,50 ₽"
    assert en.money(-5, "USD") == "-$0.05"
    assert en.money(1234, "JPY") == "¥1,234"
    assert en.money(1234, "KWD").endswith("1.234")
    assert plain(ru.number(1234567)) == "1 234 567"
    when = datetime(2026, 12, 3, 21, 30, tzinfo=UTC)
    assert plain(en.datetime(when)) == "12/3/26, 9:30 PM"
    assert ru.datetime(when) == "04.12.2026, 00:30"  # three hours east, next day
    assert plain(ru.date(when)) == "4 дек. 2026 г."


def test_bytes_and_durations() -> None:
    """Traffic in decimal units with localised unit names; durations as h:mm:ss."""
    en = Formatter.of("en", "UTC")
    ru = Formatter.of("ru", "UTC")
    assert en.bytes(999) == "999 B"
    assert en.bytes(1_500_000) == "1.5 MB"
    assert en.bytes(250_000_000_000) == "250 GB"
    assert plain(ru.bytes(1_500_000)) == "1,5 МБ"
    assert en.duration(3725) == "1:02:05"
    assert en.duration(90061).endswith("1:01:01") and en.duration(90061).startswith("1 day")


def test_renderer_escapes_and_translates() -> None:
    """Templates autoescape values (also inside translated strings) and use the language."""
    r = Renderer("UTC")
    env = r._envs["ru"]
    html = env.from_string('{{ x }} {{ _("Rows %(first)s–%(last)s", first=x, last=2) }}').render(
        x='<script>"')
    assert "<script>" not in html and "&lt;script&gt;&#34;" in html
    assert "2" in html


def test_unknown_time_zone_fails_at_wiring() -> None:
    """A Renderer with an unknown zone refuses to be built (the config check said why)."""
    with pytest.raises(Exception):  # noqa: B017 - ZoneInfoNotFoundError or ValueError
        Renderer("Mars/Olympus")
