"""Refusals found in review of the web application: client file names never become server
paths, dates and ids past what the database stores are a 4xx, and a browser session ends
when its user's password is reset or changed."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from _db_fixtures import TEST_PASSWORD
from web.conftest import login_form_token, sign_in
from web.test_quality_web import STABILITY_CSV


def _stability(client, csrf, name: str, text: str = STABILITY_CSV, **fields):
    data = {"csrf_token": csrf, "time_column": "time_months",
            "value_column": "particles_e11_per_ml", "batch_column": "batch",
            "lower_limit": "1.2", **fields}
    return client.post("/quality/stability", data=data,
                       files={"file": (name, text.encode(), "text/csv")})


def _alert(page) -> str:
    found = re.search(r'role="alert"[^>]*>([^<]*)<', page.text)
    return found.group(1) if found else ""


@pytest.mark.parametrize("name", ["..", "x" * 300 + ".csv", "../../etc/study.csv"])
def test_stability_file_name_is_never_a_server_path(client, name):
    csrf = sign_in(client, "viewer1")
    good = _stability(client, csrf, name)
    assert good.status_code == 200, _alert(good)
    assert "12 rows" in good.text
    refused = _stability(client, csrf, name, value_column="potency")
    assert refused.status_code == 422
    message = _alert(refused)
    # The message names the client's file and the missing column, never the server's folder.
    assert "potency" in message and message.startswith(name[:40])
    assert "exotrace-stability" not in refused.text and "/tmp" not in message


@pytest.mark.parametrize("since", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00+14:00"])
def test_audit_time_past_the_calendar_is_invalid_input(client, bearer, since):
    sign_in(client, "viewer1")
    page = client.get("/audit", params={"since": since})
    assert page.status_code == 422 and "between the years 1 and 9999" in page.text
    api = client.get("/api/v1/audit", params={"until": since}, headers=bearer("viewer1"))
    assert api.status_code == 422
    assert api.headers["content-type"].startswith("application/problem+json")


def test_audit_time_at_the_calendar_edges_still_filters(client, bearer):
    sign_in(client, "viewer1")
    token = bearer("viewer1")
    everything = client.get("/api/v1/audit", headers=token).json()["total"]
    assert everything > 0
    edge = client.get("/api/v1/audit", headers=token,
                      params={"since": "0001-01-01T00:00Z", "until": "9999-12-31T23:59Z"})
    assert edge.status_code == 200 and edge.json()["total"] == everything
    assert client.get("/audit", params={"since": "9999-12-31T23:59Z"}).status_code == 200


@pytest.mark.parametrize("digits, status", [(10, 422), (20, 422), (9, 404)])
def test_investigation_id_beyond_the_key_column_is_invalid_input(client, digits, status):
    csrf = sign_in(client, "qa1")
    oos = "OOS-" + "9" * digits
    form = {"csrf_token": csrf, "conclusion": "confirmed_oos", "summary": "s"}
    page = client.post(f"/lots/L-1/release/investigations/{oos}/close", data=form)
    assert page.status_code == status
    api = client.post(f"/api/v1/investigations/{oos}/close", headers={"X-CSRF-Token": csrf},
                      json={"conclusion": "confirmed_oos", "summary": "s"})
    assert api.status_code == status
    assert api.headers["content-type"].startswith("application/problem+json")


def _second_client(app):
    return TestClient(app, raise_server_exceptions=False, follow_redirects=False)


def test_password_reset_by_an_admin_ends_the_users_sessions(app, client):
    sign_in(client, "viewer1")
    assert client.get("/").status_code == 200
    with _second_client(app) as admin:
        csrf = sign_in(admin, "admin1")
        reset = admin.post("/admin/users/viewer1/password",
                           data={"csrf_token": csrf, "temporary_password": "Tmp-Passw0rd-4711",
                                 "reason": "suspected disclosure"})
        assert reset.status_code == 200 and _alert(reset) == ""
        # The admin's own session is untouched.
        assert admin.get("/admin/users").status_code == 200
    gone = client.get("/")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/login")


def test_password_change_ends_older_sessions_only(app, client):
    sign_in(client, "qa1")
    new_password = "Another-Passw0rd-815"
    with _second_client(app) as other:
        changed = other.post("/password", data={
            "login_csrf": login_form_token(other), "username": "qa1",
            "old_password": TEST_PASSWORD, "new_password": new_password,
            "confirm_password": new_password})
        assert changed.status_code == 200 and "Password changed" in changed.text
        # The session that existed before the change is over ...
        assert client.get("/").status_code == 303
        # ... one opened with the new password works.
        sign_in(other, "qa1", new_password)
        assert other.get("/").status_code == 200


def _multipart(size_bytes: int) -> tuple[bytes, str]:
    boundary = "exotrace-test-boundary"
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                    f"{value}\r\n".encode() for name, value in (("time_column", "t"),
                                                                 ("value_column", "v")))
    body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
             f"filename=\"big.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode()
    body += b"1" * (size_bytes - len(body) - len(boundary) - 8)
    body += f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_oversized_form_bodies_are_refused_before_they_are_read(client):
    from exotrace.api._security import FORM_MAX_BYTES

    # Not signed in: the sign-in form is parsed before any check, so the limit comes first.
    body, content_type = _multipart(FORM_MAX_BYTES + 1)
    assert len(body) == FORM_MAX_BYTES + 1
    refused = client.post("/login", content=body, headers={"Content-Type": content_type})
    assert refused.status_code == 413
    assert "larger than 4194304 bytes" in refused.json()["detail"]
    csrf = sign_in(client, "viewer1")
    big = client.post("/quality/stability", content=body,
                      headers={"Content-Type": content_type, "X-CSRF-Token": csrf})
    assert big.status_code == 413
    # At the limit the form reaches the route (which has its own, smaller, limit for files).
    body, content_type = _multipart(FORM_MAX_BYTES)
    at_limit = client.post("/quality/stability", content=body,
                           headers={"Content-Type": content_type, "X-CSRF-Token": csrf})
    assert at_limit.status_code == 422 and "larger than 1048576 bytes" in at_limit.text


def test_form_body_without_length_is_refused(client):
    csrf = sign_in(client, "viewer1")

    def chunks():
        yield b"csrf_token=" + csrf.encode()
        yield b"&time_column=t&value_column=v"

    refused = client.post("/quality/stability", content=chunks(),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert refused.status_code == 411


def _median_refusal_s(client, username: str, form: str = "/login") -> float:
    import statistics
    import time

    times = []
    for _ in range(3):
        token = login_form_token(client)
        data = ({"username": username, "password": "not-the-password", "login_csrf": token}
                if form == "/login" else
                {"username": username, "old_password": "not-the-password",
                 "new_password": "Whatever-Passw0rd-1", "confirm_password":
                 "Whatever-Passw0rd-1", "login_csrf": token})
        start = time.perf_counter()
        answer = client.post(form, data=data)
        times.append(time.perf_counter() - start)
        assert answer.status_code == 401 and "Invalid username or password" in answer.text
    return statistics.median(times)


@pytest.mark.parametrize("form", ["/login", "/password"])
def test_unknown_user_is_refused_as_slowly_as_a_wrong_password(client, form):
    # A wrong password costs one argon2 check (~50 ms); without one, an unknown user's
    # refusal came back in a few ms and told an attacker which accounts exist.
    _median_refusal_s(client, "nobody", form)  # warm-up (the stand-in hash is made once)
    unknown = _median_refusal_s(client, "nobody", form)
    wrong = _median_refusal_s(client, "viewer1", form)
    assert unknown >= 0.5 * wrong, (unknown, wrong)


def test_signing_in_again_ends_the_session_the_browser_held(app, client):
    from exotrace.api._principal import SESSION_COOKIE

    sign_in(client, "viewer1")
    old_sid = client.cookies.get(SESSION_COOKIE)
    sign_in(client, "viewer1")  # the same browser signs in again
    assert client.cookies.get(SESSION_COOKIE) != old_sid
    assert client.get("/").status_code == 200
    with _second_client(app) as copy:  # someone holding a copy of the old cookie
        copy.cookies.set(SESSION_COOKIE, old_sid)
        refused = copy.get("/")
        assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
