"""Errors of the application shell; each is a user-facing one-line message."""


class RadbillError(Exception):
    """Base of errors that the CLI prints as one line, without a traceback."""


class ConfigError(RadbillError):
    """The configuration file is missing, unreadable or invalid; names the key."""


class SchemaOutdated(RadbillError):
    """The database schema is older (or newer) than this code expects."""


class NotFound(RadbillError):
    """A named object (NAS, plan, subscriber, ...) does not exist."""


class AlreadyExists(RadbillError):
    """An object with that unique name already exists."""


class InvalidInput(RadbillError):
    """A value given by the user (CLI argument, CSV cell, form field) is invalid.

    ``field`` names the input (an API/form field name) when the raiser knows it.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InUse(InvalidInput):
    """The object cannot be removed while other records refer to it (HTTP 409, not 400:
    the request was well-formed; the state of the data refuses it)."""


class DatabaseUnavailable(RadbillError):
    """The database cannot be reached or answered with a transient error."""
