"""The release workflow through the pages (/lots/{number}/release): the happy path by three
people with signatures, and every refusal the CLI gives, shown on the page with nothing
written (the audit chain keeps its length)."""

from __future__ import annotations

import re
from datetime import date

import pytest

from _db_fixtures import TEST_PASSWORD
from web.conftest import sign_in
from web.release_data import audit_actions, audit_length, build_lot, lot_status

REVIEW = "Review: I have verified these results"


def _post(client, path, csrf, **data):
    return client.post(path, data={"csrf_token": csrf, **data})


def _as(client, username):
    client.cookies.clear()
    return sign_in(client, username)


@pytest.fixture
def lot(web_db):
    build_lot(web_db, "EV-W-1")
    return "EV-W-1"


def test_page_shows_the_evaluation_and_only_the_forms_of_the_role(client, lot):
    csrf = _as(client, "reviewer1")
    page = client.get(f"/lots/{lot}/release")
    assert page.status_code == 200
    assert "MSC-sEV lot release specification version 1.0" in page.text
    assert re.search(r'data-testid="conclusion">complies<', page.text)
    assert 'action="/lots/EV-W-1/release/verify"' in page.text
    assert REVIEW in page.text and "Signing as Reviewer One (reviewer1)" in page.text
    assert 'action="/lots/EV-W-1/release/release"' not in page.text
    assert 'action="/lots/EV-W-1/release/results"' not in page.text
    assert csrf in page.text
    _as(client, "viewer1")
    page = client.get(f"/lots/{lot}/release")
    assert page.status_code == 200
    assert "/verify" not in page.text and "/submit" not in page.text
    # Results with who entered them (analyst1 entered all eleven).
    assert page.text.count("<td>analyst1</td>") == 11


def test_unknown_lot_is_a_404_page(client, web_db):
    _as(client, "viewer1")
    page = client.get("/lots/NO-SUCH/release")
    assert page.status_code == 404 and "no lot with number &#39;NO-SUCH&#39;" in page.text


def test_release_by_three_people_with_signatures_and_audit(client, web_db, lot):
    start = audit_length(web_db)
    csrf = _as(client, "analyst1")
    done = _post(client, f"/lots/{lot}/release/submit", csrf)
    assert done.status_code == 303 and done.headers["location"].endswith("done=submitted")
    assert lot_status(web_db, lot) == "awaiting_release"

    csrf = _as(client, "reviewer1")
    done = _post(client, f"/lots/{lot}/release/verify", csrf, password=TEST_PASSWORD)
    assert done.status_code == 303
    page = client.get(done.headers["location"])
    signed = re.search(r'data-testid="signed-name">([^<]*)<.*?data-testid="signed-at">([^<]*)<'
                       r'.*?data-testid="signed-meaning">([^<]*)<', page.text, re.S)
    assert signed.group(1) == "Reviewer One (reviewer1)"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", signed.group(2))
    assert signed.group(3) == f"{REVIEW} (review)"
    assert 'data-testid="release-state">verified<' in page.text

    csrf = _as(client, "qa1")
    done = _post(client, f"/lots/{lot}/release/release", csrf, password=TEST_PASSWORD)
    assert done.status_code == 303
    page = client.get(done.headers["location"])
    assert "Lot released and signed." in page.text
    assert "Approval: I release this lot for use (approval)" in page.text
    assert page.text.count('data-testid="signature-row"') == 2
    assert lot_status(web_db, lot) == "released"
    assert "the workflow is complete" in page.text

    actions = [(t, a, n) for t, a, n in audit_actions(web_db, start)
               if t in ("lot", "lot_verification", "lot_disposition", "signature")]
    assert actions == [("lot", "update", "analyst1"),
                       ("lot_verification", "create", "reviewer1"),
                       ("signature", "create", "reviewer1"),
                       ("lot", "update", "qa1"), ("lot_disposition", "create", "qa1"),
                       ("signature", "create", "qa1")]


def _refused(client, web_db, path, csrf, status, message, **data):
    """POST ``path``: refused with ``status`` and ``message`` on the page, nothing written."""
    before = audit_length(web_db)
    response = _post(client, path, csrf, **data)
    assert response.status_code == status, response.text[:3000]
    assert message in response.text.replace("&#39;", "'")
    assert audit_length(web_db) == before
    return response


