"""The API describing itself: /api/v1/openapi.json, open to anyone (it holds no data)."""

from __future__ import annotations

import json
from typing import Any

from webadmin.api.declare import API, Raw
from webadmin.api.openapi import document


@API.endpoint("GET", "/openapi.json", None, "this API's OpenAPI 3.1 description",
              public=True, raw=True, tag="docs")
async def openapi(ctx: Any) -> Any:
    api = ctx.api
    if getattr(api, "_openapi", None) is None:
        api._openapi = json.dumps(document(api.registry, api.config.web.max_page)).encode()
    return Raw(api._openapi, "application/json")
