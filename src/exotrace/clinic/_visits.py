"""Visits: the schedule from an enrolment date, window checks, change from baseline, overdue visits.

Day 0 is the enrolment date; a visit on day ``d`` with window ``-b/+a`` may
happen from ``enrolment + d - b`` to ``enrolment + d + a``. An observation
outside the window is kept but flagged with the number of days outside.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from ..errors import InvalidInput
from ._protocol import Direction, Protocol
from ._units import convert_outcome_value, normalize_unit

__all__ = [
    "BaselineChange",
    "CheckedObservation",
    "DueVisit",
    "ObservationInput",
    "ScheduledEvent",
    "administration_schedule",
    "change_from_baseline",
    "check_observation",
    "due_visits",
    "overdue_visits",
    "visit_schedule",
    "window_position",
]


@dataclass(frozen=True)
class ScheduledEvent:
    """A visit or administration placed on the calendar.

    Attributes
    ----------
    name : str
        Visit or administration name from the protocol.
    kind : str
        ``"visit"`` or ``"administration"``.
    day : int
        Day offset from enrolment (day 0).
    target_date, earliest_date, latest_date : datetime.date
        Planned day and the window's first and last day.
    outcomes : tuple of str
        Outcome codes measured (visits).
    baseline : bool
        The baseline visit.
    """

    name: str
    kind: str
    day: int
    target_date: date
    earliest_date: date
    latest_date: date
    outcomes: tuple[str, ...] = ()
    baseline: bool = False


def _check_date(value: object, name: str) -> date:
    if not isinstance(value, date):
        raise InvalidInput(f"{name} must be a date, got {value!r}")
    return value


def visit_schedule(protocol: Protocol, enrolment_date: date) -> tuple[ScheduledEvent, ...]:
    """Calendar of the protocol's visits for a subject enrolled on ``enrolment_date``."""
    start = _check_date(enrolment_date, "enrolment date")
    return tuple(
        ScheduledEvent(v.name, "visit", v.day, start + timedelta(days=v.day),
                       start + timedelta(days=v.day - v.window_before_days),
                       start + timedelta(days=v.day + v.window_after_days),
                       v.outcomes, v.baseline)
        for v in protocol.schedule.visits)


def administration_schedule(protocol: Protocol, enrolment_date: date) -> tuple[ScheduledEvent, ...]:
    """Calendar of the protocol's administrations for a subject enrolled on ``enrolment_date``."""
    start = _check_date(enrolment_date, "enrolment date")
    return tuple(
        ScheduledEvent(a.name, "administration", a.day, start + timedelta(days=a.day),
                       start + timedelta(days=a.day - a.window_before_days),
                       start + timedelta(days=a.day + a.window_after_days))
        for a in protocol.schedule.administrations)


def window_position(event: ScheduledEvent, on: date) -> tuple[int, int]:
    """``(days_from_target, days_outside_window)`` for something done on ``on``.

    ``days_outside_window`` is 0 inside the window, negative when early,
    positive when late.
    """
    _check_date(on, "date")
    offset = (on - event.target_date).days
    if on < event.earliest_date:
        return offset, (on - event.earliest_date).days
    if on > event.latest_date:
        return offset, (on - event.latest_date).days
    return offset, 0


@dataclass(frozen=True)
class ObservationInput:
    """An outcome value as entered.

    Parameters
    ----------
    outcome_code : str
        Protocol outcome code (e.g. ``"LVEF"``).
    visit_name : str
        Protocol visit name.
    value : float
        The number, in ``unit``.
    unit : str
        Unit as entered; converted to the protocol's unit where meaningful.
    observed_on : datetime.date
        Day of measurement.
    """

    outcome_code: str
    visit_name: str
    value: float
    unit: str
    observed_on: date


@dataclass(frozen=True)
class CheckedObservation:
    """An observation checked against the protocol.

    Attributes
    ----------
    outcome_code, visit_name : str
    value : float
        In the protocol's unit ``unit``.
    unit : str
    entered_value : float
    entered_unit : str
    observed_on, target_date : datetime.date
    days_from_target : int
        Signed; negative is early.
    days_outside_window : int
        0 inside the window; negative early, positive late.
    flag : str or None
        ``"outside window: 4 days late"`` and the like; ``None`` when inside.
    """

    outcome_code: str
    visit_name: str
    value: float
    unit: str
    entered_value: float
    entered_unit: str
    observed_on: date
    target_date: date
    days_from_target: int
    days_outside_window: int
    flag: str | None

    @property
    def within_window(self) -> bool:
        return self.days_outside_window == 0


