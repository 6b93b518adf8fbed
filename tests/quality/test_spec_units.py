"""Specification schema, YAML round trip, errors naming the field; unit table."""

from __future__ import annotations

import pytest

from exotrace.errors import FileFormatError, UnitError
from exotrace.quality import (
    RangeCriterion,
    SpecStatus,
    convert,
    describe_criterion,
    dump_specification,
    load_specification,
    normalize_unit,
)


def test_shipped_spec_content(msc_spec):
    s = msc_spec
    assert s.status == SpecStatus.EFFECTIVE and s.version == "1.0"
    endo = s.test("endotoxin").criterion
    assert (endo.upper, endo.upper_inclusive, endo.unit) == (0.5, False, "EU/mL")
    conc = s.test("particle_concentration").criterion
    assert conc.kind == "relative" and conc.tolerance_percent == 20
    assert s.test("calnexin").criterion.expected == "absent"
    assert {t.name for t in s.tests if t.alternative_group == "size"} == {
        "size_d50", "fraction_50_400nm"}
    for m in ("CD9", "CD63", "CD81", "TSG101"):
        assert s.test(m).criterion.expected == "present"


def test_yaml_round_trip(msc_spec, tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(dump_specification(msc_spec))
    assert load_specification(p) == msc_spec


@pytest.mark.parametrize("patch, field", [
    ("upper: 0.5, upper_inclusive: false, unit: EU/mL", "tests.0.criterion.unit"),
    ("lower: 5, upper: 1, unit: nm", "tests.0.criterion"),
    ("unit: nm", "tests.0.criterion"),
])
def test_bad_criterion_names_field(tmp_path, patch, field):
    bad = patch.replace("EU/mL", "furlongs")
    p = tmp_path / "bad.yaml"
    p.write_text(f"""name: x
product_type: y
version: 1
effective_date: 2026-01-01
tests:
  - name: t
    method: m
    criterion: {{kind: range, {bad}}}
""")
    with pytest.raises(FileFormatError) as e:
        load_specification(p)
    assert e.value.field == field
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_bad_yaml_and_missing_file(tmp_path):
    p = tmp_path / "b.yaml"
    p.write_text("name: [unclosed\n")
    with pytest.raises(FileFormatError, match="not valid YAML"):
        load_specification(p)
    with pytest.raises(FileFormatError, match="not found"):
        load_specification(tmp_path / "nope.yaml")
    p.write_text("- a\n- b\n")
    with pytest.raises(FileFormatError, match="mapping"):
        load_specification(p)
    p.write_text("name: x\nproduct_type: y\nversion: 1\neffective_date: 2026-01-01\n"
                 "tests:\n  - {name: a, method: m, criterion: {kind: report_only}}\n"
                 "  - {name: a, method: m, criterion: {kind: report_only}}\n")
    with pytest.raises(FileFormatError, match="appears twice"):
        load_specification(p)


def test_describe_criterion():
    assert describe_criterion(RangeCriterion(lower=1, upper=2, lower_inclusive=False,
                                             unit="nm")) == "(1, 2] nm"
    assert describe_criterion(RangeCriterion(lower=90, unit="%")) == ">= 90 %"


@pytest.mark.parametrize("v, a, b, expected", [
    (1.0, "particles/uL", "particles/mL", 1e3),
    (1e12, "particles/L", "particles/mL", 1e9),
    (1.5, "um", "nm", 1500.0),
    (2.0, "mg/mL", "ug/mL", 2000.0),
    (3.0, "ng/uL", "ug/mL", 3.0),
    (0.95, "fraction", "%", 95.0),
    (5e12, "particles/mg", "particles/ug", 5e9),
    (250.0, "EU/L", "EU/mL", 0.25),
    (1.0, "µm", "nm", 1000.0),
])
def test_conversions(v, a, b, expected):
    assert convert(v, a, b) == pytest.approx(expected, rel=1e-12)


def test_unit_errors():
    with pytest.raises(UnitError, match="cannot convert"):
        convert(1, "nm", "EU/mL")
    with pytest.raises(UnitError, match="unknown unit"):
        normalize_unit("parsecs")
    assert normalize_unit("particles/ml") == "particles/mL"
