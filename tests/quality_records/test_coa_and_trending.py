"""Certificate of analysis from the records, SPC over lots, comparability of lot groups."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date, timedelta

import numpy as np
import pytest

from _db_fixtures import TEST_PASSWORD
from exotrace.errors import InsufficientData, InvalidInput, RuleViolation
from exotrace.quality import render_coa_html, render_coa_pdf
from exotrace.records import (
    add_size_distribution,
    build_certificate,
    close_investigation,
    compare_lots,
    parse_margins,
    reject_lot,
    release_lot,
    spc_lots,
    submit_for_release,
    verify_lot,
)

from .conftest import build_source, enter_release_results, make_lot


def _release(session, users, number):
    submit_for_release(session, users["analyst"], number)
    verify_lot(session, users["reviewer"], TEST_PASSWORD, number)
    return release_lot(session, users["qa"], TEST_PASSWORD, number)


def test_coa_of_a_released_lot_is_complete_and_reproducible(session, record_users, qlot,
                                                            tmp_path):
    with pytest.raises(RuleViolation, match="in_process; a certificate of analysis is issued "
                                            "only for released"):
        build_certificate(session, qlot, manufacturer="ExoLab GmbH")
    out = _release(session, record_users, qlot)
    coa = build_certificate(session, qlot, manufacturer="ExoLab GmbH")
    again = build_certificate(session, qlot, manufacturer="ExoLab GmbH")
    assert coa.coa_id == again.coa_id and coa.coa_id.startswith("COA-")
    assert coa.complies and coa.lot_number == "QL-1"
    assert coa.specification_version == "1.0"
    assert coa.signature.printed_name == "Qa One (qa1)"
    assert coa.signature.meaning == "approval: lot release"
    assert coa.release_date == out["signature"]["signed_at"].date()
    assert (coa.manufacture_date, coa.expiry_date) == (date(2025, 3, 1), date(2028, 3, 1))
    rows = {r.test: r for r in coa.rows}
    assert len(rows) == 15 and rows["endotoxin"].criterion == "< 0.5 EU/mL"
    assert rows["endotoxin"].result == "0.12 EU/mL" and rows["endotoxin"].conclusion == "complies"
    html = render_coa_html(coa)
    for text in ("QL-1", "Qa One (qa1)", coa.coa_id, "version 1.0",
                 "Lot QL-1 complies with specification"):
        assert text in html
    if session.bind.dialect.name != "sqlite":
        return  # the PDF depends only on the certificate data, asserted equal above
    pdf1 = render_coa_pdf(coa, tmp_path / "a.pdf")
    pdf2 = render_coa_pdf(again, tmp_path / "b.pdf")
    assert pdf1 == pdf2 and pdf1.startswith(b"%PDF")
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(tmp_path / "a.pdf"), "-"], capture_output=True,
                              text=True, check=True).stdout
        assert "QL-1" in text and "Qa One (qa1)" in text and coa.coa_id in text


def test_coa_of_a_rejected_lot_says_it_does_not_comply(session, record_users, spec_record):
    analyst, qa = record_users["analyst"], record_users["qa"]
    iso = build_source(session, analyst)
    make_lot(session, analyst, "QL-R", iso)
    inv = enter_release_results(session, analyst, "QL-R", endotoxin=0.8)[0]
    close_investigation(session, qa, inv.id, conclusion="confirmed_oos", phase="phase_II",
                        summary="process")
    submit_for_release(session, analyst, "QL-R")
    verify_lot(session, record_users["reviewer"], TEST_PASSWORD, "QL-R")
    reject_lot(session, qa, TEST_PASSWORD, "QL-R", reason="endotoxin OOS")
    coa = build_certificate(session, "QL-R", manufacturer="ExoLab GmbH")
    assert not coa.complies and coa.signature.meaning == "approval: lot reject"
    assert "does NOT comply" in coa.compliance_statement
    assert {r.test: r.conclusion for r in coa.rows}["endotoxin"] == "does not comply"


def test_spc_lots_finds_a_planted_rule_1_point_at_its_index(session, record_users):
    analyst = record_users["analyst"]
    iso = build_source(session, analyst)
    # 20 lots; +-1.5 nm alternation around 120 nm keeps |z| small (MRbar = 3 nm ->
    # sigma = 2.66 nm); lot 12 (0-based) at 140 nm is 7.5 sigma away: rule 1 there.
    values = [120.0 + (1.5 if i % 2 else -1.5) for i in range(20)]
    values[12] = 140.0
    # Created out of order: the chart must follow the manufacture date.
    for i in reversed(range(20)):
        make_lot(session, analyst, f"SPC-{i:02d}", iso,
                 manufactured_on=date(2025, 1, 1) + timedelta(days=i), d50=values[i])
    trend = spc_lots(session, "size_d50", baseline=10)
    assert trend.lots == [f"SPC-{i:02d}" for i in range(20)]
    assert trend.limits.sigma == pytest.approx(3.0 / 1.128)
    rule1 = [v.index for v in trend.violations if v.rule == 1]
    assert rule1 == [12]
    data = trend.to_dict()
    assert {"rule": 1, "index": 12, "lot": "SPC-12"} in data["violations"]
    with pytest.raises(InsufficientData, match="no_such_attribute"):
        spc_lots(session, "no_such_attribute")


def test_compare_lot_groups_with_margins_and_distributions(session, record_users):
    analyst = record_users["analyst"]
    iso = build_source(session, analyst)
    rng = np.random.default_rng(7)
    d = np.arange(30.0, 400.0, 5.0)
    for group, (d50, conc) in {"A": (120.0, 1.0e11), "B": (121.0, 1.6e11)}.items():
        for i in range(5):
            number = f"CMP-{group}{i}"
            make_lot(session, analyst, number, iso, d50=d50 + rng.normal(0, 1.0),
                     conc=conc * (1 + rng.normal(0, 0.03)))
            w = np.exp(-0.5 * ((np.log(d) - np.log(d50)) / 0.35) ** 2) / d
            add_size_distribution(session, analyst, number, d, w, source="simulated")
    margins = parse_margins(["size_d50=10", "particle_concentration=20%"])
    out = compare_lots(session, [f"CMP-A{i}" for i in range(5)],
                       [f"CMP-B{i}" for i in range(5)], margins)
    verdicts = {a["attribute"]: a["verdict"] for a in out["attributes"]}
    # d50 differs by ~1 nm with sd ~1 nm against a 10 nm margin: equivalent. Concentration
    # is 60 % higher against a 20 % margin: not shown equivalent.
    assert verdicts == {"size_d50": "equivalent",
                        "particle_concentration": "not shown equivalent"}
    dist = out["distribution"]
    assert dist is not None and dist["wasserstein_nm"] < 5 and not dist["flagged"]
    with pytest.raises(InvalidInput, match="in both groups"):
        compare_lots(session, ["CMP-A0"], ["CMP-A0"], margins)
    with pytest.raises(InvalidInput, match="not a number or a percentage"):
        parse_margins(["size_d50=ten"])
