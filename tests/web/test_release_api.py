"""The release workflow as JSON under /api/v1: the happy path with a browser session,
refusals as problem+json with nothing written, and API tokens that never sign."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from _db_fixtures import TEST_PASSWORD
from web.conftest import sign_in
from web.release_data import audit_actions, audit_length, build_lot, lot_status

PROBLEM = "application/problem+json"


def _as(client, username) -> dict:
    client.cookies.clear()
    return {"X-CSRF-Token": sign_in(client, username)}


def _problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and set(body) == {"type", "title", "status", "detail"}
    return body["detail"]


@pytest.fixture
def lot(web_db):
    build_lot(web_db, "EV-A-1")
    return "EV-A-1"


def test_evaluation_is_the_cli_json(client, web_db, lot):
    from exotrace.records import evaluate_lot, make_engine, unit_of_work

    _as(client, "viewer1")
    got = client.get(f"/api/v1/lots/{lot}/evaluation")
    assert got.status_code == 200
    engine = make_engine(web_db)
    try:
        with unit_of_work(engine) as session:
            expected = evaluate_lot(session, lot)
    finally:
        engine.dispose()
    body = got.json()
    assert body["conclusion"] == "complies" == expected["conclusion"]
    assert body["tests"] == expected["tests"]
    size = next(t for t in body["tests"] if t["test"] == "size_d50")
    assert size["value"] == pytest.approx(121.0) and size["outcome"] == "pass"
    assert _problem(client.get("/api/v1/lots/NOPE/evaluation"), 404).startswith("no lot")


def test_results_submit_verify_release_through_the_api(client, web_db):
    build_lot(web_db, "EV-A-2", results=False)
    start = audit_length(web_db)
    headers = _as(client, "analyst1")
    added = client.post("/api/v1/lots/EV-A-2/results", headers=headers,
                        json={"test": "endotoxin", "value": 0.95, "unit": "EU/mL"})
    assert added.status_code == 201
    out = added.json()
    assert out["test"] == "endotoxin" and out["value"] == pytest.approx(0.95)
    assert out["opened_investigation"].startswith("OOS-")
    word = client.post("/api/v1/lots/EV-A-2/results", headers=headers,
                       json={"test": "sterility", "value": "negative"}).json()
    assert word["qualitative"] == "negative" and word["value"] is None
    # The investigation is listed, open, for that lot only.
    listed = client.get("/api/v1/investigations", params={"lot": "EV-A-2", "open": "true"})
    assert [i["id"] for i in listed.json()] == [out["opened_investigation"]]
    assert listed.json()[0]["opened_by"] == "analyst1"
    submitted = client.post("/api/v1/lots/EV-A-2/submit", headers=headers, json={})
    assert submitted.status_code == 200 and submitted.json()["status"] == "awaiting_release"

    headers = _as(client, "qa1")
    closed = client.post(f"/api/v1/investigations/{out['opened_investigation']}/close",
                         headers=headers, json={"conclusion": "confirmed_oos",
                                                "phase": "phase_II",
                                                "summary": "depyrogenation incomplete"})
    assert closed.status_code == 200
    assert closed.json()["conclusion"] == "confirmed_oos" and closed.json()["closed_by"] == "qa1"
    assert actor_of_last(web_db, "oos_investigation") == "qa1"
    assert audit_length(web_db) > start


def actor_of_last(url, table):
    return [n for t, _, n in audit_actions(url) if t == table][-1]


def test_happy_path_signatures(client, web_db, lot):
    headers = _as(client, "analyst1")
    assert client.post(f"/api/v1/lots/{lot}/submit", headers=headers).status_code == 200
    headers = _as(client, "reviewer1")
    ver = client.post(f"/api/v1/lots/{lot}/verify", headers=headers,
                      json={"password": TEST_PASSWORD})
    assert ver.status_code == 200, ver.text
    assert ver.json()["signature"]["printed_name"] == "Reviewer One (reviewer1)"
    assert ver.json()["signature"]["meaning"] == "review"
    assert ver.json()["release_state"] == "verified"
    headers = _as(client, "qa2")
    rel = client.post(f"/api/v1/lots/{lot}/release", headers=headers,
                      json={"password": TEST_PASSWORD, "reason": "complies; verified"})
    assert rel.status_code == 200, rel.text
    assert rel.json()["status"] == "released" and rel.json()["reason"] == "complies; verified"
    assert rel.json()["signature"]["printed_name"] == "QA Two (qa2)"
    assert lot_status(web_db, lot) == "released"
    assert actor_of_last(web_db, "lot_disposition") == "qa2"


def _refused(client, web_db, path, headers, body, status, message):
    before = audit_length(web_db)
    detail = _problem(client.post(path, headers=headers, json=body), status)
    assert message in detail, detail
    assert audit_length(web_db) == before


def test_refusals_are_problems_and_write_nothing(client, web_db, lot):
    headers = _as(client, "qa1")
    assert client.post(f"/api/v1/lots/{lot}/submit", headers=headers).status_code == 200
    _refused(client, web_db, f"/api/v1/lots/{lot}/verify", headers,
             {"password": TEST_PASSWORD}, 403, "user qa1 changed lot EV-A-1")
    _refused(client, web_db, f"/api/v1/lots/{lot}/release", headers,
             {"password": TEST_PASSWORD}, 422, "cannot release a lot in state results_entered")
    headers = _as(client, "reviewer1")
    _refused(client, web_db, f"/api/v1/lots/{lot}/release", headers,
             {"password": TEST_PASSWORD}, 403, "needs permission approve")
    headers = _as(client, "viewer1")
    _refused(client, web_db, f"/api/v1/lots/{lot}/results", headers,
             {"test": "potency", "value": 99, "unit": "%"}, 403, "needs permission enter_results")
    _refused(client, web_db, f"/api/v1/lots/{lot}/reject", headers,
             {"password": TEST_PASSWORD, "reason": "x"}, 403, "needs permission approve")
    # Bad bodies: 422, never a 500.
    headers = _as(client, "analyst1")
    for body in ({"test": "potency"}, {"test": "p" * 65, "value": 1},
                 {"test": "potency", "value": 1, "colour": "red"}, [], "text"):
        _problem(client.post(f"/api/v1/lots/{lot}/results", headers=headers, json=body), 422)
    _problem(client.post(f"/api/v1/lots/{lot}/results", headers=headers,
                         content=b'{"test": "potency", "value": NaN}',
                         ), 422)
    assert lot_status(web_db, lot) == "awaiting_release"


def test_csrf_less_api_post_with_a_session_is_refused(client, web_db, lot):
    _as(client, "analyst1")
    before = audit_length(web_db)
    _problem(client.post(f"/api/v1/lots/{lot}/submit"), 403)
    assert audit_length(web_db) == before and lot_status(web_db, lot) == "in_process"


def test_api_tokens_never_sign(client, web_db, lot, bearer):
    # A token may do what its role allows without a signature ...
    analyst = bearer("analyst1")
    assert client.post(f"/api/v1/lots/{lot}/submit", headers=analyst).status_code == 200
    # ... but signing needs a browser session and the password, even the right one.
    for user, step, body in (("reviewer1", "verify", {"password": TEST_PASSWORD}),
                             ("qa1", "release", {"password": TEST_PASSWORD}),
                             ("qa1", "reject", {"password": TEST_PASSWORD, "reason": "r"}),
                             ("qa1", "quarantine", {"password": TEST_PASSWORD, "reason": "r"})):
        headers = bearer(user)  # creating the token is itself audited
        before = audit_length(web_db)
        detail = _problem(client.post(f"/api/v1/lots/{lot}/{step}", headers=headers,
                                      json=body), 401)
        assert "an API token cannot sign" in detail
        assert audit_length(web_db) == before
    assert client.get(f"/api/v1/lots/{lot}/evaluation",
                      headers=bearer("viewer1")).json()["release_state"] == "results_entered"


def test_signing_endpoints_say_so_in_the_openapi(client):
    spec = client.get("/api/openapi.json").json()
    for step in ("verify", "release", "reject", "quarantine"):
        text = " ".join(spec["paths"][f"/api/v1/lots/{{number}}/{step}"]["post"]
                        ["description"].split())
        assert "API token" in text and "password" in text


HOSTILE = ["", " ", "\x00", "nan", "-inf", "1e999", "<script>alert(1)</script>", "\u202e",
           "R-1", "OOS-", "9" * 40, "é" * 64]


def test_hostile_input_is_a_4xx_never_a_500(client, web_db, lot):
    """Every release route, pages and API, given odd values: answered (a refusal, or done
    when the value is acceptable, e.g. a quarantine reason "nan"), never a 500."""
    for username in ("analyst1", "qa1"):
        headers = _as(client, username)
        csrf = headers["X-CSRF-Token"]
        for text in HOSTILE:
            for path, body in (
                    (f"/api/v1/lots/{lot}/results", {"test": text or "x", "value": text or "x",
                                                     "unit": text, "retest_of": text}),
                    (f"/api/v1/lots/{lot}/reject", {"password": TEST_PASSWORD,
                                                    "reason": text or "x"}),
                    (f"/api/v1/investigations/{quote(text or 'x')}/close",
                     {"conclusion": text, "phase": text, "summary": text or "x"})):
                response = client.post(path, headers=headers, json=body)
                assert response.status_code < 500, (path, text, response.text)
            for path, data in (
                    (f"/lots/{lot}/release/results", {"test": text or "x", "value": text or "x",
                                                      "unit": text, "retest_of": text}),
                    (f"/lots/{lot}/release/reference", {"value": text or "x",
                                                        "unit": text or "x"}),
                    (f"/lots/{lot}/release/quarantine", {"password": TEST_PASSWORD,
                                                         "reason": text}),
                    (f"/lots/{lot}/release/investigations/{quote(text or 'x')}/close",
                     {"conclusion": text, "phase": text, "summary": text or "x"})):
                response = client.post(path, data={"csrf_token": csrf, **data})
                assert response.status_code < 500, (path, text, response.text[-500:])
            got = client.get("/api/v1/investigations", params={"lot": text})
            assert got.status_code in (200, 404, 422), (text, got.text)
            for path in (f"/api/v1/lots/{quote(text)}/evaluation",
                         f"/lots/{quote(text)}/release"):
                got = client.get(path)
                assert got.status_code in (404, 422), (path, got.text[-300:])
