"""Web admin, self-care and the HTTP API."""
