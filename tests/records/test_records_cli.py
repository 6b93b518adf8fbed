"""The records commands end to end on a fresh database (both backends)."""

import io
import json

import pytest
import sqlalchemy as sa
import typer

from exotrace.cli.main import main


@pytest.fixture
def cli(fresh_db_url, monkeypatch, capsys):
    from argon2 import PasswordHasher

    from exotrace.records import _auth

    # Tests only: a cheap argon2 cost so ~30 logins stay fast (the default costs ~0.1-0.5 s
    # each on purpose). Hash format and verification code are the real ones.
    monkeypatch.setattr(_auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024,
                                                         parallelism=1))
    monkeypatch.setenv("EXOTRACE_DATABASE_URL", fresh_db_url)
    monkeypatch.delenv("EXOTRACE_USER", raising=False)
    monkeypatch.delenv("EXOTRACE_NEW_PASSWORD", raising=False)
    monkeypatch.setenv("EXOTRACE_PASSWORD", "admin-pass-1")

    def run(*args, user=None, password=None, stdin=""):
        # Signatures read the password from standard input (never EXOTRACE_PASSWORD).
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        if user:
            monkeypatch.setenv("EXOTRACE_USER", user)
        if password:
            monkeypatch.setenv("EXOTRACE_PASSWORD", password)
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _json(out):
    return json.loads(out)


def test_full_workflow_and_json_shapes(cli, fresh_db_url):
    assert cli("db", "upgrade", "--json")[0] == 0
    code, out, _ = cli("user", "add", "boss", "--role", "admin", "--json")
    assert code == 0 and _json(out)["role"] == "admin"
    code, _, err = cli("user", "add", "ana", "--role", "analyst")
    assert code == 7 and "needs an acting admin" in err
    import os
    os.environ["EXOTRACE_NEW_PASSWORD"] = "initial-pass-77"
    try:
        assert cli("user", "add", "ana", "--role", "analyst", "--user", "boss")[0] == 0
        assert cli("user", "add", "quinn", "--role", "qa", "--user", "boss")[0] == 0
    finally:
        del os.environ["EXOTRACE_NEW_PASSWORD"]
    # Accounts an admin created set their own password before anything else.
    code, _, err = cli("donor", "add", "D0", "--age-band", "30-39", "--sex", "female",
                       user="ana", password="initial-pass-77")
    assert code == 7 and "must set a personal password first" in err
    for name in ("ana", "quinn"):
        code, out, err = cli("user", "password", "--password-stdin", "--json", user=name,
                             stdin="initial-pass-77\nbench-pass-2049\n")
        assert code == 0 and _json(out)["must_change_password"] is False, err
    steps = [
        ("donor", "add", "D1", "--age-band", "30-39", "--sex", "female"),
        ("consent", "add", "D1", "--scope", "research", "--scope", "clinical_manufacturing",
         "--version", "v1", "--date", "2025-01-02"),
        ("cellbank", "add", "CB1", "--donor", "D1", "--tissue", "adipose", "--passage", "3",
         "--intended-use", "clinical_manufacturing", "--marker", "cd73_pct=98.2"),
        ("collection", "add", "C1", "--cell-bank", "CB1", "--medium", "DMEM", "--serum",
         "serum_free", "--volume-ml", "100", "--days", "2"),
        ("isolation", "add", "I1", "--collection", "C1", "--method",
         "size_exclusion_chromatography", "--input-ml", "100", "--output-ml", "2"),
        ("lot", "create", "L1", "--isolation", "I1", "--intended-use", "clinical_manufacturing",
         "--volume-ml", "2", "--date", "2025-02-01"),
        ("measurement", "add", "--lot", "L1", "--attribute", "size_mode", "--value", "104.5",
         "--unit", "nm", "--method", "NTA"),
    ]
    for step in steps:
        code, out, err = cli(*step, "--json", user="ana", password="bench-pass-2049")
        assert code == 0, (step, err)
    code, out, _ = cli("vial", "create", "--lot", "L1", "--count", "3", "--json")
    vials = _json(out)["identifiers"]
    assert code == 0 and len(vials) == 3
    code, out, _ = cli("lot", "list", "--json")
    assert [(x["number"], x["status"]) for x in _json(out)] == [("L1", "in_process")]
    code, out, _ = cli("donor", "list", "--json")
    assert [d["code"] for d in _json(out)] == ["D1"]
    code, out, _ = cli("trace", "forward", "--donor", "D1", "--json")
    fwd = _json(out)
    assert [x["number"] for x in fwd["lots"]] == ["L1"] and len(fwd["vials"]) == 3
    assert fwd["subjects"] == []
    code, out, _ = cli("trace", "back", "--vial", vials[1], "--json")
    back = _json(out)
    assert back["donor"]["code"] == "D1" and back["consent"]["version"] == "v1"
    code, out, _ = cli("vial", "verify", vials[0], "--json")
    assert code == 0 and _json(out)["lot"] == "L1"
    bad = vials[0][:-1] + ("0" if vials[0][-1] != "0" else "1")
    code, _, err = cli("vial", "verify", bad)
    assert code == 2 and "check character does not match" in err
    code, out, _ = cli("lot", "show", "L1", "--json")
    assert _json(out)["measurements"][0]["entered_by"] == "ana"
    # Four-eyes: ana made the lot and cannot release; quinn (QA) can after review.
    code, _, err = cli("lot", "status", "L1", "awaiting_release", "--reason", "complete")
    assert code == 0
    # A bare status change cannot release, whoever asks: release is the workflow's.
    code, _, err = cli("lot", "status", "L1", "released", "--reason", "meets spec",
                       user="quinn", password="bench-pass-2049")
    assert code == 9 and "only through the release workflow" in err
    # EXOTRACE_PASSWORD signs in but never signs: with nothing to read, signing is refused.
    code, _, err = cli("sign", "lot:L1", "--meaning", "approval", "--json")
    assert code == 7 and "nothing on standard input" in err
    code, out, err = cli("sign", "lot:L1", "--meaning", "approval", "--json",
                         stdin="bench-pass-2049\n")
    assert code == 0, err
    assert _json(out)["printed_name"] == "quinn (quinn)" and _json(out)["current"] is True
    assert _json(out)["keyed_hash_valid"] is True
    code, _, err = cli("sign", "lot:L1", "--meaning", "approval", user="ana",
                       password="bench-pass-2049", stdin="bench-pass-2049\n")
    assert code == 8 and "may not sign for approval" in err
    code, out, _ = cli("signatures", "lot:L1", "--json")
    assert [s["meaning"] for s in _json(out)] == ["approval"]
    code, out, _ = cli("audit", "log", "lot:L1", "--json")
    log = _json(out)
    # created, then moved to awaiting_release; the refused release wrote nothing
    assert [e["action"] for e in log] == ["create", "update"]
    code, out, _ = cli("audit", "log", "user_account:ana", "--json")
    text = out
    assert code == 0 and "$argon2" not in text and "<secret sha256=" in text
    assert log[-1]["actor"] == "ana" and log[-1]["reason"] == "complete"
    code, out, _ = cli("audit", "verify", "--json")
    assert code == 0 and _json(out)["ok"] is True

    # Tamper behind the application's back: verify names table, record and entry; exit 10.
    eng = sa.create_engine(fresh_db_url)
    with eng.begin() as conn:
        conn.exec_driver_sql("UPDATE measurement SET value = 99.0")
    eng.dispose()
    code, out, err = cli("audit", "verify", "--json")
    report = _json(out)
    assert code == 10 and report["ok"] is False
    (finding,) = report["findings"]
    assert (finding["kind"], finding["table"], finding["record"]) == ("row_changed",
                                                                    "measurement", "1")
    assert "value" in finding["message"] and "audit verification failed" in err


