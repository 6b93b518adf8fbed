"""Clinical protocols as versioned data: a pydantic schema and a YAML loader.

A protocol says who may be treated (eligibility), how (arms: route, product,
ordered dose levels, maximum dose), when (administrations and visits with
windows), what is measured (outcome measures with units and LOINC codes) and
how the dose changes (rules). Everything is data, so a new protocol version is
a new file, not new code. Errors name the file and the field
(``arms[0].dose_levels``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .._yaml import load_strict_yaml
from ..errors import FileFormatError, InvalidInput, NotFound
from ._safety import Relatedness
from ._units import normalize_unit

__all__ = [
    "AdministrationSlot",
    "Arm",
    "ChangeKind",
    "DoseLevel",
    "DoseUnit",
    "Direction",
    "EXAMPLE_PROTOCOLS",
    "Eligibility",
    "EntryCriterion",
    "OutcomeMeasure",
    "Protocol",
    "Responder",
    "Route",
    "Rule",
    "RuleKind",
    "Schedule",
    "Visit",
    "example_protocol_path",
    "load_protocol",
    "parse_protocol",
    "protocol_from_yaml",
]

MAX_PROTOCOL_BYTES = 1_000_000  # a protocol is a page of YAML; refuse anything absurd


class Route(StrEnum):
    """How the product reaches the person."""

    TOPICAL_AFTER_CLEANSING = "topical_after_cleansing"
    TOPICAL_MICRONEEDLING = "topical_microneedling"
    TOPICAL_LASER = "topical_laser"
    INTRADERMAL = "intradermal"
    INTRAMYOCARDIAL = "intramyocardial"
    INTRAVENOUS = "intravenous"
    INTRANASAL = "intranasal"
    INHALED = "inhaled"


class DoseUnit(StrEnum):
    """Unit of a dose level: particles, particles per kg body weight, or ug protein."""

    PARTICLES = "particles"
    PARTICLES_PER_KG = "particles/kg"
    UG_PROTEIN = "ug protein"


class Direction(StrEnum):
    """Which way an outcome moves when it gets better."""

    INCREASE = "increase"
    DECREASE = "decrease"


class ChangeKind(StrEnum):
    """A change measured in the outcome's unit (absolute) or relative to baseline (percent)."""

    ABSOLUTE = "absolute"
    PERCENT = "percent"


class RuleKind(StrEnum):
    """Kinds of dose-adjustment rule."""

    STOP_ON_CONSENT_WITHDRAWAL = "stop_on_consent_withdrawal"
    STOP_ON_RELATED_AE = "stop_on_related_ae"  # related AE grade >= N
    HOLD_ON_RELATED_AE = "hold_on_related_ae"  # related AE grade >= N
    REDUCE_ON_RELATED_AE = "reduce_on_related_ae"  # related AE grade == N
    ESCALATE_IF_NOT_IMPROVED = "escalate_if_not_improved"


_Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9.\-]*$")]
_Text = Annotated[str, Field(min_length=1, max_length=2000)]


class _Model(BaseModel):
    # allow_inf_nan=False: a maximum dose or a responder threshold of .inf/.nan is a typo.
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False,
                              allow_inf_nan=False)


class EntryCriterion(_Model):
    """A measurable entry condition on an outcome at baseline, e.g. LVEF <= 40 %."""

    outcome: _Id
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> EntryCriterion:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class Eligibility(_Model):
    """Eligibility: free-text notes for people, entry criteria for the machine."""

    notes: tuple[_Text, ...] = ()
    entry_criteria: tuple[EntryCriterion, ...] = ()


@dataclass(frozen=True)
class DoseLevel:
    """One dose level of an arm (or a custom dose), with the arm's maximum.

    Attributes
    ----------
    arm_code : str
        The arm.
    level : int or None
        1-based level number; ``None`` for a custom (overridden) dose.
    amount : float
        Dose in ``unit``.
    unit : DoseUnit
        particles, particles/kg or ug protein.
    maximum_dose : float
        Protocol maximum in the same unit.
    """

    arm_code: str
    level: int | None
    amount: float
    unit: DoseUnit
    maximum_dose: float


