"""Clinic API under /api/v1 (SQLite and PostgreSQL): the CLI's JSON, writes audited as the
token's user, 403 with nothing written for roles without the clinical permission, and 422
problem documents for bad input."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from web._clinic_world import audit_actors, build_clinic_world, counts, wrong_check_character

PROBLEM = "application/problem+json"


@pytest.fixture
def world(web_db):
    return build_clinic_world(web_db)


@pytest.fixture
def cli(web_db, monkeypatch, capsys):
    """``cli(*args)`` -> the JSON the CLI prints for ``args`` (+ ``--json``)."""
    from exotrace.cli.main import main

    monkeypatch.setenv("EXOTRACE_DATABASE_URL", web_db)

    def run(*args):
        capsys.readouterr()
        assert main([*args, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    return run


def _give(client, headers, vial, **extra):
    return client.post("/api/v1/administrations", headers=headers,
                       json={"subject": "C1", "vial": vial, **extra})


def _problem(response, status: int, text: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and text in body["detail"], body


def test_reads_are_the_cli_json(client, world, bearer, cli):
    viewer = bearer("viewer1")
    doc = bearer("clinician1")
    assert _give(client, doc, world["good"][0]).status_code == 201
    subjects = client.get("/api/v1/subjects", headers=viewer)
    assert subjects.status_code == 200
    assert subjects.json() == cli("subject", "list")
    assert subjects.json()[0]["administrations"] == 1
    one = client.get("/api/v1/subjects/C1", headers=viewer).json()
    assert one == cli("subject", "show", "C1")
    assert [a["vial"] for a in one["administrations"]] == [world["good"][0]]
    recall = client.get("/api/v1/recall", params={"donor": "D-A"}, headers=viewer).json()
    assert recall == cli("recall", "--donor", "D-A")
    assert recall["subjects"] == ["C1"]
    due = client.get("/api/v1/followup/due", params={"horizon_days": 80}, headers=viewer)
    assert due.json() == cli("followup", "due", "--horizon-days", "80")
    assert [(r["visit"], r["status"]) for r in due.json()] == [("month3", "upcoming")]


def test_administration_refused_then_accepted_and_audited(client, world, bearer, web_db):
    doc = bearer("clinician1")
    before = counts(web_db)
    _problem(_give(client, doc, wrong_check_character(world["good"][0])), 422,
             "check character does not match")
    _problem(_give(client, doc, world["unreleased"]), 422, "not released by QA")
    _problem(_give(client, doc, world["expired"]), 422, "lot L-OLD expired on")
    assert counts(web_db) == before

    check = client.post("/api/v1/administrations/check", headers=doc,
                        json={"subject": "C1", "vial": world["expired"]})
    assert check.status_code == 200
    failed = [c["check"] for c in check.json()["checks"] if c["ok"] is False]
    assert failed == ["expiry"] and check.json()["allowed"] is False
    check = client.post("/api/v1/administrations/check", headers=doc,
                        json={"subject": "C1", "vial": world["good"][0]})
    assert check.json()["allowed"] is True
    assert check.json()["administration"]["particles"] == pytest.approx(1.4e12)
    assert counts(web_db) == before  # a check writes nothing

    given = _give(client, doc, world["good"][0], site="left arm")
    assert given.status_code == 201
    body = given.json()
    assert (body["subject"], body["vial"], body["lot"], body["level"], body["operator"]) == (
        "C1", world["good"][0], "L-GOOD", 3, "clinician1")
    assert body["volume_ml"] == pytest.approx(7.0)
    assert audit_actors(web_db, "administration") == ["clinician1"]
    _problem(_give(client, doc, world["good"][0]), 422, "only an available vial")


def test_roles_without_clinical_permission_get_403_and_nothing_is_written(client, world,
                                                                         bearer, web_db):
    tokens = {u: bearer(u) for u in ("analyst1", "viewer1", "reviewer1", "qa1", "admin1")}
    before = counts(web_db)
    today = date.today().isoformat()
    for headers in tokens.values():
        for path, body in (
                ("/api/v1/administrations", {"subject": "C1", "vial": world["good"][0]}),
                ("/api/v1/administrations/check", {"subject": "C1", "vial": world["good"][0]}),
                ("/api/v1/adverse-events", {"subject": "C1", "term": "headache", "grade": 1,
                                            "serious": False, "relatedness": "possible",
                                            "onset": today}),
                ("/api/v1/observations", {"subject": "C1", "visit": "month3",
                                          "outcome": "LVEF", "value": 40, "unit": "%"}),
                ("/api/v1/subjects/C1/dose-decision", {"decision": "override", "level": 1,
                                                       "reason": "x"})):
            response = client.post(path, headers=headers, json=body)
            _problem(response, 403, "needs permission record_clinical")
            assert "C1" not in response.text
        assert client.get("/api/v1/subjects", headers=headers).status_code == 200
    assert counts(web_db) == before


def test_adverse_event_observation_and_dose_decision(client, world, bearer, web_db):
    doc = bearer("clinician1")
    assert _give(client, doc, world["good"][0]).status_code == 201
    ae = client.post("/api/v1/adverse-events", headers=doc, json={
        "subject": "C1", "term": "<b>rash</b>", "grade": 3, "serious": True,
        "criteria": ["hospitalisation"], "relatedness": "probable",
        "onset": date.today().isoformat()})
    assert ae.status_code == 201, ae.text
    body = ae.json()
    assert body["adverse_event"]["term"] == "<b>rash</b>"  # stored as typed; pages escape it
    assert body["adverse_event"]["seriousness"] == ["hospitalisation"]
    assert body["reporting"]["expedited"] is True  # serious, related, unexpected
    assert (body["dose_decision"]["action"], body["dose_decision"]["status"]) == (
        "hold", "proposed")
    # Hold is pending: an override needs a reason, then dosing resumes at the level given.
    _problem(client.post("/api/v1/subjects/C1/dose-decision", headers=doc,
                         json={"decision": "override", "level": 2}), 422, "needs a reason")
    decided = client.post("/api/v1/subjects/C1/dose-decision", headers=doc,
                          json={"decision": "override", "level": 2, "reason": "resolved"})
    assert decided.status_code == 200
    assert (decided.json()["status"], decided.json()["decided_level"]) == ("overridden", 2)
    shown = client.get("/api/v1/subjects/C1", headers=doc).json()
    assert [(d["id"], d["decided_by"]) for d in shown["dose_decisions"]
            if d["status"] == "overridden"] == [(decided.json()["id"], "clinician1")]
    assert shown["current_level"] == 2 and shown["dosing_blocked"] is None

    obs = client.post("/api/v1/observations", headers=doc, json={
        "subject": "C1", "visit": "month3", "outcome": "LVEF", "value": 41.5, "unit": "%"})
    assert obs.status_code == 201
    assert obs.json()["observation"]["change"] == pytest.approx(6.5)
    assert set(audit_actors(web_db, "adverse_event")) == {"clinician1"}
    assert set(audit_actors(web_db, "observation")) == {"clinician1"}


def test_bad_input_is_a_422_problem_and_writes_nothing(client, world, bearer, web_db):
    doc = bearer("clinician1")
    before = counts(web_db)
    today = date.today().isoformat()
    good_ae = {"subject": "C1", "term": "headache", "grade": 1, "serious": False,
               "relatedness": "possible", "onset": today}
    for change in ({"grade": 0}, {"grade": 6}, {"term": ""}, {"term": "x" * 201},
                   {"relatedness": "perhaps"}, {"onset": "yesterday"},
                   {"criteria": ["death"] * 7}, {"subject": "C" * 65}, {"colour": "red"},
                   {"onset": (date.today() + timedelta(days=2)).isoformat()},
                   {"term": "head\u202eache"}):
        response = client.post("/api/v1/adverse-events", headers=doc, json={**good_ae, **change})
        _problem(response, 422, "")
    bad_obs = b'{"subject": "C1", "visit": "month3", "outcome": "LVEF", "value": NaN, "unit": "%"}'
    response = client.post("/api/v1/observations", content=bad_obs,
                           headers={**doc, "content-type": "application/json"})
    _problem(response, 422, "value")
    _problem(client.post("/api/v1/observations", headers=doc, json={
        "subject": "C1", "visit": "month3", "outcome": "LVEF", "value": 40, "unit": "kg"}),
        422, "")
    _problem(_give(client, doc, world["good"][0], at="2026-01-01T10:00:00"), 422, "at")
    _problem(_give(client, doc, world["good"][0], level=0), 422, "level")
    _problem(client.post("/api/v1/administrations", headers={**doc, "content-type":
                                                             "application/json"},
                         content=b'{"subject": "C1", "vial": "X", "weight_kg": Infinity}'),
             422, "weight_kg")
    _problem(client.post("/api/v1/administrations", headers={**doc, "content-type":
                                                             "application/json"},
                         content=b"{not json"), 422, "")
    _problem(client.get("/api/v1/recall", headers=doc), 422, "exactly one of")
    _problem(client.get("/api/v1/recall", params={"donor": "D-A", "lot": "L-GOOD"},
                        headers=doc), 422, "exactly one of")
    _problem(client.get("/api/v1/recall", params={"lot": "NOPE"}, headers=doc), 404, "NOPE")
    _problem(client.get("/api/v1/subjects/NOBODY", headers=doc), 404, "NOBODY")
    _problem(client.get("/api/v1/followup/due", params={"horizon_days": -1}, headers=doc),
             422, "horizon_days")
    assert counts(web_db) == before


def test_clinic_endpoints_are_in_the_openapi_description(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    for path in ("/api/v1/subjects", "/api/v1/subjects/{code}", "/api/v1/administrations",
                 "/api/v1/administrations/check", "/api/v1/adverse-events",
                 "/api/v1/observations", "/api/v1/subjects/{code}/dose-decision",
                 "/api/v1/followup/due", "/api/v1/recall"):
        assert path in paths, path
    check = paths["/api/v1/administrations/check"]["post"]["responses"]["200"]
    assert check["content"]["application/json"]["schema"]["$ref"].endswith(
        "/AdministrationCheckOut")
    schema = client.get("/api/openapi.json").json()["components"]["schemas"]
    assert set(schema["CheckLine"]["properties"]) == {"check", "label", "ok", "detail"}
    assert schema["AdverseEventIn"]["properties"]["term"]["maxLength"] == 200
    assert schema["AdverseEventIn"]["properties"]["grade"]["maximum"] == 5


def test_control_characters_are_refused_before_any_query(client, world, bearer, web_db):
    # PostgreSQL refuses a NUL byte in a query: it must be a 422, never a 500, on both backends.
    doc = bearer("clinician1")
    before = counts(web_db)
    for path in ("/api/v1/subjects/C%00", "/api/v1/recall?lot=L%00",
                 "/api/v1/subjects?protocol=%00", "/api/v1/recall?donor=D%1B"):
        _problem(client.get(path, headers=doc), 422, "")
    vial = world["good"][0]
    for path, body in (("/api/v1/administrations", {"subject": "C\x00", "vial": vial}),
                       ("/api/v1/administrations/check", {"subject": "C\x00", "vial": vial}),
                       ("/api/v1/administrations", {"subject": "C1", "vial": vial,
                                                    "site": "arm\x00"}),
                       ("/api/v1/adverse-events", {"subject": "C1", "term": "rash\x00",
                                                   "grade": 1, "serious": False,
                                                   "relatedness": "possible",
                                                   "onset": date.today().isoformat()}),
                       ("/api/v1/observations", {"subject": "C1", "visit": "month3\x00",
                                                 "outcome": "LVEF", "value": 3, "unit": "%"}),
                       ("/api/v1/subjects/C%00/dose-decision", {"decision": "accept"}),
                       ("/api/v1/subjects/C1/dose-decision", {"decision": "override",
                                                              "level": 1, "reason": "x\x00"})):
        _problem(client.post(path, headers=doc, json=body), 422, "")
    assert counts(web_db) == before