def test_consent_withdrawal_blocks_through_cli(cli):
    cli("db", "upgrade")
    cli("user", "add", "boss", "--role", "admin")
    for step in [("donor", "add", "D2", "--age-band", "40-49", "--sex", "male"),
                 ("consent", "add", "D2", "--scope", "research", "--version", "3"),
                 ("consent", "withdraw", "D2", "--reason", "phone call")]:
        assert cli(*step, user="boss")[0] == 0
    code, _, err = cli("cellbank", "add", "CB9", "--donor", "D2", "--tissue", "adipose",
                       "--passage", "1", "--intended-use", "research")
    assert code == 9 and "donor D2: consent 1 (version 3) was withdrawn" in err


def test_command_on_database_without_schema(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EXOTRACE_DATABASE_URL", f"sqlite:///{tmp_path / 'new.db'}")
    for args in (["lot", "list", "--json"], ["audit", "verify"], ["trace", "back", "--vial", "X"]):
        assert main(args) == 11
        assert "does not exist; run exotrace db upgrade" in capsys.readouterr().err
    assert not (tmp_path / "new.db").exists()  # reading leaves no empty file behind
    # An existing database without the schema (e.g. an empty file) says the same.
    (tmp_path / "new.db").touch()
    assert main(["lot", "list", "--json"]) == 11
    assert "has no exotrace schema; run exotrace db upgrade" in capsys.readouterr().err


def test_commands_without_user_or_with_wrong_password(cli):
    code, _, err = cli("donor", "add", "D1", "--age-band", "30-39", "--sex", "male")
    assert code == 7 and "needs an acting user" in err
    cli("user", "add", "boss", "--role", "admin")
    code, _, err = cli("donor", "add", "D1", "--age-band", "30-39", "--sex", "male",
                       user="boss", password="wrong-password")
    assert code == 7 and "wrong password" in err


def test_demo_load_command(cli, capsys, fresh_db_url):
    if fresh_db_url.startswith("postgresql"):
        # The command is a thin wrapper; load_demo itself runs on both backends in
        # test_records_demo.py. This keeps the suite fast.
        pytest.skip("demo command wrapper tested on SQLite only")
    from exotrace.cli.demo_records import register_demo_load

    demo_app = typer.Typer()
    register_demo_load(demo_app)

    @demo_app.callback()
    def _group() -> None:
        """demo"""

    capsys.readouterr()
    demo_app(args=["load", "--json"], prog_name="demo", standalone_mode=False)
    summary = _json(capsys.readouterr().out)
    assert len(summary["lots"]) == 12 and summary["awaiting_release"]
    code, out, _ = cli("lot", "list", "--json")
    statuses = {x["number"]: x["status"] for x in _json(out)}
    # demo load = records + quality release workflow + clinic follow-up
    assert statuses["EV-2025-P01-B"] == "awaiting_release"
    assert statuses["EV-2025-001"] == "released" and statuses["EV-2025-009"] == "rejected"
    assert len(summary["clinic"]["subjects"] if isinstance(summary["clinic"]["subjects"], list)
               else range(summary["clinic"]["subjects"])) == 12
    code, out, _ = cli("audit", "verify", "--json")
    assert code == 0 and _json(out)["entries_checked"] > 200
