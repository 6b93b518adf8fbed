"""Home lists by role, the audit page (filters, Verify chain), users administration,
and the bundled API documentation."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from _db_fixtures import TEST_PASSWORD
from web.conftest import sign_in


def _write(url, fn):
    from exotrace.records import User, make_engine, repositories, unit_of_work

    engine = make_engine(url)
    try:
        with unit_of_work(engine) as session:
            return fn(session, lambda name: repositories.get_by(session, User, username=name))
    finally:
        engine.dispose()


def _lots_expiring_in(web_db, days_list) -> None:
    """Lots of one donor chain expiring ``days`` from today, for each value."""
    from exotrace.records import create_lot
    from records.conftest import build_chain

    def make(session, user):
        chain = build_chain(session, {"analyst": user("analyst1")})
        for days in days_list:
            create_lot(session, user("analyst1"), f"L-EXP-{days}",
                       isolation_code=chain["run"].code, intended_use="clinical_manufacturing",
                       manufactured_on=date.today() - timedelta(days=10),
                       expires_on=date.today() + timedelta(days=days))

    _write(web_db, make)


@pytest.fixture
def signed(client):
    def as_user(name):
        return sign_in(client, name)
    return as_user


def test_home_shows_only_the_lists_a_role_acts_on(client, signed):
    signed("qa1")
    qa = client.get("/").text
    assert "Lots awaiting verification or release" in qa and "Open OOS investigations" in qa
    assert "Follow-up visits due" not in qa
    client.cookies.clear()
    signed("clinician1")
    clinic = client.get("/").text
    assert "Follow-up visits due" in clinic and "Serious adverse events" in clinic
    assert "Lots awaiting verification" not in clinic
    client.cookies.clear()
    signed("viewer1")
    viewer = client.get("/").text
    assert "Lots expiring within 30 days" in viewer and "Open OOS" not in viewer


def test_home_lists_lots_expiring_within_thirty_days_inclusive(client, signed, web_db):
    _lots_expiring_in(web_db, [-1, 0, 30, 31])
    signed("viewer1")
    home = client.get("/").text
    assert "L-EXP-0<" in home and "L-EXP-30<" in home
    assert "L-EXP-31<" not in home and "L-EXP--1<" not in home


def test_audit_page_filters_by_user_and_table_and_escapes_text(client, signed, web_db):
    from exotrace.records import Role, add_user

    hostile = "<script>alert(1)</script> Mallory"
    _write(web_db, lambda s, user: add_user(s, "mallory", Role.VIEWER, password=TEST_PASSWORD,
                                            full_name=hostile, acting=user("admin1")))
    signed("viewer1")
    page = client.get("/audit", params={"table": "user_account", "user": "admin1"})
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    # The record image is shown as JSON with < and > escaped (\u003c), never as markup.
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e Mallory" in page.text
    rows = page.text.count("<tr>\n    <td class=\"num\">")
    api = client.get("/api/v1/audit", params={"table": "user_account", "user": "admin1"}).json()
    assert api["total"] == rows and all(e["actor"] == "admin1" for e in api["entries"])
    assert all(e["table"] == "user_account" for e in api["entries"])
    assert "argon2" not in page.text and "argon2" not in str(api)  # secrets masked
    none = client.get("/api/v1/audit", params={"user": "nobody-at-all"}).json()
    assert none["total"] == 0 and none["entries"] == []


def test_audit_time_filter_and_bad_dates(client, signed):
    signed("viewer1")
    future = (date.today() + timedelta(days=1)).isoformat()
    assert client.get("/api/v1/audit", params={"since": future}).json()["total"] == 0
    bad = client.get("/api/v1/audit", params={"since": "yesterday"})
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.json()["detail"]
    backwards = client.get("/api/v1/audit", params={"since": "2026-02-01", "until": "2026-01-01"})
    assert backwards.status_code == 422


def test_verify_chain_reports_intact_then_a_tampered_row(client, signed, web_db):
    import sqlalchemy as sa

    from exotrace.records import make_engine
    from web.conftest import _CSRF_META

    csrf = signed("viewer1")
    ok = client.post("/audit/verify", headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert ok.status_code == 200 and "Audit trail intact" in ok.text
    engine = make_engine(web_db)  # an insider edits a row behind the application's back
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE user_account SET full_name = 'Someone Else' "
                                 "WHERE username = 'qa1'"))
    finally:
        engine.dispose()
    bad = client.post("/audit/verify", headers={"X-CSRF-Token": csrf})
    assert "Audit verification failed" in bad.text and "user_account" in bad.text
    assert _CSRF_META.search(client.get("/").text)


def test_admin_adds_unlocks_and_resets_accounts_and_others_may_not(client, signed, web_db):
    csrf = signed("admin1")
    added = client.post("/admin/users", data={
        "csrf_token": csrf, "username": "nurse2", "full_name": "Nina Nurse", "role": "clinician",
        "temporary_password": "Temporary-bedside-91"})
    assert added.status_code == 200 and "nurse2" in added.text
    weak = client.post("/admin/users", data={
        "csrf_token": csrf, "username": "nurse3", "role": "clinician",
        "temporary_password": "short"})
    assert weak.status_code == 422 and "at least 12 characters" in weak.text
    no_reason = client.post("/admin/users/qa1/unlock", data={"csrf_token": csrf, "reason": ""})
    assert no_reason.status_code == 422 and "reason" in no_reason.text
    own = client.post("/admin/users/admin1/unlock", data={"csrf_token": csrf, "reason": "x"})
    assert own.status_code == 403
    done = client.post("/admin/users/qa1/password", data={
        "csrf_token": csrf, "temporary_password": "Fresh-temporary-42", "reason": "forgotten"})
    assert done.status_code == 200 and "temporary password" in done.text
    users = {u["username"]: u for u in client.get("/api/v1/users").json()}
    assert users["qa1"]["must_change_password"] is True
    assert users["nurse2"]["must_change_password"] is True and users["nurse2"]["role"] == "clinician"
    entries = client.get("/api/v1/audit", params={"table": "user_account",
                                                  "record": str(users["qa1"]["id"])}).json()
    assert entries["entries"][0]["actor"] == "admin1"
    assert entries["entries"][0]["reason"] == "forgotten"
    client.cookies.clear()
    analyst_csrf = signed("analyst1")
    refused = client.post("/admin/users/qa1/unlock",
                          data={"csrf_token": analyst_csrf, "reason": "please"})
    assert refused.status_code == 403
    assert client.get("/api/v1/users").status_code == 403


def test_api_docs_are_served_from_the_package(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert 'src="/static/swagger/swagger-ui-bundle.js"' in page.text
    assert "http" not in page.text.split("<body>")[1]  # nothing fetched from another site
    assert client.get("/static/swagger/swagger-ui-bundle.js").status_code == 200
    schema = client.get("/api/openapi.json").json()
    assert "/api/v1/audit" in schema["paths"] and "/api/v1/me" in schema["paths"]
