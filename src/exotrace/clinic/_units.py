"""Units of clinical outcome measures: spelling, simple conversions, UCUM codes.

Only conversions that keep the meaning are offered (pg/mL <-> ng/L, m <-> ft,
ratio <-> %); a score never converts to anything. Units outside the table are
accepted only when spelled exactly as the protocol spells them.
"""

from __future__ import annotations

import math

from ..errors import UnitError

__all__ = ["convert_outcome_value", "normalize_unit", "ucum_code"]

# canonical spelling -> (dimension, factor to the dimension's base unit)
_UNITS: dict[str, tuple[str, float]] = {
    "1": ("dimensionless", 1.0),
    "%": ("dimensionless", 0.01),
    "pg/mL": ("mass concentration", 1.0),
    "ng/L": ("mass concentration", 1.0),
    "ng/mL": ("mass concentration", 1000.0),
    "ug/L": ("mass concentration", 1000.0),
    "m": ("length", 1.0),
    "km": ("length", 1000.0),
    "cm": ("length", 0.01),
    "mm": ("length", 0.001),
    "ft": ("length", 0.3048),  # international foot, exact
    "cm2": ("area", 1.0),
    "mm2": ("area", 0.01),
    "m2": ("area", 1.0e4),
    "g/m2/h": ("water flux", 1.0),
    "AU": ("arbitrary", 1.0),
    "score": ("score", 1.0),
}

_ALIASES: dict[str, str] = {
    "ratio": "1",
    "fraction": "1",
    "percent": "%",
    "pg/ml": "pg/mL",
    "ng/l": "ng/L",
    "ng/ml": "ng/mL",
    "ug/l": "ug/L",
    "µg/l": "ug/L",
    "meter": "m",
    "metre": "m",
    "meters": "m",
    "metres": "m",
    "feet": "ft",
    "cm^2": "cm2",
    "cm²": "cm2",
    "mm^2": "mm2",
    "mm²": "mm2",
    "m^2": "m2",
    "g/(m2.h)": "g/m2/h",
    "g/m^2/h": "g/m2/h",
    "g/m²/h": "g/m2/h",
    "g m-2 h-1": "g/m2/h",
    "g/(m2·h)": "g/m2/h",
    "au": "AU",
    "a.u.": "AU",
    "arbitrary units": "AU",
    "[arb'u]": "AU",
    "points": "score",
    "{score}": "score",
}

_UCUM: dict[str, str] = {
    "1": "1",
    "%": "%",
    "pg/mL": "pg/mL",
    "ng/L": "ng/L",
    "ng/mL": "ng/mL",
    "ug/L": "ug/L",
    "m": "m",
    "km": "km",
    "cm": "cm",
    "mm": "mm",
    "ft": "[ft_i]",
    "cm2": "cm2",
    "mm2": "mm2",
    "m2": "m2",
    "g/m2/h": "g/(m2.h)",
    "AU": "[arb'U]",
    "score": "{score}",
}


def normalize_unit(unit: str) -> str:
    """Canonical spelling of an outcome unit (``"pg/ml"`` -> ``"pg/mL"``).

    Unknown units come back stripped but otherwise unchanged.
    """
    text = str(unit).strip()
    if text in _UNITS:
        return text
    return _ALIASES.get(text.lower(), _ALIASES.get(text, text))


def convert_outcome_value(value: float, from_unit: str, to_unit: str, *, what: str = "value") -> float:
    """Convert an outcome value between compatible units.

    Parameters
    ----------
    value : float
        The number, in ``from_unit``.
    from_unit, to_unit : str
        Units as written (aliases accepted, e.g. ``"ng/L"`` for ``"pg/mL"``).
    what : str, optional
        Name used in error messages (e.g. the outcome code).

    Returns
    -------
    float
        ``value`` expressed in ``to_unit``.

    Raises
    ------
    UnitError
        When the units measure different things (a score and a percentage) or
        are unknown and spelled differently.
    """
    if not math.isfinite(value):
        raise UnitError(f"{what}: value must be a finite number, got {value}")
    src, dst = normalize_unit(from_unit), normalize_unit(to_unit)
    if src == dst:
        return float(value)
    if src not in _UNITS or dst not in _UNITS:
        raise UnitError(f"{what}: unit {from_unit!r} is not {to_unit!r} and no conversion is known")
    (dim_src, f_src), (dim_dst, f_dst) = _UNITS[src], _UNITS[dst]
    if dim_src != dim_dst or dim_src in ("arbitrary", "score"):
        raise UnitError(f"{what}: unit {from_unit!r} ({dim_src}) cannot be converted to "
                        f"{to_unit!r} ({dim_dst})")
    return float(value) * f_src / f_dst


def ucum_code(unit: str) -> str | None:
    """UCUM code for an outcome unit, or ``None`` when it has none we know."""
    return _UCUM.get(normalize_unit(unit))