def test_self_verification_is_refused(client, web_db, lot):
    # qa1 sends the lot to release, so qa1 changed the lot: verifying it is refused.
    csrf = _as(client, "qa1")
    assert _post(client, f"/lots/{lot}/release/submit", csrf).status_code == 303
    page = _refused(client, web_db, f"/lots/{lot}/release/verify", csrf, 403,
                    "user qa1 changed lot EV-W-1; the same person may not verify it",
                    password=TEST_PASSWORD)
    assert 'role="alert"' in page.text and 'data-testid="release-state">results_entered<' \
        in page.text


def test_wrong_roles_are_refused(client, web_db, lot):
    csrf = _as(client, "analyst1")
    _refused(client, web_db, f"/lots/{lot}/release/verify", csrf, 403,
             "your role (analyst) may not do this (needs permission review)",
             password=TEST_PASSWORD)
    assert _post(client, f"/lots/{lot}/release/submit", csrf).status_code == 303
    csrf = _as(client, "reviewer1")
    assert _post(client, f"/lots/{lot}/release/verify", csrf,
                 password=TEST_PASSWORD).status_code == 303
    _refused(client, web_db, f"/lots/{lot}/release/release", csrf, 403,
             "your role (reviewer) may not do this (needs permission approve)",
             password=TEST_PASSWORD)
    csrf = _as(client, "viewer1")
    for step in ("submit", "verify", "release", "reject", "quarantine", "results"):
        _refused(client, web_db, f"/lots/{lot}/release/{step}", csrf, 403,
                 "your role (viewer) may not do this", password=TEST_PASSWORD,
                 reason="x", test="potency", value="99")
    assert lot_status(web_db, lot) == "awaiting_release"


def test_verifier_releasing_is_refused_a_second_qa_releases(client, web_db, lot):
    csrf = _as(client, "analyst1")
    _post(client, f"/lots/{lot}/release/submit", csrf)
    csrf = _as(client, "qa1")
    assert _post(client, f"/lots/{lot}/release/verify", csrf,
                 password=TEST_PASSWORD).status_code == 303
    _refused(client, web_db, f"/lots/{lot}/release/release", csrf, 403,
             "user qa1 verified lot EV-W-1", password=TEST_PASSWORD)
    csrf = _as(client, "qa2")
    assert _post(client, f"/lots/{lot}/release/release", csrf,
                 password=TEST_PASSWORD).status_code == 303
    assert lot_status(web_db, lot) == "released"


def test_expired_lot_is_not_released(client, web_db):
    build_lot(web_db, "EV-OLD", manufactured_on=date(2024, 1, 10),
              expires_on=date(2024, 7, 10))
    csrf = _as(client, "analyst1")
    _post(client, "/lots/EV-OLD/release/submit", csrf)
    csrf = _as(client, "reviewer1")
    assert _post(client, "/lots/EV-OLD/release/verify", csrf,
                 password=TEST_PASSWORD).status_code == 303
    csrf = _as(client, "qa1")
    _refused(client, web_db, "/lots/EV-OLD/release/release", csrf, 422,
             "lot EV-OLD expired on 2024-07-10; an expired lot cannot be released",
             password=TEST_PASSWORD)
    assert lot_status(web_db, "EV-OLD") == "awaiting_release"


def test_oos_without_closed_investigation_blocks_release_until_closed(client, web_db):
    opened = build_lot(web_db, "EV-OOS", endotoxin=0.7)
    assert len(opened) == 1
    inv = opened[0]
    csrf = _as(client, "qa1")
    page = client.get("/lots/EV-OOS/release")
    assert re.search(r'data-testid="conclusion">does not comply<', page.text)
    assert f"Open OOS investigations: {inv}" in page.text
    assert f'action="/lots/EV-OOS/release/investigations/{inv}/close"' in page.text
    csrf = _as(client, "analyst1")
    _post(client, "/lots/EV-OOS/release/submit", csrf)
    csrf = _as(client, "reviewer1")
    assert _post(client, "/lots/EV-OOS/release/verify", csrf,
                 password=TEST_PASSWORD).status_code == 303
    csrf = _as(client, "qa1")
    _refused(client, web_db, "/lots/EV-OOS/release/release", csrf, 422,
             f"open OOS investigation(s) {inv}", password=TEST_PASSWORD)
    # Closing as a lab error needs the retest first: refused, nothing written.
    _refused(client, web_db, f"/lots/EV-OOS/release/investigations/{inv}/close", csrf, 422,
             "a lab error conclusion needs the retest", conclusion="lab_error",
             phase="phase_I", summary="tube not pyrogen-free")
    page = client.get("/lots/EV-OOS/release")
    original = re.search(r"<td>(R\d+)</td><td>endotoxin</td>", page.text).group(1)
    csrf = _as(client, "analyst1")
    done = _post(client, "/lots/EV-OOS/release/results", csrf, test="endotoxin", value="0.09",
                 unit="EU/mL", retest_of=original)
    assert done.status_code == 303 and done.headers["location"].endswith("done=result")
    csrf = _as(client, "qa1")
    assert _post(client, f"/lots/EV-OOS/release/investigations/{inv}/close", csrf,
                 conclusion="lab_error", phase="phase_I",
                 summary="tube not pyrogen-free").status_code == 303
    page = client.get("/lots/EV-OOS/release")
    assert re.search(r'data-testid="conclusion">complies<', page.text)
    # The retest made the verification stale: verify again, then release.
    csrf = _as(client, "reviewer1")
    assert _post(client, "/lots/EV-OOS/release/verify", csrf,
                 password=TEST_PASSWORD).status_code == 303
    csrf = _as(client, "qa1")
    assert _post(client, "/lots/EV-OOS/release/release", csrf,
                 password=TEST_PASSWORD).status_code == 303
    assert lot_status(web_db, "EV-OOS") == "released"


