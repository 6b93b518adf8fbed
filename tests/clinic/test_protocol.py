"""Protocol schema and YAML loader: the shipped examples, and errors that name the field."""

from __future__ import annotations

import pytest
import yaml

from exotrace.clinic import (
    EXAMPLE_PROTOCOLS,
    ChangeKind,
    Direction,
    DoseUnit,
    Route,
    RuleKind,
    example_protocol_path,
    load_protocol,
    parse_protocol,
    protocol_from_yaml,
)
from exotrace.errors import FileFormatError, InvalidInput, NotFound


def test_cardiomyopathy_example_matches_secret_hf_shape(cardio):
    assert cardio.id == "EXO-CARD-01"
    assert cardio.version == "1.0"
    arm = cardio.arm("IV")
    assert arm.route is Route.INTRAVENOUS
    assert arm.dose_unit is DoseUnit.PARTICLES_PER_KG
    assert arm.dose_levels == (5.0e9, 1.0e10, 2.0e10)
    assert arm.level(arm.starting_level).amount == 20e9  # SECRET-HF: 20e9 particles/kg
    assert [a.day for a in cardio.schedule.administrations] == [0, 21, 42]  # three infusions
    lvef = cardio.outcome("LVEF")
    assert (lvef.unit, lvef.direction, lvef.loinc) == ("%", Direction.INCREASE, "10230-1")
    assert cardio.outcome("NTPROBNP").loinc == "33762-6"
    assert cardio.outcome("6MWD").loinc == "64098-7"
    crit = cardio.eligibility.entry_criteria[0]
    assert (crit.outcome, crit.min, crit.max) == ("LVEF", None, 40.0)
    assert cardio.schedule.baseline_visit.name == "baseline"
    assert {r.kind for r in cardio.rules} == {
        RuleKind.STOP_ON_CONSENT_WITHDRAWAL, RuleKind.STOP_ON_RELATED_AE,
        RuleKind.HOLD_ON_RELATED_AE, RuleKind.REDUCE_ON_RELATED_AE}


def test_skin_example(skin):
    assert {a.route for a in skin.arms} == {Route.TOPICAL_MICRONEEDLING,
                                             Route.TOPICAL_AFTER_CLEANSING}
    assert all(a.dose_unit is DoseUnit.PARTICLES for a in skin.arms)
    assert [o.code for o in skin.outcomes] == ["ELAST-R2", "HYDR", "TEWL", "GAIS"]
    assert skin.outcome("TEWL").unit == "g/m2/h"
    assert skin.outcome("TEWL").direction is Direction.DECREASE
    assert skin.outcome("ELAST-R2").unit == "1"  # "ratio" normalised to the UCUM unity
    esc = next(r for r in skin.rules if r.kind is RuleKind.ESCALATE_IF_NOT_IMPROVED)
    assert (esc.outcome, esc.visit, esc.min_improvement, esc.change_kind) == (
        "HYDR", "week4", 10.0, ChangeKind.PERCENT)
    # GAIS is rated against baseline photographs, so it is not measured at baseline
    assert "GAIS" not in skin.schedule.baseline_visit.outcomes


def test_example_paths_and_lookup_errors(cardio):
    assert set(EXAMPLE_PROTOCOLS) == {"skin_rejuvenation", "cardiomyopathy"}
    with pytest.raises(NotFound, match="no example protocol"):
        example_protocol_path("nope")
    with pytest.raises(NotFound, match="no arm 'X'; arms are IV"):
        cardio.arm("X")
    with pytest.raises(InvalidInput, match="levels are 1-3"):
        cardio.arm("IV").level(4)
    with pytest.raises(InvalidInput, match="levels are 1-3"):
        cardio.arm("IV").level(0)


def test_yaml_number_spellings_are_accepted(cardio_raw):
    # PyYAML reads "2.0e10" (no sign in the exponent) as a string; it must still work.
    cardio_raw["arms"][0]["dose_levels"] = ["5e9", "1.0e10", 2.0e10]
    cardio_raw["version"] = 2.1  # unquoted YAML float
    p = parse_protocol(cardio_raw)
    assert p.arm("IV").dose_levels == (5e9, 1e10, 2e10)
    assert p.version == "2.1"


def _set(raw: dict, path: str, value) -> dict:
    *parents, last = path.split(".")
    node = raw
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return raw


_DELETE = object()


