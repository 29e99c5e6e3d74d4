"""--out text|json|xml for every listing and show command, from plain dicts."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TextIO
from xml.etree import ElementTree as ET

FORMATS = ("text", "json", "xml")


def add_out_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", choices=FORMATS, default="text", help="output format")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _text(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items())
    return str(value)


def _xml_value(parent: ET.Element, key: str, value: Any) -> None:
    el = ET.SubElement(parent, key.replace(" ", "_"))
    value = _plain(value)
    if isinstance(value, dict):
        for k, v in value.items():
            _xml_value(el, k, v)
    elif isinstance(value, list):
        for v in value:
            _xml_value(el, "item", v)
    elif value is not None:
        el.text = _text(value)


def emit_list(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str,
              root: str, item: str, out: TextIO | None = None) -> None:
    """A table in text; a JSON array; an XML document <root><item>..</item></root>."""
    out = out or sys.stdout
    if fmt == "json":
        json.dump([_plain(dict(r)) for r in rows], out, indent=2)
        out.write("\n")
    elif fmt == "xml":
        top = ET.Element(root)
        for r in rows:
            el = ET.SubElement(top, item)
            for k, v in r.items():
                _xml_value(el, k, v)
        out.write(ET.tostring(top, encoding="unicode", xml_declaration=True) + "\n")
    else:
        cells = [[_text(r.get(c)) for c in columns] for r in rows]
        widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
        out.write("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))
                  .rstrip() + "\n")
        for row in cells:
            out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
                      + "\n")


def emit_object(obj: Mapping[str, Any], fmt: str, item: str, out: TextIO | None = None) -> None:
    """key: value lines in text; a JSON object; an XML element."""
    out = out or sys.stdout
    if fmt == "json":
        json.dump(_plain(dict(obj)), out, indent=2)
        out.write("\n")
    elif fmt == "xml":
        top = ET.Element(item)
        for k, v in obj.items():
            _xml_value(top, k, v)
        out.write(ET.tostring(top, encoding="unicode", xml_declaration=True) + "\n")
    else:
        width = max((len(k) for k in obj), default=0)
        for k, v in obj.items():
            out.write(f"{k.ljust(width)}  {_text(v)}\n")