def test_an_investigation_is_closed_only_from_its_own_lot(client, web_db, lot):
    inv = build_lot(web_db, "EV-OOS2", endotoxin=0.8)[0]
    csrf = _as(client, "qa1")
    _refused(client, web_db, f"/lots/{lot}/release/investigations/{inv}/close", csrf, 404,
             f"lot EV-W-1 has no OOS investigation {inv}", conclusion="confirmed_oos",
             phase="phase_II", summary="process cause")


def test_out_of_spec_result_entered_in_the_page_opens_an_investigation(client, web_db):
    build_lot(web_db, "EV-R", results=False)
    csrf = _as(client, "analyst1")
    done = _post(client, "/lots/EV-R/release/results", csrf, test="endotoxin", value="0.93",
                 unit="EU/mL", method="LAL kinetic")
    assert done.status_code == 303 and done.headers["location"].endswith("done=result-oos")
    page = client.get(done.headers["location"])
    assert "an OOS investigation was opened" in page.text
    assert re.search(r"<td>OOS-\d+</td><td>endotoxin</td>", page.text)
    # A unit that does not fit: refused with the service's message, nothing written.
    _refused(client, web_db, "/lots/EV-R/release/results", csrf, 422, "EU/mL",
             test="endotoxin", value="0.1", unit="nm")


def test_reject_and_quarantine_need_a_reason_and_sign(client, web_db, lot):
    csrf = _as(client, "qa1")
    _refused(client, web_db, f"/lots/{lot}/release/quarantine", csrf, 422,
             "quarantine needs a reason", password=TEST_PASSWORD, reason=" ")
    done = _post(client, f"/lots/{lot}/release/quarantine", csrf, password=TEST_PASSWORD,
                 reason="NTA drift under investigation")
    assert done.status_code == 303
    page = client.get(done.headers["location"])
    assert "Approval: I place this lot in quarantine (approval)" in page.text
    assert "Qa One (qa1)" in page.text
    assert lot_status(web_db, lot) == "quarantined"
    # The quarantining QA changed the lot: a second QA makes the rejection decision.
    _refused(client, web_db, f"/lots/{lot}/release/reject", csrf, 403,
             "user qa1 changed lot EV-W-1; the same person may not reject it",
             password=TEST_PASSWORD, reason="drift confirmed")
    csrf = _as(client, "qa2")
    done = _post(client, f"/lots/{lot}/release/reject", csrf, password=TEST_PASSWORD,
                 reason="drift confirmed")
    assert done.status_code == 303 and lot_status(web_db, lot) == "rejected"
    page = client.get(done.headers["location"])
    assert "Approval: I reject this lot (approval)" in page.text and "QA Two (qa2)" in page.text


def test_wrong_password_is_refused_and_counted_nothing_else_written(client, web_db, lot):
    import sqlalchemy as sa

    from exotrace.records import Lot, User, make_engine

    csrf = _as(client, "analyst1")
    _post(client, f"/lots/{lot}/release/submit", csrf)
    csrf = _as(client, "reviewer1")
    response = _post(client, f"/lots/{lot}/release/verify", csrf, password="not-my-password-1")
    assert response.status_code == 401
    assert "reviewer1: unknown user or wrong password" in response.text
    engine = make_engine(web_db)
    try:
        with engine.connect() as conn:
            failed = conn.execute(sa.select(User.failed_sign_ins).where(
                User.username == "reviewer1")).scalar_one()
            status = conn.execute(sa.select(Lot.status).where(Lot.number == lot)).scalar_one()
    finally:
        engine.dispose()
    assert failed == 1 and status.value == "awaiting_release"
    assert [t for t, _, _ in audit_actions(web_db, audit_length(web_db) - 1)] == ["user_account"]


