"""Console sign-in, sessions, CSRF, scopes and the security headers of every page."""

import hashlib
import uuid
from datetime import timedelta

import sqlalchemy as sa

from shared.auth import revoke_api_key
from shared.console.web import CONTENT_SECURITY_POLICY
from shared.db import unit_of_work
from shared.models import AuditEntry, ConsoleSession
from shared.models.base import utcnow
from tests.http.console.conftest import Console, csrf_of


def _session_rows(key_name: str) -> list[ConsoleSession]:
    from shared.models import ApiKey  # noqa: PLC0415

    with unit_of_work() as uow:
        return list(uow.session.scalars(sa.select(ConsoleSession).join(ApiKey, ApiKey.id == ConsoleSession.api_key_id)
                                        .where(ApiKey.name == key_name)))


def test_pages_need_a_session_and_sign_in_keeps_only_a_hash_of_it(console, make_token):
    first = console.get("/console/lis/messages?status=failed")
    assert first.status_code == 303
    assert first.headers["Location"] == "/console/sign-in?next=%2Fconsole%2Flis%2Fmessages%3Fstatus%3Dfailed"
    name = f"console-{uuid.uuid4().hex[:8]}"
    token = make_token("lis:read", name=name)
    form = console.get("/console/sign-in")
    response = console.post("/console/sign-in", {"csrf_token": csrf_of(form.text), "api_key": token,
                                                  "next": "/console/lis/messages?status=failed"})
    assert response.status_code == 303 and response.headers["Location"] == "/console/lis/messages?status=failed"
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("pm_console="))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite", "path", "max-age", "expires"} <= attributes
    assert "SameSite=Strict" in cookie and "Path=/console" in cookie and "Max-Age=28800" in cookie
    session_id = cookie.split(";")[0].split("=", 1)[1]
    [row] = _session_rows(name)
    assert row.id_hash == hashlib.sha256(session_id.encode()).digest()
    assert timedelta(hours=7.9) < row.expires_at - row.created_at <= timedelta(hours=8)
    assert token not in console.get("/console/lis/messages").text  # the key is never echoed
    assert console.get("/console/lis/messages").status_code == 200


def test_a_wrong_key_is_refused_and_no_session_is_made(console):
    form = console.get("/console/sign-in")
    response = console.post("/console/sign-in", {"csrf_token": csrf_of(form.text), "api_key": "pmk_not-a-real-key"})
    assert response.status_code == 401 and "unknown, revoked or malformed" in response.text
    assert not any(c.startswith("pm_console=") for c in response.headers.getlist("Set-Cookie"))
    assert console.get("/console/").status_code == 303


def test_the_sign_in_form_needs_its_csrf_token(console, make_token):
    token = make_token("lis:read")
    console.get("/console/sign-in")
    response = console.post("/console/sign-in", {"api_key": token})
    assert response.status_code == 403 and "CSRF" in response.text
    assert console.get("/console/").status_code == 303
    other = Console(console.client.application)  # a token from another browser's form does not fit this one
    stolen = csrf_of(other.get("/console/sign-in").text)
    assert console.post("/console/sign-in", {"api_key": token, "csrf_token": stolen}).status_code == 403


def test_a_form_posted_without_its_csrf_token_is_refused(console, make_token):
    console.sign_in(make_token("admin"))
    before = console.get("/console/").status_code
    assert console.post("/console/sign-out").status_code == 403
    assert console.post("/console/sign-out", {"csrf_token": "0" * 64}).status_code == 403
    assert console.get("/console/").status_code == before == 200  # still signed in: nothing happened


def test_sign_out_ends_the_session_everywhere(console, make_token):
    name = f"console-{uuid.uuid4().hex[:8]}"
    console.sign_in(make_token("lis:read", name=name))
    copied = Console(console.client.application)
    session_cookie = console.client.get_cookie("pm_console", domain="api.test", path="/console")
    copied.client.set_cookie("pm_console", session_cookie.value, domain="api.test", path="/console", secure=True)
    assert copied.get("/console/").status_code == 200
    response = console.post_form("/console/", "/console/sign-out")
    assert response.status_code == 303 and response.headers["Location"] == "/console/sign-in"
    assert _session_rows(name) == []
    assert copied.get("/console/").status_code == 303  # a copy of the cookie signs no one in
    with unit_of_work() as uow:
        actions = list(uow.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.principal == name)
                                           .order_by(AuditEntry.id)))
    assert actions[0] == "console.sign_in" and actions[-1] == "console.sign_out"


