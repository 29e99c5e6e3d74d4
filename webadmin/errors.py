"""Errors of the web side: refused permission, failed authentication, bad requests."""

from __future__ import annotations

from core.errors import RadbillError


class Forbidden(RadbillError):
    """The caller is known but its role does not allow the operation (HTTP 403)."""


class Unauthorized(RadbillError):
    """No credentials, or wrong ones (HTTP 401); never says which part was wrong."""


class Throttled(RadbillError):
    """Too many failed logins from one address or for one login (HTTP 429)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Conflict(RadbillError):
    """The request conflicts with the current state (an idempotency key reused differently)."""
