"""The Jinja2 environment the pages render with: autoescape on, gettext, locale formatting.

One environment per language, each with its catalog installed (newstyle
gettext, so ``_("... %(name)s", name=x)`` escapes ``x`` too), built once and
shared: the reactor renders one page at a time, and templates are compiled
once per language. ``undefined=StrictUndefined`` makes a misspelled variable an
error in tests instead of an empty string on a page.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from webadmin.pages.i18n import LANGUAGE_NAMES, LANGUAGES, Formatter, translations

TEMPLATE_DIR = Path(__file__).parent / "templates"


def path_segment(value: Any) -> str:
    """A login or name as one URL path segment (Jinja's urlencode would keep '/')."""
    return quote(str(value), safe="")


class Renderer:
    def __init__(self, time_zone: str = "UTC") -> None:
        Formatter.of("en", time_zone)  # an unknown zone fails here, at wiring time
        self.time_zone = time_zone

    @cached_property
    def _envs(self) -> dict[str, Environment]:
        envs = {}
        for lang in LANGUAGES:
            env = Environment(loader=FileSystemLoader(TEMPLATE_DIR),
                              autoescape=select_autoescape(default=True, default_for_string=True),
                              undefined=StrictUndefined, extensions=["jinja2.ext.i18n"],
                              trim_blocks=True, lstrip_blocks=True)
            env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
            env.filters["q"] = path_segment
            envs[lang] = env
        return envs

    def formatter(self, lang: str) -> Formatter:
        return Formatter.of(lang, self.time_zone)

    def render(self, template: str, lang: str, **context: Any) -> bytes:
        lang = lang if lang in LANGUAGES else LANGUAGES[0]
        env = self._envs[lang]
        context.setdefault("fmt", self.formatter(lang))
        context.setdefault("lang", lang)
        context.setdefault("languages", LANGUAGE_NAMES)
        return env.get_template(template).render(**context).encode("utf-8")
