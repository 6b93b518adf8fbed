"""Rule engine: the protocol's dose-adjustment rules applied to one subject's state.

The engine proposes; a clinician accepts or overrides (the records layer
audits that). Actions rank stop > hold > reduce > escalate > continue; the
most severe fired rule decides, rules proposing the same action are listed
by ``priority`` (lower first), then id.

Which adverse events count: those with onset on or after the last
administration (the cycle being judged) and those still ongoing on the
evaluation day, so an event influences the next dose once, and keeps
influencing it while it lasts. Escalation rules fire at most once per
subject: the records layer passes the ids of rules already acted on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from ..errors import InvalidInput
from ._protocol import Arm, ChangeKind, Protocol, Rule, RuleKind
from ._safety import AdverseEvent
from ._visits import change_from_baseline

__all__ = ["ConsentStatus", "DoseAction", "DoseProposal", "FiredRule", "SubjectState",
           "evaluate_rules", "observations_by_visit"]


class ConsentStatus(StrEnum):
    """The subject's study consent."""

    VALID = "valid"
    WITHDRAWN = "withdrawn"


class DoseAction(StrEnum):
    """What the engine proposes for the next administration."""

    CONTINUE = "continue"
    ESCALATE = "escalate"
    REDUCE = "reduce"
    HOLD = "hold"
    STOP = "stop"

    @property
    def severity(self) -> int:
        """0 (continue) ... 4 (stop)."""
        return list(DoseAction).index(self)


@dataclass(frozen=True)
class SubjectState:
    """What the rules look at for one subject.

    Parameters
    ----------
    current_level : int
        1-based dose level of the last (or planned) administration.
    as_of : datetime.date
        Evaluation day; events and observations after it are ignored.
    adverse_events : tuple of AdverseEvent, optional
    observations : mapping, optional
        ``{outcome_code: {visit_name: value}}`` in the protocol's units
        (baseline included).
    consent : ConsentStatus or str, optional
    last_administration_date : datetime.date, optional
        ``None`` before the first administration.
    applied_rule_ids : frozenset of str, optional
        Rules already acted on (escalations do not repeat).
    """

    current_level: int
    as_of: date
    adverse_events: tuple[AdverseEvent, ...] = ()
    observations: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    consent: ConsentStatus = ConsentStatus.VALID
    last_administration_date: date | None = None
    applied_rule_ids: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "consent", ConsentStatus(str(self.consent).lower()))
        except ValueError:
            raise InvalidInput(f"consent status {self.consent!r} is not 'valid' or "
                               "'withdrawn'") from None
        object.__setattr__(self, "adverse_events", tuple(self.adverse_events))
        object.__setattr__(self, "applied_rule_ids", frozenset(self.applied_rule_ids))

    def events_in_scope(self) -> tuple[AdverseEvent, ...]:
        """Adverse events new since the last administration or still ongoing on ``as_of``."""
        out = []
        for ae in self.adverse_events:
            if ae.onset_date > self.as_of:
                continue
            new = self.last_administration_date is None or ae.onset_date >= self.last_administration_date
            if new or ae.ongoing_on(self.as_of):
                out.append(ae)
        return tuple(out)


@dataclass(frozen=True)
class FiredRule:
    """A rule that fired, the action it asks for, and why (one line)."""

    rule_id: str
    kind: RuleKind
    action: DoseAction
    priority: int
    description: str
    reason: str


@dataclass(frozen=True)
class DoseProposal:
    """The engine's proposal for the next administration.

    Attributes
    ----------
    action : DoseAction
    current_level : int
    next_level : int or None
        Level for the next dose (when resumed, for ``hold``); ``None`` for ``stop``.
    next_dose : float or None
        Amount at ``next_level`` in ``dose_unit``.
    dose_unit : str
    fired : tuple of FiredRule
        Most severe first; ``fired[0]`` decided the action.
    reason : str
        One line: the deciding rules' reasons, or why nothing fired.
    """

    action: DoseAction
    current_level: int
    next_level: int | None
    next_dose: float | None
    dose_unit: str
    fired: tuple[FiredRule, ...]
    reason: str

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(f.rule_id for f in self.fired)


def observations_by_visit(observations: Iterable) -> dict[str, dict[str, float]]:
    """``{outcome_code: {visit_name: value}}`` for :class:`SubjectState`.

    Takes anything with ``outcome_code``, ``visit_name`` and ``value`` (in the
    protocol unit), e.g. :class:`CheckedObservation` or ``ObservationRecord``;
    a repeated outcome and visit keeps the last one given.
    """
    out: dict[str, dict[str, float]] = {}
    for o in observations:
        out.setdefault(o.outcome_code, {})[o.visit_name] = float(o.value)
    return out


def _ae_text(ae: AdverseEvent) -> str:
    return (f"{ae.term!r} grade {ae.grade} ({ae.relatedness.value}, onset "
            f"{ae.onset_date.isoformat()})")


def _related(rule: Rule, events: tuple[AdverseEvent, ...]) -> list[AdverseEvent]:
    return [ae for ae in events if ae.relatedness.rank >= rule.min_relatedness.rank]


