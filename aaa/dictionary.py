"""Loading the RADIUS dictionaries radbill ships (or the operator's own)."""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

from pyrad.dictionary import Dictionary

from aaa.errors import DictionaryError

TOP_FILE = "dictionary"


def default_dictionary_dir() -> Path:
    """The source tree's conf/dictionaries, else the copy pip installed under share/."""
    candidates = [
        Path(__file__).resolve().parent.parent / "conf" / "dictionaries",
        Path(sys.prefix) / "share" / "radbill" / "dictionaries",
        Path("/usr/share/radbill/dictionaries"),
    ]
    for candidate in candidates:
        if (candidate / TOP_FILE).is_file():
            return candidate
    raise DictionaryError("no RADIUS dictionaries found; looked in "
                          + ", ".join(str(c) for c in candidates))


@lru_cache(maxsize=4)
def load_dictionary(path: str | None = None) -> Dictionary:
    top = Path(path) if path else default_dictionary_dir() / TOP_FILE
    try:
        return Dictionary(str(top))
    except Exception as exc:
        raise DictionaryError(f"cannot load RADIUS dictionary {top}: {exc}") from None
