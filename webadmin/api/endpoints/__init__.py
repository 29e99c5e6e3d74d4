"""Endpoint declarations by concern; importing this package registers them all."""

from webadmin.api.endpoints import (  # noqa: F401
    access,
    catalog,
    docs,
    documents,
    money,
    selfcare,
    subscribers,
    usage,
)
