"""Clinic pages through the TestClient (SQLite and PostgreSQL): the bedside check and confirm,
adverse events, observations, dose decisions, follow-up and recall; refusals by role and
without the CSRF token; hostile text escaped."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest

from web._clinic_world import audit_actors, build_clinic_world, counts, wrong_check_character
from web.conftest import sign_in

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def world(web_db):
    return build_clinic_world(web_db)


def _check(client, world, vial: str):
    return client.get("/clinic/administer", params={"subject": world["subject"], "vial": vial})


def _verdicts(html: str) -> dict[str, str]:
    """check key -> Passed / Failed / Not checked, as the page shows them."""
    return dict(re.findall(r'data-check="([^"]+)">\s*<span class="verdict">([^<]+)</span>', html))


def _confirm(client, csrf, world, vial, **extra):
    data = {"csrf_token": csrf, "subject": world["subject"], "vial": vial, **extra}
    return client.post("/clinic/administer", data=data)


def test_bedside_check_refuses_bad_vials_then_confirms_a_good_one(client, world, web_db):
    csrf = sign_in(client, "clinician1")
    before = counts(web_db)
    blank = client.get("/clinic/administer")
    assert blank.status_code == 200 and '<datalist id="subject-codes"><option value="C1"></datalist>' \
        in blank.text and "Checks for vial" not in blank.text

    page = _check(client, world, wrong_check_character(world["good"][0]))
    assert page.status_code == 200
    verdicts = _verdicts(page.text)
    assert verdicts["identifier"] == "Failed"
    assert set(verdicts.values()) - {"Failed"} == {"Not checked"}
    assert "check character does not match" in page.text
    assert "Confirm administration" not in page.text

    page = _check(client, world, world["unreleased"])
    verdicts = _verdicts(page.text)
    assert (verdicts["identifier"], verdicts["vial"], verdicts["lot status"]) == (
        "Passed", "Passed", "Failed")
    assert verdicts["expiry"] == "Passed" and verdicts["dose"] == "Not checked"
    assert (f"Refused: vial {world['unreleased']}: lot L-HOLD is &#39;in_process&#39;, not "
            "released by QA") in page.text
    assert "Confirm administration" not in page.text

    page = _check(client, world, world["expired"])
    verdicts = _verdicts(page.text)
    assert (verdicts["lot status"], verdicts["expiry"]) == ("Passed", "Failed")
    assert "lot L-OLD expired on" in page.text and "(10 days ago)" in page.text
    assert "Confirm administration" not in page.text

    good = world["good"][0]
    page = _check(client, world, good.lower())  # a scanner may send lower case
    verdicts = _verdicts(page.text)
    assert set(verdicts.values()) == {"Passed"} and len(verdicts) == 13
    # 2e10 particles/kg x 70 kg at 2e11 particles/mL: 1.4e12 particles in 7 mL
    assert "1.4e+12 particles in 7 mL" in page.text
    assert "Confirm administration" in page.text
    # Checking wrote nothing (the dry run is rolled back), not even an audit entry.
    assert counts(web_db) == before

    # Confirming an unreleased vial anyway (a forged form) is refused; nothing written.
    refused = _confirm(client, csrf, world, world["unreleased"])
    assert refused.status_code == 422
    assert "not released by QA" in refused.text
    assert counts(web_db) == before

    done = _confirm(client, csrf, world, good)
    assert done.status_code == 303
    assert done.headers["location"] == "/clinic/subjects/C1?saved=administration"
    after = counts(web_db)
    assert after["administrations"] == before["administrations"] + 1
    assert audit_actors(web_db, "administration") == ["clinician1"]
    timeline = client.get(done.headers["location"])
    assert "Administration recorded." in timeline.text
    assert "Level in effect 3 (2e+10 particles/kg); 1 administration given." in timeline.text
    assert f"vial {good} (lot L-GOOD), level 3" in timeline.text

    # The same vial again: no longer available.
    page = _check(client, world, good)
    assert _verdicts(page.text)["vial status"] == "Failed"
    assert _confirm(client, csrf, world, good).status_code == 422
    assert counts(web_db)["administrations"] == after["administrations"]


def test_bedside_input_errors_are_messages_not_crashes(client, world, web_db):
    csrf = sign_in(client, "clinician1")
    page = client.get("/clinic/administer", params={"subject": "C1", "vial": world["good"][0],
                                                    "at": "2025-06-01T10:00"})
    assert page.status_code == 422 and "has no time zone" in page.text
    page = client.get("/clinic/administer", params={"subject": "C1", "vial": world["good"][0],
                                                    "level": "9"})
    verdicts = _verdicts(page.text)
    assert (verdicts["dose"], verdicts["rules"]) == ("Failed", "Not checked")
    assert page.status_code == 200 and "Confirm administration" not in page.text
    in_an_hour = (datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="minutes")
    page = client.get("/clinic/administer", params={"subject": "C1", "vial": world["good"][0],
                                                    "at": in_an_hour})
    verdicts = _verdicts(page.text)
    assert (verdicts["dose"], verdicts["rules"]) == ("Not checked", "Failed")
    assert "is in the future" in page.text
    page = client.get("/clinic/administer", params={"subject": "NOBODY", "vial":
                                                    world["good"][0]})
    assert _verdicts(page.text)["subject"] == "Failed"
    assert "no subject with code &#39;NOBODY&#39;" in page.text
    response = _confirm(client, csrf, world, world["good"][0], level="x")
    assert response.status_code == 422 and "give a whole number" in response.text
    assert counts(web_db)["administrations"] == 0


def test_roles_without_clinical_permission_are_refused_and_nothing_is_written(app, world,
                                                                              web_db):
    from fastapi.testclient import TestClient

    before = counts(web_db)
    for user in ("analyst1", "viewer1", "qa1"):
        with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as c:
            csrf = sign_in(c, user)
            assert c.get("/clinic").status_code == 200  # every role may read
            assert c.get("/clinic/subjects/C1").status_code == 200
            assert c.get("/clinic/administer").status_code == 403
            assert _check(c, world, world["good"][0]).status_code == 403
            assert _confirm(c, csrf, world, world["good"][0]).status_code == 403
            r = c.post("/clinic/subjects/C1/adverse-events",
                       data={"csrf_token": csrf, "term": "headache", "grade": "1",
                             "relatedness": "possible", "onset": date.today().isoformat()})
            assert r.status_code == 403
            r = c.post("/clinic/subjects/C1/dose-decision",
                       data={"csrf_token": csrf, "decision": "override", "level": "1",
                             "reason": "x"})
            assert r.status_code == 403
            # the forms are not offered either
            page = c.get("/clinic/subjects/C1").text
            assert "Record an adverse event" not in page and "Record decision" not in page
    assert counts(web_db) == before


def test_posts_without_the_csrf_token_are_refused(client, world, web_db):
    sign_in(client, "clinician1")
    before = counts(web_db)
    r = client.post("/clinic/administer", data={"subject": "C1", "vial": world["good"][0]})
    assert r.status_code == 403
    r = client.post("/clinic/subjects/C1/adverse-events",
                    data={"term": "headache", "grade": "1", "relatedness": "possible",
                          "onset": date.today().isoformat()})
    assert r.status_code == 403
    assert counts(web_db) == before


def _ae(client, csrf, **fields):
    data = {"csrf_token": csrf, "term": "headache", "grade": "1", "relatedness": "possible",
            "onset": date.today().isoformat(), **fields}
    return client.post("/clinic/subjects/C1/adverse-events", data=data)


def test_adverse_event_with_hostile_text_is_shown_escaped(client, world, web_db):
    csrf = sign_in(client, "clinician1")
    r = _ae(client, csrf, term=HOSTILE, grade="2", serious="1",
            criterion=["hospitalisation"])
    assert r.status_code == 303 and r.headers["location"] == "/clinic/subjects/C1?saved=ae"
    page = client.get(r.headers["location"]).text
    assert "Adverse event recorded." in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert HOSTILE not in page
    assert "CTCAE grade 2, serious (hospitalisation), possible" in page
    assert audit_actors(web_db, "adverse_event") == ["clinician1"]


def test_adverse_event_form_refusals_re_render_with_the_message(client, world, web_db):
    csrf = sign_in(client, "clinician1")
    before = counts(web_db)
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    cases = [({"grade": "6"}, "give a number from 1 to 5"),
             ({"grade": ""}, "CTCAE grade is required"),
             ({"onset": tomorrow}, "is in the future"),
             ({"onset": "07/12/2026"}, "give a day as YYYY-MM-DD"),
             ({"term": "x" * 201}, "at most 200 characters"),
             ({"relatedness": "maybe"}, "maybe"),
             ({"relatedness": ""}, "relatedness"),
             ({"criterion": ["death"]}, "seriousness criteria given for an event marked not "
                                        "serious")]
    for fields, message in cases:
        r = _ae(client, csrf, **fields)
        assert r.status_code == 422, (fields, r.status_code)
        assert message in r.text, (fields, r.text[-1500:])
    # the form keeps what was typed
    r = _ae(client, csrf, term=HOSTILE, grade="6")
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in r.text
    assert counts(web_db) == before


def test_observation_shows_change_from_baseline(client, world, web_db):
    csrf = sign_in(client, "clinician1")
    r = client.post("/clinic/subjects/C1/observations",
                    data={"csrf_token": csrf, "visit": "month3", "outcome": "LVEF",
                          "value": "42", "unit": "%"})
    assert r.status_code == 303
    page = client.get(r.headers["location"]).text
    assert "LVEF at month3: 42 % (change from baseline +7, +20.0 %)" in page
    assert "outside window" in page  # measured today, long before month 3
    # the same outcome at the same visit again: refused, nothing written
    before = counts(web_db)
    r = client.post("/clinic/subjects/C1/observations",
                    data={"csrf_token": csrf, "visit": "month3", "outcome": "LVEF",
                          "value": "43", "unit": "%"})
    assert r.status_code == 409 and "already recorded" in r.text
    r = client.post("/clinic/subjects/C1/observations",
                    data={"csrf_token": csrf, "visit": "month3", "outcome": "LVEF",
                          "value": "abc", "unit": "%"})
    assert r.status_code == 422 and "give a number" in r.text
    assert counts(web_db) == before


def test_dose_proposal_is_accepted_or_overridden_with_a_reason(client, world, web_db):
    csrf = sign_in(client, "clinician1")
    assert _confirm(client, csrf, world, world["good"][0]).status_code == 303
    # a related grade 2 event after the infusion: the rules propose one level down
    assert _ae(client, csrf, grade="2", relatedness="probable").status_code == 303
    page = client.get("/clinic/subjects/C1").text
    assert "The rules propose: <strong>reduce to level 2</strong>" in page
    assert "Dosing blocked: dose proposal" in page
    check = _check(client, world, world["good"][1])
    verdicts = _verdicts(check.text)
    assert (verdicts["vial status"], verdicts["dose"], verdicts["rules"]) == (
        "Passed", "Not checked", "Failed")
    assert "awaits a clinician" in check.text and "Confirm administration" not in check.text

    before = counts(web_db)
    r = client.post("/clinic/subjects/C1/dose-decision",
                    data={"csrf_token": csrf, "decision": "override", "level": "1"})
    assert r.status_code == 422 and "a dose override needs a reason" in r.text
    assert counts(web_db) == before

    r = client.post("/clinic/subjects/C1/dose-decision",
                    data={"csrf_token": csrf, "decision": "accept"})
    assert r.status_code == 303
    page = client.get("/clinic/subjects/C1").text
    assert "<strong>accepted</strong> by clinician1" in page
    assert "Level in effect 2" in page and "Dosing blocked" not in page
    r = client.post("/clinic/subjects/C1/dose-decision",
                    data={"csrf_token": csrf, "decision": "accept"})
    assert r.status_code == 409 and "no dose proposal waiting" in r.text
    r = client.post("/clinic/subjects/C1/dose-decision",
                    data={"csrf_token": csrf, "decision": "override", "level": "3",
                          "reason": "investigator: event resolved"})
    assert r.status_code == 303
    page = client.get("/clinic/subjects/C1").text
    assert "Level in effect 3" in page
    assert "&ldquo;investigator: event resolved&rdquo;" in page
    assert set(audit_actors(web_db, "dose_decision")) == {"clinician1"}


def test_subjects_list_and_follow_up_due(client, world):
    sign_in(client, "viewer1")
    page = client.get("/clinic").text
    assert '<a href="/clinic/subjects/C1">C1</a>' in page and "EXO-CARD-01" in page
    other = client.get("/clinic", params={"protocol": "EXO-SKIN-01"})
    assert other.status_code == 404 and "no protocol &#39;EXO-SKIN-01&#39;" in other.text
    assert "1 subject<" in client.get("/clinic", params={"protocol": "EXO-CARD-01"}).text
    # month3 is day 91 (window from day 77): not within 14 days, within 80
    near = client.get("/clinic/followup").text
    assert "month3" not in near
    far = client.get("/clinic/followup", params={"horizon_days": "80"}).text
    target = (date.today() + timedelta(days=91)).isoformat()
    assert "month3" in far and target in far and "upcoming" in far
    assert client.get("/clinic/followup", params={"horizon_days": "-1"}).status_code == 422
    assert client.get("/clinic/followup", params={"as_of": "soon"}).status_code == 422
    assert client.get("/clinic/subjects/NOBODY").status_code == 404


def test_recall_page_and_csv(client, world):
    csrf = sign_in(client, "clinician1")
    assert _confirm(client, csrf, world, world["good"][0]).status_code == 303
    page = client.get("/clinic/recall", params={"kind": "donor", "key": "D-A"})
    assert page.status_code == 200
    assert "1 subject, 1 administration." in page.text
    download = client.get("/clinic/recall.csv", params={"kind": "donor", "key": "D-A"})
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert 'filename="recall-donor-D-A.csv"' in download.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [(r["subject"], r["vial"], r["lot"]) for r in rows] == [
        ("C1", world["good"][0], "L-GOOD")]
    assert float(rows[0]["particles"]) == pytest.approx(1.4e12)
    lot = client.get("/clinic/recall", params={"kind": "lot", "key": "L-HOLD"})
    assert "0 subjects, 0 administrations." in lot.text
    missing = client.get("/clinic/recall", params={"kind": "lot", "key": "NOPE"})
    assert missing.status_code == 404 and "no lot with number &#39;NOPE&#39;" in missing.text
    assert client.get("/clinic/recall", params={"kind": "planet", "key": "x"}).status_code == 422
    assert client.get("/clinic/recall.csv", params={"kind": "lot"}).status_code == 422


def test_recall_csv_neutralises_formula_cells():
    from exotrace.web.clinic import RECALL_CSV_COLUMNS, recall_csv_text

    row = {k: "x" for k in RECALL_CSV_COLUMNS}
    row.update(subject="=HYPERLINK(\"http://evil\")", protocol="+SUM(A1)", arm="@cmd",
               vial="-2+3", lot="\tL", dose=-1.5, particles="-1.5e12",
               administered_at=date(2026, 1, 2))
    text = recall_csv_text({"administrations": [row]})
    (out,) = list(csv.DictReader(io.StringIO(text)))
    assert out["subject"] == "'=HYPERLINK(\"http://evil\")"
    assert (out["protocol"], out["arm"], out["vial"], out["lot"]) == (
        "'+SUM(A1)", "'@cmd", "'-2+3", "'\tL")
    # numbers stay numbers, negative ones too
    assert (out["dose"], out["particles"]) == ("-1.5", "-1.5e12")
    assert out["administered_at"] == "2026-01-02"


def test_control_characters_in_page_input_are_422_not_500(client, world, web_db):
    csrf = sign_in(client, "clinician1")
    before = counts(web_db)
    vial = world["good"][0]
    for path in ("/clinic/subjects/C%00", "/clinic/recall?kind=lot&key=L%00",
                 "/clinic?protocol=%00", f"/clinic/administer?subject=C%00&vial={vial}",
                 f"/clinic/administer?subject=C1&site=%00&vial={vial}",
                 "/clinic/recall.csv?kind=donor&key=D%00"):
        assert client.get(path).status_code == 422, path
    r = _ae(client, csrf, term="rash\x00")
    assert r.status_code == 422 and "control character U+0000" in r.text
    r = client.post("/clinic/subjects/C%00/observations",
                    data={"csrf_token": csrf, "visit": "month3", "outcome": "LVEF", "value": "1"})
    assert r.status_code == 422
    r = _confirm(client, csrf, world, vial, subject="C\x00")
    assert r.status_code == 422
    assert counts(web_db) == before


def test_timeline_orders_a_day_around_its_administrations():
    from exotrace.web.clinic import timeline

    day = date(2026, 3, 2)
    view = {"administrations": [{"administered_at": datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
                                 "n": "inf1"},
                                {"administered_at": datetime(2026, 3, 1, 23, 0, tzinfo=UTC),
                                 "n": "early"}],
            "observations": [{"observed_on": day, "n": "baseline"},
                             {"observed_on": date(2026, 3, 3), "n": "later"}],
            "adverse_events": [{"onset": day, "n": "rash"}],
            "dose_decisions": [{"evaluated_on": day, "n": "reduce"}]}
    assert [e["item"]["n"] for e in timeline(view)] == [
        "early", "baseline", "inf1", "rash", "reduce", "later"]
    assert [e["kind"] for e in timeline({"administrations": [], "observations": None})] == []
