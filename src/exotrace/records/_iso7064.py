"""ISO/IEC 7064 MOD 37-2 check characters (the system ISBT 128 uses).

Pure system, modulus 37, radix 2, alphabet ``0-9 A-Z *`` (values 0-36).
Written here because it is ten lines; no maintained package is needed.
Detects all single substitutions and adjacent transpositions.
"""

from __future__ import annotations

from ..errors import InvalidInput

__all__ = ["ALPHABET_37", "append_check_character", "check_character", "is_valid_identifier"]

ALPHABET_37 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
_VALUE = {c: i for i, c in enumerate(ALPHABET_37)}


def _clean(text: str) -> str:
    # Printed identifiers are often grouped with spaces or hyphens.
    return "".join(c for c in text.upper() if c not in " -")


def check_character(payload: str) -> str:
    """The MOD 37-2 check character for ``payload`` (digits and letters).

    Notes
    -----
    Iteratively ``p = 2 (p + v) mod 37`` over the characters' values; the
    check value is ``(38 - p) mod 37`` so that the whole string, check
    included, sums to 1 modulo 37 (ISO/IEC 7064:2003 s7).
    """
    clean = _clean(payload)
    if not clean:
        raise InvalidInput("identifier payload is empty")
    p = 0
    for position, char in enumerate(clean, start=1):
        value = _VALUE.get(char)
        if value is None or char == "*":
            raise InvalidInput(
                f"identifier {payload!r}: character {char!r} at position {position} is not 0-9 or A-Z")
        p = ((p + value) * 2) % 37
    return ALPHABET_37[(38 - p) % 37]


def append_check_character(payload: str) -> str:
    """``payload`` followed by its check character."""
    return payload + check_character(payload)


def is_valid_identifier(identifier: str) -> bool:
    """True when the last character is the MOD 37-2 check of the rest (e.g. a scanned id)."""
    clean = _clean(identifier)
    if len(clean) < 2:
        return False
    try:
        return check_character(clean[:-1]) == clean[-1]
    except InvalidInput:
        return False
