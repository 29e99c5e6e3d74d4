"""The HTTP API's framework: auth, errors in one shape, formats, OpenAPI, login and CSRF."""

from __future__ import annotations

from typing import Any

import pytest_twisted

from tests.api_support import Api


@pytest_twisted.ensureDeferred
async def test_subscriber_round_trip(api: Api) -> None:
    """An admin token adds, reads, changes and removes a subscriber over real HTTP."""
    tok = api.token("admin")
    code, body, _ = await api.call("POST", "/subscribers", tok,
                                   {"login": "alice", "password": "secret123"})
    assert code == 201, body
    assert body["login"] == "alice" and body["status"] == "active"
    code, body, _ = await api.call("GET", "/subscribers/alice", tok)
    assert code == 200 and body["login"] == "alice"
    code, body, _ = await api.call("PATCH", "/subscribers/alice", tok, {"description": "x"})
    assert code == 200 and body["description"] == "x"
    code, body, _ = await api.call("GET", "/subscribers?limit=1", tok)
    assert code == 200 and [s["login"] for s in body["items"]] == ["alice"]
    assert body["next_offset"] is None
    code, body, _ = await api.call("DELETE", "/subscribers/alice", tok)
    assert code == 200
    code, body, _ = await api.call("GET", "/subscribers/alice", tok)
    assert code == 404 and body["error"]["code"] == "not_found"


