"""The OpenAPI 3.1 document, generated from the endpoint declarations (never written by hand).

Schemas come from the same pydantic models that validate the requests and the
answers; every endpoint documents the error shape for its possible statuses.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from webadmin.api.declare import Endpoint, Registry
from webadmin.api.problems import STATUS_DOCS
from webadmin.api.render import FORMATS
from webadmin.roles import PERMISSIONS

REF = "#/components/schemas/{model}"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("radbill")
    except PackageNotFoundError:
        return "0"


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template=REF)
        for name, sub in schema.pop("$defs", {}).items():
            self.components[name] = sub
        self.components[model.__name__] = schema
        return {"$ref": REF.format(model=model.__name__)}


ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["code", "field", "message"],
        "properties": {"code": {"type": "string"},
                       "field": {"type": ["string", "null"]},
                       "message": {"type": "string"}}}}}


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"application/json": {"schema": schema}}
    for fmt, media in FORMATS.items():
        if fmt != "json":
            out[media] = {"schema": {"type": "string"}}
    return out


def _page_schema(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["items", "limit", "offset", "next_offset"],
            "properties": {"items": {"type": "array", "items": item},
                           "limit": {"type": "integer"}, "offset": {"type": "integer"},
                           "next_offset": {"type": ["integer", "null"]}}}


def _parameters(ep: Endpoint, max_page: int) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True,
         "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}}
        for p in ep.params]
    if ep.query is not None:
        schema = ep.query.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            prop = dict(prop)
            prop.pop("title", None)
            if name == "limit" and ep.paged:
                prop["maximum"] = max_page
            params.append({"name": name, "in": "query", "required": name in required,
                           "schema": prop, **({"description": prop["description"]}
                                              if "description" in prop else {})})
    params.append({"name": "out", "in": "query", "required": False,
                   "schema": {"type": "string", "enum": list(FORMATS)},
                   "description": "output format (or the Accept header); json by default"})
    if ep.idempotent:
        params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                       "schema": {"type": "string", "minLength": 1, "maxLength": 128},
                       "description": "the same key again returns the first answer"})
    return params


def operation(ep: Endpoint, schemas: _Schemas, max_page: int) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": ep.name, "summary": ep.summary, "tags": [ep.tag],
                          "parameters": _parameters(ep, max_page)}
    if ep.public:
        op["security"] = []
    else:
        perm = ep.permission
        op["description"] = (f"Permission: `{perm}` ({PERMISSIONS[perm]})." if perm
                             else "Any authenticated caller.")
        op["x-permission"] = perm
    if ep.body is not None:
        op["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": schemas.ref(ep.body)}}}
    if ep.raw:
        ok: dict[str, Any] = {"description": "the document",
                              "content": {"*/*": {"schema": {"type": "string"}}}}
    else:
        item = schemas.ref(ep.response) if ep.response is not None else {}
        schema = _page_schema(item) if ep.paged else item
        ok = {"description": "OK", "content": _content(schema)}
    responses: dict[str, Any] = {str(ep.status): ok}
    if ep.idempotent:
        responses.setdefault("200", {**ok, "description": "already recorded (a replay)"})
    # Any request may name something that does not exist (a filter's plan, a body's
    # login) or meet a state that refuses it; every one documents the same error set.
    statuses = [400, 404, 409, 503] + ([] if ep.public else [401, 403])
    if ep.body is not None:
        statuses += [413, 415]
    if ep.name in ("login", "selfcare_login", "my_password"):
        statuses += [401, 429]
    for s in sorted(set(statuses)):
        responses.setdefault(str(s), {"description": STATUS_DOCS.get(s, "error"),
                                      "content": _content({"$ref": REF.format(model="Error")})})
    op["responses"] = responses
    return op


def document(registry: Registry, max_page: int = 1000) -> dict[str, Any]:
    schemas = _Schemas()
    schemas.components["Error"] = ERROR_SCHEMA
    paths: dict[str, Any] = {}
    for ep in registry.endpoints:
        paths.setdefault("/api/v1" + ep.path, {})[ep.method.lower()] = operation(
            ep, schemas, max_page)
    return {
        "openapi": "3.1.0",
        "info": {"title": "radbill API", "version": _version(),
                 "description": "radbill's HTTP API; see docs/api.md. Every answer is also "
                                "available as XML, plain text or HTML (?out=)."},
        "paths": paths,
        "components": {"schemas": schemas.components, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "an API token (radbill token add) or a session token"},
            "session": {"type": "apiKey", "in": "cookie", "name": "radbill_session",
                        "description": "from POST /api/v1/login; changes also need "
                                       "X-CSRF-Token"}}},
        "security": [{"bearer": []}, {"session": []}],
    }