def test_post_without_csrf_token_is_refused_and_writes_nothing(client, web_db, lot):
    _as(client, "analyst1")
    before = audit_length(web_db)
    for step, data in (("submit", {}), ("results", {"test": "potency", "value": "99",
                                                     "unit": "%"})):
        response = client.post(f"/lots/{lot}/release/{step}", data=data)
        assert response.status_code == 403
    _as(client, "reviewer1")
    response = client.post(f"/lots/{lot}/release/verify", data={"password": TEST_PASSWORD,
                                                                "csrf_token": "forged"})
    assert response.status_code == 403
    assert audit_length(web_db) == before and lot_status(web_db, lot) == "in_process"


def test_hostile_text_is_rendered_escaped(client, web_db):
    build_lot(web_db, "EV-X", results=False)
    csrf = _as(client, "analyst1")
    done = _post(client, "/lots/EV-X/release/results", csrf, test="potency", value="99",
                 unit="%", method="<script>alert(1)</script>")
    assert done.status_code == 303
    page = client.get("/lots/EV-X/release")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_reference_value_recorded_in_the_page(client, web_db):
    build_lot(web_db, "EV-REF", results=False)
    csrf = _as(client, "analyst1")
    page = client.get("/lots/EV-REF/release")
    assert "is judged against the lot&#39;s label_claim" in page.text
    _refused(client, web_db, "/lots/EV-REF/release/reference", csrf, 422,
             "reference value label_claim: must be a positive number", name="label_claim",
             value="-1", unit="particles/mL")
    _refused(client, web_db, "/lots/EV-REF/release/reference", csrf, 422,
             "reference value label_claim: 'lots' is not a number", name="label_claim",
             value="lots", unit="particles/mL")
    done = _post(client, "/lots/EV-REF/release/reference", csrf, name="label_claim",
                 value="1.05e11", unit="particles/mL")
    assert done.status_code == 303
    page = client.get(done.headers["location"])
    assert "Reference value recorded." in page.text
    assert "label_claim = 1.05e+11 particles/mL" in page.text
    # The lot's 1.0e11 particles/mL against the 1.05e11 claim: -4.8 %.
    assert "-4.8 %" in page.text


def test_a_reason_with_a_control_character_is_refused_on_both_backends(client, web_db, lot):
    csrf = _as(client, "qa1")
    _refused(client, web_db, f"/lots/{lot}/release/quarantine", csrf, 422,
             "reason holds the control character U+0000 at position 6",
             password=TEST_PASSWORD, reason="drift\x00")
    assert lot_status(web_db, lot) == "in_process"


def test_evaluate_opens_investigations_for_those_who_may(client, web_db):
    # A purity of 1e9 particles/ug (criterion >= 2e9) from a measurement: OOS, and no
    # investigation yet (measurements do not open one when entered).
    build_lot(web_db, "EV-EVAL", purity_per_ug=1.0e9)
    csrf = _as(client, "viewer1")
    page = client.get("/lots/EV-EVAL/release")
    assert "/release/evaluate" not in page.text
    assert re.search(r'data-testid="conclusion">does not comply<', page.text)
    before = audit_length(web_db)
    done = _post(client, "/lots/EV-EVAL/release/evaluate", csrf)
    assert done.headers["location"].endswith("done=evaluated")
    assert audit_length(web_db) == before  # a viewer's evaluation only reads
    csrf = _as(client, "analyst1")
    done = _post(client, "/lots/EV-EVAL/release/evaluate", csrf)
    assert done.headers["location"].endswith("done=evaluated-oos")
    page = client.get(done.headers["location"])
    row = re.search(r"<td>(OOS-\d+)</td><td>purity_ratio</td><td>(M\d+)</td>.*?<td>(\w+)</td>"
                    r"<td>(\w*)</td></tr>", page.text)
    assert row.group(3) == "analyst1" and row.group(4) == ""
    assert [t for t, a, n in audit_actions(web_db, before)] == ["oos_investigation"]
