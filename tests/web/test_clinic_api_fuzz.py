"""Generated requests against the clinic API and pages (both backends): whatever the body,
form or query, the answer is never a 500 (bad input is a 4xx, a problem document for the API)."""

from __future__ import annotations

from datetime import date
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from web._clinic_world import build_clinic_world

TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=80)
ANY = st.one_of(TEXT, st.integers(-10**20, 10**20), st.floats(allow_nan=False, allow_infinity=False),
                st.booleans(), st.none(), st.lists(TEXT, max_size=8))
DAY = st.one_of(st.dates(date(1900, 1, 1), date(2200, 1, 1)).map(date.isoformat), TEXT)


@pytest.fixture
def world(web_db):
    return build_clinic_world(web_db)


def _bodies(world) -> dict:
    subject = st.one_of(st.just("C1"), TEXT)
    vial = st.one_of(st.sampled_from([*world["good"], world["unreleased"], world["expired"]]),
                     TEXT)
    return {
        "/api/v1/administrations/check": {"subject": subject, "vial": vial,
                                          "level": st.one_of(st.integers(-5, 200), ANY),
                                          "dose": ANY, "at": st.one_of(TEXT, st.datetimes(
                                              timezones=st.just(None)).map(str)),
                                          "weight_kg": ANY, "site": ANY},
        "/api/v1/adverse-events": {"subject": subject, "term": TEXT, "grade": st.one_of(
            st.integers(-2, 8), ANY), "serious": ANY, "relatedness": st.one_of(st.sampled_from(
                ["possible", "not related", "definite"]), TEXT), "onset": DAY,
            "criteria": ANY, "outcome": ANY, "resolved": DAY, "awareness": DAY},
        "/api/v1/observations": {"subject": subject, "visit": st.one_of(st.sampled_from(
            ["baseline", "month3", "month6"]), TEXT), "outcome": st.one_of(st.sampled_from(
                ["LVEF", "NTPROBNP", "6MWD"]), TEXT), "value": ANY,
            "unit": st.one_of(st.sampled_from(["%", "pg/mL", "ng/mL", "m", "kg"]), TEXT),
            "observed_on": DAY},
        "/api/v1/subjects/C1/dose-decision": {"decision": st.one_of(st.sampled_from(
            ["accept", "override"]), TEXT), "level": ANY, "reason": ANY, "on": DAY},
    }


def _fuzz_post(client, headers, path: str, fields: dict):
    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(body=st.fixed_dictionaries({}, optional=fields))
    def post(body):
        response = client.post(path, headers=headers, json=body)
        assert response.status_code < 500, (path, body, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")

    post()


def test_generated_bodies_never_crash_the_clinic_api(client, world, bearer):
    headers = bearer("clinician1")
    for path, fields in _bodies(world).items():
        _fuzz_post(client, headers, path, fields)


def test_generated_queries_never_crash_the_clinic_api(client, world, bearer):
    headers = bearer("viewer1")

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(code=TEXT, key=st.sampled_from(["donor", "lot", "cell_bank", "reagent_batch"]),
           as_of=DAY, horizon=st.one_of(st.integers(-10, 5000), TEXT))
    def get(code, key, as_of, horizon):
        for path, params in (("/api/v1/subjects", {"protocol": code}),
                             ("/api/v1/recall", {key: code}),
                             ("/api/v1/followup/due", {"as_of": as_of, "horizon_days": horizon})):
            response = client.get(path, headers=headers, params=params)
            assert response.status_code < 500, (path, params, response.text)
        response = client.get("/api/v1/subjects/" + quote(code, safe=""), headers=headers)
        assert response.status_code < 500, (code, response.text)

    get()


def test_generated_page_forms_never_crash_the_clinic_pages(client, world):
    from web.conftest import sign_in

    csrf = sign_in(client, "clinician1")
    short = st.one_of(TEXT, st.sampled_from(["", "1", "3", "-1", "1e400", "nan", "2025-13-01"]))
    forms = {
        "/clinic/administer": {"subject": st.one_of(st.just("C1"), TEXT), "vial": st.one_of(
            st.sampled_from(world["good"]), TEXT), "level": short, "dose": short, "at": short,
            "weight_kg": short, "site": TEXT},
        "/clinic/subjects/C1/adverse-events": {"term": TEXT, "grade": short, "serious": short,
                                               "relatedness": TEXT, "onset": DAY,
                                               "outcome": TEXT, "resolved": DAY,
                                               "awareness": DAY, "expected": short},
        "/clinic/subjects/C1/observations": {"visit": st.one_of(st.just("month3"), TEXT),
                                             "outcome": st.one_of(st.just("LVEF"), TEXT),
                                             "value": short, "unit": TEXT, "observed_on": DAY},
        "/clinic/subjects/C1/dose-decision": {"decision": st.one_of(st.sampled_from(
            ["accept", "override"]), TEXT), "level": short, "reason": TEXT},
    }
    for path, fields in forms.items():
        _fuzz_form(client, csrf, path, fields)


def _fuzz_form(client, csrf: str, path: str, fields: dict):
    @settings(max_examples=30, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(data=st.fixed_dictionaries({}, optional=fields))
    def post(data):
        response = client.post(path, data={"csrf_token": csrf, **data})
        assert response.status_code < 500, (path, data, response.text[-800:])
        if path == "/clinic/administer":  # the check (GET) with the same values
            response = client.get(path, params=data)
            assert response.status_code < 500, (path, data, response.text[-800:])

    post()
