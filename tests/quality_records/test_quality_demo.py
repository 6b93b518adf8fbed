"""The quality demo on top of the records demo: released, rejected and waiting lots, a
Nelson-rule trend, a stability dataset, and an intact audit trail."""

from __future__ import annotations

import csv

from exotrace.quality import shelf_life
from exotrace.records import (
    Lot,
    build_certificate,
    evaluate_lot,
    list_investigation_views,
    load_quality_demo,
    release_state,
    spc_lots,
    verify_audit_trail,
)
from exotrace.records import repositories as repo
from exotrace.records.demo import load_demo


def test_quality_demo(session, tmp_path):
    load_demo(session, vials_per_lot=2)
    summary = load_quality_demo(session, out_dir=tmp_path)
    status = {n: repo.get_by(session, Lot, number=n) for n in
              ("EV-2025-004", "EV-2025-008", "EV-2025-009", "EV-2025-P01-B")}
    assert summary["released"] == ["EV-2025-001", "EV-2025-002", "EV-2025-003", "EV-2025-P01-A",
                                   "EV-2025-004", "EV-2025-008"]
    assert all(repo.get_by(session, Lot, number=n).status.value == "released"
               for n in summary["released"])
    assert status["EV-2025-009"].status.value == "rejected"
    assert release_state(session, status["EV-2025-P01-B"]).value == "results_entered"
    assert status["EV-2025-P01-B"].status.value == "awaiting_release"
    assert evaluate_lot(session, "EV-2025-P01-B")["conclusion"] == "complies"
    (inv,) = list_investigation_views(session, lot_number="EV-2025-009")
    assert (inv["test"], inv["conclusion"], inv["phase"]) == ("endotoxin", "confirmed_oos",
                                                              "phase_II")
    coa = build_certificate(session, "EV-2025-004", manufacturer="demo")
    assert coa.complies and coa.signature.printed_name == "Quinn Assurance (qa1)"
    # The trend: the last six trend lots rise steadily -> rule 3 at the last lot.
    trend = spc_lots(session, "size_d50")
    assert trend.lots[-1] == summary["trend_lots"][-1] == "EV-2025-T16"
    assert any(v.rule == 3 and v.index == len(trend.lots) - 1 for v in trend.violations)
    # The stability dataset gives a shelf life with the quality core.
    with open(summary["stability_csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 18
    result = shelf_life([float(r["time_months"]) for r in rows],
                        [float(r["particles_e11_per_ml"]) for r in rows],
                        [r["batch"] for r in rows], lower_limit=1.5)
    # ~2.0 - 0.031/month reaches 1.5 near 16 months; the 95 % bound crosses earlier.
    assert 8 < result.shelf_life < 17
    assert verify_audit_trail(session).ok
