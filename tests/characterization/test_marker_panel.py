"""MISEV marker categories, synonyms, non-proving markers and the panel requirement."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from exotrace.characterization import (
    MarkerObservation,
    classify_marker,
    evaluate_markers,
    normalize_marker_name,
)
from exotrace.errors import InvalidInput


@pytest.mark.parametrize(
    ("name", "symbol", "category"),
    [
        ("CD63", "CD63", 1), ("cd63", "CD63", 1), ("CD9", "CD9", 1), ("CD81", "CD81", 1),
        ("CD82", "CD82", 1), ("TSPAN8", "TSPAN8", 1), ("ITGB1", "ITGB1", 1),
        ("CD29", "ITGB1", 1), ("ITGA6", "ITGA6", 1), ("integrin beta 4", "ITGB4", 1),
        ("MFGE8", "MFGE8", 1), ("Lactadherin", "MFGE8", 1), ("LAMP-1", "LAMP1", 1),
        ("LAMP2", "LAMP2", 1), ("CD73", "NT5E", 1), ("CD90", "THY1", 1),
        ("TSG101", "TSG101", 2), ("tsg101", "TSG101", 2), ("ALIX", "PDCD6IP", 2),
        ("Alix", "PDCD6IP", 2), ("PDCD6IP", "PDCD6IP", 2), ("syntenin", "SDCBP", 2),
        ("Syntenin-1", "SDCBP", 2), ("SDCBP", "SDCBP", 2), ("Annexin A2", "ANXA2", 2),
        ("annexin V", "ANXA5", 2), ("ANXA1", "ANXA1", 2), ("RAB27A", "RAB27A", 2),
        ("Rab7", "RAB7", 2), ("FLOT1", "FLOT1", 2), ("flotillin-2", "FLOT2", 2),
        ("CHMP4B", "CHMP4B", 2),
        ("APOA1", "APOA1", 3), ("ApoA-I", "APOA1", 3), ("APOA2", "APOA2", 3),
        ("ApoB-100", "APOB", 3), ("albumin", "ALB", 3), ("ALB", "ALB", 3),
        ("uromodulin", "UMOD", 3), ("Tamm-Horsfall protein", "UMOD", 3),
        ("RPL5", "RPL5", 3), ("RPS6", "RPS6", 3),
        ("calnexin", "CANX", 4), ("CANX", "CANX", 4), ("GRP94", "HSP90B1", 4),
        ("HSP90B1", "HSP90B1", 4), ("GM130", "GOLGA2", 4), ("golga2", "GOLGA2", 4),
        ("CYC1", "CYC1", 4), ("TOM20", "TOMM20", 4), ("Histone H3", "HISTONEH3", 4),
        ("H2AZ1", "H2AZ1", 4), ("AGO2", "AGO2", 4), ("Argonaute 2", "AGO2", 4),
        ("fibronectin", "FN1", 5), ("FN1", "FN1", 5), ("TGF-β1", "TGFB1", 5),
        ("IL6", "IL6", 5), ("VEGF", "VEGFA", 5), ("COL1A1", "COL1A1", 5),
    ],
)
def test_categories_and_synonyms(name, symbol, category):
    info = classify_marker(name)
    assert info is not None, name
    assert info.symbol == symbol
    assert info.category == category


@pytest.mark.parametrize(
    ("name", "symbol"),
    [("HSPA8", "HSPA8"), ("HSC70", "HSPA8"), ("hsc-70", "HSPA8"), ("HSP90AB1", "HSP90AB1"),
     ("ACTB", "ACTB"), ("actin", "ACTB"), ("β-actin", "ACTB"), ("beta-actin", "ACTB"),
     ("tubulin", "TUBA/TUBB"), ("alpha-tubulin", "TUBA/TUBB"), ("TUBB", "TUBA/TUBB"),
     ("TUBA1A", "TUBA1A"), ("TUBB3", "TUBB3"), ("GAPDH", "GAPDH"), ("HSP70", "HSP70"),
     ("HSPA1A", "HSP70")],
)
def test_non_proving_markers_count_for_no_category(name, symbol):
    info = classify_marker(name)
    assert info is not None and info.symbol == symbol
    assert info.category is None
    assert "no category" in info.note


def test_unknown_marker_is_none():
    assert classify_marker("FOO1") is None
    assert classify_marker("ILK") is None  # integrin-linked kinase is not an interleukin


def test_normalization():
    assert normalize_marker_name(" hla-a ") == "HLAA"
    assert normalize_marker_name("β-actin") == "BETAACTIN"


def test_classify_rejects_empty_name():
    with pytest.raises(InvalidInput):
        classify_marker("  ")


def test_minimal_panel_meets_requirement():
    report = evaluate_markers([("CD63", True, "western blot"), ("TSG101", True, "western blot"),
                               ("APOA1", False, "western blot")])
    assert report.requirement_met
    assert report.category(1).detected == ("CD63",)
    assert report.category(2).detected == ("TSG101",)
    assert report.category(3).detected == ()
    assert report.category(3).not_detected == ("APOA1",)
    assert report.category(3).assessed
    assert not report.category(4).assessed


@pytest.mark.parametrize(
    "panel",
    [
        # no purity control tested
        [("CD63", True, "wb"), ("TSG101", True, "wb")],
        # category 1 tested but not detected
        [("CD63", False, "wb"), ("ALIX", True, "wb"), ("ALB", True, "wb")],
        # category 2 only via a non-proving marker
        [("CD9", True, "wb"), ("HSPA8", True, "wb"), ("APOB", True, "wb")],
    ],
)
def test_incomplete_panels(panel):
    assert not evaluate_markers(panel).requirement_met


def test_non_proving_only_panel():
    report = evaluate_markers([("HSPA8", True, "wb"), ("HSP90AB1", True, "wb"),
                               ("ACTB", True, "wb"), ("tubulin", True, "wb"),
                               ("GAPDH", True, "wb")])
    assert not report.requirement_met
    assert all(not c.assessed for c in report.categories)
    assert report.non_proving == ("HSPA8", "HSP90AB1", "ACTB", "TUBA/TUBB", "GAPDH")
    assert sum("counts it for no category" in n for n in report.notes) == 5


def test_user_category_cannot_promote_a_non_proving_marker():
    report = evaluate_markers([MarkerObservation("HSPA8", True, "wb", category=2)])
    assert not report.category2_detected
    assert "ignored" in report.markers[0].note


def test_user_category_for_unknown_marker():
    report = evaluate_markers([MarkerObservation("CD200", True, "flow", category=1),
                               ("FOO1", True, "wb")])
    assert report.category(1).detected == ("CD200",)
    assert report.unrecognized == ("FOO1",)
    assert any("FOO1" in n for n in report.notes)


def test_contamination_notes():
    report = evaluate_markers([("APOB", True, "wb"), ("calnexin", True, "wb")])
    assert any("APOB detected" in n for n in report.notes)
    assert any("CANX" in n and "debris" in n for n in report.notes)


def test_objects_with_attributes_are_accepted():
    @dataclass
    class Row:
        name: str
        detected: bool
        method: str

    report = evaluate_markers([Row("CD81", True, "ELISA"), Row("syntenin", True, "ELISA"),
                               Row("uromodulin", False, "ELISA")])
    assert report.requirement_met
    assert report.markers[1].symbol == "SDCBP"


@pytest.mark.parametrize(
    "bad",
    [[("CD63", "yes", "wb")], [("", True, "wb")], [("CD63",)],
     [MarkerObservation("X", True, "wb", category=7)], "CD63"],
)
def test_invalid_marker_results(bad):
    with pytest.raises(InvalidInput):
        evaluate_markers(bad)
