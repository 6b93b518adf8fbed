"""One records session per request: the caller is authenticated in the session the
route then reads with (one connection checkout, and on PostgreSQL one transaction,
per read request), and the security checks of authentication still hold."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from web.conftest import revoke_tokens, sign_in


def _count(engine, event_name: str) -> list[int]:
    seen = [0]

    def note(*_) -> None:
        seen[0] += 1

    sa.event.listen(engine, event_name, note)
    return seen


def _expected_transactions(web_db: str) -> int:
    # SQLite takes its write lock at BEGIN: there the read runs in a second transaction.
    return 2 if web_db.startswith("sqlite") else 1


def test_a_read_with_a_token_checks_out_one_connection(app, client, bearer, web_db):
    headers = bearer("viewer1")
    assert client.get("/api/v1/lots", headers=headers).status_code == 200  # pool warmed
    checkouts = _count(app.state.engine, "checkout")
    begins = _count(app.state.engine, "begin")
    for _ in range(3):
        assert client.get("/api/v1/lots", headers=headers).status_code == 200
    assert begins[0] == 3 * _expected_transactions(web_db)
    assert checkouts[0] == 3 * _expected_transactions(web_db)


def test_a_page_with_a_browser_session_runs_in_one_transaction(app, client, web_db):
    sign_in(client, "viewer1")
    begins = _count(app.state.engine, "begin")
    assert client.get("/lots").status_code == 200
    assert begins[0] == _expected_transactions(web_db)


def test_revoked_token_is_refused_at_the_next_request(client, bearer, web_db):
    headers = bearer("viewer1")
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    revoke_tokens(web_db, "viewer1")
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def _last_seen(web_db: str):
    from exotrace.records import WebSession, make_engine

    engine = make_engine(web_db)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(WebSession.__table__.c.last_seen_at)).scalar_one()
    finally:
        engine.dispose()


def _set_last_seen(web_db: str, moment) -> None:
    from exotrace.records import WebSession, make_engine

    engine = make_engine(web_db)
    try:
        with engine.begin() as conn:
            conn.execute(sa.update(WebSession.__table__).values(last_seen_at=moment))
    finally:
        engine.dispose()


def test_activity_is_recorded_even_when_the_route_then_fails(client, web_db):
    from exotrace.records import utcnow

    sign_in(client, "viewer1")
    ten_minutes_ago = utcnow() - timedelta(minutes=10)
    _set_last_seen(web_db, ten_minutes_ago)
    assert client.get("/lots/NO-SUCH-LOT").status_code == 404  # the read fails and rolls back
    seen = _last_seen(web_db)
    assert seen.replace(tzinfo=None) - ten_minutes_ago.replace(tzinfo=None) \
        > timedelta(minutes=9)  # touched and committed: the idle clock restarted
    # So 10 more idle minutes (20 since the last touch before) leave the user signed in.
    assert client.get("/api/v1/me").status_code == 200


def test_token_row_changed_behind_the_application_is_refused(client, bearer, web_db):
    from exotrace.records import ApiToken, make_engine

    headers = bearer("viewer1")
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    engine = make_engine(web_db)
    try:  # renamed in SQL, without an audit entry
        with engine.begin() as conn:
            conn.execute(sa.update(ApiToken.__table__).values(name="renamed"))
    finally:
        engine.dispose()
    refused = client.get("/api/v1/me", headers=headers)
    assert refused.status_code == 409  # an integrity failure, as before the session sharing
    assert "differs from its last audited image" in refused.text
