"""Clinical text is stored as given or refused: never cut, never look-alike (both backends)."""

from __future__ import annotations

from datetime import date

import pytest

from exotrace.errors import Conflict, InvalidInput
from exotrace.records import ClinicalAdverseEvent, add_adverse_event, enrol_subject
from exotrace.records import repositories as repo
from exotrace.records._clinic_events import AE_TERM_MAX_LENGTH


def _ae(session, world, term):
    return add_adverse_event(session, world["doc"], "C1", term=term, grade=1, serious=False,
                             relatedness="possible", onset_on=date(2025, 6, 3))


@pytest.mark.parametrize(("length", "refused"), [(199, False), (200, False), (201, True)])
def test_adverse_event_term_limit(session, world, length, refused):
    assert AE_TERM_MAX_LENGTH == 200
    term = ("x" * (length - 9)) + " headache"
    assert len(term) == length
    if refused:
        with pytest.raises(InvalidInput, match="adverse event term is 201 characters long; the "
                                               "limit is 200"):
            _ae(session, world, term)
        assert repo.list_all(session, ClinicalAdverseEvent) == []
    else:
        row, _, _ = _ae(session, world, term)
        session.expire(row)
        assert row.term == term  # stored whole


@pytest.mark.parametrize("term", ["rash\u202e", "rash\x07", "rash\nfever"])
def test_adverse_event_term_refuses_control_and_direction_characters(session, world, term):
    with pytest.raises(InvalidInput, match="adverse event term holds the"):
        _ae(session, world, term)


@pytest.mark.parametrize(("code", "error", "match"), [
    ("c1", Conflict, "subject c1 already exists as C1"),
    ("C1\n", InvalidInput, "subject code 'C1\\\\n'"),
])
def test_subject_codes_do_not_look_alike(session, world, code, error, match):
    with pytest.raises(error, match=match):
        enrol_subject(session, world["doc"], code, protocol_code="EXO-SKIN-01", arm_code="MN",
                      enrolled_on=date(2025, 6, 2), consent_version="S1",
                      consent_signed_on=date(2025, 6, 2), sex="female", age_years=40)
