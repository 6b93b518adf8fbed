"""Accounts: password policy, own-password changes, forced change, lock-out, demo accounts,
API tokens, secrets kept out of the trail and of error messages, private SQLite files."""

from __future__ import annotations

import io
import json
import os
import stat
from datetime import timedelta

import pytest
import sqlalchemy as sa

from _db_fixtures import TEST_PASSWORD
from exotrace.errors import AuthError, Conflict, InvalidInput, PermissionDenied
from exotrace.records import (
    FAILURE_WINDOW,
    LOCK_DURATION,
    MAX_FAILED_SIGN_INS,
    Role,
    SignInFailed,
    User,
    acting_as,
    add_user,
    audit_entry_view,
    authenticate,
    authenticate_token,
    change_password,
    check_password_policy,
    create_token,
    database_identity,
    make_engine,
    note_failed_sign_in,
    revoke_token,
    upgrade_database,
    utcnow,
)
from exotrace.records import repositories as repo

# ----------------------------------------------------------------------------- policy

def test_password_policy_boundaries():
    check_password_policy("x7-k" * 3, "ana")  # exactly 12 characters: accepted
    with pytest.raises(InvalidInput, match="at least 12 characters .it has 11."):
        check_password_policy(("x7-k" * 3)[:11], "ana")
    with pytest.raises(InvalidInput, match="common passwords"):
        check_password_policy("Password1234", "ana")  # in the list, any case
    with pytest.raises(InvalidInput, match="must not contain the user name"):
        check_password_policy("xx-Quinn-2049", "quinn")


def test_admin_created_account_must_change_its_password(session, test_password_hash):
    admin = add_user(session, "root", Role.ADMIN, password="admin-pass-2049")
    assert admin.must_change_password is False  # the bootstrap admin chose its own
    bob = add_user(session, "bob", Role.ANALYST, password="given-by-admin-1", acting=admin)
    assert bob.must_change_password is True
    with pytest.raises(AuthError, match="must set a personal password first"):
        authenticate(session, "bob", "given-by-admin-1")
    with pytest.raises(InvalidInput, match="at least 12"):
        change_password(session, "bob", "given-by-admin-1", "short-1")
    with pytest.raises(InvalidInput, match="must differ"):
        change_password(session, "bob", "given-by-admin-1", "given-by-admin-1")
    with pytest.raises(SignInFailed, match="wrong password"):
        change_password(session, "bob", "not-the-old-one", "my-own-secret-77")
    change_password(session, "bob", "given-by-admin-1", "my-own-secret-77")
    assert authenticate(session, "bob", "my-own-secret-77").id == bob.id
    with pytest.raises(SignInFailed):
        authenticate(session, "bob", "given-by-admin-1")
    entries = [audit_entry_view(e) for e in repo.audit_entries(
        session, table_name="user_account", record_pk=str(bob.id))]
    last = entries[-1]
    assert last["actor"] == "bob" and last["after"]["must_change_password"] is False
    assert last["before"]["password_hash"] != last["after"]["password_hash"]


# ----------------------------------------------------------------------------- lock-out

def _fail(session, name, times):
    for _ in range(times):
        with pytest.raises(SignInFailed):
            authenticate(session, name, "wrong-password-0")
        note_failed_sign_in(session, name)


def test_five_failures_lock_the_account_even_for_the_right_password(session, record_users):
    _fail(session, "qa1", MAX_FAILED_SIGN_INS - 1)
    assert authenticate(session, "qa1", TEST_PASSWORD).username == "qa1"  # 4: not locked
    qa = record_users["qa"]
    assert qa.failed_sign_ins == 0  # a success forgets earlier failures
    _fail(session, "qa1", MAX_FAILED_SIGN_INS)
    assert qa.locked_until is not None
    assert timedelta(0) < qa.locked_until - utcnow() <= LOCK_DURATION
    with pytest.raises(AuthError, match="locked after 5 failed sign-ins"):
        authenticate(session, "qa1", TEST_PASSWORD)
    # Lock and counters were written through the audit trail (by the sign-in guard).
    last = repo.audit_entries(session, table_name="user_account", record_pk=str(qa.id))[-1]
    assert last.actor_name == "sign-in guard" and last.actor_id is None
    assert json.loads(last.after_json)["locked_until"] is not None
    # Once the lock has run out, the right password works again.
    with acting_as(session, qa):
        qa.locked_until = utcnow() - timedelta(seconds=1)
        session.flush()
    assert authenticate(session, "qa1", TEST_PASSWORD).username == "qa1"


