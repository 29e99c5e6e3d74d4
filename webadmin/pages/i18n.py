"""Languages, message catalogs and locale formatting for the pages.

The catalogs are gettext ``.po`` files under ``locale/<lang>/LC_MESSAGES/``;
they are compiled in memory when first used (Babel's own compiler), so a clean
checkout works with no build step and no binary ``.mo`` in git. Money comes in
integer minor units and is shown with the currency's own exponent
(``billing.money``), never through float; times are stored in UTC and shown in
the configured time zone.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, dates, numbers, units
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from billing.money import minor_to_major

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "radbill"
LANGUAGES: tuple[str, ...] = ("en", "ru")
DEFAULT_LANGUAGE = "en"
LANGUAGE_NAMES = {"en": "English", "ru": "Русский"}


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(lang: str) -> Translations:
    """The compiled catalog of one language (compiled once per process)."""
    if lang not in LANGUAGES:
        lang = DEFAULT_LANGUAGE
    with po_path(lang).open("rb") as fh:
        catalog = read_po(fh, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


def negotiate(chosen: str | None, accept_language: str | None,
              default: str = DEFAULT_LANGUAGE) -> str:
    """The language a visitor chose (cookie or form) wins, then Accept-Language, then default."""
    if chosen in LANGUAGES:
        return chosen  # type: ignore[return-value]
    if accept_language:
        ranked: list[tuple[float, str]] = []
        for part in accept_language.split(",")[:20]:
            tag, _, params = part.strip().partition(";")
            q = 1.0
            if params.strip().startswith("q="):
                try:
                    q = float(params.strip()[2:])
                except ValueError:
                    q = 0.0
            ranked.append((q, tag.strip().lower().split("-")[0]))
        for _, tag in sorted(ranked, key=lambda x: -x[0]):
            if tag in LANGUAGES:
                return tag
    return default if default in LANGUAGES else DEFAULT_LANGUAGE


def check_time_zone(name: str) -> str | None:
    """A config check: None when ``name`` is an IANA time zone this machine knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"{name!r} is not a known IANA time zone (e.g. Europe/Moscow, UTC)"
    return None


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated where it is shown."""
    return message


_BYTE_UNITS = (N_("B"), N_("KB"), N_("MB"), N_("GB"), N_("TB"), N_("PB"))


@dataclass(frozen=True)
class Formatter:
    """Everything a page prints that depends on language or time zone."""

    lang: str
    tz: tzinfo

    @classmethod
    def of(cls, lang: str, time_zone: str) -> Formatter:
        return cls(lang if lang in LANGUAGES else DEFAULT_LANGUAGE, ZoneInfo(time_zone))

    @property
    def locale(self) -> Locale:
        return Locale.parse(self.lang)

    def money(self, minor: int | None, currency: str) -> str:
        if minor is None:
            return ""
        return numbers.format_currency(minor_to_major(int(minor), currency), currency,
                                       locale=self.lang)

    def money_text(self, text: str | None, currency: str) -> str:
        """A price given as decimal text in major units ('0.0125'), every digit kept."""
        if not text:
            return ""
        return numbers.format_currency(Decimal(text), currency, locale=self.lang,
                                       decimal_quantization=False)

    def amount(self, minor: int | None, currency: str) -> str:
        """Money without the currency sign, for form fields and CSV."""
        if minor is None:
            return ""
        return format(minor_to_major(int(minor), currency), "f")

    def number(self, value: int | float | Decimal | None, digits: int | None = None) -> str:
        if value is None:
            return ""
        if digits is not None:
            return numbers.format_decimal(value, format="#,##0." + "0" * digits if digits
                                          else "#,##0", locale=self.lang)
        return numbers.format_decimal(value, locale=self.lang)

    def percent(self, value: float | Decimal | None) -> str:
        if value is None:
            return ""
        return numbers.format_percent(value, format="#,##0.#%", locale=self.lang)

    def local(self, when: datetime) -> datetime:
        if when.tzinfo is None:
            from datetime import UTC

            when = when.replace(tzinfo=UTC)
        return when.astimezone(self.tz)

    def datetime(self, when: datetime | None) -> str:
        if when is None:
            return ""
        return dates.format_datetime(self.local(when), "short", locale=self.lang)

    def date(self, when: date | datetime | None) -> str:
        if when is None:
            return ""
        if isinstance(when, datetime):
            when = self.local(when).date()
        return dates.format_date(when, "medium", locale=self.lang)

    def time(self, when: datetime | None) -> str:
        if when is None:
            return ""
        return dates.format_time(self.local(when), "short", locale=self.lang)

    def duration(self, seconds: int | None) -> str:
        """3725 -> '1:02:05' (days spelled out when longer than one)."""
        if seconds is None:
            return ""
        seconds = max(0, int(seconds))
        days, rest = divmod(seconds, 86400)
        text = str(timedelta(seconds=rest))
        if days:
            return units.format_unit(days, "duration-day", locale=self.lang) + " " + text
        return text

    def bytes(self, value: int | None) -> str:
        """Octets in decimal units (as NAS counters and tariffs count them): 1 MB = 10**6 B."""
        if value is None:
            return ""
        size = float(value)
        unit = 0
        while size >= 1000 and unit < len(_BYTE_UNITS) - 1:
            size /= 1000
            unit += 1
        digits = 0 if unit == 0 or size >= 100 else 1
        text = numbers.format_decimal(round(size, digits), format="#,##0.#", locale=self.lang)
        return f"{text} {self.gettext(_BYTE_UNITS[unit])}"

    def gettext(self, message: str) -> str:
        return translations(self.lang).gettext(message)
