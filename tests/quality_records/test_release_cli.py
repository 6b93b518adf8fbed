"""The release commands end to end on a fresh database (both backends)."""

from __future__ import annotations

import io
import json
from datetime import date

import pytest

from exotrace.cli.main import main
from exotrace.quality import example_specification_path

from .conftest import PASSING, build_source, make_lot

PASS = "shared-pass-1"


@pytest.fixture
def cli(fresh_db_url, monkeypatch, capsys):
    monkeypatch.setenv("EXOTRACE_DATABASE_URL", fresh_db_url)
    monkeypatch.delenv("EXOTRACE_USER", raising=False)
    monkeypatch.setenv("EXOTRACE_NEW_PASSWORD", PASS)
    monkeypatch.setenv("EXOTRACE_PASSWORD", PASS)
    monkeypatch.setenv("EXOTRACE_MANUFACTURER", "ExoLab GmbH")

    def run(*args, password=PASS):
        monkeypatch.setenv("EXOTRACE_PASSWORD", password)
        # A signature re-reads the password (standard input here), never the environment.
        monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _setup(url):
    """Users, a source chain and lot L1 with NTA measurements, through the services."""
    from exotrace.records import Role, acting_as, add_user, make_engine, unit_of_work

    engine = make_engine(url)
    try:
        with unit_of_work(engine) as session:
            boss = add_user(session, "boss", Role.ADMIN, password=PASS)
            users = {name: add_user(session, name, role, password=PASS, acting=boss)
                     for name, role in (("ana", "analyst"), ("rita", "reviewer"),
                                        ("quinn", "qa"))}
            for user in users.values():  # each has set their own password since
                with acting_as(session, user):
                    user.must_change_password = False
                    session.flush()
            iso = build_source(session, users["ana"])
            make_lot(session, users["ana"], "L0", iso, manufactured_on=date(2025, 1, 5))
            make_lot(session, users["ana"], "L1", iso, d50=118.0, conc=9.5e10, purity=2.5e10)
    finally:
        engine.dispose()


def _enter(url, results):
    from exotrace.records import User, add_quality_result, make_engine, unit_of_work
    from exotrace.records import repositories as repo

    engine = make_engine(url)
    try:
        with unit_of_work(engine) as session:
            ana = repo.get_by(session, User, username="ana")
            for test, value, unit in results:
                add_quality_result(session, ana, "L1", test=test, value=value, unit=unit)
    finally:
        engine.dispose()


def test_release_workflow_commands(cli, fresh_db_url, tmp_path):
    _setup(fresh_db_url)
    ana = ("--user", "ana")
    spec = example_specification_path()
    code, out, err = cli("spec", "import", spec, "--user", "ana", "--json")
    assert code == 8 and "may not import specifications" in err
    code, out, _ = cli("spec", "import", spec, "--user", "quinn", "--json")
    assert code == 0 and json.loads(out)["created"] is True
    code, out, _ = cli("spec", "list", "--json")
    assert [(s["version"], s["status"]) for s in json.loads(out)] == [("1.0", "effective")]
    exported = tmp_path / "spec.yaml"
    assert cli("spec", "export", "MSC-sEV lot release specification", "-o", exported)[0] == 0
    assert "version: '1.0'" in exported.read_text() or 'version: "1.0"' in exported.read_text()
    assert cli("spec", "assign", "MSC-sEV lot release specification", "--lot", "L1",
               "--user", "quinn")[0] == 0

    assert cli("lot", "reference", "L1", "--value", "1e11", "--unit", "particles/mL", *ana)[0] \
        == 0
    assert cli("lot", "result", "add", "L1", "--test", "CD9", "--value", "present", *ana)[0] == 0
    _enter(fresh_db_url, [(t, v, None) for t, v in PASSING.items() if t != "CD9"]
           + [("fraction_50_400nm", 93.0, "%"), ("potency", 96.0, "%")])
    code, out, _ = cli("lot", "result", "add", "L1", "--test", "endotoxin", "--value", "0.7",
                       "--unit", "EU/mL", *ana, "--json")
    endo = json.loads(out)
    assert code == 0 and endo["opened_investigation"] is not None

    code, out, _ = cli("lot", "evaluate", "L1", "--json")
    ev = json.loads(out)
    assert ev["conclusion"] == "does not comply" and ev["oos_result_ids"] == [endo["id"]]
    assert {t["test"]: t["outcome"] for t in ev["tests"]}["endotoxin"] == "fail"
    code, out, _ = cli("oos", "list", "--open", "--json")
    (inv,) = json.loads(out)
    assert inv["id"] == endo["opened_investigation"] and inv["original_result"] == endo["id"]
    assert cli("lot", "result", "add", "L1", "--test", "endotoxin", "--value", "0.08", "--unit",
               "EU/mL", "--retest-of", endo["id"], *ana)[0] == 0
    code, out, _ = cli("oos", "close", inv["id"], "--conclusion", "lab_error", "--phase",
                       "phase_I", "--summary", "contaminated tube", "--user", "quinn", "--json")
    closed = json.loads(out)
    assert code == 0 and closed["conclusion"] == "lab_error" and closed["lot"] == "L1"
    # opened by the analyst's result entry, closed by QA: both named
    assert (closed["opened_by"], closed["closed_by"]) == ("ana", "quinn")
    assert json.loads(cli("lot", "evaluate", "L1", "--json")[1])["conclusion"] == "complies"

    code, _, err = cli("lot", "release", "L1", "--user", "quinn")
    assert code == 9 and "cannot release a lot in state results_entered" in err
    assert cli("lot", "submit", "L1", *ana)[0] == 0
    code, _, err = cli("lot", "verify", "L1", "--user", "ana")
    assert code == 8
    code, _, err = cli("lot", "verify", "L1", "--user", "rita", password="wrong-pass-9")
    assert code == 7
    code, out, _ = cli("lot", "verify", "L1", "--user", "rita", "--json")
    assert code == 0 and json.loads(out)["signature"]["meaning"] == "review"
    code, _, err = cli("lot", "release", "L1", "--user", "rita")
    assert code == 8 and "may not release lots" in err
    code, out, _ = cli("lot", "release", "L1", "--user", "quinn", "--json")
    assert code == 0 and json.loads(out)["status"] == "released"

    pdf, html = tmp_path / "coa.pdf", tmp_path / "coa.html"
    code, out, err = cli("lot", "coa", "L1", "-o", pdf, "--html", html, "--json")
    assert code == 0, err
    coa = json.loads(out)
    assert pdf.read_bytes().startswith(b"%PDF") and coa["signed_by"] == "quinn (quinn)"
    page = html.read_text()
    assert "L1" in page and "quinn (quinn)" in page and "ExoLab GmbH" in page

    chart = tmp_path / "chart.png"
    code, out, err = cli("spc", "lots", "--attribute", "size_d50", "--plot", chart, "--json")
    trend = json.loads(out)
    assert code == 0, err
    assert [(p["lot"], p["value"]) for p in trend["points"]] == [("L0", 121.0), ("L1", 118.0)]
    assert trend["limits"]["mean"] == 119.5 and chart.stat().st_size > 0
    code, _, err = cli("compare", "--group-a", "L1", "--group-b", "L1", "--margin", "size_d50=5")
    assert code == 2 and "in both groups" in err
    code, out, _ = cli("audit", "verify", "--json")
    assert code == 0
