"""A lot released by two people with signatures, in a real browser (Debian chromium):
the analyst enters the last result and submits, qa1 verifies (signature *review*), qa1's
own release is refused (segregation of duties), qa2 releases (signature *approval*);
self-verification is refused on the page; the audit trail holds each action with its user."""

from __future__ import annotations

import re

from _db_fixtures import TEST_PASSWORD
from web.conftest import browser_sign_in
from web.release_data import audit_actions, audit_length, build_lot, lot_status


def _switch(page, base, username):
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/login$"))
    browser_sign_in(page, base, username)


def _sign(page, form_name, button, password=TEST_PASSWORD):
    form = page.get_by_role("form", name=form_name)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name=button).click()
    page.wait_for_load_state()


def test_release_by_two_people_with_signatures(live_server, page, web_db):
    build_lot(web_db, "EV-B-1", leave_out=("potency",))
    build_lot(web_db, "EV-B-2")
    start = audit_length(web_db)
    base = live_server

    browser_sign_in(page, base, "analyst1")
    page.goto(f"{base}/lots/EV-B-1/release")
    assert "missing" in page.get_by_role("region", name="Evaluation").inner_text()
    entry = page.get_by_role("form", name="Enter a result")
    entry.get_by_label("Test", exact=True).fill("potency")
    entry.get_by_label("Value", exact=True).fill("104")
    entry.get_by_label("Unit", exact=True).fill("%")
    entry.get_by_role("button", name="Enter result").click()
    assert page.get_by_role("status").inner_text() == "Result entered."
    assert page.get_by_test_id("conclusion").inner_text() == "complies"
    page.get_by_role("form", name="Submit for release").get_by_role(
        "button", name="Submit for release").click()
    assert page.get_by_test_id("lot-status").inner_text() == "awaiting_release"
    # The analyst has no verification or release form.
    assert page.get_by_role("form", name="Verify results").count() == 0

    _switch(page, base, "qa1")
    page.goto(f"{base}/lots/EV-B-1/release")
    verify = page.get_by_role("form", name="Verify results")
    assert "Review: I have verified these results" in verify.inner_text()
    _sign(page, "Verify results", "Sign verification")
    assert page.get_by_test_id("signed-name").inner_text() == "Qa One (qa1)"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC",
                        page.get_by_test_id("signed-at").inner_text())
    assert page.get_by_test_id("signed-meaning").inner_text() == \
        "Review: I have verified these results (review)"
    # The verifier may not also release it: a message, and nothing changes.
    before = audit_length(web_db)
    _sign(page, "Release lot", "Sign release")
    assert "user qa1 verified lot EV-B-1" in page.get_by_role("alert").inner_text()
    assert audit_length(web_db) == before and lot_status(web_db, "EV-B-1") == "awaiting_release"

    # Self-verification: qa1 sends EV-B-2 to release, then may not verify it.
    page.goto(f"{base}/lots/EV-B-2/release")
    page.get_by_role("form", name="Submit for release").get_by_role(
        "button", name="Submit for release").click()
    before = audit_length(web_db)
    _sign(page, "Verify results", "Sign verification")
    assert page.get_by_role("alert").inner_text() == (
        "user qa1 changed lot EV-B-2; the same person may not verify it (segregation of "
        "duties)")
    assert page.get_by_test_id("release-state").inner_text() == "results_entered"
    assert audit_length(web_db) == before

    _switch(page, base, "qa2")
    page.goto(f"{base}/lots/EV-B-1/release")
    _sign(page, "Release lot", "Sign release")
    assert page.get_by_test_id("signed-name").inner_text() == "QA Two (qa2)"
    assert page.get_by_test_id("signed-meaning").inner_text() == \
        "Approval: I release this lot for use (approval)"
    assert page.get_by_test_id("lot-status").inner_text() == "released"
    rows = page.get_by_test_id("signature-row").all_inner_texts()
    assert [r.split("\t")[:2] for r in rows] == [["verify", "Qa One (qa1)"],
                                                 ["release", "QA Two (qa2)"]]
    assert lot_status(web_db, "EV-B-1") == "released"
    assert page.console_errors == []

    trail = [(t, a, n) for t, a, n in audit_actions(web_db, start)
             if t in ("quality_result", "lot", "lot_verification", "lot_disposition",
                      "signature")]
    assert trail == [("quality_result", "create", "analyst1"), ("lot", "update", "analyst1"),
                     ("lot_verification", "create", "qa1"), ("signature", "create", "qa1"),
                     ("lot", "update", "qa1"),
                     ("lot", "update", "qa2"), ("lot_disposition", "create", "qa2"),
                     ("signature", "create", "qa2")]
