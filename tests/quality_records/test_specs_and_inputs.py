"""Specification records (versions, supersession, export) and bad input: one-line errors."""

from __future__ import annotations

import pytest

from exotrace.errors import (
    Conflict,
    FileFormatError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RuleViolation,
    UnitError,
)
from exotrace.quality import load_specification
from exotrace.records import (
    add_quality_result,
    assign_specification,
    close_investigation,
    evaluate_lot,
    export_specification,
    import_specification,
    set_reference_value,
)
from exotrace.records import quality_repositories as qrepo
from exotrace.records import repositories as repo

from .conftest import build_source, make_lot

NAME = "MSC-sEV lot release specification"


def test_versions_supersede_and_export_round_trips(session, record_users, spec_record,
                                                   tmp_path):
    qa = record_users["qa"]
    shipped = tmp_path / "same.yaml"
    shipped.write_text(spec_record.yaml_text, encoding="utf-8")
    again, created = import_specification(session, qa, shipped)
    assert not created and again.id == spec_record.id  # the same text is stored once
    # A different text under the same name and version is refused.
    changed = tmp_path / "changed.yaml"
    changed.write_text(spec_record.yaml_text.replace("upper: 0.5", "upper: 0.25"),
                       encoding="utf-8")
    with pytest.raises(Conflict, match="version 1.0 already exists with different content"):
        import_specification(session, qa, changed)
    draft = tmp_path / "draft.yaml"
    draft.write_text(spec_record.yaml_text.replace('version: "1.0"', 'version: "2.0-draft"')
                     .replace("status: effective", "status: draft"), encoding="utf-8")
    import_specification(session, qa, draft)
    v11 = tmp_path / "v11.yaml"
    v11.write_text(spec_record.yaml_text.replace('version: "1.0"', 'version: "1.1"'),
                   encoding="utf-8")
    import_specification(session, qa, v11)
    states = {r.version: r.status.value for r in qrepo.list_specifications(session, name=NAME)}
    assert states == {"1.0": "superseded", "2.0-draft": "draft", "1.1": "effective"}
    (change,) = [e for e in repo.audit_entries(session, table_name="specification",
                                               record_pk=str(spec_record.id))
                 if e.action.value == "update"]
    assert (change.actor_name, change.reason) == ("qa1", "superseded by version 1.1")
    assert '"status":"effective"' in change.before_json
    assert '"status":"superseded"' in change.after_json
    out = tmp_path / "export.yaml"
    out.write_text(export_specification(session, NAME, "1.0"), encoding="utf-8")
    exported = load_specification(out)
    assert exported.version == "1.0" and exported.status.value == "superseded"
    assert [t.name for t in exported.tests][:3] == ["size_d50", "fraction_50_400nm",
                                                    "particle_concentration"]
    assert exported.test("endotoxin").criterion.upper == 0.5
    with pytest.raises(NotFound, match="no specification 'nope'"):
        export_specification(session, "nope")


def test_bad_input_gives_one_line_errors(session, record_users, spec_record, tmp_path):
    analyst, qa = record_users["analyst"], record_users["qa"]
    iso = build_source(session, analyst)
    make_lot(session, analyst, "QL-BAD", iso)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nproduct_type: y\nversion: 1\neffective_date: 2026-01-01\n"
                   "tests:\n  - {name: a, method: m, criterion: {kind: range, unit: bananas, "
                   "upper: 1}}\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match=r"bad.yaml, field 'tests.0.criterion.unit'"):
        import_specification(session, qa, bad)
    with pytest.raises(FileFormatError, match="missing.yaml: file not found"):
        import_specification(session, qa, tmp_path / "missing.yaml")
    with pytest.raises(PermissionDenied, match="analyst1 .* may not import specifications"):
        import_specification(session, analyst, bad)
    cases = [
        (dict(test="nonsense", value="1", unit="nm"), InvalidInput, "test 'nonsense' is not in"),
        (dict(test="endotoxin", value="0.1"), InvalidInput, "needs a unit"),
        (dict(test="endotoxin", value="nan", unit="EU/mL"), InvalidInput, "not a finite"),
        (dict(test="endotoxin", value="0.1", unit="parsecs"), UnitError, "parsecs"),
        (dict(test="endotoxin", value="0.1", unit="nm"), UnitError, "nm"),
        (dict(test="potency", value="high"), InvalidInput, "needs a number with a unit"),
        (dict(test="sterility", value="0", unit="%"), InvalidInput, "needs a word result"),
        (dict(test="sterility", value="x" * 80), InvalidInput, "a number or a short word"),
        (dict(test="endotoxin", value=0.1, unit="EU/mL", retest_of="R999"), RuleViolation,
         "R999 of lot QL-BAD has no OOS investigation"),
    ]
    for kwargs, exc, msg in cases:
        with pytest.raises(exc, match=msg) as info:
            add_quality_result(session, analyst, "QL-BAD", **kwargs)
        assert "\n" not in str(info.value)
    # Without the label claim, the relative criterion cannot be judged: say what to record.
    with pytest.raises(InvalidInput, match="record it \\(exotrace lot reference QL-BAD "
                                           "--name label_claim"):
        evaluate_lot(session, "QL-BAD")
    with pytest.raises(InvalidInput, match="positive number"):
        set_reference_value(session, analyst, "QL-BAD", "label_claim", -1.0, "particles/mL")
    with pytest.raises(InvalidInput, match="no specification 'other'"):
        assign_specification(session, qa, "QL-BAD", "other")
    with pytest.raises(InvalidInput, match="write OOS-12 or 12"):
        close_investigation(session, qa, "abc", conclusion="lab_error", phase="phase_I",
                            summary="x")
    with pytest.raises(NotFound, match="no OOS investigation with id 999"):
        close_investigation(session, qa, "OOS-999", conclusion="lab_error", phase="phase_I",
                            summary="x")
