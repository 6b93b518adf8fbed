"""A small unit table for the quantities a lot specification uses.

Each unit belongs to one *dimension* and carries a factor to that dimension's
base unit; converting multiplies by ``factor_from / factor_to``. Units of
different dimensions never convert (:class:`~exotrace.errors.UnitError`).

Base units per dimension (chosen so that stored values stay readable, not SI):

=====================  =================  ===========================================
dimension              base unit          other spellings accepted
=====================  =================  ===========================================
number concentration   particles/mL       particles/uL, particles/L, /mL, ...
length                 nm                 um, mm, m
mass concentration     ug/mL              mg/mL, ng/uL, ng/mL, mg/L, g/L
endotoxin              EU/mL              EU/L
fraction               %                  fraction (0-1)
purity ratio           particles/ug       particles/mg
dimensionless          1                  ratio, fold
=====================  =================  ===========================================

References
----------
.. [1] BIPM, *The International System of Units (SI)*, 9th edition, 2019.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnitError

__all__ = ["UnitInfo", "convert", "convert_array", "normalize_unit", "unit_dimension"]


@dataclass(frozen=True)
class UnitInfo:
    """One row of the unit table.

    Attributes
    ----------
    symbol : str
        Canonical spelling, e.g. ``"particles/mL"``.
    dimension : str
        Quantity kind, e.g. ``"number concentration"``.
    factor : float
        Multiply a value in this unit by ``factor`` to get the dimension's base unit.
    """

    symbol: str
    dimension: str
    factor: float


_TABLE: tuple[UnitInfo, ...] = (
    UnitInfo("particles/mL", "number concentration", 1.0),
    UnitInfo("particles/uL", "number concentration", 1e3),
    UnitInfo("particles/L", "number concentration", 1e-3),
    UnitInfo("nm", "length", 1.0),
    UnitInfo("um", "length", 1e3),
    UnitInfo("mm", "length", 1e6),
    UnitInfo("m", "length", 1e9),
    UnitInfo("ug/mL", "mass concentration", 1.0),
    UnitInfo("mg/mL", "mass concentration", 1e3),
    UnitInfo("ng/uL", "mass concentration", 1.0),
    UnitInfo("ng/mL", "mass concentration", 1e-3),
    UnitInfo("mg/L", "mass concentration", 1.0),
    UnitInfo("g/L", "mass concentration", 1e3),
    UnitInfo("EU/mL", "endotoxin", 1.0),
    UnitInfo("EU/L", "endotoxin", 1e-3),
    UnitInfo("%", "fraction", 1.0),
    UnitInfo("fraction", "fraction", 100.0),
    UnitInfo("particles/ug", "purity ratio", 1.0),
    UnitInfo("particles/mg", "purity ratio", 1e-3),
    UnitInfo("1", "dimensionless", 1.0),
)

# Alternative spellings users type (lower-cased keys; micro sign and "mcg" too).
_ALIASES: dict[str, str] = {
    "particles/ml": "particles/mL", "particles/ul": "particles/uL", "particles/l": "particles/L",
    "p/ml": "particles/mL", "/ml": "particles/mL", "1/ml": "particles/mL", "ml-1": "particles/mL",
    "/ul": "particles/uL", "/l": "particles/L",
    "nm": "nm", "um": "um", "micrometre": "um", "micrometer": "um", "mm": "mm", "m": "m",
    "ug/ml": "ug/mL", "mcg/ml": "ug/mL", "mg/ml": "mg/mL", "ng/ul": "ng/uL", "ng/ml": "ng/mL",
    "mg/l": "mg/L", "g/l": "g/L",
    "eu/ml": "EU/mL", "eu/l": "EU/L",
    "%": "%", "percent": "%", "fraction": "fraction",
    "particles/ug": "particles/ug", "particles/mcg": "particles/ug", "p/ug": "particles/ug",
    "particles/mg": "particles/mg",
    "1": "1", "": "1", "ratio": "1", "fold": "1", "none": "1",
}
_BY_SYMBOL = {u.symbol: u for u in _TABLE}


def _info(unit: str) -> UnitInfo:
    if not isinstance(unit, str):
        raise UnitError(f"unit must be text, got {unit!r}")
    key = unit.strip().replace("µ", "u").replace("μ", "u").replace(" ", "").lower()
    symbol = _ALIASES.get(key)
    if symbol is None:
        known = ", ".join(u.symbol for u in _TABLE)
        raise UnitError(f"unknown unit {unit!r}; known units: {known}")
    return _BY_SYMBOL[symbol]


def normalize_unit(unit: str) -> str:
    """Canonical spelling of ``unit`` (``"particles/ml"`` -> ``"particles/mL"``).

    Raises
    ------
    UnitError
        If the unit is not in the table.
    """
    return _info(unit).symbol


def unit_dimension(unit: str) -> str:
    """Dimension (quantity kind) of ``unit``, e.g. ``"length"`` for ``"um"``."""
    return _info(unit).dimension


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """Convert one value between units of the same dimension.

    Parameters
    ----------
    value : float
        Value in ``from_unit``.
    from_unit, to_unit : str
        Units from the table (aliases accepted).

    Returns
    -------
    float
        The value expressed in ``to_unit``.

    Raises
    ------
    UnitError
        If either unit is unknown or the dimensions differ.

    Examples
    --------
    >>> convert(1.5, "um", "nm")
    1500.0
    """
    src, dst = _info(from_unit), _info(to_unit)
    if src.dimension != dst.dimension:
        raise UnitError(
            f"cannot convert {src.symbol} ({src.dimension}) to {dst.symbol} ({dst.dimension})"
        )
    if src.symbol == dst.symbol:
        return float(value)
    return float(value) * (src.factor / dst.factor)


def convert_array(values: np.ndarray, from_unit: str, to_unit: str) -> np.ndarray:
    """Vectorised :func:`convert` for an array of values (same units for all)."""
    src, dst = _info(from_unit), _info(to_unit)
    if src.dimension != dst.dimension:
        raise UnitError(
            f"cannot convert {src.symbol} ({src.dimension}) to {dst.symbol} ({dst.dimension})"
        )
    return np.asarray(values, dtype=float) * (src.factor / dst.factor)