def check_observation(protocol: Protocol, observation: ObservationInput, *,
                      enrolment_date: date) -> CheckedObservation:
    """Check an observation's outcome, visit, unit and timing against the protocol.

    Parameters
    ----------
    protocol : Protocol
    observation : ObservationInput
    enrolment_date : datetime.date
        The subject's day 0.

    Returns
    -------
    CheckedObservation
        Value converted to the protocol unit; flagged when outside the window.

    Raises
    ------
    NotFound
        Unknown outcome code or visit.
    InvalidInput
        The outcome is not measured at that visit, or the value is not finite.
    UnitError
        The unit cannot be converted to the outcome's unit.
    """
    o = observation
    outcome = protocol.outcome(o.outcome_code)
    visit = protocol.visit(o.visit_name)
    if outcome.code not in visit.outcomes:
        raise InvalidInput(f"outcome {outcome.code} is not scheduled at visit {visit.name} "
                           f"(measured there: {', '.join(visit.outcomes) or 'nothing'})")
    if isinstance(o.value, bool) or not isinstance(o.value, (int, float)) or not math.isfinite(o.value):
        raise InvalidInput(f"outcome {outcome.code} at {visit.name}: value must be a finite "
                           f"number, got {o.value!r}")
    value = convert_outcome_value(float(o.value), o.unit, outcome.unit,
                                  what=f"outcome {outcome.code} at {visit.name}")
    event = next(e for e in visit_schedule(protocol, enrolment_date) if e.name == visit.name)
    offset, outside = window_position(event, _check_date(o.observed_on, "observation date"))
    flag = None
    if outside:
        n = abs(outside)
        flag = (f"outside window: {n} day{'s' if n != 1 else ''} "
                f"{'early' if outside < 0 else 'late'} (window {event.earliest_date.isoformat()}"
                f" to {event.latest_date.isoformat()})")
    return CheckedObservation(outcome.code, visit.name, value, outcome.unit, float(o.value),
                              normalize_unit(o.unit), o.observed_on, event.target_date, offset,
                              outside, flag)


@dataclass(frozen=True)
class BaselineChange:
    """Change of an outcome from baseline.

    Attributes
    ----------
    baseline, value : float
        In the outcome's unit.
    absolute : float
        ``value - baseline``.
    percent : float or None
        ``100 * (value - baseline) / |baseline|``; ``None`` when baseline is 0.
    improvement_absolute : float
        ``absolute`` signed so that positive is better (direction applied).
    improvement_percent : float or None
        ``percent`` signed so that positive is better.
    """

    baseline: float
    value: float
    absolute: float
    percent: float | None
    improvement_absolute: float
    improvement_percent: float | None


def change_from_baseline(baseline: float, value: float, direction: Direction | str) -> BaselineChange:
    """Absolute and percent change from baseline, and the same signed as improvement.

    Parameters
    ----------
    baseline, value : float
        Baseline and follow-up value, same unit.
    direction : Direction or str
        ``"increase"`` when a higher value is better, ``"decrease"`` otherwise.
    """
    for name, x in (("baseline", baseline), ("value", value)):
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            raise InvalidInput(f"{name} must be a finite number, got {x!r}")
    sign = 1.0 if Direction(direction) is Direction.INCREASE else -1.0
    absolute = float(value) - float(baseline)
    percent = None if baseline == 0 else 100.0 * absolute / abs(float(baseline))
    return BaselineChange(float(baseline), float(value), absolute, percent, sign * absolute,
                          None if percent is None else sign * percent)


@dataclass(frozen=True)
class DueVisit:
    """A visit not yet done, with its status on a given day.

    ``status`` is ``"overdue"`` (window closed), ``"due"`` (window open) or
    ``"upcoming"`` (window opens within the horizon); ``days_overdue`` counts
    days since the window closed (0 unless overdue).
    """

    name: str
    target_date: date
    earliest_date: date
    latest_date: date
    status: str
    days_overdue: int


def due_visits(protocol: Protocol, enrolment_date: date, completed_visits: Iterable[str], *,
               as_of: date, horizon_days: int = 14) -> tuple[DueVisit, ...]:
    """Visits not done yet that are overdue, due, or upcoming within ``horizon_days``.

    Parameters
    ----------
    protocol : Protocol
    enrolment_date : datetime.date
    completed_visits : iterable of str
        Names of visits already done.
    as_of : datetime.date
        The day to judge from (today).
    horizon_days : int, optional
        How far ahead to list upcoming visits, days.
    """
    _check_date(as_of, "as-of date")
    if horizon_days < 0:
        raise InvalidInput(f"horizon must be >= 0 days, got {horizon_days}")
    done = set(completed_visits)
    out = []
    for e in visit_schedule(protocol, enrolment_date):
        if e.name in done:
            continue
        if as_of > e.latest_date:
            out.append(DueVisit(e.name, e.target_date, e.earliest_date, e.latest_date, "overdue",
                                (as_of - e.latest_date).days))
        elif as_of >= e.earliest_date:
            out.append(DueVisit(e.name, e.target_date, e.earliest_date, e.latest_date, "due", 0))
        elif (e.earliest_date - as_of).days <= horizon_days:
            out.append(DueVisit(e.name, e.target_date, e.earliest_date, e.latest_date, "upcoming", 0))
    return tuple(out)


def overdue_visits(protocol: Protocol, enrolment_date: date, completed_visits: Iterable[str], *,
                   as_of: date) -> tuple[DueVisit, ...]:
    """Visits whose window closed before ``as_of`` without being done."""
    return tuple(v for v in due_visits(protocol, enrolment_date, completed_visits, as_of=as_of,
                                       horizon_days=0) if v.status == "overdue")