class Arm(_Model):
    """A protocol arm: route, allowed products and ordered dose levels.

    ``dose_levels`` are strictly increasing; level numbers are 1-based
    (level 1 is the first, lowest dose).
    """

    code: Annotated[_Id, Field(max_length=20)]  # SDTM ARMCD holds at most 20 characters
    name: _Text
    route: Route
    product_types: tuple[_Id, ...] = Field(min_length=1)
    dose_unit: DoseUnit
    dose_levels: tuple[float, ...] = Field(min_length=1)
    starting_level: int = Field(ge=1)
    maximum_dose: float = Field(gt=0)

    @field_validator("dose_unit", mode="before")
    @classmethod
    def _unit_spelling(cls, value: Any) -> Any:
        text = str(value).strip().lower()
        return {"particles per kg": "particles/kg", "particles_per_kg": "particles/kg",
                "ug_protein": "ug protein", "µg protein": "ug protein"}.get(text, text)

    @field_validator("dose_levels")
    @classmethod
    def _levels(cls, levels: tuple[float, ...]) -> tuple[float, ...]:
        for i, amount in enumerate(levels):
            if not math.isfinite(amount) or amount <= 0:
                raise ValueError(f"level {i + 1} must be a positive number, got {amount}")
        if any(b <= a for a, b in zip(levels, levels[1:], strict=False)):
            raise ValueError("dose levels must be strictly increasing (level 1 lowest)")
        return levels

    @model_validator(mode="after")
    def _consistent(self) -> Arm:
        if self.starting_level > len(self.dose_levels):
            raise _FieldProblem("starting_level", f"starting level {self.starting_level} does not "
                                f"exist; there are {len(self.dose_levels)} levels")
        if max(self.dose_levels) > self.maximum_dose:
            raise _FieldProblem("maximum_dose", f"highest dose level {max(self.dose_levels):g} "
                                f"exceeds the maximum dose {self.maximum_dose:g}")
        return self

    @property
    def n_levels(self) -> int:
        return len(self.dose_levels)

    def level(self, number: int) -> DoseLevel:
        """The dose at 1-based level ``number`` (InvalidInput when it does not exist)."""
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= len(self.dose_levels):
            raise InvalidInput(f"arm {self.code}: dose level {number!r} does not exist; "
                               f"levels are 1-{len(self.dose_levels)}")
        return DoseLevel(arm_code=self.code, level=number, amount=self.dose_levels[number - 1],
                         unit=self.dose_unit, maximum_dose=self.maximum_dose)

    def custom_dose(self, amount: float) -> DoseLevel:
        """A dose off the level list (clinician override), still checked against the maximum."""
        if not math.isfinite(amount) or amount <= 0:
            raise InvalidInput(f"arm {self.code}: dose must be a positive number, got {amount}")
        return DoseLevel(arm_code=self.code, level=None, amount=float(amount),
                         unit=self.dose_unit, maximum_dose=self.maximum_dose)


