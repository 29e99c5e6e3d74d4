"""Endpoint declarations: one record per endpoint, read by the server, the docs and the tests.

A declaration names the HTTP method, the path (OpenAPI style, ``/subscribers/{login}``),
the permission from :data:`webadmin.roles.PERMISSIONS` (``None``: any authenticated
caller; ``public``: no credentials at all), the pydantic models of the query and the
body, and the model of one response item. The same record validates each request,
drives the permission check and generates the OpenAPI document, so they cannot
disagree.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from webadmin.roles import PERMISSIONS

Handler = Callable[..., Awaitable[Any]]
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_PARAM = re.compile(r"\{([a-z_]+)\}")


class Body(BaseModel):
    """Request bodies: unknown fields are an error naming the field, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Query(BaseModel):
    """Query parameters of a list or a computation (strings in the URL, validated here)."""

    model_config = ConfigDict(extra="forbid")


class Page(Query):
    """limit/offset paging; the order of every list is stable (by a unique key)."""

    limit: int = Field(50, ge=1, description="items per page (at most [web] max_page)")
    offset: int = Field(0, ge=0, le=10**9, description="items to skip")


class Out(BaseModel):
    """Response items: the documented fields; more may follow (additionalProperties)."""

    model_config = ConfigDict(extra="allow")


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    permission: str | None
    handler: Handler
    summary: str
    response: type[BaseModel] | None = None
    query: type[Query] | None = None
    body: type[BaseModel] | None = None
    paged: bool = False
    status: int = 200
    public: bool = False
    idempotent: bool = False  # takes an Idempotency-Key header (money-moving writes)
    item: str = "item"  # XML element name of one item / of the object
    tag: str = ""
    raw: bool = False  # the handler returns a Raw (a file download), not data
    params: tuple[str, ...] = field(default=())

    @property
    def klein_path(self) -> str:
        return "/v1" + _PARAM.sub(r"<\1>", self.path)

    @property
    def changes(self) -> bool:
        return self.method != "GET"


@dataclass(frozen=True)
class Raw:
    """A response that is not data: a document download, sent as is."""

    body: bytes
    content_type: str
    filename: str = ""


@dataclass(frozen=True)
class Created:
    """Data and a status other than the endpoint's (e.g. 200 for an idempotent replay)."""

    data: Any
    status: int


class Registry:
    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def endpoint(self, method: str, path: str, permission: str | None, summary: str, *,
                 response: type[BaseModel] | None = None, query: type[Query] | None = None,
                 body: type[BaseModel] | None = None, paged: bool = False, status: int = 200,
                 public: bool = False, idempotent: bool = False, item: str = "item",
                 tag: str = "", raw: bool = False) -> Callable[[Handler], Handler]:
        if method not in METHODS:
            raise ValueError(f"{method}: not an HTTP method")
        if permission is not None and permission not in PERMISSIONS:
            raise ValueError(f"{path}: unknown permission {permission!r}")
        if paged and (query is None or not issubclass(query, Page)):
            raise ValueError(f"{path}: a paged endpoint needs a Page query model")

        def add(fn: Handler) -> Handler:
            name = fn.__name__
            if any(e.name == name for e in self.endpoints):
                raise ValueError(f"endpoint {name!r} declared twice")
            if any(e.method == method and e.path == path for e in self.endpoints):
                raise ValueError(f"{method} {path} declared twice")
            self.endpoints.append(Endpoint(
                name, method, path, permission, fn, summary, response, query, body, paged,
                status, public, idempotent, item, tag or path.split("/")[1], raw,
                tuple(_PARAM.findall(path))))
            return fn

        return add


API = Registry()
