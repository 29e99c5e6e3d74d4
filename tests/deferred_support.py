"""Test helper for APIs that answer with a plain value or a Deferred (aaa.maybe)."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer


def answered(d: Any) -> list[Any]:
    """What a get() has answered so far: a plain value at once, a Deferred's when it fires."""
    out: list[Any] = []
    if isinstance(d, defer.Deferred):
        d.addBoth(out.append)
    else:
        out.append(d)
    return out
