"""Input that looks like other input is refused (SQLite and PostgreSQL).

A trailing newline, another letter case, a control character or a Unicode
direction override makes a record print like another one (or hide what it
says); over-long text used to be cut silently. Each is refused with a
one-line reason naming the field.
"""

from __future__ import annotations

from datetime import date

import pytest

from exotrace.errors import Conflict, InvalidInput
from exotrace.records import (
    Role,
    add_donor,
    add_storage,
    add_user,
    create_lot,
)


@pytest.mark.parametrize("code", ["D-001\n", "D-001\r\n", "\nD-001", "D-001 ", "D-0\x0001"])
def test_identifier_must_match_as_a_whole_string(session, record_users, code):
    with pytest.raises(InvalidInput, match="donor code .*use 1-64 letters"):
        add_donor(session, record_users["analyst"], code, age_band="30-39", sex="female")


def test_codes_are_unique_ignoring_case(session, record_users):
    analyst = record_users["analyst"]
    add_donor(session, analyst, "DEMO-D01", age_band="30-39", sex="female")
    with pytest.raises(Conflict, match=r"donor demo-d01 already exists as DEMO-D01 \(codes are "
                                       r"compared ignoring case\)"):
        add_donor(session, analyst, "demo-d01", age_band="30-39", sex="female")
    with pytest.raises(Conflict, match="donor DEMO-D01 already exists$"):
        add_donor(session, analyst, "DEMO-D01", age_band="30-39", sex="female")
    add_donor(session, analyst, "DEMO-D02", age_band="30-39", sex="female")  # a real new code


def test_lot_numbers_are_unique_ignoring_case(session, record_users, chain):
    with pytest.raises(Conflict, match="lot l-d-001-1 already exists as L-D-001-1"):
        create_lot(session, record_users["analyst"], "l-d-001-1",
                   isolation_code=chain["run"].code, intended_use="clinical_manufacturing",
                   manufactured_on=date(2025, 3, 2), expires_on=date(2026, 3, 1))


def test_age_band_and_user_name_match_whole_strings(session, record_users, test_password_hash):
    with pytest.raises(InvalidInput, match="age band"):
        add_donor(session, record_users["analyst"], "D-9", age_band="30-39\n", sex="female")
    with pytest.raises(InvalidInput, match="user name 'analyst9\\\\n'"):
        add_user(session, "analyst9\n", Role.ANALYST, password_hash=test_password_hash,
                 acting=record_users["admin"])


@pytest.mark.parametrize(("text", "problem"), [
    ("non-smoker\x1b[8m hidden", "control character U\\+001B at position 11"),
    ("non-smoker\x00", "control character U\\+0000"),
    ("smoker \u202eresu-non", "direction control U\\+202E at position 8"),
    ("smoker \u2066x\u2069", "direction control U\\+2066"),
])
def test_control_and_direction_characters_are_refused(session, record_users, text, problem):
    with pytest.raises(InvalidInput, match=f"donor.exposures holds the {problem}"):
        add_donor(session, record_users["analyst"], "D-77", age_band="30-39", sex="female",
                  exposures=text)


def test_multiline_text_keeps_line_breaks_but_not_direction_overrides(session, record_users,
                                                                      chain):
    lot = chain["lot"]
    create_lot(session, record_users["analyst"], "L-NOTE", isolation_code=chain["run"].code,
               intended_use="clinical_manufacturing", manufactured_on=date(2025, 3, 2),
               expires_on=lot.expires_on, description="line one\nline two\twith a tab")
    with pytest.raises(InvalidInput, match="lot.description holds the direction control "
                                           "U\\+202E"):
        create_lot(session, record_users["analyst"], "L-NOTE2",
                   isolation_code=chain["run"].code, intended_use="clinical_manufacturing",
                   manufactured_on=date(2025, 3, 2), description="ok \u202e kO")


@pytest.mark.parametrize(("length", "refused"), [(199, False), (200, False), (201, True)])
def test_over_long_text_is_refused_with_its_limit_not_cut(session, record_users, chain, length,
                                                          refused):
    buffer = "P" * length  # storage.buffer is String(200)
    if refused:
        with pytest.raises(InvalidInput, match="storage.buffer is 201 characters long; the "
                                               "limit is 200"):
            add_storage(session, record_users["analyst"], chain["lot"].number, buffer=buffer,
                        temperature_c=-80, container="vial", location="F1")
    else:
        s = add_storage(session, record_users["analyst"], chain["lot"].number, buffer=buffer,
                        temperature_c=-80, container="vial", location="F1")
        session.expire(s)
        assert len(s.buffer) == length  # stored whole


def test_one_line_fields_refuse_line_breaks(session, record_users, chain):
    with pytest.raises(InvalidInput, match="storage.location holds the control character "
                                           "U\\+000A at position 3"):
        add_storage(session, record_users["analyst"], chain["lot"].number, buffer="PBS",
                    temperature_c=-80, container="vial", location="F1\nF2")
