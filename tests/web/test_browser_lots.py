"""In a real browser: from the lot list to a released lot, its genealogy graph and signatures."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from web._lots_data import build_lots
from web.conftest import browser_sign_in


@pytest.fixture
def lots(web_db):
    return build_lots(web_db)


def test_browse_from_the_list_to_a_lot(page, live_server, lots):
    browser_sign_in(page, live_server, "viewer1")
    page.get_by_role("link", name="Lots").first.click()
    expect(page.get_by_role("heading", name="Lots")).to_be_visible()
    page.get_by_label("Status").select_option("released")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("status").filter(has_text="1 lot")).to_be_visible()
    page.get_by_role("link", name="A3", exact=True).click()
    page.wait_for_url(re.compile(r"/lots/A3$"))
    expect(page.get_by_role("heading", name="Lot A3")).to_be_visible()

    graph = page.get_by_role("img", name="Genealogy of lot A3")
    expect(graph).to_be_visible()
    for node in ("D1", "CB1", "C1", "I1", "A3"):
        expect(graph.locator("text.title", has_text=re.compile(f"^{node}$"))).to_have_count(1)

    signatures = page.locator("table.signatures tbody tr")
    expect(signatures).to_have_count(2)
    expect(signatures.nth(0)).to_contain_text("Reviewer One (reviewer1)")
    expect(signatures.nth(0)).to_contain_text("review")
    expect(signatures.nth(1)).to_contain_text("Qa One (qa1)")
    expect(signatures.nth(1)).to_contain_text("approval")
    expect(signatures.nth(1)).to_contain_text("UTC")
    expect(page.get_by_role("link", name="Certificate of analysis (PDF)")).to_be_visible()
    # The size chart loaded (an <img> that failed would have naturalWidth 0).
    chart = page.get_by_role("img", name=re.compile("Size distributions of lot A3"))
    expect(chart).to_be_visible()
    assert chart.evaluate("img => img.naturalWidth") > 100

    # A lot in the graph is a link to its page.
    page.get_by_role("link", name="Lots").first.click()
    page.get_by_label("Lot number").fill("P1-A")
    page.get_by_role("button", name="Show").click()
    page.get_by_role("link", name="P1-A", exact=True).click()
    pool_graph = page.get_by_role("img", name="Genealogy of lot P1-A")
    pool_graph.get_by_role("link", name="lot P1", exact=True).click()
    page.wait_for_url(re.compile(r"/lots/P1$"))
    expect(page.get_by_role("heading", name="Lot P1")).to_be_visible()
    # The lot page leads to its results and release workflow.
    page.get_by_role("link", name="Results and release").click()
    page.wait_for_url(re.compile(r"/lots/P1/release$"))
    assert page.console_errors == []