@pytest_twisted.ensureDeferred
async def test_errors_have_one_shape(api: Api) -> None:
    """Bad JSON, unknown and wrong fields, no route, bad method: each a coded error, no 500."""
    tok = api.token("admin")
    cases: list[tuple[str, str, Any, int, str, str | None]] = [
        ("POST", "/subscribers", {"login": "a", "password": "p", "colour": 1}, 400,
         "invalid_field", "colour"),
        ("POST", "/subscribers", {"login": "a"}, 400, "invalid_field", "password"),
        ("POST", "/subscribers", {"login": 5, "password": "x"}, 400, "invalid_field", "login"),
        ("POST", "/plans", {"name": "p", "rate_limit": "fast"}, 400, "invalid_field",
         "rate_limit"),
        ("GET", "/subscribers?limit=0", None, 400, "invalid_field", "limit"),
        ("GET", "/subscribers?limit=100000", None, 400, "invalid_field", "limit"),
        ("GET", "/subscribers?out=pdf", None, 400, "invalid_field", "out"),
        ("GET", "/nope", None, 404, "not_found", None),
        ("PUT", "/subscribers", None, 405, "method_not_allowed", None),
        ("GET", "/subscribers/ghost", None, 404, "not_found", None),
    ]
    for method, path, body, status, code, field in cases:
        got, answer, _ = await api.call(method, path, tok, body)
        assert got == status, (method, path, answer)
        assert set(answer) == {"error"}, answer
        assert answer["error"]["code"] == code, (path, answer)
        assert answer["error"]["field"] == field, (path, answer)
        assert "Traceback" not in answer["error"]["message"]
    got, answer, _ = await api.call("POST", "/subscribers", tok, raw=b"{not json",
                                    headers={"Content-Type": "application/json"})
    assert got == 400 and answer["error"]["code"] == "invalid_input"
    got, answer, _ = await api.call("POST", "/subscribers", tok, raw=b"login=a",
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert got == 415 and answer["error"]["code"] == "unsupported_media_type"


@pytest_twisted.ensureDeferred
async def test_error_in_every_format(api: Api) -> None:
    """The same error reads in XML, text and HTML, with its code and message."""
    tok = api.token("admin")
    for fmt, ctype in (("xml", "application/xml"), ("text", "text/plain"),
                       ("html", "text/html")):
        code, text, resp = await api.call("GET", f"/subscribers/ghost?out={fmt}", tok)
        assert code == 404
        assert resp.headers.getRawHeaders(b"content-type")[0].decode().startswith(ctype)
        assert "not_found" in text and "ghost" in text
    code, text, _ = await api.call("GET", "/subscribers/ghost", tok,
                                   headers={"Accept": "application/xml"})
    assert code == 404 and text.startswith("<?xml") and "<code>not_found</code>" in text


@pytest_twisted.ensureDeferred
async def test_bad_credentials_are_one_401(api: Api) -> None:
    """No token, a wrong token, a malformed header: the same 401, saying nothing more."""
    answers = []
    for headers in ({}, {"Authorization": "Bearer rbt_wrong"}, {"Authorization": "Basic x"},
                    {"Cookie": "radbill_session=rbs_wrong"}):
        code, body, resp = await api.call("GET", "/me", headers=headers)
        assert code == 401
        assert resp.headers.getRawHeaders(b"www-authenticate")
        answers.append(body)
    assert all(a == answers[0] for a in answers), answers


@pytest_twisted.ensureDeferred
async def test_expired_and_revoked_tokens_refused(api: Api) -> None:
    """A revoked token and an expired one get 401; a valid one works until revoked."""
    from datetime import timedelta

    from sqlalchemy import update

    from core.db.access import ApiToken
    from core.db.base import utcnow

    admin = api.token("admin")
    other = api.token("support", name="sup", expires=1)
    code, body, _ = await api.call("GET", "/me", other)
    assert code == 200 and body["actor"] == "token:sup" and body["role"] == "support"
    with api.engine.begin() as conn:
        conn.execute(update(ApiToken).where(ApiToken.name == "sup")
                     .values(expires_at=utcnow() - timedelta(seconds=1)))
    code, _, _ = await api.call("GET", "/me", other)
    assert code == 401
    third = api.token("manager", name="mgr")
    assert (await api.call("GET", "/nas", third))[0] == 200
    code, body, _ = await api.call("DELETE", "/tokens/mgr", admin)
    assert code == 200 and body["state"] == "revoked"
    assert (await api.call("GET", "/nas", third))[0] == 401


@pytest_twisted.ensureDeferred
async def test_openapi_served_and_complete(api: Api) -> None:
    """openapi.json is 3.1, public, and lists every declared endpoint with its permission."""
    from webadmin.api.declare import API

    code, doc, _ = await api.call("GET", "/openapi.json")
    assert code == 200 and doc["openapi"].startswith("3.1")
    for ep in API.endpoints:
        op = doc["paths"]["/api/v1" + ep.path][ep.method.lower()]
        assert op["operationId"] == ep.name
        if not ep.public:
            assert op["x-permission"] == ep.permission
    assert "Error" in doc["components"]["schemas"]


async def _operator(api: Api, login: str = "olga", role: str = "admin") -> None:
    admin = api.token("admin")
    code, body, _ = await api.call("POST", "/operators", admin,
                                   {"login": login, "role": role, "password": "correct-horse"})
    assert code == 201, body


@pytest_twisted.ensureDeferred
async def test_cookie_login_needs_csrf_for_changes(api: Api) -> None:
    """Login sets an HttpOnly SameSite=Lax cookie; a change without X-CSRF-Token is 403."""
    await _operator(api)
    code, body, resp = await api.call("POST", "/login", body={"login": "olga",
                                                              "password": "correct-horse"})
    assert code == 200, body
    cookie = resp.headers.getRawHeaders(b"set-cookie")[0].decode()
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Secure" not in cookie  # plain HTTP on loopback in this test
    jar = resp.cookies()
    csrf = body["csrf_token"]
    code, me, _ = await api.call("GET", "/me", cookies=jar)
    assert code == 200 and me["actor"] == "operator:olga" and me["csrf_token"] == csrf
    new = {"name": "r1", "description": ""}
    code, body, _ = await api.call("POST", "/resellers", body=new, cookies=jar)
    assert code == 403 and body["error"]["code"] == "forbidden"
    code, body, _ = await api.call("POST", "/resellers", body=new, cookies=jar,
                                   headers={"X-CSRF-Token": "0" * 64})
    assert code == 403
    code, body, _ = await api.call("POST", "/resellers", body=new, cookies=jar,
                                   headers={"X-CSRF-Token": csrf})
    assert code == 201, body
    code, _, _ = await api.call("POST", "/logout", cookies=jar, headers={"X-CSRF-Token": csrf})
    assert code == 200
    assert (await api.call("GET", "/me", cookies=jar))[0] == 401


@pytest_twisted.ensureDeferred
async def test_login_throttled_per_login_and_address(api: Api) -> None:
    """After [web] login_failures wrong passwords, even the right one gets 429 for a while."""
    from webadmin.api.auth import LOGIN_FAILURES

    await _operator(api)
    before = LOGIN_FAILURES.labels("operator", "throttled")._value.get()
    limit = api.server.config.web.login_failures
    wrong = [await api.call("POST", "/login", body={"login": "olga", "password": "nope"})
             for _ in range(limit)]
    assert [w[0] for w in wrong] == [401] * limit
    assert len({str(w[1]) for w in wrong}) == 1
    code, body, resp = await api.call("POST", "/login", body={"login": "olga",
                                                              "password": "correct-horse"})
    assert code == 429 and body["error"]["code"] == "throttled"
    assert int(resp.headers.getRawHeaders(b"retry-after")[0]) > 0
    assert LOGIN_FAILURES.labels("operator", "throttled")._value.get() == before + 1
    # the address is throttled too: another login from here is refused before any check
    code, _, _ = await api.call("POST", "/login", body={"login": "other", "password": "x"})
    assert code == 429


@pytest_twisted.ensureDeferred
async def test_removing_what_is_still_used_is_409_in_use(api: Api) -> None:
    """A plan that subscribers still have is refused with 409 in_use (the request was fine,
    the data's state refuses it), and stays; once unused it can be removed."""
    tok = api.token("admin")
    assert (await api.call("POST", "/plans", tok, {"name": "busy"}))[0] == 201
    assert (await api.call("POST", "/subscribers", tok,
                           {"login": "u1", "password": "pw-123456", "plan": "busy"}))[0] == 201
    got, answer, _ = await api.call("DELETE", "/plans/busy", tok)
    assert got == 409 and answer["error"]["code"] == "in_use", answer
    assert "used by 1 subscriber" in answer["error"]["message"]
    assert (await api.call("GET", "/plans/busy", tok))[0] == 200
    assert (await api.call("DELETE", "/subscribers/u1", tok))[0] == 200
    assert (await api.call("DELETE", "/plans/busy", tok))[0] == 200
