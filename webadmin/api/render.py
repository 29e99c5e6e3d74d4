"""Output formats: the same data as JSON (default), XML, plain text or HTML (core.formats).

The format is ``?out=json|xml|text|html`` or, without it, the first of those the
Accept header names. Errors render in the same format as the answer would have.
"""

from __future__ import annotations

from typing import Any

from core.errors import InvalidInput
from core.formats import plain, to_html, to_json, to_text, to_xml

FORMATS = {"json": "application/json", "xml": "application/xml",
           "text": "text/plain", "html": "text/html"}
_BY_TYPE = {"application/json": "json", "application/xml": "xml", "text/xml": "xml",
            "text/plain": "text", "text/html": "html", "application/xhtml+xml": "html"}


def choose(out: str | None, accept: str | None) -> str:
    """The output format; an unknown ``?out=`` is an error, an unknown Accept means JSON."""
    if out is not None:
        if out not in FORMATS:
            raise InvalidInput(f"out must be one of {', '.join(FORMATS)}", field="out")
        return out
    if accept:
        ranked = []
        for i, part in enumerate(accept.split(",")):
            media, _, params = part.strip().partition(";")
            q = 1.0
            for p in params.split(";"):
                k, _, v = p.strip().partition("=")
                if k == "q":
                    try:
                        q = float(v)
                    except ValueError:
                        q = 0.0
            kind = _BY_TYPE.get(media.strip().lower())
            if kind and q > 0:
                ranked.append((-q, i, kind))
        if ranked:
            return min(ranked)[2]
    return "json"


def content_type(fmt: str) -> bytes:
    return f"{FORMATS[fmt]}; charset=utf-8".encode()


def render(data: Any, fmt: str, root: str, item: str = "item") -> bytes:
    """A list-page envelope renders its items as the table in text and HTML."""
    if fmt == "json":
        return to_json(data, indent=None).encode()
    if fmt == "xml":
        return to_xml(data, root, item).encode()
    value = plain(data)
    if fmt == "text":
        if isinstance(value, dict) and "items" in value and isinstance(value["items"], list):
            more = value.get("next_offset")
            tail = f"# next_offset {more}\n" if more is not None else ""
            return (to_text(value["items"]) + tail).encode()
        return to_text(value).encode()
    return to_html(value, root).encode()
