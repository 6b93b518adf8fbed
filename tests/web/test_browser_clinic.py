"""The clinic in a real browser (Debian chromium, Playwright): a bedside administration
refused for a wrong check character and for an unreleased lot, then accepted for a good
vial; an adverse event entered and seen on the timeline."""

from __future__ import annotations

import re
from datetime import date

import pytest
from playwright.sync_api import expect

from web._clinic_world import audit_actors, build_clinic_world, counts, wrong_check_character
from web.conftest import browser_sign_in


@pytest.fixture
def world(web_db):
    return build_clinic_world(web_db)


def _scan(page, vial: str) -> None:
    page.get_by_label("Vial identifier").fill(vial)
    page.get_by_role("button", name="Check").click()
    page.wait_for_load_state()


def _verdict(page, check: str) -> str:
    return page.locator(f'li[data-check="{check}"] .verdict').inner_text()


def test_bedside_administration_refused_then_accepted(live_server, page, world, web_db):
    browser_sign_in(page, live_server, "clinician1")
    page.get_by_role("link", name="Clinic").click()
    page.get_by_role("link", name="Administer").click()
    page.get_by_label("Subject").fill("C1")
    confirm = page.get_by_role("button", name="Confirm administration")

    _scan(page, wrong_check_character(world["good"][0]))
    assert _verdict(page, "identifier") == "Failed"
    assert "check character does not match" in page.get_by_role("alert").inner_text()
    assert confirm.count() == 0

    _scan(page, world["unreleased"])
    assert (_verdict(page, "identifier"), _verdict(page, "lot status")) == ("Passed", "Failed")
    assert "not released by QA" in page.get_by_role("alert").inner_text()
    assert confirm.count() == 0
    assert counts(web_db)["administrations"] == 0

    _scan(page, world["good"][1])
    assert confirm.is_visible()
    # Typing another identifier withdraws the confirmation of the vial checked before it;
    # the field's text is selected on focus, so a new scan replaces it.
    page.get_by_label("Subject").click()
    page.get_by_label("Vial identifier").click()
    page.keyboard.type(world["good"][0])
    assert page.get_by_label("Vial identifier").input_value() == world["good"][0]
    assert confirm.is_hidden() and page.locator("#checks").is_hidden()
    page.get_by_role("button", name="Check").click()
    page.wait_for_load_state()
    assert page.locator(".bedside-checks li.fail").count() == 0
    assert "All checks passed" in page.get_by_role("status").inner_text()
    assert "1.4e+12 particles in 7 mL" in page.get_by_role("status").inner_text()
    assert f"Give vial {world['good'][0]} to subject C1" in page.locator("form.confirm").inner_text()
    confirm.click()
    page.wait_for_url(re.compile(r".*/clinic/subjects/C1\?saved=administration"))
    assert "Administration recorded." in page.get_by_role("status").inner_text()
    row = page.locator("tr.event.administration")
    assert f"vial {world['good'][0]} (lot L-GOOD), level 3" in row.inner_text()
    assert "by clinician1" in row.inner_text()
    assert counts(web_db)["administrations"] == 1
    assert audit_actors(web_db, "administration") == ["clinician1"]
    assert page.console_errors == []


def test_adverse_event_entered_and_seen_on_the_timeline(live_server, page, world, web_db):
    browser_sign_in(page, live_server, "clinician1")
    page.goto(f"{live_server}/clinic")
    page.get_by_role("link", name="C1", exact=True).click()
    page.get_by_role("link", name="Record an adverse event").click()
    page.get_by_label("Term (verbatim)").fill("<img src=x> injection-site erythema")
    page.get_by_label("CTCAE grade").select_option("1")
    page.get_by_label("Relatedness to the study product").select_option("possible")
    page.get_by_label("Onset day").fill(date.today().isoformat())
    page.get_by_role("button", name="Record adverse event").click()
    page.wait_for_url(re.compile(r".*/clinic/subjects/C1\?saved=ae"))
    assert "Adverse event recorded." in page.get_by_role("status").inner_text()
    row = page.locator("tr.event.adverse_event")
    assert row.locator(".ae-term").inner_text() == "<img src=x> injection-site erythema"
    assert "CTCAE grade 1, not serious, possible" in row.inner_text()
    assert page.locator("main img").count() == 0  # the typed tag is text, not an element
    assert counts(web_db)["adverse_events"] == 1
    assert audit_actors(web_db, "adverse_event") == ["clinician1"]
    assert page.console_errors == []


def test_audit_page_shows_the_clinic_actions_with_their_users(live_server, page, world, web_db):
    browser_sign_in(page, live_server, "clinician1")
    page.goto(f"{live_server}/clinic/subjects/C1/adverse-events/new")
    page.get_by_label("Term (verbatim)").fill("headache")
    page.get_by_label("CTCAE grade").select_option("1")
    page.get_by_label("Relatedness to the study product").select_option("unlikely")
    page.get_by_label("Onset day").fill(date.today().isoformat())
    page.get_by_role("button", name="Record adverse event").click()
    page.wait_for_url(re.compile(r".*/clinic/subjects/C1\?saved=ae"))
    page.get_by_role("button", name="Sign out").click()

    browser_sign_in(page, live_server, "viewer1")  # an auditor reads the trail
    page.get_by_role("link", name="Audit").click()
    page.get_by_label("Table").fill("adverse_event")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.audit tbody tr")
    # waits for the filtered page: counting at once raced its load
    expect(rows).to_have_count(1)
    cells = rows.first.locator("td").all_inner_texts()
    assert cells[2:5] == ["clinician1", "create", "adverse_event"]
    page.get_by_role("button", name="Verify chain").click()
    assert "Audit trail intact" in page.get_by_role("status").last.inner_text()
    assert page.console_errors == []
