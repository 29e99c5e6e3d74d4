"""One rendering of plain data (dicts, lists, scalars) as JSON, XML, text and HTML.

The CLI's ``--out`` and the HTTP API's ``?out=`` both use it, so the same
object reads the same in every face and every format.
"""

from __future__ import annotations

import enum
import html
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree as ET


def plain(value: Any) -> Any:
    """JSON-ready: datetimes as ISO 8601, Decimals as strings, bytes as hex, enums by value."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def text_value(value: Any) -> str:
    value = plain(value)
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(text_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={text_value(v)}" for k, v in value.items())
    return str(value)


def _xml_name(key: str) -> str:
    name = "".join(c if c.isalnum() or c in "_-." else "_" for c in str(key)) or "_"
    return name if name[0].isalpha() or name[0] == "_" else "_" + name


def xml_value(parent: ET.Element, key: str, value: Any) -> None:
    el = ET.SubElement(parent, _xml_name(key))
    value = plain(value)
    if isinstance(value, dict):
        for k, v in value.items():
            xml_value(el, k, v)
    elif isinstance(value, list):
        for v in value:
            xml_value(el, "item", v)
    elif value is not None:
        el.text = text_value(value)


def to_json(value: Any, indent: int | None = 2) -> str:
    return json.dumps(plain(value), indent=indent, ensure_ascii=False)


def to_xml(value: Any, root: str, item: str = "item") -> str:
    """A document <root>...</root>: a list becomes <item> children, a dict its keys."""
    top = ET.Element(_xml_name(root))
    value = plain(value)
    if isinstance(value, list):
        for v in value:
            xml_value(top, item, v)
    elif isinstance(value, dict):
        for k, v in value.items():
            xml_value(top, k, v)
    elif value is not None:
        top.text = text_value(value)
    return ET.tostring(top, encoding="unicode", xml_declaration=True) + "\n"


def text_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    cells = [[text_value(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))
             .rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
              for row in cells]
    return "\n".join(lines) + "\n"


def text_object(obj: Mapping[str, Any]) -> str:
    width = max((len(k) for k in obj), default=0)
    return "".join(f"{k.ljust(width)}  {text_value(v)}\n" for k, v in obj.items())


def to_text(value: Any) -> str:
    value = plain(value)
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            columns: list[str] = []
            for v in value:
                columns += [k for k in v if k not in columns]
            return text_table(value, columns)
        return "".join(text_value(v) + "\n" for v in value)
    if isinstance(value, dict):
        return text_object(value)
    return text_value(value) + "\n"


def _html(value: Any) -> str:
    if isinstance(value, dict):
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_html(v)}</td></tr>"
                       for k, v in value.items())
        return f"<table>{rows}</table>"
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            columns: list[str] = []
            for v in value:
                columns += [k for k in v if k not in columns]
            head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
            body = "".join("<tr>" + "".join(f"<td>{_html(v.get(c))}</td>" for c in columns)
                           + "</tr>" for v in value)
            return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        return "<ul>" + "".join(f"<li>{_html(v)}</li>" for v in value) + "</ul>"
    return html.escape(text_value(value))


def to_html(value: Any, title: str) -> str:
    """A small self-contained page (no scripts, no styles): the data as nested tables."""
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>"
            f"{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
            f"{_html(plain(value))}</body></html>\n")
