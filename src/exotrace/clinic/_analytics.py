"""Outcome analytics: trajectories, responder rates, safety tables, lot-to-outcome mixed model.

These describe what was observed. A responder rate or a lot attribute
associated with change from baseline is not evidence that the product works:
the studies are open-label, small and uncontrolled. Every lot model result
carries :data:`ASSOCIATION_STATEMENT`.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InsufficientData, InvalidInput
from ._protocol import ChangeKind, Protocol
from ._safety import AdverseEvent, Relatedness
from ._visits import change_from_baseline

__all__ = [
    "ASSOCIATION_STATEMENT",
    "LotOutcomeCoefficient",
    "LotOutcomeModel",
    "LotOutcomeRow",
    "OutcomePoint",
    "ResponderRate",
    "SafetyRow",
    "SubjectAdverseEvent",
    "lot_outcome_model",
    "lot_outcome_rows",
    "plot_trajectories",
    "responder_rates",
    "safety_table",
    "trajectories",
    "wilson_interval",
]

ASSOCIATION_STATEMENT = (
    "Association is not efficacy: these coefficients describe how change from baseline "
    "co-varied with lot attributes in the recorded subjects; they do not show that the "
    "product, or any attribute of it, caused the change."
)


@dataclass(frozen=True)
class OutcomePoint:
    """One outcome value of one subject (protocol unit), placed in time.

    ``day`` counts days from the subject's enrolment.
    """

    subject_id: str
    arm_code: str
    outcome_code: str
    visit_name: str
    day: int
    value: float


def trajectories(points: Iterable[OutcomePoint], outcome_code: str
                 ) -> dict[str, tuple[tuple[int, float], ...]]:
    """Per-subject ``(day, value)`` series of one outcome, sorted by day."""
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for p in points:
        if p.outcome_code == outcome_code:
            series[p.subject_id].append((int(p.day), float(p.value)))
    return {s: tuple(sorted(v)) for s, v in sorted(series.items())}


def plot_trajectories(points: Iterable[OutcomePoint], outcome_code: str, path: str | Path, *,
                      protocol: Protocol | None = None) -> Path:
    """Plot per-subject trajectories of one outcome, one colour per arm.

    Parameters
    ----------
    points : iterable of OutcomePoint
    outcome_code : str
    path : str or Path
        Output file; ``.png`` or ``.svg``.
    protocol : Protocol, optional
        Supplies the outcome's name and unit for the axis label.

    Returns
    -------
    Path
        The file written.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = Path(path)
    if out.suffix.lower() not in (".png", ".svg"):
        raise InvalidInput(f"{out}: plot must be .png or .svg, got {out.suffix or 'no suffix'!r}")
    pts = [p for p in points if p.outcome_code == outcome_code]
    if not pts:
        raise InsufficientData(f"no observations of outcome {outcome_code!r} to plot")
    arm_of = {p.subject_id: p.arm_code for p in pts}
    arms = sorted(set(arm_of.values()))
    colours = {a: plt.get_cmap("tab10")(i % 10) for i, a in enumerate(arms)}
    label = outcome_code
    if protocol is not None:
        o = protocol.outcome(outcome_code)
        label = f"{o.name} ({o.unit})"
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    try:
        seen: set[str] = set()
        for subject, series in trajectories(pts, outcome_code).items():
            arm = arm_of[subject]
            days, values = zip(*series, strict=True)
            ax.plot(days, values, marker="o", color=colours[arm], alpha=0.8,
                    label=None if arm in seen else f"arm {arm}")
            seen.add(arm)
        ax.set_xlabel("day from enrolment")
        ax.set_ylabel(label)
        ax.set_title(f"{outcome_code}: per-subject trajectories")
        ax.legend(frameon=False)
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out)
    finally:
        plt.close(fig)
    return out


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion (nan, nan when ``n`` is 0)."""
    from scipy.stats import norm

    if n == 0:
        return math.nan, math.nan
    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class ResponderRate:
    """Responders in one arm for one outcome.

    ``evaluable`` subjects have both baseline and responder-visit values;
    ``missing`` lacks one of them; ``rate`` and its Wilson 95 % interval are
    over evaluable subjects (nan when none).
    """

    arm_code: str
    outcome_code: str
    visit_name: str
    responders: int
    evaluable: int
    missing: int
    rate: float
    ci_low: float
    ci_high: float


def responder_rates(protocol: Protocol, points: Iterable[OutcomePoint], outcome_code: str,
                    *, subjects_by_arm: Mapping[str, Sequence[str]] | None = None
                    ) -> tuple[ResponderRate, ...]:
    """Responder rate by arm, with the protocol's responder definition.

    Parameters
    ----------
    protocol : Protocol
    points : iterable of OutcomePoint
    outcome_code : str
        An outcome with a ``responder`` definition.
    subjects_by_arm : mapping, optional
        Every enrolled subject per arm, so those without data count as missing.
        Default: the subjects seen in ``points``.
    """
    outcome = protocol.outcome(outcome_code)
    if outcome.responder is None:
        raise InvalidInput(f"outcome {outcome_code} has no responder definition in protocol "
                           f"{protocol.id}")
    rd = outcome.responder
    baseline = protocol.schedule.baseline_visit.name
    values: dict[tuple[str, str], float] = {}
    arms: dict[str, set[str]] = defaultdict(set)
    for p in points:
        if p.outcome_code != outcome_code:
            continue
        arms[p.arm_code].add(p.subject_id)
        values[(p.subject_id, p.visit_name)] = float(p.value)
    if subjects_by_arm is not None:
        for arm, subjects in subjects_by_arm.items():
            arms[arm].update(subjects)
    out = []
    for arm in [a.code for a in protocol.arms if a.code in arms] + sorted(
            set(arms) - {a.code for a in protocol.arms}):
        responders = evaluable = missing = 0
        for s in sorted(arms[arm]):
            b, v = values.get((s, baseline)), values.get((s, rd.visit))
            if b is None or v is None:
                missing += 1
                continue
            ch = change_from_baseline(b, v, outcome.direction)
            imp = ch.improvement_absolute if rd.kind is ChangeKind.ABSOLUTE else ch.improvement_percent
            if imp is None:
                missing += 1
                continue
            evaluable += 1
            responders += imp >= rd.min_improvement
        lo, hi = wilson_interval(responders, evaluable)
        out.append(ResponderRate(arm, outcome_code, rd.visit, responders, evaluable, missing,
                                 responders / evaluable if evaluable else math.nan, lo, hi))
    return tuple(out)


@dataclass(frozen=True)
class SubjectAdverseEvent:
    """An adverse event with the subject and arm it belongs to."""

    subject_id: str
    arm_code: str
    event: AdverseEvent


@dataclass(frozen=True)
class SafetyRow:
    """Counts for one arm x CTCAE grade x relatedness cell.

    ``events`` counts events; ``subjects`` counts distinct subjects with at
    least one such event; ``serious`` counts serious events among them.
    """

    arm_code: str
    grade: int
    relatedness: str
    events: int
    subjects: int
    serious: int


def safety_table(events: Iterable[SubjectAdverseEvent]) -> tuple[SafetyRow, ...]:
    """Adverse-event counts by arm, CTCAE grade and relatedness (non-empty cells only).

    Rows are sorted by arm, grade, then relatedness from not related to definite.
    """
    cells: dict[tuple[str, int, Relatedness], list[SubjectAdverseEvent]] = defaultdict(list)
    for e in events:
        cells[(e.arm_code, e.event.grade, e.event.relatedness)].append(e)
    rows = []
    for (arm, grade, rel) in sorted(cells, key=lambda k: (k[0], k[1], k[2].rank)):
        items = cells[(arm, grade, rel)]
        rows.append(SafetyRow(arm, grade, rel.value, len(items), len({i.subject_id for i in items}),
                              sum(i.event.serious for i in items)))
    return tuple(rows)


@dataclass(frozen=True)
class LotOutcomeRow:
    """One change-from-baseline value linked to the lot the subject received.

    Parameters
    ----------
    subject_id : str
    change : float
        Change from baseline of the outcome, in its unit (or %).
    attributes : mapping of str to float
        Lot attributes with units in their names (``purity_particles_per_ug``,
        ``mode_diameter_nm``, ``potency_percent_inhibition``).
    lot_id : str, optional
    """

    subject_id: str
    change: float
    attributes: Mapping[str, float] = field(default_factory=dict)
    lot_id: str = ""


@dataclass(frozen=True)
class LotOutcomeCoefficient:
    """A fixed-effect estimate: change per unit of the attribute, with CI and p-value."""

    name: str
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float


@dataclass(frozen=True)
class LotOutcomeModel:
    """Result of :func:`lot_outcome_model`.

    Attributes
    ----------
    outcome_code : str
    n_observations, n_subjects, n_lots : int
    confidence : float
    coefficients : tuple of LotOutcomeCoefficient
        Intercept first, then the attributes in the order given.
    random_intercept_variance : float
        Between-subject variance, outcome unit squared.
    residual_variance : float
        Within-subject variance, outcome unit squared.
    converged : bool
    statement : str
        :data:`ASSOCIATION_STATEMENT`.
    """

    outcome_code: str
    n_observations: int
    n_subjects: int
    n_lots: int
    confidence: float
    coefficients: tuple[LotOutcomeCoefficient, ...]
    random_intercept_variance: float
    residual_variance: float
    converged: bool
    statement: str = ASSOCIATION_STATEMENT

    def coefficient(self, name: str) -> LotOutcomeCoefficient:
        for c in self.coefficients:
            if c.name == name:
                return c
        raise InvalidInput(f"no coefficient {name!r}; have {[c.name for c in self.coefficients]}")


def lot_outcome_model(rows: Iterable[LotOutcomeRow], *, attributes: Sequence[str],
                      outcome_code: str = "", confidence: float = 0.95) -> LotOutcomeModel:
    """Mixed-effects model of change from baseline against lot attributes.

    Parameters
    ----------
    rows : iterable of LotOutcomeRow
    attributes : sequence of str
        Lot attribute names to use as fixed effects.
    outcome_code : str, optional
        For the report.
    confidence : float, optional
        Confidence level of the intervals (0-1).

    Returns
    -------
    LotOutcomeModel

    Raises
    ------
    InsufficientData
        Fewer than 3 subjects, too few observations for the parameters, or an
        attribute that does not vary.
    InvalidInput
        Missing or non-finite values.

    Notes
    -----
    ``change_ij = b0 + sum_k b_k x_ijk + u_i + e_ij`` with a random intercept
    ``u_i ~ N(0, tau^2)`` per subject and ``e_ij ~ N(0, sigma^2)``; fitted by
    REML with statsmodels ``MixedLM``; Wald intervals and p-values.
    """
    from statsmodels.regression.mixed_linear_model import MixedLM
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    if not 0 < confidence < 1:
        raise InvalidInput(f"confidence must be between 0 and 1, got {confidence}")
    names = list(attributes)
    if not names:
        raise InvalidInput("give at least one lot attribute")
    if len(set(names)) != len(names):
        raise InvalidInput(f"lot attributes repeat: {names}")
    data = list(rows)
    y, x, groups, lots = [], [], [], set()
    for i, r in enumerate(data):
        if not math.isfinite(r.change):
            raise InvalidInput(f"row {i} (subject {r.subject_id}): change is not finite")
        vals = []
        for n in names:
            v = r.attributes.get(n)
            if v is None or not math.isfinite(v):
                raise InvalidInput(f"row {i} (subject {r.subject_id}, lot {r.lot_id or '?'}): "
                                   f"attribute {n!r} is missing or not finite")
            vals.append(float(v))
        y.append(float(r.change))
        x.append(vals)
        groups.append(r.subject_id)
        lots.add(r.lot_id)
    n_subjects = len(set(groups))
    if n_subjects < 3:
        raise InsufficientData(f"a mixed model needs at least 3 subjects, got {n_subjects}")
    n_params = len(names) + 1
    if len(y) < n_params + 3:
        raise InsufficientData(f"{len(y)} observations are too few for {n_params} fixed effects "
                               "and two variances")
    xa = np.asarray(x, dtype=float)
    for j, n in enumerate(names):
        if np.ptp(xa[:, j]) == 0:
            raise InsufficientData(f"attribute {n!r} does not vary across lots; it cannot be "
                                   "related to outcome")
    exog = np.column_stack([np.ones(len(y)), xa])
    if np.linalg.matrix_rank(exog) < exog.shape[1]:
        raise InsufficientData(f"attributes {names} are collinear; drop one")
    model = MixedLM(np.asarray(y), exog, groups=np.asarray(groups), exog_re=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            fit = model.fit(reml=True, method=["lbfgs", "powell"])
        except (np.linalg.LinAlgError, ValueError) as exc:
            # Too few lots per attribute, or all subjects identical: the REML
            # Hessian is singular. Say so instead of returning a number.
            raise InsufficientData(
                f"the mixed model of {outcome_code!r} cannot be fitted on these data "
                f"({len(lots)} lots, {n_subjects} subjects): {exc}") from None
    converged = bool(getattr(fit, "converged", True)) and not any(
        issubclass(w.category, ConvergenceWarning) for w in caught)
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2))
    fe = np.asarray(fit.fe_params, dtype=float)
    se = np.asarray(fit.bse_fe, dtype=float)
    pvals = 2 * norm.sf(np.abs(fe / se))
    coefs = tuple(
        LotOutcomeCoefficient(n, float(fe[k]), float(se[k]), float(fe[k] - z * se[k]),
                              float(fe[k] + z * se[k]), float(pvals[k]))
        for k, n in enumerate(["intercept", *names]))
    return LotOutcomeModel(outcome_code, len(y), n_subjects, len(lots), confidence, coefs,
                           float(np.asarray(fit.cov_re).ravel()[0]), float(fit.scale), converged)


def lot_outcome_rows(protocol: Protocol, points: Iterable[OutcomePoint], outcome_code: str, *,
                     lot_by_subject_visit: Mapping[tuple[str, str], str],
                     lot_attributes: Mapping[str, Mapping[str, float]],
                     change_kind: ChangeKind | str = ChangeKind.ABSOLUTE) -> list[LotOutcomeRow]:
    """Rows for :func:`lot_outcome_model`: change from baseline at each follow-up visit.

    Parameters
    ----------
    protocol : Protocol
    points : iterable of OutcomePoint
    outcome_code : str
    lot_by_subject_visit : mapping
        ``{(subject_id, visit_name): lot_id}``: the lot the subject received
        before that visit (the records layer decides, e.g. the last one).
        Follow-up values without an entry are skipped.
    lot_attributes : mapping
        ``{lot_id: {attribute: value}}``.
    change_kind : ChangeKind or str, optional
        ``"absolute"`` (outcome unit) or ``"percent"`` of baseline; the sign is
        the raw change (not direction-adjusted), so read coefficients with the
        outcome's direction in mind.

    Returns
    -------
    list of LotOutcomeRow
        Subjects without a baseline value are skipped; percent changes from a
        zero baseline are skipped.
    """
    kind = ChangeKind(change_kind)
    outcome = protocol.outcome(outcome_code)
    baseline_name = protocol.schedule.baseline_visit.name
    pts = [p for p in points if p.outcome_code == outcome.code]
    baseline = {p.subject_id: p.value for p in pts if p.visit_name == baseline_name}
    rows = []
    for p in sorted(pts, key=lambda p: (p.subject_id, p.day, p.visit_name)):
        if p.visit_name == baseline_name or p.subject_id not in baseline:
            continue
        lot = lot_by_subject_visit.get((p.subject_id, p.visit_name))
        if lot is None:
            continue
        if lot not in lot_attributes:
            raise InvalidInput(f"subject {p.subject_id} visit {p.visit_name}: lot {lot!r} has no "
                               "attributes")
        ch = change_from_baseline(baseline[p.subject_id], p.value, outcome.direction)
        value = ch.absolute if kind is ChangeKind.ABSOLUTE else ch.percent
        if value is None:
            continue
        rows.append(LotOutcomeRow(p.subject_id, value, dict(lot_attributes[lot]), lot))
    return rows
