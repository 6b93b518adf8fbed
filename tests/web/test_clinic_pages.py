"""Clinic pages through the TestClient (SQLite and PostgreSQL): the bedside check and confirm,
adverse events, observations, dose decisions, follow-up and recall; refusals by role and
without the CSRF token; hostile text escaped."""

from __future__ import annotations

import re

import pytest

from web._clinic_world import audit_actors, build_clinic_world, counts, wrong_check_character
from web.conftest import sign_in


@pytest.fixture
def world(web_db):
    return build_clinic_world(web_db)


def _check(client, world, vial: str):
    return client.get("/clinic/administer", params={"subject": world["subject"], "vial": vial})


def _verdicts(html: str) -> dict[str, str]:
    """check key -> Passed / Failed / Not checked, as the page shows them."""
    return dict(re.findall(r'data-check="([^"]+)">\s*<span class="verdict">([^<]+)</span>', html))


def test_smoke(client, world, web_db):
    sign_in(client, "clinician1")
    r = _check(client, world, world["good"][0])
    print(r.status_code, r.text[-3000:])
    assert r.status_code == 200
