"""Sign-in, lock-out, sessions, CSRF, headers, cookies and API tokens (through HTTP)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from _db_fixtures import TEST_PASSWORD
from web.conftest import login_form_token, revoke_tokens, sign_in

FAILED = "Invalid username or password"


def _login(client, username, password):
    return client.post("/login", data={"username": username, "password": password,
                                       "login_csrf": login_form_token(client), "next": "/"})


def _user_row(web_db, username):
    from exotrace.records import User, make_engine

    engine = make_engine(web_db)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(User.__table__).where(
                User.username == username)).mappings().one()
    finally:
        engine.dispose()


def test_login_page_has_the_labelled_fields(client):
    page = client.get("/login")
    assert page.status_code == 200
    assert '<label for="username">Username</label>' in page.text
    assert '<label for="password">Password</label>' in page.text
    assert ">Sign in</button>" in page.text


def test_failed_sign_in_says_the_same_whether_the_user_exists_or_not(client):
    unknown = _login(client, "nobody", "whatever-password-1")
    wrong = _login(client, "qa1", "wrong-password-123")
    assert unknown.status_code == wrong.status_code == 401
    assert FAILED in unknown.text and FAILED in wrong.text
    assert "exotrace_session" not in unknown.cookies and "exotrace_session" not in wrong.cookies


def test_four_failures_then_the_right_password_signs_in(client, web_db):
    for _ in range(4):
        assert _login(client, "qa1", "wrong-password-123").status_code == 401
    assert _user_row(web_db, "qa1")["failed_sign_ins"] == 4
    assert _login(client, "qa1", TEST_PASSWORD).status_code == 303
    assert _user_row(web_db, "qa1")["failed_sign_ins"] == 0


def test_fifth_failure_locks_even_the_right_password_out_and_is_audited(client, web_db):
    from exotrace.records import AuditEntry, make_engine

    for _ in range(5):
        assert _login(client, "qa1", "wrong-password-123").status_code == 401
    row = _user_row(web_db, "qa1")
    assert row["locked_until"] is not None
    refused = _login(client, "qa1", TEST_PASSWORD)
    assert refused.status_code == 401 and FAILED in refused.text
    engine = make_engine(web_db)
    try:
        with engine.connect() as conn:
            images = conn.execute(sa.select(AuditEntry.after_json).where(
                AuditEntry.table_name == "user_account",
                AuditEntry.record_pk == str(row["id"]))).scalars().all()
    finally:
        engine.dispose()
    assert any("\"locked_until\":\"" in (image or "") for image in images)


def test_sign_in_issues_a_new_session_id_and_sign_out_ends_it(client):
    client.cookies.set("exotrace_session", "chosen-by-an-attacker", domain="testserver.local")
    csrf = sign_in(client, "reviewer1")
    sid = client.cookies.get("exotrace_session", domain="testserver.local")
    assert sid and sid != "chosen-by-an-attacker"
    assert client.get("/api/v1/me").json()["username"] == "reviewer1"
    out = client.post("/logout", data={"csrf_token": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    client.cookies.set("exotrace_session", sid, domain="testserver.local")  # replay it
    assert client.get("/api/v1/me").status_code == 401


def _age_sessions(web_db, minutes: float) -> None:
    from exotrace.records import WebSession, make_engine, utcnow

    engine = make_engine(web_db)
    try:
        with engine.begin() as conn:
            conn.execute(sa.update(WebSession.__table__).values(
                last_seen_at=utcnow() - timedelta(minutes=minutes)))
    finally:
        engine.dispose()


@pytest.mark.parametrize(("idle_minutes", "signed_in"), [(14.9, True), (15.1, False)])
def test_session_expires_after_fifteen_idle_minutes(client, web_db, idle_minutes, signed_in):
    sign_in(client, "viewer1")
    _age_sessions(web_db, idle_minutes)
    response = client.get("/")
    if signed_in:
        assert response.status_code == 200
    else:
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")


def test_state_change_without_csrf_token_is_refused_and_changes_nothing(client):
    csrf = sign_in(client, "analyst1")
    refused = client.post("/logout", data={})
    assert refused.status_code == 403
    wrong = client.post("/logout", headers={"X-CSRF-Token": csrf[:-2] + "xx"})
    assert wrong.status_code == 403
    assert client.get("/api/v1/me").status_code == 200  # still signed in: nothing changed
    assert client.post("/logout", headers={"X-CSRF-Token": csrf}).status_code == 303


def test_login_form_without_its_token_is_refused(client):
    response = client.post("/login", data={"username": "qa1", "password": TEST_PASSWORD,
                                           "login_csrf": "forged"})
    assert response.status_code == 403
    assert "exotrace_session" not in response.cookies


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_sign_in_never_redirects_off_site(client, target):
    response = client.post("/login", data={"username": "qa1", "password": TEST_PASSWORD,
                                           "login_csrf": login_form_token(client),
                                           "next": target})
    assert response.status_code == 303 and response.headers["location"] == "/"


@pytest.mark.parametrize("path", ["/login", "/api/v1/me", "/api/openapi.json", "/nowhere"])
def test_security_headers_on_every_answer(client, path):
    response = client.get(path)
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"


def test_session_cookie_flags(client, app):
    token = login_form_token(client)
    response = client.post("/login", data={"username": "qa1", "password": TEST_PASSWORD,
                                           "login_csrf": token})
    cookie = [h for h in response.headers.get_list("set-cookie")
              if h.startswith("exotrace_session=")][0].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    from fastapi.testclient import TestClient

    # Over HTTPS (here, or behind a proxy with proxy headers) the cookies are Secure.
    secure_client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    token = login_form_token(secure_client)
    response = secure_client.post("/login", data={"username": "qa1", "password": TEST_PASSWORD,
                                                  "login_csrf": token})
    cookie = [h for h in response.headers.get_list("set-cookie")
              if h.startswith("exotrace_session=")][0].lower()
    assert "; secure" in cookie


def test_api_answers_problem_json_and_accepts_bearer_tokens(client, bearer):
    anonymous = client.get("/api/v1/me")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert anonymous.json()["status"] == 401 and anonymous.json()["title"]
    assert client.get("/api/v1/me", headers={"Authorization": "Basic eDp5"}).status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer exo_nonsense"}
                      ).status_code == 401
    me = client.get("/api/v1/me", headers=bearer("qa1"))
    assert me.status_code == 200
    assert me.json()["username"] == "qa1" and me.json()["via_token"] is True
    assert "approve" in me.json()["permissions"]


def test_revoked_token_is_refused(client, bearer, web_db):
    headers = bearer("analyst1")
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    revoke_tokens(web_db, "analyst1")
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_bearer_requests_need_no_csrf_token(client, bearer):
    # No cookie, so no ambient authority a cross-site form could borrow.
    response = client.post("/logout", headers=bearer("qa1"))
    assert response.status_code == 303


def test_admin_created_account_sets_its_password_before_signing_in(client, web_db):
    from exotrace.records import Role, User, add_user, make_engine, repositories, unit_of_work

    engine = make_engine(web_db)
    try:
        with unit_of_work(engine) as session:
            admin = repositories.get_by(session, User, username="admin1")
            add_user(session, "nurse1", Role.CLINICIAN, password="first-Temporary-77",
                     full_name="Nora Nurse", acting=admin)
    finally:
        engine.dispose()
    first = _login(client, "nurse1", "first-Temporary-77")
    assert first.status_code == 200 and "Change your password" in first.text
    assert "exotrace_session" not in first.cookies
    token = login_form_token(client)
    too_short = client.post("/password", data={
        "username": "nurse1", "old_password": "first-Temporary-77", "new_password": "short1",
        "confirm_password": "short1", "login_csrf": token})
    assert too_short.status_code == 422 and "at least 12 characters" in too_short.text
    token = login_form_token(client)
    done = client.post("/password", data={
        "username": "nurse1", "old_password": "first-Temporary-77",
        "new_password": "bedside-Round-2049", "confirm_password": "bedside-Round-2049",
        "login_csrf": token})
    assert done.status_code == 200 and "Password changed" in done.text
    assert _login(client, "nurse1", "bedside-Round-2049").status_code == 303


@pytest.mark.parametrize("path", ["/api/v1/subjects/C%00X", "/api/v1/lots/L%00X",
                                  "/api/v1/audit?user=a%00b"])
def test_nul_characters_in_a_request_are_refused_not_a_server_error(client, bearer, path):
    response = client.get(path, headers=bearer("qa1"))
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
