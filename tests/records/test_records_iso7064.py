"""ISO/IEC 7064 MOD 37-2 check characters against published ISBT 128 examples."""

import pytest

from exotrace.errors import InvalidInput
from exotrace.records import (
    ALLOWED_TRANSITIONS,  # noqa: F401 - import check of the public API
    append_check_character,
    check_character,
    is_valid_identifier,
)

# Donation identification numbers with their published check characters:
# UK Red Book Annex 2 (ISBT 128 check character calculation) and ICCBBA's
# "Use of the Donation Identification Number" / "An Introduction to ISBT 128".
PUBLISHED = [
    ("G123498654321", "H"),
    ("A999922654321", "S"),
    ("A999922123458", "J"),
    ("A999922012346", "*"),
    ("A999522123456", "*"),
    ("A999914123456", "N"),
    ("A999917123456", "9"),
    ("A999916123456", "Q"),
]


@pytest.mark.parametrize("payload,expected", PUBLISHED)
def test_published_check_characters(payload, expected):
    assert check_character(payload) == expected
    assert is_valid_identifier(payload + expected)


def test_grouped_and_lower_case_input_is_normalised():
    assert check_character("g123 498 654 321") == "H"
    assert is_valid_identifier("G1234-98-654321-H")


def test_every_single_substitution_is_detected():
    ident = append_check_character("EV2025001" + "00042")
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for i, original in enumerate(ident[:-1]):
        for c in alphabet:
            if c != original:
                assert not is_valid_identifier(ident[:i] + c + ident[i + 1:]), (i, c)


def test_adjacent_transpositions_are_detected():
    ident = append_check_character("A999922123458")
    for i in range(len(ident) - 1):
        if ident[i] != ident[i + 1]:
            swapped = ident[:i] + ident[i + 1] + ident[i] + ident[i + 2:]
            assert not is_valid_identifier(swapped), i


def test_bad_characters_are_refused_with_position():
    with pytest.raises(InvalidInput, match="position 3"):
        check_character("AB#1")
    assert not is_valid_identifier("AB#1X")
    assert not is_valid_identifier("A")
