"""Sign-in and lock-out in a real browser (Debian chromium, Playwright)."""

from __future__ import annotations

import re

from _db_fixtures import TEST_PASSWORD
from web.conftest import browser_sign_in


def test_sign_in_sign_out_and_lockout_in_the_browser(live_server, page):
    browser_sign_in(page, live_server, "qa1")
    assert "(qa1, qa)" in page.locator("header").inner_text()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/login$"))

    for attempt in range(5):
        page.get_by_label("Username").fill("reviewer1")
        page.get_by_label("Password").fill(f"wrong-password-{attempt}")
        page.get_by_role("button", name="Sign in").click()
        assert page.get_by_role("alert").inner_text() == "Invalid username or password"
    page.get_by_label("Username").fill("reviewer1")
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # Locked: the right password is refused with the same message.
    assert page.get_by_role("alert").inner_text() == "Invalid username or password"
    assert "/login" in page.url
    assert page.console_errors == []