def test_an_expired_session_or_a_revoked_key_signs_no_one_in(console, make_token):
    name = f"console-{uuid.uuid4().hex[:8]}"
    console.sign_in(make_token("lis:read", name=name))
    with unit_of_work() as uow:
        uow.session.execute(sa.update(ConsoleSession).where(ConsoleSession.id_hash == _session_rows(name)[0].id_hash)
                            .values(expires_at=utcnow() - timedelta(seconds=1)))
    assert console.get("/console/").status_code == 303
    second = f"console-{uuid.uuid4().hex[:8]}"
    console.sign_in(make_token("lis:read", name=second))
    assert console.get("/console/").status_code == 200
    with unit_of_work() as uow:
        revoke_api_key(uow, second)
    assert console.get("/console/").status_code == 303


def test_what_a_page_shows_follows_the_scopes(console, make_token):
    console.sign_in(make_token("patients:read"))
    home = console.get("/console/")
    assert home.status_code == 200 and "LIS messages" not in home.text and "Dead letters" not in home.text
    for path in ("/console/lis/messages", "/console/dead-letters", "/console/jobs", "/console/notifications"):
        refused = console.get(path)
        assert refused.status_code == 403 and "scope" in refused.text, path
    reader = Console(console.client.application)
    reader.sign_in(make_token("lis:read"))
    page = reader.get("/console/")
    assert 'href="/console/lis/messages"' in page.text and "Dead letters" not in page.text
    assert reader.get("/console/jobs").status_code == 403


def test_every_page_and_error_carries_the_security_headers(console, make_token):
    responses = [console.get("/console/sign-in"), console.get("/console/"), console.get("/console/nowhere")]
    console.sign_in(make_token("lis:read"))
    responses += [console.get("/console/"), console.get("/console/lis/messages"), console.get("/console/jobs"),
                  console.get("/console/lis/messages/00000000-0000-4000-8000-000000000000"),
                  console.get("/console/lis/messages?status=lost"), console.get("/console/static/console.css")]
    assert [r.status_code for r in responses] == [200, 303, 404, 200, 200, 403, 404, 422, 200]
    for r in responses:
        assert r.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Cache-Control"] == "no-store"
        if r.mimetype == "text/html":
            assert "<script" not in r.text and "style=" not in r.text and "<style" not in r.text
    assert "script-src" not in CONTENT_SECURITY_POLICY and "'unsafe-inline'" not in CONTENT_SECURITY_POLICY


def test_sign_in_goes_back_to_console_pages_only(console, make_token):
    token = make_token("lis:read")
    for target in ("https://evil.example/", "//evil.example/console/", "/console/\\evil", "/patients"):
        browser = Console(console.client.application)
        form = browser.get("/console/sign-in")
        response = browser.post("/console/sign-in", {"csrf_token": csrf_of(form.text), "api_key": token, "next": target})
        assert response.headers["Location"] == "/console/", target


def test_no_page_with_a_scope_answers_without_a_session(console):
    import shared.console.routes  # noqa: F401, PLC0415  (every page registered)
    from shared.console.web import PAGES  # noqa: PLC0415

    guarded = [p for p in PAGES if p.scope is not None]
    assert len(guarded) >= 10
    for p in guarded:
        path = p.path.replace("<uuid:message_id>", str(uuid.uuid4())).replace("<uuid:dead_letter_id>", str(uuid.uuid4()))
        path = path.replace("<uuid:patient_id>", str(uuid.uuid4())).replace("<name>", "retention")
        response = console.get(path) if p.method == "GET" else console.post(path, {"csrf_token": "x"})
        assert response.status_code == 303 and response.headers["Location"].startswith("/console/sign-in"), p.endpoint