class _Slot(_Model):
    name: _Id
    day: int
    window_before_days: int = Field(0, ge=0)
    window_after_days: int = Field(0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _symmetric_window(cls, data: Any) -> Any:
        # ``window_days: 3`` is shorthand for -3/+3 days.
        if isinstance(data, Mapping) and "window_days" in data:
            data = dict(data)
            w = data.pop("window_days")
            data.setdefault("window_before_days", w)
            data.setdefault("window_after_days", w)
        return data


class AdministrationSlot(_Slot):
    """A scheduled administration: day offset from enrolment (day 0) and window."""


class Visit(_Slot):
    """A scheduled visit: day offset, window, outcomes measured, and whether it is baseline."""

    outcomes: tuple[_Id, ...] = ()
    baseline: bool = False


class Schedule(_Model):
    """Administrations and visits, each as a day offset from enrolment with a window."""

    administrations: tuple[AdministrationSlot, ...] = Field(min_length=1)
    visits: tuple[Visit, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _visits(self) -> Schedule:
        for kind, slots in (("administrations", self.administrations), ("visits", self.visits)):
            names = [s.name for s in slots]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise _FieldProblem(kind, f"duplicate names {dupes}")
            days = [s.day for s in slots]
            if days != sorted(days):
                raise _FieldProblem(kind, "must be listed in order of day")
        baselines = [v.name for v in self.visits if v.baseline]
        if len(baselines) != 1:
            raise _FieldProblem("visits", f"exactly one visit must be the baseline, found {len(baselines)}")
        return self

    @property
    def baseline_visit(self) -> Visit:
        return next(v for v in self.visits if v.baseline)


class Responder(_Model):
    """Responder definition: improvement of at least ``min_improvement`` at ``visit``."""

    min_improvement: float = Field(gt=0)
    kind: ChangeKind
    visit: _Id


class OutcomeMeasure(_Model):
    """An outcome measure: code, name, unit, direction of improvement, LOINC code."""

    code: _Id
    name: _Text
    unit: Annotated[str, Field(min_length=1, max_length=32)]
    direction: Direction
    loinc: Annotated[str, Field(pattern=r"^\d{1,7}-\d$")] | None = None
    responder: Responder | None = None

    @field_validator("unit")
    @classmethod
    def _unit(cls, unit: str) -> str:
        return normalize_unit(unit)


class Rule(_Model):
    """A dose-adjustment rule.

    Lower ``priority`` numbers rank first among rules proposing the same
    action; between actions, stop > hold > reduce > escalate always.

    Parameters by kind:

    - ``stop_on_consent_withdrawal``: none.
    - ``stop_on_related_ae`` / ``hold_on_related_ae``: ``grade`` (fires at >= grade).
    - ``reduce_on_related_ae``: ``grade`` (fires at == grade).
    - ``escalate_if_not_improved``: ``outcome``, ``visit``, ``min_improvement``,
      ``change_kind``; fires once when the improvement from baseline at
      ``visit`` is below ``min_improvement``.

    ``min_relatedness`` (default ``possible``) sets which AEs count as related.
    """

    id: _Id
    kind: RuleKind
    priority: int = Field(ge=0)
    description: _Text
    grade: int | None = Field(None, ge=1, le=5)
    outcome: _Id | None = None
    visit: _Id | None = None
    min_improvement: float | None = Field(None, ge=0)
    change_kind: ChangeKind | None = None
    min_relatedness: Relatedness = Relatedness.POSSIBLE

    @model_validator(mode="after")
    def _params(self) -> Rule:
        needs: dict[RuleKind, tuple[str, ...]] = {
            RuleKind.STOP_ON_CONSENT_WITHDRAWAL: (),
            RuleKind.STOP_ON_RELATED_AE: ("grade",),
            RuleKind.HOLD_ON_RELATED_AE: ("grade",),
            RuleKind.REDUCE_ON_RELATED_AE: ("grade",),
            RuleKind.ESCALATE_IF_NOT_IMPROVED: ("outcome", "visit", "min_improvement",
                                                "change_kind"),
        }
        for name in needs[self.kind]:
            if getattr(self, name) is None:
                raise _FieldProblem(name, f"rule kind {self.kind.value!r} needs {name!r}")
        extra = {"grade", "outcome", "visit", "min_improvement", "change_kind"} - set(needs[self.kind])
        for name in sorted(extra):
            if getattr(self, name) is not None:
                raise _FieldProblem(name, f"rule kind {self.kind.value!r} takes no {name!r}")
        return self


class Protocol(_Model):
    """A versioned clinical protocol (see the module docstring)."""

    id: _Id
    version: Annotated[str, Field(min_length=1, max_length=32)]
    title: _Text
    indication: _Text
    eligibility: Eligibility = Eligibility()
    arms: tuple[Arm, ...] = Field(min_length=1)
    schedule: Schedule
    outcomes: tuple[OutcomeMeasure, ...] = Field(min_length=1)
    rules: tuple[Rule, ...] = ()

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        # YAML reads ``version: 1.0`` as a float; keep what the author wrote.
        return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _references(self) -> Protocol:
        for kind, codes in (("arms", [a.code for a in self.arms]),
                            ("outcomes", [o.code for o in self.outcomes]),
                            ("rules", [r.id for r in self.rules])):
            dupes = sorted({c for c in codes if codes.count(c) > 1})
            if dupes:
                raise _FieldProblem(kind, f"duplicate identifiers {dupes}")
        outcomes = {o.code for o in self.outcomes}
        visits = {v.name: v for v in self.schedule.visits}
        for i, v in enumerate(self.schedule.visits):
            unknown = sorted(set(v.outcomes) - outcomes)
            if unknown:
                raise _FieldProblem(f"schedule.visits[{i}].outcomes", f"unknown outcomes {unknown}")
        baseline = self.schedule.baseline_visit
        for i, c in enumerate(self.eligibility.entry_criteria):
            if c.outcome not in outcomes:
                raise _FieldProblem(f"eligibility.entry_criteria[{i}].outcome",
                                    f"unknown outcome {c.outcome!r}")
            if c.outcome not in baseline.outcomes:
                raise _FieldProblem(f"eligibility.entry_criteria[{i}].outcome",
                                    f"outcome {c.outcome!r} is not measured at the baseline "
                                    f"visit {baseline.name!r}")
        for i, o in enumerate(self.outcomes):
            if o.responder is not None and o.code not in baseline.outcomes:
                # a responder is defined by change from baseline
                raise _FieldProblem(f"outcomes[{i}].responder", f"outcome {o.code!r} is not "
                                    f"measured at the baseline visit {baseline.name!r}")
            if o.responder is not None:
                self._check_visit(visits, o.responder.visit, o.code,
                                  f"outcomes[{i}].responder.visit")
        for i, r in enumerate(self.rules):
            if r.kind is RuleKind.ESCALATE_IF_NOT_IMPROVED:
                if r.outcome not in outcomes:
                    raise _FieldProblem(f"rules[{i}].outcome", f"unknown outcome {r.outcome!r}")
                if r.outcome not in baseline.outcomes:
                    raise _FieldProblem(f"rules[{i}].outcome", f"outcome {r.outcome!r} is not "
                                        f"measured at the baseline visit {baseline.name!r}")
                self._check_visit(visits, r.visit, r.outcome, f"rules[{i}].visit")
        return self

    @staticmethod
    def _check_visit(visits: dict[str, Visit], name: str, outcome: str, field: str) -> None:
        if name not in visits:
            raise _FieldProblem(field, f"unknown visit {name!r}")
        if outcome not in visits[name].outcomes:
            raise _FieldProblem(field, f"outcome {outcome!r} is not measured at visit {name!r}")
        if visits[name].baseline:
            raise _FieldProblem(field, "must be a follow-up visit, not the baseline")

    def arm(self, code: str) -> Arm:
        """The arm with ``code`` (NotFound otherwise)."""
        for a in self.arms:
            if a.code == code:
                return a
        raise NotFound(f"protocol {self.id} v{self.version}: no arm {code!r}; arms are "
                       f"{', '.join(a.code for a in self.arms)}")

    def outcome(self, code: str) -> OutcomeMeasure:
        """The outcome measure with ``code`` (NotFound otherwise)."""
        for o in self.outcomes:
            if o.code == code:
                return o
        raise NotFound(f"protocol {self.id} v{self.version}: no outcome {code!r}; outcomes are "
                       f"{', '.join(o.code for o in self.outcomes)}")

    def visit(self, name: str) -> Visit:
        """The visit called ``name`` (NotFound otherwise)."""
        for v in self.schedule.visits:
            if v.name == name:
                return v
        raise NotFound(f"protocol {self.id} v{self.version}: no visit {name!r}; visits are "
                       f"{', '.join(v.name for v in self.schedule.visits)}")


class _FieldProblem(ValueError):
    """A model-level check that knows which field is wrong (relative to the model)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


def _loc_text(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _first_error(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors()[0]
    loc = tuple(p for p in err.get("loc", ()) if not (isinstance(p, str) and "[" in p))
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, _FieldProblem):
        # model validators report at the model; append the field they named
        loc = loc + tuple(cause.field.replace("]", "").replace("[", ".").split("."))
        loc = tuple(int(p) if isinstance(p, str) and p.isdigit() else p for p in loc)
        return _loc_text(loc), cause.problem
    msg = err.get("msg", "invalid value")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if err.get("type") == "missing":
        msg = "required field is missing"
    elif err.get("type") == "extra_forbidden":
        msg = "unknown field (check the spelling)"
    elif "input" in err and err.get("type") not in ("model_type",):
        shown = repr(err["input"])
        msg += f" (got {shown[:60]})"
    return _loc_text(loc) or "(top level)", msg


def parse_protocol(data: Any, *, source: str = "<protocol>") -> Protocol:
    """Validate an already-parsed mapping (e.g. stored YAML) into a :class:`Protocol`.

    Raises
    ------
    FileFormatError
        Naming ``source`` and the first wrong field.
    """
    if not isinstance(data, Mapping):
        raise FileFormatError(source, "a protocol must be a YAML mapping (key: value) at the top level")
    try:
        return Protocol.model_validate(dict(data))
    except ValidationError as exc:
        field, problem = _first_error(exc)
        raise FileFormatError(source, problem, field=field) from None


def load_protocol(path: str | Path) -> Protocol:
    """Read and validate a protocol YAML file.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    Protocol

    Raises
    ------
    FileFormatError
        Missing, unreadable, too large, not YAML, or a field that fails
        validation (the message names the field, e.g. ``arms[0].route``).
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_PROTOCOL_BYTES:
            raise FileFormatError(p, f"file is {size} bytes; a protocol is at most "
                                  f"{MAX_PROTOCOL_BYTES} bytes")
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileFormatError(p, "file not found") from None
    except IsADirectoryError:
        raise FileFormatError(p, "is a directory, not a protocol file") from None
    except UnicodeDecodeError as exc:
        raise FileFormatError(p, "not UTF-8 text", offset=exc.start) from None
    except OSError as exc:
        raise FileFormatError(p, f"cannot read: {exc.strerror or exc}") from None
    return protocol_from_yaml(text, source=str(p))


def protocol_from_yaml(text: str, *, source: str = "<protocol>") -> Protocol:
    """Parse and validate protocol YAML text (``source`` names it in errors)."""
    data = load_strict_yaml(text, source=source, what="protocol")
    return parse_protocol(data, source=source)


EXAMPLE_PROTOCOLS: tuple[str, ...] = ("skin_rejuvenation", "cardiomyopathy")


def example_protocol_path(name: str) -> Path:
    """Path of a shipped example protocol (``"skin_rejuvenation"`` or ``"cardiomyopathy"``)."""
    if name not in EXAMPLE_PROTOCOLS:
        raise NotFound(f"no example protocol {name!r}; examples are {', '.join(EXAMPLE_PROTOCOLS)}")
    return Path(str(resources.files("exotrace.clinic") / "protocols" / f"{name}.yaml"))