def test_failures_outside_the_window_start_a_new_count(session, record_users):
    qa = record_users["qa"]
    _fail(session, "qa1", MAX_FAILED_SIGN_INS - 1)
    with acting_as(session, qa):  # the first failure is now just older than the window
        qa.failed_since = utcnow() - FAILURE_WINDOW - timedelta(seconds=1)
        session.flush()
    _fail(session, "qa1", 1)
    assert qa.failed_sign_ins == 1 and qa.locked_until is None


# ----------------------------------------------------------------------------- demo

def test_demo_accounts_only_in_a_demo_database(session, test_password_hash):
    admin = add_user(session, "root", Role.ADMIN, password="admin-pass-2049")
    assert database_identity(session, create=False).demo is False
    with pytest.raises(Conflict, match="created as a real"):
        add_user(session, "demo1", Role.QA, password_hash=test_password_hash, acting=admin,
                 demo=True)
    # A demo account smuggled into the real database is refused at sign-in.
    with acting_as(session, admin):
        session.add(User(username="sneak", full_name="S", role=Role.QA,
                         password_hash=test_password_hash, demo=True))
        session.flush()
    with pytest.raises(AuthError, match="demo account"):
        authenticate(session, "sneak", TEST_PASSWORD)


def test_demo_database_keeps_password_demo_without_forced_change(session):
    from exotrace.records.demo import DEMO_PASSWORD, load_demo

    load_demo(session, vials_per_lot=1)
    assert database_identity(session, create=False).demo is True
    qa = authenticate(session, "qa1", DEMO_PASSWORD)
    assert qa.demo and not qa.must_change_password
    with pytest.raises(InvalidInput, match="demo account"):
        change_password(session, "qa1", DEMO_PASSWORD, "another-secret-77")


# ----------------------------------------------------------------------------- tokens

def test_tokens_act_as_their_user_until_revoked(session, record_users):
    analyst = record_users["analyst"]
    token, row = create_token(session, analyst, "lab script")
    assert token.startswith("exo_") and token not in row.token_sha256
    assert authenticate_token(session, token).id == analyst.id
    with pytest.raises(AuthError, match="unknown or revoked"):
        authenticate_token(session, token + "x")
    with pytest.raises(PermissionDenied, match="only their own tokens"):
        revoke_token(session, record_users["qa"], row.id)
    revoke_token(session, analyst, row.id)
    with pytest.raises(AuthError, match="unknown or revoked"):
        authenticate_token(session, token)
    image = repo.audit_entries(session, table_name="api_token", record_pk=str(row.id))[0]
    assert row.token_sha256 not in image.after_json and "<secret sha256=" in image.after_json


# ----------------------------------------------------------------------------- secrets

def test_password_hash_never_in_the_trail_views_or_db_errors(session, record_users):
    qa = record_users["qa"]
    for entry in repo.audit_entries(session, table_name="user_account", record_pk=str(qa.id)):
        assert qa.password_hash not in (entry.after_json or "")
        assert "$argon2" not in json.dumps(audit_entry_view(entry), default=str)
    with pytest.raises(InvalidInput, match="full name: at most 200 characters"):
        add_user(session, "longname", Role.VIEWER, password="long-enough-pass",
                 full_name="x" * 201, acting=record_users["admin"])
    # A database error never echoes the bound values (hide_parameters).
    with pytest.raises(sa.exc.DBAPIError) as excinfo:
        with session.begin_nested():
            session.execute(sa.insert(User.__table__).values(
                id=qa.id, username="qa1", full_name="dup", role="qa",
                password_hash=qa.password_hash, active=True, created_at=utcnow()))
    assert qa.password_hash not in str(excinfo.value)


def test_new_sqlite_database_is_private(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'new' / 'x.db'}")
    try:
        upgrade_database(engine)
    finally:
        engine.dispose()
    mode = stat.S_IMODE(os.stat(tmp_path / "new" / "x.db").st_mode)
    assert mode == 0o600


# ----------------------------------------------------------------------------- CLI

