"""Exceptions shared by the AAA modules."""

from core.errors import RadbillError


class CryptoInputError(ValueError):
    """A malformed authentication attribute or crypto input.

    Subclasses ValueError because the input, not the server, is at fault:
    a wrong-length CHAP-Password or MS-CHAP2-Response means a broken or
    hostile NAS, and the request handler answers it with an Access-Reject
    (and logs it) rather than crashing the worker or treating it as a
    plain password mismatch.
    """


class DictionaryError(Exception):
    """The RADIUS dictionary files are missing or do not parse."""


class PapKeyError(RadbillError):
    """The PAP verifier key file cannot be made or read (``radius.pap_key_file``)."""


class Shed(Exception):
    """A slow password check was dropped: its queue was full (aaa.slowqueue)."""
