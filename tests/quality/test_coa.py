"""Certificate of analysis: content, determinism of HTML and PDF."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from exotrace.errors import InvalidInput
from exotrace.quality import (
    SignatureManifest,
    certificate_from_evaluation,
    evaluate,
    render_coa_html,
    render_coa_pdf,
)

from .conftest import LABEL, passing_results

SIG = SignatureManifest("Dr. Q. A. Person", datetime(2026, 3, 1, 10, 30, tzinfo=timezone(
    timedelta(hours=1))), "approval: lot release")


@pytest.fixture(scope="module")
def coa(msc_spec):
    ev = evaluate(msc_spec, passing_results(), references=LABEL)
    return certificate_from_evaluation(
        ev, product_name="MSC-sEV", lot_number="L-2026-001", manufacturer="Exo Lab GmbH",
        manufacture_date=date(2026, 2, 1), release_date=date(2026, 3, 1),
        expiry_date=date(2027, 2, 1), signature=SIG)


def test_html_has_everything_q7_and_who_list(coa, msc_spec):
    html = render_coa_html(coa)
    for text in ["MSC-sEV", "L-2026-001", "Exo Lab GmbH", "2026-02-01", "2026-03-01",
                 "2027-02-01", msc_spec.name, "version 1.0", "Dr. Q. A. Person",
                 "2026-03-01 09:30:00 UTC",  # converted to UTC
                 "approval: lot release", coa.coa_id, "complies with specification",
                 'counter(page) " of " counter(pages)', "LAL kinetic chromogenic",
                 "&lt; 0.5 EU/mL", "0.1 EU/mL"]:
        assert text in html, text
    assert html.count("<tr><td>") == len(msc_spec.tests)
    assert render_coa_html(coa) == html


def test_coa_id_deterministic_and_sensitive(coa):
    assert coa.coa_id.startswith("COA-") and len(coa.coa_id) == 23
    other = SignatureManifest(SIG.printed_name, SIG.signed_at + timedelta(seconds=1),
                              SIG.meaning)
    from dataclasses import replace
    assert replace(coa, signature=other).coa_id != coa.coa_id
    assert replace(coa, lot_number="L-2").coa_id != coa.coa_id


def test_pdf_byte_identical(coa, tmp_path):
    a = render_coa_pdf(coa, tmp_path / "a.pdf")
    b = render_coa_pdf(coa)
    assert a[:5] == b"%PDF-" and a == b
    assert (tmp_path / "a.pdf").read_bytes() == a


def test_failing_lot_statement_and_incomplete_refused(msc_spec):
    from exotrace.quality import TestResult
    res = [r if r.result_id != "r-endo" else TestResult("r-endo", "endotoxin", 2, "EU/mL")
           for r in passing_results()]
    ev = evaluate(msc_spec, res, references=LABEL)
    c = certificate_from_evaluation(
        ev, product_name="P", lot_number="L", manufacturer="M",
        manufacture_date=date(2026, 1, 1), release_date=date(2026, 1, 2),
        expiry_date=date(2026, 6, 1), signature=SIG)
    assert "does NOT comply" in render_coa_html(c)
    ev2 = evaluate(msc_spec, passing_results()[:3], references=LABEL)
    with pytest.raises(InvalidInput, match="incomplete"):
        certificate_from_evaluation(
            ev2, product_name="P", lot_number="L", manufacturer="M",
            manufacture_date=date(2026, 1, 1), release_date=date(2026, 1, 2),
            expiry_date=date(2026, 6, 1), signature=SIG)
    with pytest.raises(InvalidInput, match="timezone"):
        SignatureManifest("x", datetime(2026, 1, 1), "approval")
    assert SIG.signed_at_utc.tzinfo == UTC
