"""The clinic commands end to end on the demo database (both backends, committed)."""

from __future__ import annotations

import json

import pytest

from exotrace.cli.main import main
from exotrace.records.demo import demo_date


def _day(month: int, day: int) -> str:
    """The demo's written 2025 date as it is loaded today (the demo's dates are relative)."""
    return demo_date(2025, month, day).isoformat()


@pytest.fixture
def cli(demo_db, monkeypatch, capsys):
    monkeypatch.setenv("EXOTRACE_DATABASE_URL", demo_db[0])
    monkeypatch.setenv("EXOTRACE_PASSWORD", "demo")
    monkeypatch.delenv("EXOTRACE_USER", raising=False)

    def run(*args):
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_demo_is_complete_and_audited(demo_db):
    _, summary, audit_ok = demo_db
    assert audit_ok
    assert (summary["subjects"], summary["administrations"], summary["observations"],
            summary["adverse_events"]) == (12, 35, 105, 5)
    actions = {(p["subject"], p["action"]) for p in summary["rule_proposals"]}
    assert {("SKN-001", "escalate"), ("SKN-002", "reduce"), ("CAR-002", "hold"),
            ("SKN-008", "stop")} <= actions


def test_clinic_commands_end_to_end(cli, tmp_path):
    code, out, _ = cli("subject", "list", "--json")
    subjects = {s["code"]: s for s in json.loads(out)}
    assert code == 0 and len(subjects) == 12
    assert subjects["SKN-002"]["current_level"] == 1            # reduced after grade 2 AE
    assert subjects["SKN-001"]["current_level"] == 3            # escalated at week 4
    assert subjects["SKN-008"]["consent"]["withdrawn"] is True
    code, out, _ = cli("subject", "show", "CAR-002", "--json")
    view = json.loads(out)
    assert [a["level"] for a in view["administrations"]] == [3, 2, 2]
    assert [d["status"] for d in view["dose_decisions"] if d["status"] != "no_change"] == [
        "accepted", "overridden"]

    # refusals: exit code and one line on stderr, nothing written
    vial = json.loads(cli("vial", "list", "--lot", "EV-2025-002", "--json")[1])
    free = [v["identifier"] for v in vial if v["status"] == "available"]
    bad = free[0][:-1] + ("A" if free[0][-1] != "A" else "B")
    code, _, err = cli("administer", "--subject", "SKN-004", "--vial", bad, "--user",
                       "clinician1", "--at", _day(8, 1) + "T10:00Z")
    assert code == 2 and "check character does not match" in err and err.count("\n") == 1
    code, _, err = cli("administer", "--subject", "SKN-008", "--vial", free[0], "--user",
                       "clinician1", "--at", _day(8, 1) + "T10:00Z")
    assert code == 9 and "study consent is missing or withdrawn" in err
    code, _, err = cli("observe", "--subject", "CAR-004", "--visit", "month6", "--outcome",
                       "LVEF", "--value", "40", "--unit", "mg", "--user", "clinician1",
                       "--at", _day(11, 20))
    assert code == 2 and "LVEF" in err
    code, _, err = cli("dose", "override", "--subject", "CAR-001", "--level", "2",
                       "--reason", "", "--user", "clinician1")
    assert code == 2 and "needs a reason" in err

    # a related grade 2 AE proposes a reduction; the clinician accepts it
    code, out, _ = cli("ae", "add", "--subject", "CAR-004", "--term", "rash", "--grade", "2",
                       "--not-serious", "--relatedness", "possible", "--onset", _day(7, 10),
                       "--user", "clinician1", "--json")
    ae = json.loads(out)
    assert code == 0 and ae["dose_decision"]["action"] == "reduce"
    assert ae["reporting"]["serious"] is False
    code, out, _ = cli("dose", "accept", "--subject", "CAR-004", "--user", "clinician1",
                       "--json")
    assert code == 0 and json.loads(out)["status"] == "accepted"

    code, out, _ = cli("recall", "--donor", "DEMO-D02", "--json")
    r = json.loads(out)
    # D02's material: lot 003 (SERUM-02: SKN-005, 006, 008) and the pool P01-A (all CAR)
    assert r["subjects"] == ["CAR-001", "CAR-002", "CAR-003", "CAR-004", "SKN-005", "SKN-006",
                             "SKN-008"]
    code, out, _ = cli("trace", "forward", "--donor", "DEMO-D02", "--json")
    assert [s["code"] for s in json.loads(out)["subjects"]] == r["subjects"]

    code, out, _ = cli("followup", "due", "--as-of", _day(12, 1), "--json")
    due = {(x["subject"], x["visit"]): x["status"] for x in json.loads(out)}
    assert due == {("SKN-006", "week12"): "overdue", ("SKN-007", "week12"): "overdue",
                   ("CAR-004", "month6"): "due"}

    code, out, _ = cli("fhir", "export", "-o", str(tmp_path / "b.json"), "--json")
    res = json.loads(out)["resources"]
    assert code == 0 and res["Patient"] == 12 and res["MedicationAdministration"] == 35
    assert res["AdverseEvent"] == 6 and res["Observation"] == 105
    code, out, _ = cli("sdtm", "export", "-o", str(tmp_path / "sdtm"), "--json")
    assert code == 0 and json.loads(out)["rows"] == {"DM": 12, "EX": 35, "AE": 6}

    code, out, _ = cli("clinic", "report", "--outcome", "LVEF", "--json")
    rep = json.loads(out)
    assert code == 0 and rep["statement"].startswith("Association is not efficacy")
    assert rep["responders"][0]["arm_code"] == "IV" and rep["responders"][0]["missing"] == 1
    assert "not_fitted" in rep["lot_outcome_model"]       # one lot: nothing to relate

    code, out, _ = cli("protocol", "show", "EXO-SKIN-01", "--json")
    assert code == 0 and json.loads(out)["stored"]["version"] == "1.0"
    from exotrace.clinic import example_protocol_path

    code, out, _ = cli("protocol", "import", str(example_protocol_path("skin_rejuvenation")),
                       "--user", "clinician1", "--json")
    assert code == 0 and json.loads(out)["created"] is False
    code, out, _ = cli("protocol", "show", str(example_protocol_path("cardiomyopathy")))
    assert code == 0 and "EXO-CARD-01" in out
