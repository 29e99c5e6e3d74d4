"""The one table from an exception to an HTTP status and a stable error code.

Every error the API answers has the shape ``{"error": {"code", "field", "message"}}``
in every output format. Anything not in the table is a bug: logged with its
traceback, answered as a bare 500 ``internal`` with no detail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DataError

from core.errors import (
    AlreadyExists,
    DatabaseUnavailable,
    InUse,
    InvalidInput,
    NotFound,
    RadbillError,
)
from webadmin.errors import Conflict, Forbidden, Throttled, Unauthorized

log = logging.getLogger(__name__)


class NoRoute(RadbillError):
    """No endpoint at this path (HTTP 404)."""


class BadMethod(RadbillError):
    """The path exists, the method does not (HTTP 405)."""


class TooLarge(RadbillError):
    """The request body is larger than the API accepts (HTTP 413)."""


class BadMediaType(RadbillError):
    """A body that is not JSON (HTTP 415)."""


# First match wins: subclasses before their bases.
ERROR_TABLE: list[tuple[type[BaseException], int, str]] = [
    (ValidationError, 400, "invalid_field"),
    (InUse, 409, "in_use"),  # before InvalidInput, its base
    (InvalidInput, 400, "invalid_field"),
    (Unauthorized, 401, "unauthorized"),
    (Forbidden, 403, "forbidden"),
    (NoRoute, 404, "not_found"),
    (NotFound, 404, "not_found"),
    (BadMethod, 405, "method_not_allowed"),
    (AlreadyExists, 409, "already_exists"),
    (Conflict, 409, "conflict"),
    (TooLarge, 413, "too_large"),
    (BadMediaType, 415, "unsupported_media_type"),
    (Throttled, 429, "throttled"),
    (DatabaseUnavailable, 503, "unavailable"),
    (RadbillError, 409, "rejected"),  # a domain rule refused it (pool in use, ...)
    # A value the database cannot hold (a number past 64 bits, ...): still bad input.
    (DataError, 400, "invalid_input"),
    (OverflowError, 400, "invalid_input"),
]

STATUS_DOCS = {400: "invalid request (code invalid_field, field names it)",
               401: "no or wrong credentials", 403: "the caller's role does not allow it",
               404: "no such object (or not visible to the caller)",
               409: "conflicts with the current state", 413: "request body too large",
               415: "the body is not JSON", 429: "too many failed logins",
               503: "the database is unavailable"}


@dataclass(frozen=True)
class Problem:
    status: int
    code: str
    field: str | None
    message: str
    headers: tuple[tuple[str, str], ...] = ()

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "field": self.field, "message": self.message}}


def _pydantic(exc: ValidationError) -> tuple[str | None, str]:
    err = exc.errors(include_url=False)[0]
    loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
    name = ".".join(loc) or None
    msg = err.get("msg", "invalid value")
    if err.get("type") == "extra_forbidden":
        msg = "unknown field"
    elif err.get("type") == "missing":
        msg = "required"
    return name, f"{name}: {msg}" if name else msg


def problem_for(exc: BaseException) -> Problem:
    found = next(((status, code) for kind, status, code in ERROR_TABLE
                  if isinstance(exc, kind)), None)
    if found is None:
        log.error("API request failed", exc_info=exc)
        return Problem(500, "internal", None, "internal error (logged on the server)")
    status, code = found
    if isinstance(exc, ValidationError):
        name, message = _pydantic(exc)
        return Problem(status, code, name, message)
    field = getattr(exc, "field", None)
    if status == 400 and field is None:
        code = "invalid_input"
    headers: tuple[tuple[str, str], ...] = ()
    if isinstance(exc, Throttled):
        headers = (("Retry-After", str(exc.retry_after)),)
    if isinstance(exc, Unauthorized):
        headers = (("WWW-Authenticate", 'Bearer realm="radbill"'),)
    if isinstance(exc, DatabaseUnavailable):
        log.warning("API request: %s", exc)
    message = str(exc) or code
    if isinstance(exc, DataError | OverflowError):
        log.info("API request with a value out of range: %s", exc)
        message = "a value is out of range"
    return Problem(status, code, field, message, headers)
