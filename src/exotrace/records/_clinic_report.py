"""Clinic services: the analytics report (responder rates, safety table and the
lot-to-outcome mixed model). It describes association only.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from ..clinic import (
    ASSOCIATION_STATEMENT,
    LotOutcomeRow,
    OutcomePoint,
    Protocol,
    SubjectAdverseEvent,
    lot_outcome_model,
    lot_outcome_rows,
    plot_trajectories,
    responder_rates,
    safety_table,
)
from ..errors import FileFormatError, InsufficientData, InvalidInput, NotFound
from . import _repositories_clinic as crepo
from ._clinic_common import _RATIO, _ae_model
from ._clinic_protocols import get_protocol
from ._models_clinic import ClinicalProtocol
from ._models_lot import Lot

__all__ = ["LOT_ATTRIBUTE_NAMES", "clinic_report"]


#: records attribute -> name with units used in the lot-to-outcome model
LOT_ATTRIBUTE_NAMES = {
    _RATIO: "purity_particles_per_ug",
    "size_mode": "mode_diameter_nm",
    "potency_percent_inhibition": "potency_percent_inhibition",
}


def _protocol_with_outcome(session: Session, outcome_code: str,
                           protocol_code: str | None) -> tuple[ClinicalProtocol, Protocol]:
    if protocol_code is not None:
        record, protocol = get_protocol(session, protocol_code)
        protocol.outcome(outcome_code)
        return record, protocol
    found = []
    for code in sorted({r.code for r in crepo.protocol_versions(session)}):
        record, protocol = get_protocol(session, code)
        if any(o.code == outcome_code for o in protocol.outcomes):
            found.append((record, protocol))
    if not found:
        raise NotFound(f"no stored protocol measures outcome {outcome_code!r}")
    if len(found) > 1:
        raise InvalidInput(f"outcome {outcome_code} is in protocols "
                           f"{', '.join(r.code for r, _ in found)}; give --protocol")
    return found[0]


def _fit(rows, attributes, outcome_code):
    import numpy as np

    try:
        return lot_outcome_model(rows, attributes=attributes, outcome_code=outcome_code)
    except np.linalg.LinAlgError as exc:
        # statsmodels fails this way when the few lots leave the model unidentifiable
        raise InsufficientData(f"the mixed model of {outcome_code} on {', '.join(attributes)} "
                               f"cannot be fitted ({exc}); too few lots or subjects") from None


def clinic_report(session: Session, outcome_code: str, *, protocol_code: str | None = None,
                  plot_dir: str | Path | None = None) -> dict:
    """Responder rates by arm, the safety table and the lot-to-outcome mixed model.

    The model regresses change from baseline of ``outcome_code`` on the
    attributes of the lot each subject last received before the visit
    (purity in particles/ug, mode diameter in nm, potency where measured),
    with a random intercept per subject. It describes association only.

    Returns
    -------
    dict
        ``protocol``, ``outcome``, ``responders`` (or a note), ``safety``,
        ``lot_outcome_model`` (or why it could not be fitted), ``statement``,
        ``plot`` (path) when ``plot_dir`` is given.
    """
    record, protocol = _protocol_with_outcome(session, outcome_code, protocol_code)
    outcome = protocol.outcome(outcome_code)
    enrolments = crepo.all_enrolments(session, record.id)
    points, subject_events = [], []
    subjects_by_arm: dict[str, list[str]] = {a.code: [] for a in protocol.arms}
    lot_by_visit: dict[tuple[str, str], str] = {}
    lot_ids: set[int] = set()
    lot_numbers: dict[int, str] = {}
    for enrolment, subject, _ in enrolments:
        subjects_by_arm.setdefault(enrolment.arm_code, []).append(subject.code)
        admins = crepo.subject_administrations(session, subject.id)
        for o in crepo.observations_of(session, subject.id):
            points.append(OutcomePoint(subject.code, enrolment.arm_code, o.outcome_code,
                                       o.visit_name, (o.observed_on - enrolment.enrolled_on).days,
                                       o.value))
            before = [a for a in admins if a.administered_at.date() <= o.observed_on]
            if before:
                lot_by_visit[(subject.code, o.visit_name)] = str(before[-1].lot_id)
                lot_ids.add(before[-1].lot_id)
        for e in crepo.adverse_events_of(session, subject.id):
            subject_events.append(SubjectAdverseEvent(subject.code, enrolment.arm_code,
                                                      _ae_model(e)))
    result: dict = {"protocol": record.code, "outcome": {"code": outcome.code,
                                                         "name": outcome.name,
                                                         "unit": outcome.unit},
                    "subjects": sum(len(v) for v in subjects_by_arm.values())}
    if outcome.responder is not None:
        result["responders"] = [{f: getattr(r, f) for f in r.__dataclass_fields__}
                                for r in responder_rates(protocol, points, outcome.code,
                                                         subjects_by_arm=subjects_by_arm)]
    else:
        result["responders"] = f"outcome {outcome.code} has no responder definition"
    result["safety"] = [{f: getattr(r, f) for f in r.__dataclass_fields__}
                        for r in safety_table(subject_events)]
    names = list(LOT_ATTRIBUTE_NAMES)
    values = crepo.latest_measurements(session, sorted(lot_ids), names)
    for lot_id in lot_ids:
        lot_numbers[lot_id] = session.get(Lot, lot_id).number
    lot_attributes = {str(i): {LOT_ATTRIBUTE_NAMES[a]: values[(i, a)] for a in names
                               if (i, a) in values} for i in lot_ids}
    usable = [LOT_ATTRIBUTE_NAMES[a] for a in names
              if lot_attributes and all(LOT_ATTRIBUTE_NAMES[a] in v for v in lot_attributes.values())
              and len({v[LOT_ATTRIBUTE_NAMES[a]] for v in lot_attributes.values()}) > 1]
    model_part: dict = {"attributes": usable, "lots": sorted(lot_numbers.values())}
    try:
        if not usable:
            raise InsufficientData("no lot attribute is measured on every lot and varies "
                                   "between lots")
        rows = lot_outcome_rows(protocol, points, outcome.code, lot_by_subject_visit=lot_by_visit,
                                lot_attributes=lot_attributes)
        rows = [LotOutcomeRow(r.subject_id, r.change, r.attributes,
                              lot_numbers[int(r.lot_id)]) for r in rows]
        try:
            model = _fit(rows, usable, outcome.code)
        except InsufficientData as exc:
            # Few lots make attributes collinear: fall back to the first that fits alone.
            model = None
            for name in usable if len(usable) > 1 else ():
                try:
                    model = _fit(rows, [name], outcome.code)
                except InsufficientData:
                    continue
                model_part["attributes"] = [name]
                model_part["note"] = f"{exc}; fitted {name} alone"
                break
            if model is None:
                raise
        model_part.update({f: getattr(model, f) for f in model.__dataclass_fields__})
    except InsufficientData as exc:
        model_part["not_fitted"] = str(exc)
    result["lot_outcome_model"] = model_part
    result["statement"] = ASSOCIATION_STATEMENT
    if plot_dir is not None and points:
        out = Path(plot_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FileFormatError(out, f"cannot create folder: {exc.strerror or exc}") from None
        result["plot"] = str(plot_trajectories(points, outcome.code,
                                               out / f"{record.code}-{outcome.code}.png",
                                               protocol=protocol))
    return result
