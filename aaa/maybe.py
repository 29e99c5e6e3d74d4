"""Answers that may still be on their way: a plain value now, or a Deferred of it later.

A warm server has nearly everything an Access-Request needs in memory: the
credentials, the verified-password tag, which plans have prices, which pools
a plan uses. Wrapping each of those answers in an already-fired Deferred and
chaining callbacks on it was about a fifth of the CPU of a whole request
(bench/auth_bench.py). The steps of the login path therefore return
``Maybe[T]``, Twisted's "may return a Deferred" convention, and are chained
with :func:`then`, which goes on at once when the value is already there and
through the Deferred only when it is not. An exception raised on the
synchronous path propagates to the caller, where ``maybeDeferred`` or an
explicit ``try`` turns it into the same failure the Deferred path would give.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, Union

from twisted.internet import defer

T = TypeVar("T")
R = TypeVar("R")

Maybe = Union[T, defer.Deferred[T]]  # noqa: UP007 - a generic alias needs Union here


# Deferred's metaclass is ABCMeta (it is an Awaitable), so isinstance() against it goes
# through the ABC machinery: several times slower than a dict lookup by type, and the
# login path asks about five times per request.
_IS_DEFERRED: dict[type, bool] = {}


def is_deferred(value: object) -> bool:
    kind = type(value)
    answer = _IS_DEFERRED.get(kind)
    if answer is None:
        answer = _IS_DEFERRED[kind] = issubclass(kind, defer.Deferred)
    return answer


def then(value: Maybe[T], fn: Callable[..., Maybe[R]], *args: Any) -> Maybe[R]:
    """``fn(value, *args)``: now when ``value`` is plain, when it arrives if it is a Deferred."""
    if is_deferred(value):
        return value.addCallback(fn, *args)  # type: ignore[union-attr,no-any-return]
    return fn(value, *args)


def as_deferred(value: Maybe[T]) -> defer.Deferred[T]:
    """For callers that want a Deferred whatever they got (tests, non-hot paths)."""
    if is_deferred(value):
        return value  # type: ignore[return-value]
    return defer.succeed(value)  # type: ignore[arg-type]
