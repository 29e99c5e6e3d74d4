"""Message extraction and catalog upkeep (``scripts/i18n``; a test keeps catalogs complete).

Babel extracts from the templates (Jinja2's extractor) and from the pages'
Python (``_``, ``N_``, ``gettext``, ``ngettext``); ``update`` merges the result
into each language's ``.po`` file, keeping what translators wrote. English is
the source language: its catalog is filled with the source text itself, so it
is complete by construction and a translator can still override a string.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from webadmin.pages.i18n import DOMAIN, LANGUAGES, po_path

PACKAGE_DIR = Path(__file__).parent
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2), "lazy": None}
METHOD_MAP = [("templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true",
                                  "lstrip_blocks": "true"}}
SOURCE_DIRS = (PACKAGE_DIR, PACKAGE_DIR.parent / "selfcare", PACKAGE_DIR.parent / "admin")


def extract() -> Catalog:
    """Every message the pages can show, with where it comes from."""
    catalog = Catalog(domain=DOMAIN, project="radbill", charset="utf-8")
    for base in SOURCE_DIRS:
        if not base.is_dir():
            continue
        for filename, lineno, message, comments, _ctx in extract_from_dir(
                base, METHOD_MAP, OPTIONS, keywords=KEYWORDS):  # type: ignore[arg-type]
            catalog.add(message, None, [(str(base.name + "/" + filename), lineno)],
                        auto_comments=comments)
    return catalog


def read_catalog(lang: str) -> Catalog:
    path = po_path(lang)
    if not path.exists():
        return Catalog(locale=lang, domain=DOMAIN)
    with path.open("rb") as fh:
        return read_po(fh, locale=lang, domain=DOMAIN)


def missing(lang: str) -> list[str]:
    """Messages the source uses that ``lang`` lacks, leaves empty or marks fuzzy."""
    catalog = read_catalog(lang)
    out = []
    for msg in extract():
        if not msg.id:
            continue
        have = catalog.get(msg.id)
        strings = have.string if have is not None else None
        if isinstance(strings, tuple | list):
            empty = not all(strings)
        else:
            empty = not strings
        if have is None or empty or have.fuzzy:
            out.append(msg.id if isinstance(msg.id, str) else msg.id[0])
    return out


def update() -> dict[str, int]:
    """Merge the extracted messages into every catalog; returns untranslated counts."""
    result = {}
    for lang in LANGUAGES:
        template = extract()  # fresh: Catalog.update shares the template's Message objects
        catalog = read_catalog(lang)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        if lang == "en":
            for msg in catalog:
                if msg.id and not msg.string:
                    msg.string = msg.id
        path = po_path(lang)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            write_po(fh, catalog, width=100, sort_output=True, omit_header=False)
        result[lang] = len(missing(lang))
    return result
