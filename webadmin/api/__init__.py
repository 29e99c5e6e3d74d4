"""The HTTP API at /api/v1/: every endpoint declared once, served by klein.

``declare`` holds the declarations (method, path, permission, pydantic models);
``server`` turns them into klein routes that authenticate (``auth``), check the
permission, validate, run the service layer's ``thd_*`` functions in the DB
pool and render the answer (``render``) or an error (``problems``, one table);
``openapi`` describes the same declarations as OpenAPI 3.1. Endpoint modules
live in ``endpoints/``, one per concern, and only call ``webadmin.service``.
"""