@pytest.mark.parametrize(("path", "value", "field", "problem"), [
    ("arms.0.route", "oral", "arms[0].route", "Input should be"),
    ("arms.0.dose_unit", "mg", "arms[0].dose_unit", "Input should be"),
    ("arms.0.dose_levels", [2e10, 1e10], "arms[0].dose_levels", "strictly increasing"),
    ("arms.0.dose_levels", [-1.0, 1e10], "arms[0].dose_levels", "positive"),
    ("arms.0.starting_level", 4, "arms[0].starting_level", "does not exist"),
    ("arms.0.maximum_dose", 1e10, "arms[0].maximum_dose", "exceeds the maximum"),
    ("arms.0.product_types", [], "arms[0].product_types", "at least 1"),
    ("id", _DELETE, "id", "required field is missing"),
    ("outcomes.0.loinc", "10230", "outcomes[0].loinc", "pattern"),
    ("outcomes.0.direction", "up", "outcomes[0].direction", "Input should be"),
    ("outcomes.0.colour", "red", "outcomes[0].colour", "unknown field"),
    ("outcomes.0.responder.visit", "month9", "outcomes[0].responder.visit", "unknown visit"),
    ("outcomes.0.responder.visit", "baseline", "outcomes[0].responder.visit", "not the baseline"),
    ("rules.2.grade", 7, "rules[2].grade", "less than or equal to 5"),
    ("rules.2.grade", _DELETE, "rules[2].grade", "needs 'grade'"),
    ("rules.0.grade", 3, "rules[0].grade", "takes no 'grade'"),
    ("rules.1.id", "STOP-CONSENT", "rules", "duplicate identifiers"),
    ("schedule.visits.0.baseline", False, "schedule.visits", "exactly one visit"),
    ("schedule.visits.1.outcomes", ["LVEF", "BMI"], "schedule.visits[1].outcomes", "unknown outcomes"),
    ("schedule.visits.1.day", 500, "schedule.visits", "order of day"),
    ("eligibility.entry_criteria.0.outcome", "BMI", "eligibility.entry_criteria[0].outcome",
     "unknown outcome"),
    ("schedule.administrations.1.window_before_days", -2,
     "schedule.administrations[1].window_before_days", "greater than or equal to 0"),
])
def test_bad_field_is_named(cardio_raw, tmp_path, path, value, field, problem):
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(_set(cardio_raw, path, value)), encoding="utf-8")
    with pytest.raises(FileFormatError) as info:
        load_protocol(f)
    err = info.value
    assert err.field == field
    assert problem in err.problem
    assert str(f) in str(err) and "\n" not in str(err)


def test_escalate_rule_needs_a_known_outcome_and_visit(cardio_raw):
    cardio_raw["rules"].append({
        "id": "ESC", "kind": "escalate_if_not_improved", "priority": 9, "description": "x",
        "outcome": "LVEF", "visit": "month12", "min_improvement": 5, "change_kind": "absolute"})
    with pytest.raises(FileFormatError) as info:
        parse_protocol(cardio_raw, source="mem")
    assert info.value.field == "rules[4].visit"
    cardio_raw["rules"][-1]["visit"] = "month3"
    cardio_raw["rules"][-1]["outcome"] = "XYZ"
    with pytest.raises(FileFormatError, match="unknown outcome 'XYZ'") as info:
        parse_protocol(cardio_raw, source="mem")
    assert info.value.field == "rules[4].outcome"


@pytest.mark.parametrize(("content", "message"), [
    (b"id: [unclosed\n", "not valid YAML"),
    (b"- just\n- a list\n", "mapping"),
    (b"", "mapping"),
    (b"\xff\xfe\x00binary", "not UTF-8"),
    (b"!!python/object/apply:os.system ['echo pwned']\n", "not valid YAML"),
])
def test_hostile_files(tmp_path, content, message):
    f = tmp_path / "p.yaml"
    f.write_bytes(content)
    with pytest.raises(FileFormatError, match=message):
        load_protocol(f)


def test_yaml_error_names_the_line(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("id: A\nversion: '1'\ntitle: [x\n", encoding="utf-8")
    with pytest.raises(FileFormatError) as info:
        load_protocol(f)
    assert info.value.line is not None and info.value.line >= 3


def test_missing_and_directory(tmp_path):
    with pytest.raises(FileFormatError, match="file not found"):
        load_protocol(tmp_path / "none.yaml")
    with pytest.raises(FileFormatError, match="directory"):
        load_protocol(tmp_path)


def test_oversized_file_is_refused(tmp_path):
    f = tmp_path / "big.yaml"
    f.write_bytes(b"#" * 1_000_001)
    with pytest.raises(FileFormatError, match="at most"):
        load_protocol(f)


def test_round_trip_through_yaml(cardio):
    again = protocol_from_yaml(yaml.safe_dump(cardio.model_dump(mode="json")), source="dump")
    assert again == cardio


def test_alias_bombs_and_deep_nesting_are_refused():
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\n"
    with pytest.raises(FileFormatError, match="aliases"):
        protocol_from_yaml(bomb, source="bomb.yaml")
    with pytest.raises(FileFormatError, match="nested too deeply"):
        protocol_from_yaml("[" * 2000 + "]" * 2000, source="deep.yaml")


def test_entry_criterion_must_be_measured_at_baseline(cardio_raw):
    cardio_raw["schedule"]["visits"][0]["outcomes"] = ["NTPROBNP", "6MWD"]
    cardio_raw["outcomes"][0].pop("responder")
    with pytest.raises(FileFormatError, match="not measured at the baseline") as info:
        parse_protocol(cardio_raw, source="mem")
    assert info.value.field == "eligibility.entry_criteria[0].outcome"
