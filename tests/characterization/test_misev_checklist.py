"""MISEV2023 checklist: complete and incomplete studies, applicability, measurements, reports."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from exotrace.characterization import (
    CHECKLIST_ITEM_IDS,
    ItemStatus,
    PurityBand,
    check_study,
    example_study_path,
    load_study,
    parse_study,
    report_to_html,
    report_to_json,
    report_to_markdown,
)
from exotrace.errors import FileFormatError, InvalidInput

DATA = Path(__file__).resolve().parents[1] / "data" / "characterization"

INCOMPLETE_MISSING = (
    "source.donor", "separation.volumes", "storage.before_separation",
    "storage.after_separation", "quantification.global_measures", "quantification.ratio",
    "markers.category2", "markers.category4", "markers.antibody_details",
    "markers.lysate_preparation", "single_vesicle.imaging", "nomenclature",
)
INCOMPLETE_NA = ("collection.harvest", "separation.uc_details", "markers.category5",
                 "function.dose_response")


# Stand-ins for exotrace.instruments.InstrumentResult: only the attributes the adapter reads.
@dataclass
class FakeProtein:
    sample: str
    protein_ug_per_ml: float | None
    flags: tuple[str, ...] = ()


@dataclass
class FakeResult:
    file: str
    format: str
    instrument: str
    sample: str | None = None
    particles_per_ml: float | None = None
    mean_nm: float | None = None
    mode_nm: float | None = None
    d50_nm: float | None = None
    dilution_factor: float | None = None
    events: int | None = None
    protein_samples: tuple[FakeProtein, ...] | None = None
    warnings: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


def _nta(sample="EV prep A", particles=6.09e12):
    return FakeResult("runs/A_ExperimentSummary.csv", "nanosight-summary", "NanoSight",
                      sample=sample, particles_per_ml=particles, mean_nm=101.5, mode_nm=98.4,
                      d50_nm=99.8, dilution_factor=1e4, warnings=("high noise",))


def _bca(*samples):
    return FakeResult("plates/bca.csv", "bca-plate", "plate reader",
                      protein_samples=tuple(FakeProtein(s, v) for s, v in samples))


def test_item_ids_are_stable():
    assert len(CHECKLIST_ITEM_IDS) == 24
    assert len(set(CHECKLIST_ITEM_IDS)) == 24
    assert sum(1 for i in check_study(example_study_path()).items if i.method_specific) == 3


@pytest.mark.parametrize("path", [example_study_path(), DATA / "complete_study.yaml"])
def test_complete_study_scores_100(path):
    report = check_study(path)
    assert report.score_percent == 100.0
    assert (report.n_met, report.n_missing, report.n_not_applicable) == (24, 0, 0)
    assert report.missing_ids == ()
    # the ratio comes from the YAML values: 6e11 particles/mL / 12 ug/mL = 5e10
    assert len(report.purity) == 1
    assert report.purity[0].particles_per_ug == pytest.approx(5e10, rel=1e-12)
    assert report.purity[0].band is PurityBand.HIGH


def test_every_met_item_names_its_evidence():
    report = check_study(example_study_path())
    for it in report.items:
        assert it.evidence, it.id
        assert it.missing == ()
    uc = report.item("separation.uc_details")
    assert "separation.steps[1].k_factor (line 45) = 256" in uc.evidence


def test_cell_line_study_applicability():
    report = check_study(DATA / "cell_line_study.yaml")
    na = {it.id for it in report.items if it.status is ItemStatus.NOT_APPLICABLE}
    assert na == {"source.donor", "separation.uc_details", "markers.category4",
                  "markers.category5", "markers.antibody_details",
                  "markers.lysate_preparation", "function.dose_response"}
    assert (report.n_met, report.n_applicable, report.score_percent) == (17, 17, 100.0)
    # reported ratio 2.5e9 lies in the closed low-purity band
    assert report.reported_particles_per_ug == 2.5e9
    assert report.reported_purity_band == "low purity"
    assert report.purity == ()


def test_incomplete_study_exact_items_and_score():
    report = check_study(DATA / "incomplete_study.yaml")
    assert report.missing_ids == INCOMPLETE_MISSING
    na = tuple(it.id for it in report.items if it.status is ItemStatus.NOT_APPLICABLE)
    assert na == INCOMPLETE_NA
    assert (report.n_met, report.n_missing, report.n_not_applicable) == (8, 12, 4)
    assert report.score_percent == 40.0
    assert report.item("markers.antibody_details").missing == (
        "markers[0].antibody (CD9): clone or catalog_number",)
    assert report.item("storage.before_separation").missing == (
        "storage.before_separation.thaw_method",)
    assert report.item("source.donor").missing == ("donor.characteristics",)
    assert report.item("single_vesicle.imaging").missing == (
        "a close-up image (single_vesicle.imaging[].close_up: true)",)
    # HSPA8 proves nothing, so category 2 is missing although a "cytosolic" protein was found
    assert report.markers.non_proving == ("HSPA8",)
    assert "exosome" in report.item("nomenclature").missing[0]


def test_measurements_fill_quantification_items():
    """A protein plate adds the second global measure and, with the YAML particles, the ratio."""
    report = check_study(DATA / "incomplete_study.yaml", [_bca(("plasma EV", 10.0))])
    assert report.item("quantification.global_measures").status is ItemStatus.MET
    assert report.item("quantification.ratio").status is ItemStatus.MET
    assert any("plates/bca.csv" in e for e in report.item("quantification.global_measures")
               .evidence)
    # 2e10 particles/mL / 10 ug/mL = 2e9: the lower, inclusive edge of "low purity"
    assert report.purity[0].particles_per_ug == 2e9
    assert report.purity[0].band is PurityBand.LOW
    assert (report.n_met, report.n_applicable, report.score_percent) == (10, 20, 50.0)


def test_nta_file_counts_and_pairs_by_sample_name():
    study = parse_study("source: {kind: cell_line, species: human, cell_type: HEK293}\n")
    nta = _nta(sample="EV prep A", particles=6.0e12)
    bca = _bca(("buffer blank", 0.0), ("EV-prep-a", 150.0), ("EV prep B", 300.0))
    report = check_study(study, [nta, bca])
    assert report.item("single_vesicle.counting").status is ItemStatus.MET
    assert "A_ExperimentSummary.csv" in report.item("single_vesicle.counting").evidence[0]
    assert "[NTA]" in report.item("single_vesicle.counting").evidence[0]
    assert len(report.purity) == 1
    assert report.purity[0].particles_per_ug == pytest.approx(6.0e12 / 150.0, rel=1e-12)
    assert report.purity[0].band is PurityBand.HIGH
    assert "EV-prep-a" in report.purity[0].protein_method
    assert any("high noise" in n for n in report.notes)


def test_unpaired_measurements_are_reported_as_such():
    study = parse_study("source: {kind: cell_line}\n")
    bca = _bca(("sample 1", 100.0), ("sample 2", 200.0))
    report = check_study(study, [_nta(sample="other"), bca])
    ratio = report.item("quantification.ratio")
    assert ratio.status is ItemStatus.MISSING
    assert "could not be paired" in ratio.missing[0]
    assert report.item("quantification.global_measures").status is ItemStatus.MET


def test_fcs_counts_as_flow_counting():
    study = parse_study("source: {kind: cell_line}\n")
    fcs = FakeResult("ev.fcs", "fcs", "CytoFLEX", events=12000)
    report = check_study(study, [fcs])
    assert report.item("single_vesicle.counting").status is ItemStatus.MET
    assert "12000 events" in report.item("single_vesicle.counting").evidence[0]


def test_not_a_measurement_is_rejected():
    with pytest.raises(InvalidInput, match="not an instrument result"):
        check_study(example_study_path(), [object()])
    with pytest.raises(InvalidInput):
        check_study(42)


def test_uc_items_only_when_uc_is_used():
    base = "source: {kind: cell_line}\nseparation:\n  steps:\n"
    no_uc = check_study(parse_study(base + "    - {method: precipitation, kit: ExoQuick}\n"))
    assert no_uc.item("separation.uc_details").status is ItemStatus.NOT_APPLICABLE
    uc = check_study(parse_study(base + "    - {method: density_gradient, g_force: 100000,"
                                        " time_min: 960}\n"))
    item = uc.item("separation.uc_details")
    assert item.status is ItemStatus.MISSING
    assert item.missing == ("separation.steps[0].rotor", "separation.steps[0].k_factor")


def test_function_claims_make_category5_and_dose_response_applicable():
    base = "source: {kind: cell_line}\n"
    none = check_study(parse_study(base))
    assert none.item("markers.category5").status is ItemStatus.NOT_APPLICABLE
    assert none.item("function.dose_response").status is ItemStatus.NOT_APPLICABLE
    no_claim = check_study(parse_study(
        base + "functional_assays:\n  - {name: uptake, claims_function: false}\n"))
    assert no_claim.item("markers.category5").status is ItemStatus.NOT_APPLICABLE
    claim = check_study(parse_study(
        base + "functional_assays:\n  - {name: wound closure, claims_function: true}\n"
        "markers:\n  - {name: TGFB1, detected: false, method: elisa}\n"))
    assert claim.item("markers.category5").status is ItemStatus.MET
    dose = claim.item("function.dose_response")
    assert dose.status is ItemStatus.MISSING
    assert dose.missing == ("functional_assays[0] (wound closure): dose_response",)


def test_subtype_claims_make_category4_applicable():
    base = "source: {kind: cell_line}\nnomenclature: {term: extracellular_vesicle}\n"
    assert check_study(parse_study(base)).item("markers.category4").status is \
        ItemStatus.NOT_APPLICABLE
    claimed = check_study(parse_study(
        base + "subtype_claims:\n  - {subtype: CD63+ EVs, basis: marker}\n"
        "markers:\n  - {name: GM130, detected: false, method: western_blot}\n"))
    assert claimed.item("markers.category4").status is ItemStatus.MET


def test_nomenclature_rules():
    def status(extra):
        report = check_study(parse_study("source: {kind: cell_line}\n" + extra))
        return report.item("nomenclature").status

    assert status("nomenclature: {term: extracellular_vesicle}\n") is ItemStatus.MET
    assert status("nomenclature: {term: small_extracellular_vesicle}\n") is ItemStatus.MISSING
    assert status("nomenclature: {term: small_extracellular_vesicle}\nsingle_vesicle:\n"
                  "  counting: [{method: trps}]\n") is ItemStatus.MET
    assert status("nomenclature: {term: exosome}\nsubtype_claims:\n  - {subtype: exosomes, "
                  "basis: biogenesis, evidence: CD63-pHluorin MVB fusion imaging}\n") \
        is ItemStatus.MET
    assert status("nomenclature: {term: other}\n") is ItemStatus.MISSING
    assert status("") is ItemStatus.MISSING


def test_serum_containing_medium_is_missing():
    report = check_study(parse_study(
        "source: {kind: primary_cells}\ncollection: {medium: DMEM, serum: serum, "
        "volume_ml: 50, duration_days: 2}\n"))
    item = report.item("collection.conditions")
    assert item.status is ItemStatus.MISSING
    assert "brings its own EVs" in item.missing[0]


def test_empty_study_scores_zero_with_na_items():
    report = check_study(parse_study("title: nothing yet\n"))
    assert report.n_met == 0
    assert report.score_percent == 0.0
    # the conditional items without their trigger; donor and harvest stay applicable
    # because an unknown source is judged like a primary-cell culture
    na = {it.id for it in report.items if it.status is ItemStatus.NOT_APPLICABLE}
    assert na == {"separation.uc_details", "markers.category4", "markers.category5",
                  "markers.antibody_details", "markers.lysate_preparation",
                  "function.dose_response"}


def test_invalid_study_path_propagates_file_error(tmp_path):
    with pytest.raises(FileFormatError, match="file not found"):
        check_study(tmp_path / "nope.yaml")


def test_json_report_round_trip():
    report = check_study(DATA / "incomplete_study.yaml", [_bca(("p", 10.0))])
    data = json.loads(report_to_json(report))
    assert data["score_percent"] == 50.0
    assert data["guideline"] == "MISEV2023"
    assert data["missing_ids"] == list(report.missing_ids)
    assert data["items"][0]["id"] == "source.identity"
    assert data["items"][0]["status"] == "met"
    assert data["purity"][0]["band"] == "low purity"
    assert data["measurements"][0]["file"] == "plates/bca.csv"


def test_markdown_report():
    md = report_to_markdown(check_study(DATA / "incomplete_study.yaml"))
    assert "**40.0 %** (8 of 20 applicable items met; 4 not applicable)" in md
    rows = [line for line in md.splitlines() if line.startswith("| `")]
    assert len(rows) == 24
    assert any(r.startswith("| `separation.uc_details` *") and "| n/a |" in r for r in rows)
    assert any(r.startswith("| `markers.category2`") and "MISSING" in r for r in rows)


def test_html_report_is_self_contained_and_escaped(tmp_path):
    text = (example_study_path().read_text(encoding="utf-8")
            .replace("title: UC-MSC small EVs, lot demo-001",
                     "title: \"<script>alert('x')</script> & co\""))
    path = tmp_path / "study.yaml"
    path.write_text(text, encoding="utf-8")
    html = report_to_html(check_study(load_study(path), [_nta()]))
    assert html.startswith("<!DOCTYPE html>")
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "<link" not in html and "src=" not in html
    assert "100.0 %" in html
    assert html.count('<tr class="met">') == 24
    assert "A_ExperimentSummary.csv" in html


def _leaf_paths(node, prefix=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix + (k,)
            yield from _leaf_paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield prefix + (i,)
            yield from _leaf_paths(v, prefix + (i,))


def _delete(tree, path):
    parent = tree
    for part in path[:-1]:
        parent = parent[part]
    del parent[path[-1]]


_EXAMPLE = yaml.safe_load(example_study_path().read_text(encoding="utf-8"))
_PATHS = sorted(set(_leaf_paths(_EXAMPLE)), key=lambda p: (len(p), [str(x) for x in p]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(_PATHS), max_size=8, unique=True))
def test_partial_studies_are_judged_consistently(paths):
    """Delete random parts of the complete example: the engine stays consistent."""
    tree = copy.deepcopy(_EXAMPLE)
    # delete deepest first (and list items from the end) so earlier paths stay valid
    for path in sorted(paths, key=lambda p: (len(p), p[-1] if isinstance(p[-1], int) else -1),
                       reverse=True):
        try:
            _delete(tree, path)
        except (KeyError, IndexError, TypeError):
            continue  # an ancestor was already deleted
    try:
        doc = parse_study(yaml.safe_dump(tree))
    except FileFormatError:
        return  # e.g. a list item lost its required field: a valid outcome
    report = check_study(doc)
    assert report.n_met + report.n_missing + report.n_not_applicable == 24
    assert 0.0 <= report.score_percent <= 100.0
    for it in report.items:
        assert (it.status is ItemStatus.MISSING) == bool(it.missing), it.id
        assert (it.status is ItemStatus.NOT_APPLICABLE) == bool(it.reason), it.id
    json.loads(report_to_json(report))
    assert report_to_markdown(report).count("\n| `") == 24
    report_to_html(report)


def test_small_ev_term_with_large_particles_is_flagged():
    study = parse_study("source: {kind: cell_line}\n"
                        "nomenclature: {term: small_extracellular_vesicle}\n")
    big = FakeResult("big.csv", "zetaview-txt", "ZetaView", particles_per_ml=1e10, mode_nm=245.0)
    small = FakeResult("small.csv", "zetaview-txt", "ZetaView", particles_per_ml=1e10,
                       mode_nm=120.0)
    report = check_study(study, [big, small])
    flagged = [n for n in report.notes if "not below 200 nm" in n]
    assert flagged == ["big.csv: typical size 245 nm is not below 200 nm, yet the study "
                       "calls its particles small EVs"]
    assert report.item("nomenclature").status is ItemStatus.MET
