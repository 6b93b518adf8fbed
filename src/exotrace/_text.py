"""Text that looks like other text: one validator for identifiers and free text, and CSV cells
that a spreadsheet would run as a formula.

Pure (no database): the records services, the clinic exports and the CLI use
the same rules.

* Identifiers match their pattern as a whole string (``re.fullmatch``): a
  ``$``-anchored ``re.match`` also accepts a trailing newline, so
  ``"DEMO-D01\\n"`` would be a second donor that prints like the first.
* Free text refuses control characters (a line break only where the field is
  multi-line) and the Unicode direction marks, overrides and isolates that
  make text display in another order than it is stored (CVE-2021-42574,
  "Trojan Source").
* Text longer than its field's limit is refused with the limit, never cut.
"""

from __future__ import annotations

import re
import unicodedata

from .errors import InvalidInput

__all__ = ["BIDI_CONTROLS", "check_identifier", "check_text", "csv_cell", "csv_row",
           "text_problem"]

#: Unicode bidirectional formatting characters (marks, embeddings, overrides, isolates).
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                          "\u2066\u2067\u2068\u2069")
_MULTILINE_OK = frozenset("\n\r\t")
#: First characters that make a spreadsheet evaluate a cell (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def text_problem(value: str, *, max_length: int | None = None,
                 multiline: bool = False) -> str | None:
    """Why ``value`` is refused as stored text, or None when it is acceptable."""
    if max_length is not None and len(value) > max_length:
        return f"is {len(value)} characters long; the limit is {max_length}"
    for i, ch in enumerate(value):
        if ch in BIDI_CONTROLS:
            return (f"holds the direction control U+{ord(ch):04X} at position {i + 1} "
                    "(text would display in another order than it is stored)")
        if unicodedata.category(ch) == "Cc" and not (multiline and ch in _MULTILINE_OK):
            return f"holds the control character U+{ord(ch):04X} at position {i + 1}"
    return None


def check_text(value: str | None, what: str, *, max_length: int | None = None,
               multiline: bool = False, required: bool = False) -> str | None:
    """``value`` unchanged if acceptable free text; InvalidInput naming ``what`` otherwise.

    Parameters
    ----------
    max_length : int, optional
        Longest accepted text, in characters (refused above, never cut).
    multiline : bool
        Allow line breaks and tabs (notes, summaries); other control
        characters are refused everywhere.
    required : bool
        Refuse ``None`` and blank text.
    """
    if value is None:
        if required:
            raise InvalidInput(f"{what} is required")
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text, got {type(value).__name__}")
    if required and not value.strip():
        raise InvalidInput(f"{what} is required")
    problem = text_problem(value, max_length=max_length, multiline=multiline)
    if problem:
        raise InvalidInput(f"{what} {problem}")
    return value


def check_identifier(value: str, what: str, pattern: re.Pattern[str], hint: str) -> str:
    """``value`` if the whole string matches ``pattern``; InvalidInput with ``hint`` otherwise."""
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise InvalidInput(f"{what} {value!r}: {hint}")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip() == text and text.lower().lstrip("+-") not in ("inf", "infinity", "nan")


def csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: text starting with ``= + - @``, a tab or a
    line break gets a leading apostrophe; numbers (also ``"-1.5"`` as text) stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _is_number(value):
        return "'" + value
    return value


def csv_row(row: dict) -> dict:
    """:func:`csv_cell` applied to every value of a CSV row."""
    return {k: csv_cell(v) for k, v in row.items()}