@pytest.fixture
def cli(fresh_db_url, monkeypatch, capsys):
    from argon2 import PasswordHasher

    from exotrace.cli.main import main
    from exotrace.records import _auth

    # Tests only: a cheap argon2 cost (hash format and verification are the real ones).
    monkeypatch.setattr(_auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024,
                                                         parallelism=1))
    monkeypatch.setenv("EXOTRACE_DATABASE_URL", fresh_db_url)
    for var in ("EXOTRACE_USER", "EXOTRACE_PASSWORD", "EXOTRACE_NEW_PASSWORD", "EXOTRACE_TOKEN"):
        monkeypatch.delenv(var, raising=False)

    def run(*args, stdin="", env=None):
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        for k, v in (env or {}).items():
            monkeypatch.setenv(k, v)
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        for k in env or {}:
            monkeypatch.delenv(k)
        return code, out, err

    assert run("user", "add", "boss", "--role", "admin",
               env={"EXOTRACE_NEW_PASSWORD": "chief-key-2049"})[0] == 0
    assert run("user", "add", "ana", "--role", "analyst", "--user", "boss",
               env={"EXOTRACE_PASSWORD": "chief-key-2049",
                    "EXOTRACE_NEW_PASSWORD": "initial-pw-2049"})[0] == 0
    assert run("user", "password", "--user", "ana", "--password-stdin",
               stdin="initial-pw-2049\nlab-bench-2049\n")[0] == 0
    return run


def test_cli_lockout_after_five_wrong_passwords(cli):
    donor = ("donor", "add", "D1", "--age-band", "30-39", "--sex", "male", "--user", "ana")
    for _ in range(MAX_FAILED_SIGN_INS):
        code, _, err = cli(*donor, env={"EXOTRACE_PASSWORD": "wrong-pass-0000"})
        assert code == 7 and "wrong password" in err
    code, _, err = cli(*donor, env={"EXOTRACE_PASSWORD": "lab-bench-2049"})
    assert code == 7 and "locked after 5 failed sign-ins" in err
    code, out, _ = cli("user", "list", "--json")
    ana = next(u for u in json.loads(out) if u["username"] == "ana")
    assert ana["locked_until"] is not None and "password_hash" not in ana


def test_cli_four_wrong_passwords_do_not_lock(cli):
    donor = ("donor", "add", "D1", "--age-band", "30-39", "--sex", "male", "--user", "ana")
    for _ in range(MAX_FAILED_SIGN_INS - 1):
        assert cli(*donor, env={"EXOTRACE_PASSWORD": "wrong-pass-0000"})[0] == 7
    assert cli(*donor, env={"EXOTRACE_PASSWORD": "lab-bench-2049"})[0] == 0


def test_cli_tokens_work_for_writes_but_never_sign(cli):
    code, out, err = cli("token", "create", "--user", "ana", "--password-stdin", "--name",
                         "script", "--json", stdin="lab-bench-2049\n")
    assert code == 0, err
    made = json.loads(out)
    token = made["token"]
    env = {"EXOTRACE_TOKEN": token}
    code, _, err = cli("donor", "add", "D1", "--age-band", "30-39", "--sex", "male",
                       "--user", "ana", env=env)
    assert code == 0, err
    code, _, err = cli("sign", "donor:D1", "--meaning", "authorship", "--user", "ana",
                       env=env, stdin="lab-bench-2049\n")
    assert code == 7 and "API token cannot sign" in err
    code, out, _ = cli("token", "list", "--user", "ana", "--json", env=env)
    assert [t["name"] for t in json.loads(out)] == ["script"] and token not in out
    assert cli("token", "revoke", str(made["id"]), "--user", "ana", "--json", env=env)[0] == 0
    code, _, err = cli("donor", "list", "--user", "ana", env=env)
    code, _, err = cli("donor", "add", "D2", "--age-band", "30-39", "--sex", "male",
                       "--user", "ana", env=env)
    assert code == 7 and "unknown or revoked" in err


def test_cli_password_change_refuses_policy_breaks(cli):
    code, _, err = cli("user", "password", "--user", "ana", "--password-stdin",
                       stdin="lab-bench-2049\npassword1234\n")
    assert code == 2 and "common passwords" in err and "password1234" not in err