def _fire(rule: Rule, action: DoseAction, reason: str) -> FiredRule:
    return FiredRule(rule.id, rule.kind, action, rule.priority, rule.description, reason)


def _evaluate(rule: Rule, protocol: Protocol, arm: Arm, state: SubjectState,
              events: tuple[AdverseEvent, ...]) -> FiredRule | None:
    level = state.current_level
    if rule.kind is RuleKind.STOP_ON_CONSENT_WITHDRAWAL:
        if state.consent is ConsentStatus.WITHDRAWN:
            return _fire(rule, DoseAction.STOP, f"{rule.id}: study consent withdrawn")
        return None
    if rule.kind in (RuleKind.STOP_ON_RELATED_AE, RuleKind.HOLD_ON_RELATED_AE,
                     RuleKind.REDUCE_ON_RELATED_AE):
        if rule.kind is RuleKind.REDUCE_ON_RELATED_AE:
            hits = [ae for ae in _related(rule, events) if ae.grade == rule.grade]
        else:
            hits = [ae for ae in _related(rule, events) if ae.grade >= rule.grade]
        if not hits:
            return None
        worst = max(hits, key=lambda ae: (ae.grade, ae.onset_date))
        if rule.kind is RuleKind.STOP_ON_RELATED_AE:
            return _fire(rule, DoseAction.STOP, f"{rule.id}: related AE {_ae_text(worst)}")
        if rule.kind is RuleKind.HOLD_ON_RELATED_AE:
            return _fire(rule, DoseAction.HOLD, f"{rule.id}: related AE {_ae_text(worst)}")
        if level <= 1:
            return _fire(rule, DoseAction.HOLD, f"{rule.id}: related AE {_ae_text(worst)}; "
                         "already at the lowest level, so hold")
        return _fire(rule, DoseAction.REDUCE, f"{rule.id}: related AE {_ae_text(worst)}")
    if rule.kind is RuleKind.ESCALATE_IF_NOT_IMPROVED:
        if rule.id in state.applied_rule_ids:
            return None
        outcome = protocol.outcome(rule.outcome)
        values = state.observations.get(outcome.code, {})
        baseline_name = protocol.schedule.baseline_visit.name
        if rule.visit not in values or baseline_name not in values:
            return None  # not measured yet: nothing to judge
        change = change_from_baseline(values[baseline_name], values[rule.visit], outcome.direction)
        if rule.change_kind is ChangeKind.PERCENT:
            if change.improvement_percent is None:
                return None  # zero baseline: percent change undefined
            improvement, unit = change.improvement_percent, "%"
        else:
            improvement, unit = change.improvement_absolute, f" {outcome.unit}"
        if improvement >= rule.min_improvement:
            return None
        what = (f"{rule.id}: {outcome.code} improved {improvement:.3g}{unit} from baseline at "
                f"{rule.visit} (< {rule.min_improvement:g}{unit})")
        if level >= arm.n_levels:
            return _fire(rule, DoseAction.CONTINUE, what + "; already at the highest level")
        return _fire(rule, DoseAction.ESCALATE, what)
    raise InvalidInput(f"rule {rule.id}: unknown kind {rule.kind!r}")  # pragma: no cover


def evaluate_rules(protocol: Protocol, arm: Arm | str, state: SubjectState) -> DoseProposal:
    """Apply the protocol's dose rules to one subject and propose the next dose.

    Parameters
    ----------
    protocol : Protocol
    arm : Arm or str
        The subject's arm (or its code).
    state : SubjectState

    Returns
    -------
    DoseProposal
        ``stop`` > ``hold`` > ``reduce`` > ``escalate`` > ``continue``. A hold
        with a reduce rule also fired resumes one level lower.

    Raises
    ------
    InvalidInput
        ``state.current_level`` is not a level of the arm.
    """
    arm_ = protocol.arm(arm) if isinstance(arm, str) else arm
    level = state.current_level
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= arm_.n_levels:
        raise InvalidInput(f"arm {arm_.code}: current level {level!r} is not one of "
                           f"1-{arm_.n_levels}")
    events = state.events_in_scope()
    fired = [f for r in protocol.rules if (f := _evaluate(r, protocol, arm_, state, events))]
    fired.sort(key=lambda f: (-f.action.severity, f.priority, f.rule_id))
    action = fired[0].action if fired else DoseAction.CONTINUE
    if action is DoseAction.STOP:
        next_level = None
    elif action is DoseAction.HOLD:
        reduce = any(f.action is DoseAction.REDUCE for f in fired)
        next_level = level - 1 if reduce else level
    elif action is DoseAction.REDUCE:
        next_level = level - 1
    elif action is DoseAction.ESCALATE:
        next_level = level + 1
    else:
        next_level = level
    deciding = [f.reason for f in fired if f.action is action]
    if fired:
        reason = "; ".join(deciding) if deciding else "; ".join(f.reason for f in fired)
    else:
        reason = "no rule fired"
    next_dose = arm_.dose_levels[next_level - 1] if next_level is not None else None
    return DoseProposal(action, level, next_level, next_dose, arm_.dose_unit.value,
                        tuple(fired), reason)
