"""Lot specifications as versioned data: a pydantic v2 schema with YAML load/dump.

A :class:`Specification` names a product type, a version, an effective date and
a status (draft / effective / superseded) and lists the tests a lot must pass.
Each test carries a method and one acceptance criterion of five kinds:

``range``
    numeric lower and/or upper bound, each inclusive or exclusive, with a unit.
``pass_fail``
    a qualitative result that must equal the expected word (sterility
    "negative", mycoplasma "negative").
``identity``
    a marker that must be present or absent (CD63 present, calnexin absent).
``relative``
    a value within +- ``tolerance_percent`` of a named reference value that the
    lot supplies (the label claim of the particle concentration).
``report_only``
    the result is recorded and printed but not judged.

Tests sharing an ``alternative_group`` are alternatives: the group passes when
any one of them passes (the published "size mode < 200 nm *or* > 90 % of
particles 50-400 nm").

References
----------
.. [1] ICH Q6B, *Specifications: Test Procedures and Acceptance Criteria for
   Biotechnological/Biological Products*, 1999.
.. [2] World J Stem Cells 2025;17:110445, Table 1 (MSC-EV release specifications).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .._yaml import load_strict_yaml
from ..errors import FileFormatError, UnitError
from ._units import normalize_unit

__all__ = [
    "IdentityCriterion",
    "PassFailCriterion",
    "RangeCriterion",
    "RelativeCriterion",
    "ReportOnlyCriterion",
    "SpecStatus",
    "Specification",
    "TestSpec",
    "describe_criterion",
    "dump_specification",
    "example_specification_path",
    "load_specification",
    "parse_specification",
]

_QUALITATIVE = {"negative", "positive", "pass", "fail", "conforms", "does not conform",
                "detected", "not detected"}


class SpecStatus(StrEnum):
    """Life-cycle state of a specification version."""

    DRAFT = "draft"
    EFFECTIVE = "effective"
    SUPERSEDED = "superseded"


class _Model(BaseModel):
    # allow_inf_nan=False: a bound of .nan or .inf is a typo, never a limit.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _unit(value: str) -> str:
    try:
        return normalize_unit(value)
    except UnitError as exc:
        raise ValueError(str(exc)) from None


class RangeCriterion(_Model):
    """Numeric acceptance range; a missing bound is open.

    Attributes
    ----------
    lower, upper : float or None
        Bounds in ``unit``; at least one is required.
    lower_inclusive, upper_inclusive : bool
        Whether a value equal to the bound passes (``>=``/``<=``) or not (``>``/``<``).
    unit : str
        Unit of the bounds (see :mod:`exotrace.quality._units`).
    """

    kind: Literal["range"] = "range"
    lower: float | None = None
    upper: float | None = None
    lower_inclusive: bool = True
    upper_inclusive: bool = True
    unit: str

    @field_validator("unit")
    @classmethod
    def _norm_unit(cls, v: str) -> str:
        return _unit(v)

    @model_validator(mode="after")
    def _bounds(self) -> RangeCriterion:
        if self.lower is None and self.upper is None:
            raise ValueError("a range needs a lower or an upper bound")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(f"lower bound {self.lower} is above upper bound {self.upper}")
        return self


class PassFailCriterion(_Model):
    """Qualitative result that must equal ``expected`` (case-insensitive)."""

    kind: Literal["pass_fail"] = "pass_fail"
    expected: str = "negative"

    @field_validator("expected")
    @classmethod
    def _word(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in _QUALITATIVE:
            raise ValueError(f"expected must be one of {sorted(_QUALITATIVE)}, got {v!r}")
        return v


class IdentityCriterion(_Model):
    """A marker that must be ``present`` or ``absent``."""

    kind: Literal["identity"] = "identity"
    marker: str
    expected: Literal["present", "absent"]


class RelativeCriterion(_Model):
    """Value within +- ``tolerance_percent`` of the lot's reference value ``reference``.

    The bound is inclusive: ``|value - ref| <= tolerance/100 * |ref|``.
    """

    kind: Literal["relative"] = "relative"
    reference: str = "label_claim"
    tolerance_percent: float = Field(gt=0, le=1000)
    unit: str

    @field_validator("unit")
    @classmethod
    def _norm_unit(cls, v: str) -> str:
        return _unit(v)


class ReportOnlyCriterion(_Model):
    """Recorded and printed, never judged."""

    kind: Literal["report_only"] = "report_only"
    unit: str | None = None

    @field_validator("unit")
    @classmethod
    def _u(cls, v: str | None) -> str | None:
        return None if v is None else _unit(v)


Criterion = Annotated[
    RangeCriterion | PassFailCriterion | IdentityCriterion | RelativeCriterion
    | ReportOnlyCriterion,
    Field(discriminator="kind"),
]


class TestSpec(_Model):
    """One test of a specification: name, method and acceptance criterion."""

    __test__ = False  # not a pytest class

    name: str = Field(min_length=1)
    method: str = Field(min_length=1)
    criterion: Criterion
    description: str | None = None
    alternative_group: str | None = None


class Specification(_Model):
    """A versioned specification for one product type.

    Attributes
    ----------
    name : str
        Specification title.
    product_type : str
        Product the specification applies to.
    version : str
        Version label (e.g. ``"1.0"``); with ``name`` it identifies the document.
    effective_date : datetime.date
        Date from which the version is in force.
    status : SpecStatus
        ``draft``, ``effective`` or ``superseded``.
    tests : list of TestSpec
        Tests with unique names.
    references : list of str
        Sources of the acceptance criteria.
    """

    name: str = Field(min_length=1)
    product_type: str = Field(min_length=1)
    version: str = Field(min_length=1)
    effective_date: date
    status: SpecStatus = SpecStatus.DRAFT
    tests: list[TestSpec] = Field(min_length=1)
    references: list[str] = Field(default_factory=list)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, v: object) -> object:
        # YAML reads 1.0 as a float; keep the label the author wrote.
        return str(v) if isinstance(v, (int, float)) else v

    @model_validator(mode="after")
    def _unique(self) -> Specification:
        seen: set[str] = set()
        for t in self.tests:
            if t.name in seen:
                raise ValueError(f"test name {t.name!r} appears twice")
            seen.add(t.name)
        return self

    def test(self, name: str) -> TestSpec:
        """The test called ``name`` (``KeyError`` if absent)."""
        for t in self.tests:
            if t.name == name:
                return t
        raise KeyError(name)


def describe_criterion(criterion: object) -> str:
    """Human-readable acceptance criterion, as printed on a CoA.

    Examples
    --------
    >>> describe_criterion(RangeCriterion(upper=0.5, upper_inclusive=False, unit="EU/mL"))
    '< 0.5 EU/mL'
    """
    if isinstance(criterion, RangeCriterion):
        lo_op = ">=" if criterion.lower_inclusive else ">"
        hi_op = "<=" if criterion.upper_inclusive else "<"
        if criterion.lower is not None and criterion.upper is not None:
            lo_br = "[" if criterion.lower_inclusive else "("
            hi_br = "]" if criterion.upper_inclusive else ")"
            return f"{lo_br}{criterion.lower:g}, {criterion.upper:g}{hi_br} {criterion.unit}"
        if criterion.lower is not None:
            return f"{lo_op} {criterion.lower:g} {criterion.unit}"
        return f"{hi_op} {criterion.upper:g} {criterion.unit}"
    if isinstance(criterion, PassFailCriterion):
        return criterion.expected
    if isinstance(criterion, IdentityCriterion):
        return f"{criterion.marker} {criterion.expected}"
    if isinstance(criterion, RelativeCriterion):
        return f"{criterion.reference.replace('_', ' ')} +- {criterion.tolerance_percent:g} %"
    if isinstance(criterion, ReportOnlyCriterion):
        return "report only"
    raise TypeError(f"not a criterion: {criterion!r}")


def _where(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) if loc else "(top level)"


def parse_specification(data: object, *, source: str = "<data>") -> Specification:
    """Validate a mapping (as read from YAML/JSON) into a :class:`Specification`.

    Raises
    ------
    FileFormatError
        Naming ``source`` and the dotted path of the first bad field.
    """
    if not isinstance(data, dict):
        raise FileFormatError(source, "a specification must be a mapping of fields")
    try:
        return Specification.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        # Drop the discriminator tag pydantic inserts ("criterion.range.upper").
        loc = tuple(p for p in err["loc"] if p not in
                    {"range", "pass_fail", "identity", "relative", "report_only"})
        msg = err["msg"].removeprefix("Value error, ")
        extra = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise FileFormatError(source, msg + extra, field=_where(loc)) from None


def load_specification(path: str | Path) -> Specification:
    """Read and validate a specification YAML file.

    Raises
    ------
    FileFormatError
        If the file is missing, not YAML, or a field is invalid (the message
        names the field, e.g. ``tests.3.criterion.upper``).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileFormatError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FileFormatError(path, f"cannot read the file ({type(exc).__name__})") from None
    data = load_strict_yaml(text, source=str(path), what="specification")
    return parse_specification(data, source=str(path))


def dump_specification(spec: Specification) -> str:
    """YAML text for ``spec``; ``load`` of the text gives an equal specification."""
    data = spec.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def example_specification_path() -> Path:
    """Path of the shipped MSC-derived small-EV release specification."""
    return Path(str(resources.files("exotrace.quality") / "specs" / "msc_small_ev_release.yaml"))
