"""Checks of an FCS TEXT segment before FlowIO decodes DATA: precise refusals instead of stack traces.

FlowIO raises bare ``ValueError``/``KeyError`` for a missing or malformed
required keyword, and silently misreads a few DATA layouts. These checks name
the keyword instead. They split the TEXT segment the way the standard says
(first byte is the delimiter, a doubled delimiter is an escaped one) only to
find what is wrong; FlowIO remains the parser.
"""

from __future__ import annotations

import re

from ..errors import FileFormatError

__all__ = ["check_layout", "check_text", "text_keywords"]

HEADER_BYTES = 58


def text_keywords(raw: bytes, offset: int, path) -> dict[str, str]:
    """Keywords of the data set at ``offset`` (lower case, without ``$``).

    Raises
    ------
    FileFormatError
        HEADER offsets of TEXT that are not numbers or lie outside the file.
    """
    head = raw[offset:offset + HEADER_BYTES]
    try:
        start, stop = int(head[10:18]), int(head[18:26])
    except ValueError:
        raise FileFormatError(path, "HEADER bytes 10-25 (TEXT offsets) are not numbers",
                              offset=offset + 10) from None
    if start < HEADER_BYTES or stop <= start or offset + stop >= len(raw):
        raise FileFormatError(path, f"HEADER puts TEXT at bytes {start}-{stop}, outside the "
                                    f"{len(raw)}-byte file", offset=offset + 10)
    text = raw[offset + start:offset + stop + 1].decode("latin-1")
    delim = re.escape(text[0])
    cells = re.split(f"(?<!{delim}){delim}(?!{delim})", text[1:])
    cells = [c.replace(text[0] * 2, text[0]) for c in cells]
    if cells and cells[-1] == "":
        cells.pop()
    return {k.strip().lstrip("$").lower(): v for k, v in zip(cells[::2], cells[1::2], strict=False)}


MAX_KEYWORD_NUMBER = 10**15  # above any event count, bit width or parameter count


def _name(text: dict, n: int) -> str:
    """Parameter ``n``'s $PnN for a message: at most 40 characters, non-printing escaped."""
    # A damaged TEXT segment can run a name into kilobytes of binary DATA; the
    # message stays one readable line.
    name = str(text.get(f"p{n}n", f"P{n}")).strip()
    name = name if name.isprintable() else repr(name[:200])[1:-1]
    return name if len(name) <= 40 else name[:37] + "..."


def _whole(text: dict, key: str, path, *, minimum: int) -> int:
    value = str(text.get(key, "")).strip()
    if not value:
        raise FileFormatError(path, f"required keyword ${key.upper()} is missing", field=f"${key.upper()}")
    try:
        number = int(value)
    except ValueError:
        raise FileFormatError(path, f"${key.upper()} {value[:20]!r} is not a whole number",
                              field=f"${key.upper()}") from None
    if abs(number) >= MAX_KEYWORD_NUMBER:
        # No count, width or offset of a real file is this large; refusing it here also
        # keeps a 400-digit value out of every later message.
        raise FileFormatError(path, f"${key.upper()} {value[:12]}... ({len(value)} digits) is too "
                                    "large to be a count or a width", field=f"${key.upper()}")
    if number < minimum:
        raise FileFormatError(path, f"${key.upper()} {number} is below {minimum}", field=f"${key.upper()}")
    return number


def check_text(path, raw: bytes, offset: int) -> None:
    """Required keywords of the data set at ``offset`` are present and well formed.

    ``$PAR`` >= 1, ``$TOT`` >= 0, ``$DATATYPE``, ``$BYTEORD``, and per parameter
    ``$PnN``, ``$PnB``, ``$PnR`` (a number) and ``$PnE`` (``f1,f2`` when present).
    """
    text = text_keywords(raw, offset, path)
    par = _whole(text, "par", path, minimum=1)
    _whole(text, "tot", path, minimum=0)
    for key in ("datatype", "byteord"):
        if not str(text.get(key, "")).strip():
            raise FileFormatError(path, f"required keyword ${key.upper()} is missing",
                                  field=f"${key.upper()}")
    for n in range(1, min(par, 10000) + 1):
        if f"p{n}n" not in text:
            raise FileFormatError(path, f"$PAR is {par} but $P{n}N is missing", field=f"$P{n}N")
        _whole(text, f"p{n}b", path, minimum=1)
        rng = str(text.get(f"p{n}r", "")).strip()
        try:
            float(rng)
        except ValueError:
            raise FileFormatError(path, f"$P{n}R {rng[:20]!r} ({_name(text, n)}) is not a number",
                                  field=f"$P{n}R") from None
        if f"p{n}e" in text:
            parts = str(text[f"p{n}e"]).split(",")
            try:
                if len(parts) != 2:
                    raise ValueError
                [float(x) for x in parts]
            except ValueError:
                raise FileFormatError(path, f"$P{n}E {text[f'p{n}e'][:20]!r} is not 'decades,offset'",
                                      field=f"$P{n}E") from None


def check_layout(path, text: dict) -> None:
    """Refuse DATA layouts FlowIO would misread, naming the keyword."""
    mode = str(text.get("mode", "L")).strip().upper()
    if mode in ("C", "U"):
        raise FileFormatError(path, f"$MODE {mode} (histogram data) is not list-mode data; only "
                                    "$MODE L is read", field="$MODE")
    order = str(text.get("byteord", "")).replace(" ", "")
    if order not in ("1,2,3,4", "1,2", "4,3,2,1", "2,1"):
        raise FileFormatError(path, f"$BYTEORD {order[:20]!r}: only 1,2,3,4 (little-endian) and "
                                    "4,3,2,1 (big-endian) are read", field="$BYTEORD")
    datatype = str(text.get("datatype", "")).strip().upper()
    width_needed = {"F": 32, "D": 64}
    try:
        par = int(str(text.get("par", "0")).strip())
    except ValueError:
        raise FileFormatError(path, f"$PAR {str(text.get('par'))[:20]!r} is not a number", field="$PAR") from None
    if datatype == "A":
        raise FileFormatError(path, "$DATATYPE A (ASCII events) is not supported; export as "
                                    "binary (I, F or D)", field="$DATATYPE")
    if datatype not in ("I", "F", "D"):
        raise FileFormatError(path, f"$DATATYPE {datatype[:10]!r} is not I, F or D", field="$DATATYPE")
    for n in range(1, min(par, 10000) + 1):
        raw_width = str(text.get(f"p{n}b", "")).strip()
        name = _name(text, n)
        try:
            width = int(raw_width)
        except ValueError:
            raise FileFormatError(path, f"$P{n}B {raw_width[:12]!r} ({name}) is not a bit width",
                                  field=f"$P{n}B") from None
        own = str(text.get(f"p{n}datatype", datatype)).strip().upper()
        if own != datatype:
            raise FileFormatError(path, f"$P{n}DATATYPE {own[:4]} ({name}) differs from $DATATYPE "
                                        f"{datatype}: mixed data types are not read",
                                  field=f"$P{n}DATATYPE")
        if datatype in width_needed and width != width_needed[datatype]:
            raise FileFormatError(path, f"$DATATYPE {datatype} stores {width_needed[datatype]}-bit "
                                        f"values but $P{n}B ({name}) is {width}", field=f"$P{n}B")
        if datatype == "I" and width not in (8, 16, 32):
            raise FileFormatError(path, f"$P{n}B {width} ({name}): integer events of {width} bits "
                                        "are not supported (8, 16 or 32 bits; 64-bit values as "
                                        "$DATATYPE D)", field=f"$P{n}B")
