"""--out text|json|xml for every listing and show command, from plain dicts (core.formats)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from core.formats import text_object, text_table, to_json, to_xml

FORMATS = ("text", "json", "xml")


def add_out_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", choices=FORMATS, default="text", help="output format")


def emit_list(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str,
              root: str, item: str, out: TextIO | None = None) -> None:
    """A table in text; a JSON array; an XML document <root><item>..</item></root>."""
    out = out or sys.stdout
    if fmt == "json":
        out.write(to_json([dict(r) for r in rows]) + "\n")
    elif fmt == "xml":
        out.write(to_xml([dict(r) for r in rows], root, item))
    else:
        out.write(text_table(rows, columns))


def emit_object(obj: Mapping[str, Any], fmt: str, item: str, out: TextIO | None = None) -> None:
    """key: value lines in text; a JSON object; an XML element."""
    out = out or sys.stdout
    if fmt == "json":
        out.write(to_json(dict(obj)) + "\n")
    elif fmt == "xml":
        out.write(to_xml(dict(obj), item))
    else:
        out.write(text_object(obj))
