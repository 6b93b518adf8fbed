"""Clinic services: one study's records exported as FHIR R5 and SDTM-shaped tables."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.orm import Session

from .._text import csv_row
from ..clinic import (
    AE_COLUMNS,
    DM_COLUMNS,
    EX_COLUMNS,
    AdministrationRecord,
    AdverseEventRecord,
    ConsentRecord,
    ExportData,
    LotRecord,
    ObservationRecord,
    SubjectRecord,
    VialRecord,
    build_fhir_bundle,
    sdtm_tables,
)
from ..errors import FileFormatError, InsufficientData, InvalidInput
from . import _repositories as repo
from . import _repositories_clinic as crepo
from ._clinic_common import _CONCENTRATION, _SDTM_SEX, _ae_model
from ._clinic_dosing import lot_product_type
from ._clinic_protocols import get_protocol
from ._models_auth import User
from ._models_lot import Lot, Vial
from ._trace import lot_sources

__all__ = ["build_export_data", "export_fhir", "export_sdtm"]


def build_export_data(session: Session, protocol_code: str) -> ExportData:
    """Gather one study's records into the clinic core's :class:`~exotrace.clinic.ExportData`.

    Lots and vials are those administered in the study; each lot carries its
    donor code(s) as the biological source (a pool lists every donor, joined
    with ``+``).
    """
    record, protocol = get_protocol(session, protocol_code)
    users = {u.id: u.username for u in repo.list_all(session, User)}
    subjects, consents, admins, observations, events = [], [], [], [], []
    lots: dict[int, Lot] = {}
    vials: dict[int, Vial] = {}
    for enrolment, subject, _ in crepo.all_enrolments(session, record.id):
        arm = protocol.arm(enrolment.arm_code)
        subjects.append(SubjectRecord(subject.code, arm.code, enrolment.enrolled_on,
                                      _SDTM_SEX[subject.sex], subject.age_years,
                                      enrolment.site or ""))
        for c in crepo.study_consents_of(session, subject.id):
            consents.append(ConsentRecord(str(c.id), subject.code, c.signed_on,
                                          withdrawn_on=c.withdrawn_on))
        for a in crepo.subject_administrations(session, subject.id):
            vial = session.get(Vial, a.vial_id)
            vials[vial.id] = vial
            lots[a.lot_id] = session.get(Lot, a.lot_id)
            admins.append(AdministrationRecord(
                str(a.id), subject.code, vial.identifier, a.administered_at, a.dose_amount,
                a.dose_unit, a.particles, a.volume_ml, arm.route, users.get(a.operator_id, "")))
        for o in crepo.observations_of(session, subject.id):
            observations.append(ObservationRecord(str(o.id), subject.code, o.outcome_code,
                                                  o.visit_name, o.value, o.unit, o.observed_on))
        for e in crepo.adverse_events_of(session, subject.id):
            events.append(AdverseEventRecord(
                subject.code, _ae_model(e),
                str(e.administration_id) if e.administration_id is not None else None))
    conc = crepo.latest_measurements(session, list(lots), [_CONCENTRATION])
    lot_records = []
    for lot_id, lot in sorted(lots.items(), key=lambda kv: kv[1].number):
        donors = "+".join(code for _, code, _ in lot_sources(session, lot_id)) or "unknown"
        lot_records.append(LotRecord(lot.number, lot.number, lot_product_type(session, lot),
                                     donors, lot.status.value, lot.expires_on,
                                     conc.get((lot_id, _CONCENTRATION))))
    vial_records = [VialRecord(v.identifier, lots[v.lot_id].number)
                    for v in sorted(vials.values(), key=lambda v: v.identifier)]
    return ExportData(protocol, tuple(subjects), tuple(consents), tuple(lot_records),
                      tuple(vial_records), tuple(admins), tuple(observations), tuple(events))


def _protocol_codes(session: Session, protocol_code: str | None) -> list[str]:
    if protocol_code is not None:
        return [get_protocol(session, protocol_code)[0].code]
    codes = sorted({r.code for _, _, r in crepo.all_enrolments(session)})
    if not codes:
        raise InsufficientData("no enrolled subjects to export")
    return codes


def export_fhir(session: Session, path: str | Path, *, protocol_code: str | None = None) -> dict:
    """Write one FHIR R5 Bundle (validated) of one study, or of every study with subjects.

    Several studies go into one collection Bundle, each study's resources
    built and validated by the clinic core, the merged Bundle validated
    again. Nothing is written if any resource fails validation.

    Returns
    -------
    dict
        ``path``, ``studies`` and ``resources`` (count per resource type).
    """
    from fhir.resources.bundle import Bundle
    from pydantic import ValidationError

    codes = _protocol_codes(session, protocol_code)
    bundles = [build_fhir_bundle(build_export_data(session, c)) for c in codes]
    if len(bundles) == 1:
        bundle = bundles[0]
    else:
        bundle = {"resourceType": "Bundle", "id": bundles[0]["id"], "type": "collection",
                  "identifier": bundles[0]["identifier"],
                  "entry": [e for b in bundles for e in b.get("entry", [])]}
        try:
            bundle = json.loads(Bundle.model_validate(bundle).model_dump_json(exclude_none=True))
        except ValidationError as exc:
            raise InvalidInput(f"merged FHIR bundle is invalid: {exc.errors()[0]['msg']}") from None
    counts: dict[str, int] = {}
    for e in bundle.get("entry", []):
        t = e["resource"]["resourceType"]
        counts[t] = counts.get(t, 0) + 1
    out = Path(path)
    text = json.dumps(bundle, indent=2)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        raise FileFormatError(out, f"cannot write: {exc.strerror or exc}") from None
    return {"path": str(out), "studies": codes, "resources": dict(sorted(counts.items())),
            "entries": len(bundle.get("entry", []))}


def export_sdtm(session: Session, out_dir: str | Path, *, protocol_code: str | None = None
                ) -> dict:
    """Write ``dm.csv``, ``ex.csv``, ``ae.csv`` (SDTM-shaped) for one or every study.

    Every table is built before anything is written; rows of several studies
    are concatenated (each row carries STUDYID).
    """
    import csv
    import io

    codes = _protocol_codes(session, protocol_code)
    tables: dict[str, list] = {"DM": [], "EX": [], "AE": []}
    for c in codes:
        for k, rows in sdtm_tables(build_export_data(session, c)).items():
            tables[k].extend(rows)
    columns = {"DM": DM_COLUMNS, "EX": EX_COLUMNS, "AE": AE_COLUMNS}
    texts = {}
    for k, rows in tables.items():
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=columns[k], lineterminator="\n")
        w.writeheader()
        w.writerows(csv_row(r) for r in rows)  # no cell a spreadsheet would run as a formula
        texts[k] = buf.getvalue()
    out = Path(out_dir)
    paths = {}
    try:
        out.mkdir(parents=True, exist_ok=True)
        for k, text in texts.items():
            p = out / f"{k.lower()}.csv"
            tmp = p.with_name(p.name + ".part")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(p)
            paths[k] = str(p)
    except OSError as exc:
        raise FileFormatError(out, f"cannot write SDTM files: {exc.strerror or exc}") from None
    return {"studies": codes, "files": paths, "rows": {k: len(v) for k, v in tables.items()}}
