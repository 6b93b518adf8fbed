"""Study YAML loading: valid files, one-line errors with line and field, fuzzing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exotrace.characterization import StudyDocument, example_study_path, load_study, parse_study
from exotrace.errors import FileFormatError

DATA = Path(__file__).resolve().parents[1] / "data" / "characterization"


def test_example_and_test_studies_load():
    for path in [example_study_path(), *sorted(DATA.glob("*_study.yaml"))]:
        doc = load_study(path)
        assert doc.study.source is not None, path


def test_fields_and_lines_are_kept():
    doc = load_study(DATA / "complete_study.yaml")
    s = doc.study
    assert s.separation.steps[1].method == "differential_ultracentrifugation"
    assert s.separation.steps[1].k_factor == 256.0
    assert s.collection.cell_count_at_harvest == 5.0e7
    assert s.markers[3].name == "syntenin"
    text = (DATA / "complete_study.yaml").read_text().splitlines()
    line = doc.line_of("separation.steps[1].k_factor")
    assert text[line - 1].strip() == "k_factor: 256"
    # a field that is absent falls back to its closest parent
    assert doc.line_of("separation.steps[1].nonexistent") == doc.lines["separation.steps[1]"]


def _error(text: str) -> FileFormatError:
    with pytest.raises(FileFormatError) as err:
        parse_study(text, source="study.yaml")
    message = str(err.value)
    assert "\n" not in message and message.startswith("study.yaml")
    return err.value


def test_syntax_error_names_the_line():
    with pytest.raises(FileFormatError) as err:
        load_study(DATA / "invalid_syntax.yaml")
    assert err.value.line == 5
    assert "YAML syntax error" in str(err.value)
    assert "invalid_syntax.yaml" in str(err.value)


def test_unknown_method_names_field_and_line():
    with pytest.raises(FileFormatError) as err:
        load_study(DATA / "invalid_method.yaml")
    e = err.value
    assert e.field == "separation.steps[1].method"
    assert e.line == 7
    assert "'magic_beads'" in str(e) and "size_exclusion_chromatography" in str(e)


def test_wrong_type_names_field_and_line():
    with pytest.raises(FileFormatError) as err:
        load_study(DATA / "invalid_type.yaml")
    assert err.value.field == "collection.volume_ml"
    assert err.value.line == 3
    assert "valid number" in str(err.value) and "'a lot'" in str(err.value)


@pytest.mark.parametrize(
    ("text", "field", "line", "words"),
    [
        ("source:\n  kind: cell_line\n  specis: human\n", "source.specis", 3, "unknown field"),
        ("separation:\n  steps: []\n", "separation.steps", 2, "at least 1"),
        ("markers:\n  - name: CD63\n    method: western_blot\n", "markers[0].detected", 2,
         "required field 'detected'"),
        ("markers:\n  - {name: CD63, detected: maybe, method: western_blot}\n",
         "markers[0].detected", 2, "boolean"),
        ("collection:\n  viability_percent_at_harvest: 130\n",
         "collection.viability_percent_at_harvest", 2, "less than or equal to 100"),
        ("collection:\n  volume_ml: .nan\n", "collection.volume_ml", 2, "finite"),
        ("collection:\n  volume_ml: -5\n", "collection.volume_ml", 2, "greater than 0"),
        ("quantification:\n  measures:\n    - {quantity: protein, method: bca, value: 3,"
         " unit: particles/mL}\n", "quantification.measures[0]", 3, "must be ug/mL"),
        ("quantification:\n  measures:\n    - {quantity: protein, method: bca, value: 3}\n",
         "quantification.measures[0]", 3, "needs its unit"),
        ("source: {kind: cell_line}\nsource: {kind: tissue}\n", "source", 2, "duplicate key"),
        ("schema_version: 2\n", "schema_version", 1, "Input should be 1"),
    ],
)
def test_validation_errors(text, field, line, words):
    e = _error(text)
    assert e.field == field
    assert e.line == line
    assert words in str(e)


def test_several_problems_are_counted():
    e = _error("source:\n  kind: x\ndonor:\n  sex: 5\n  age_years: old\n")
    assert e.field == "source.kind"
    assert "(and 2 more problems)" in str(e)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("# only a comment\n", "empty"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("just text\n", "top level must be a mapping"),
        ("a: &x [1]\nb: *x\n", "aliases"),
        ("a: 1\n---\nb: 2\n", "YAML syntax error"),
        ("!!python/object/apply:os.system ['ls']\n", "YAML syntax error"),
        ("title: ok\n\x00\n", "not valid YAML"),
        ("[" * 5000, "nested too deeply"),
    ],
)
def test_hostile_or_empty_text(text, words):
    assert words in str(_error(text))


def test_dates_stay_text():
    doc = parse_study("title: 2024-03-01\nsource: {kind: tissue}\n")
    assert doc.study.title == "2024-03-01"


def test_file_problems(tmp_path):
    with pytest.raises(FileFormatError, match="file not found"):
        load_study(tmp_path / "absent.yaml")
    with pytest.raises(FileFormatError, match="is a directory"):
        load_study(tmp_path)
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("title: Zürich\n".encode("latin-1"))
    with pytest.raises(FileFormatError, match="not UTF-8") as err:
        load_study(bad)
    assert err.value.offset == 8  # 0-based: "title: Z" is 8 bytes
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"#" * 1_000_001)
    with pytest.raises(FileFormatError, match="at most"):
        load_study(huge)


def _check_outcome(text: str) -> None:
    try:
        doc = parse_study(text, source="fuzz.yaml")
    except FileFormatError as exc:
        assert "\n" not in str(exc)
        assert str(exc).startswith("fuzz.yaml")
    else:
        assert isinstance(doc, StudyDocument)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_random_text_never_crashes(text):
    _check_outcome(text)


_SECTIONS = ["source", "donor", "collection", "separation", "storage", "markers", "title",
             "kind", "steps", "method", "name", "detected", "volume_ml", "nomenclature", "term"]
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
                     st.sampled_from(["cell_line", "nta", "western_blot", "exosome", "tem"]))
_trees = st.recursive(
    _scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(_SECTIONS), children, max_size=5)),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(_SECTIONS), _trees, max_size=6))
def test_random_structures_never_crash(tree):
    _check_outcome(yaml.safe_dump(tree, allow_unicode=True))


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_mutated_example_never_crashes(data):
    text = example_study_path().read_text(encoding="utf-8")
    pos = data.draw(st.integers(0, len(text) - 1))
    junk = data.draw(st.text(max_size=5))
    cut = data.draw(st.booleans())
    _check_outcome(text[:pos] if cut else text[:pos] + junk + text[pos + 1:])
