"""Fixtures of the web and API tests.

* ``web_db``: a fresh, committed database (SQLite and PostgreSQL) with one user
  per role (``admin1``, ``analyst1``, ``analyst2``, ``reviewer1``, ``qa1``,
  ``qa2``, ``clinician1``, ``viewer1``), each with :data:`TEST_PASSWORD` set
  as their own.
* ``app`` / ``client``: the application on that database and a TestClient.
* ``sign_in(client, username)``: signs in through the form; returns the
  session's CSRF token (sent back as ``X-CSRF-Token`` or ``csrf_token``).
* ``bearer(username)``: a personal API token for that user (header dict).
* ``live_server``: the app served by uvicorn on a free port (base URL), and
  ``page``: a Playwright page in Debian's chromium; a failing browser test
  leaves a screenshot in ``test-artifacts/screenshots``.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from _db_fixtures import TEST_PASSWORD

ROLES_USERS = {"admin": "admin1", "analyst": "analyst1", "reviewer": "reviewer1", "qa": "qa1",
               "clinician": "clinician1", "viewer": "viewer1"}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def make_users(url: str, password_hash: str) -> None:
    """The users above, committed (admin1 bootstraps, then adds the others)."""
    from _db_fixtures import settle_first_passwords
    from exotrace.records import Role, add_user, make_engine, unit_of_work

    engine = make_engine(url)
    try:
        with unit_of_work(engine) as session:
            admin = add_user(session, "admin1", Role.ADMIN, password_hash=password_hash,
                             full_name="Ada Admin")
            users = [admin]
            for role, name in ROLES_USERS.items():
                if role != "admin":
                    users.append(add_user(session, name, Role(role), password_hash=password_hash,
                                          full_name=f"{role.title()} One", acting=admin))
            users.append(add_user(session, "analyst2", Role.ANALYST, password_hash=password_hash,
                                  full_name="Analyst Two", acting=admin))
            users.append(add_user(session, "qa2", Role.QA, password_hash=password_hash,
                                  full_name="QA Two", acting=admin))
            settle_first_passwords(session, users)
    finally:
        engine.dispose()


@pytest.fixture
def web_db(fresh_db_url, test_password_hash) -> str:
    make_users(fresh_db_url, test_password_hash)
    return fresh_db_url


@pytest.fixture
def app(web_db):
    from exotrace.api import WebSettings, create_app

    application = create_app(web_db, settings=WebSettings(upload_max_bytes=50 * 1024 ** 2))
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as c:
        yield c


_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
_LOGIN_CSRF = re.compile(r'name="login_csrf" value="([^"]+)"')


def login_form_token(client) -> str:
    page = client.get("/login")
    return _LOGIN_CSRF.search(page.text).group(1)


def sign_in(client, username: str, password: str = TEST_PASSWORD) -> str:
    """Sign in through the form; return the session's CSRF token."""
    token = login_form_token(client)
    response = client.post("/login", data={"username": username, "password": password,
                                           "login_csrf": token, "next": "/"})
    assert response.status_code == 303, response.text[:500]
    home = client.get("/")
    assert home.status_code == 200
    return _CSRF_META.search(home.text).group(1)


@pytest.fixture
def bearer(web_db):
    """``bearer("qa1")`` -> {"Authorization": "Bearer exo_..."} for that user."""
    from exotrace.records import User, create_token, make_engine, repositories, unit_of_work

    engine = make_engine(web_db)

    def make(username: str) -> dict:
        with unit_of_work(engine) as session:
            user = repositories.get_by(session, User, username=username)
            token, _ = create_token(session, user, "tests")
        return {"Authorization": f"Bearer {token}"}

    yield make
    engine.dispose()


def revoke_tokens(url: str, username: str) -> None:
    """Revoke every API token of ``username`` through the service (committed)."""
    import sqlalchemy as sa

    from exotrace.records import (
        ApiToken,
        User,
        make_engine,
        repositories,
        revoke_token,
        unit_of_work,
    )

    engine = make_engine(url)
    try:
        with unit_of_work(engine) as session:
            owner = repositories.get_by(session, User, username=username)
            for token in session.scalars(sa.select(ApiToken).where(ApiToken.user_id == owner.id)):
                revoke_token(session, owner, token.id)
    finally:
        engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(app):
    """The app served by uvicorn in a thread; yields its base URL."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM}: install Debian's chromium "
                    "(make test does when it runs as root)", pytrace=False)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_REPORT_KEY] = report


_REPORT_KEY = pytest.StashKey()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    console_errors: list[str] = []
    def note(message) -> None:
        # A refused request (401/403/409 pages) is logged by chromium as a failed resource;
        # what matters is script errors and Content-Security-Policy violations.
        if message.type == "error" and "Failed to load resource" not in message.text:
            console_errors.append(message.text)

    pg.on("console", note)
    pg.console_errors = console_errors
    yield pg
    report = request.node.stash.get(_REPORT_KEY, None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:]
        pg.screenshot(path=str(SCREENSHOTS / f"{safe}.png"), full_page=True)
    context.close()


def browser_sign_in(page, base_url: str, username: str, password: str = TEST_PASSWORD) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(rf"{re.escape(base_url)}/(\?.*)?$"))
