"""CSV tables shaped like CDISC SDTM DM (demographics), EX (exposure) and AE (adverse events).

Dates are ISO 8601: dates as ``YYYY-MM-DD``, administration times in UTC as
``YYYY-MM-DDTHH:MM``. USUBJID is ``STUDYID-SUBJID``. Routes use CDISC ROUTE
terms (an intramyocardial injection is ``INTRACARDIAC``; the topical
variants are all ``TOPICAL``). These files are shaped for review and
hand-over, not a validated submission package (no define.xml, no MedDRA
coding of AETERM).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from .._text import csv_row
from ..errors import FileFormatError
from ._export_data import ExportData
from ._protocol import Route
from ._safety import SeriousnessCriterion

__all__ = ["AE_COLUMNS", "DM_COLUMNS", "EX_COLUMNS", "sdtm_tables", "write_sdtm"]

DM_COLUMNS = ("STUDYID", "DOMAIN", "USUBJID", "SUBJID", "RFSTDTC", "RFENDTC", "RFICDTC",
              "SITEID", "AGE", "AGEU", "SEX", "ARMCD", "ARM", "ACTARMCD", "ACTARM")
EX_COLUMNS = ("STUDYID", "DOMAIN", "USUBJID", "EXSEQ", "EXTRT", "EXDOSE", "EXDOSU", "EXROUTE",
              "EXLOT", "EXSTDTC", "EXENDTC", "EXVOL", "EXVOLU")
AE_COLUMNS = ("STUDYID", "DOMAIN", "USUBJID", "AESEQ", "AETERM", "AESTDTC", "AEENDTC",
              "AETOXGR", "AESER", "AEREL", "AEOUT", "AESDTH", "AESLIFE", "AESHOSP", "AESDISAB",
              "AESCONG", "AESMIE")

_ROUTE = {
    Route.TOPICAL_AFTER_CLEANSING: "TOPICAL",
    Route.TOPICAL_MICRONEEDLING: "TOPICAL",
    Route.TOPICAL_LASER: "TOPICAL",
    Route.INTRADERMAL: "INTRADERMAL",
    Route.INTRAMYOCARDIAL: "INTRACARDIAC",
    Route.INTRAVENOUS: "INTRAVENOUS",
    Route.INTRANASAL: "NASAL",
    Route.INHALED: "RESPIRATORY (INHALATION)",
}
_REL = {"not related": "NOT RELATED", "unlikely": "UNLIKELY RELATED",
        "possible": "POSSIBLY RELATED", "probable": "PROBABLY RELATED", "definite": "RELATED"}


def _utc_minutes(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def _num(x: float) -> str:
    # SDTM numeric variables as plain decimal text: whole numbers without exponent
    # (2e10 particles/kg -> "20000000000"), others to 10 significant digits.
    if float(x).is_integer() and abs(x) < 1e21:
        return str(int(x))
    return f"{x:.10g}"


def sdtm_tables(export_data: ExportData) -> dict[str, list[dict[str, str]]]:
    """Build the DM, EX and AE rows (all values as text, ``""`` for missing).

    Returns
    -------
    dict
        ``{"DM": rows, "EX": rows, "AE": rows}``, each row a mapping column -> text,
        sorted by USUBJID then sequence.
    """
    d = export_data
    d.check_references()
    p = d.protocol
    study = p.id
    arms = {a.code: a for a in p.arms}
    vial_lot = {v.vial_id: v.lot_id for v in d.vials}
    lots = {lot.lot_id: lot for lot in d.lots}

    def usubjid(s: str) -> str:
        return f"{study}-{s}"

    admins_of: dict[str, list] = defaultdict(list)
    for a in d.administrations:
        admins_of[a.subject_id].append(a)
    consent_of: dict[str, list] = defaultdict(list)
    for c in d.consents:
        consent_of[c.subject_id].append(c.signed_on)

    dm = []
    for s in sorted(d.subjects, key=lambda s: s.subject_id):
        times = sorted(a.administered_at for a in admins_of[s.subject_id])
        arm = arms[s.arm_code]
        dm.append({
            "STUDYID": study, "DOMAIN": "DM", "USUBJID": usubjid(s.subject_id),
            "SUBJID": s.subject_id,
            "RFSTDTC": _utc_minutes(times[0]) if times else "",
            "RFENDTC": _utc_minutes(times[-1]) if times else "",
            "RFICDTC": min(consent_of[s.subject_id]).isoformat() if consent_of[s.subject_id] else "",
            "SITEID": s.site_id,
            "AGE": "" if s.age_years is None else str(s.age_years),
            "AGEU": "" if s.age_years is None else "YEARS",
            "SEX": s.sex, "ARMCD": arm.code, "ARM": arm.name,
            # actual arm: the planned one once treated; not treated subjects get the SDTM null arm
            "ACTARMCD": arm.code if times else "NOTTRT",
            "ACTARM": arm.name if times else "Not Treated",
        })

    ex = []
    for subject in sorted(admins_of):
        for seq, a in enumerate(sorted(admins_of[subject], key=lambda a: a.administered_at), 1):
            lot = lots[vial_lot[a.vial_id]]
            ex.append({
                "STUDYID": study, "DOMAIN": "EX", "USUBJID": usubjid(subject), "EXSEQ": str(seq),
                "EXTRT": f"EV product {lot.product_type}", "EXDOSE": _num(a.dose_amount),
                "EXDOSU": a.dose_unit, "EXROUTE": _ROUTE[Route(a.route)],
                "EXLOT": lot.lot_number, "EXSTDTC": _utc_minutes(a.administered_at),
                "EXENDTC": _utc_minutes(a.administered_at), "EXVOL": _num(a.volume_ml),
                "EXVOLU": "mL",
            })

    ae_of: dict[str, list] = defaultdict(list)
    for r in d.adverse_events:
        ae_of[r.subject_id].append(r.event)
    ae = []
    for subject in sorted(ae_of):
        events = sorted(ae_of[subject], key=lambda e: (e.onset_date, e.ae_id))
        for seq, e in enumerate(events, 1):
            crit = e.seriousness

            def yn(c: SeriousnessCriterion, crit=crit) -> str:
                return "Y" if c in crit else "N"

            ae.append({
                "STUDYID": study, "DOMAIN": "AE", "USUBJID": usubjid(subject), "AESEQ": str(seq),
                "AETERM": e.term, "AESTDTC": e.onset_date.isoformat(),
                "AEENDTC": e.resolution_date.isoformat() if e.resolution_date else "",
                "AETOXGR": str(e.grade), "AESER": "Y" if e.serious else "N",
                "AEREL": _REL[e.relatedness.value], "AEOUT": e.outcome.value.upper(),
                "AESDTH": yn(SeriousnessCriterion.DEATH),
                "AESLIFE": yn(SeriousnessCriterion.LIFE_THREATENING),
                "AESHOSP": yn(SeriousnessCriterion.HOSPITALISATION),
                "AESDISAB": yn(SeriousnessCriterion.DISABILITY),
                "AESCONG": yn(SeriousnessCriterion.CONGENITAL_ANOMALY),
                "AESMIE": yn(SeriousnessCriterion.IMPORTANT_MEDICAL_EVENT),
            })
    return {"DM": dm, "EX": ex, "AE": ae}


def _csv_text(columns: tuple[str, ...], rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    w.writerows(csv_row(r) for r in rows)  # no cell a spreadsheet would run as a formula
    return buf.getvalue()


def write_sdtm(export_data: ExportData, out_dir: str | Path) -> dict[str, Path]:
    """Write ``dm.csv``, ``ex.csv`` and ``ae.csv`` into ``out_dir``.

    All three are built before anything is written, so a bad record leaves
    no half-written export.

    Returns
    -------
    dict
        ``{"DM": path, "EX": path, "AE": path}``.
    """
    tables = sdtm_tables(export_data)
    columns = {"DM": DM_COLUMNS, "EX": EX_COLUMNS, "AE": AE_COLUMNS}
    texts = {k: _csv_text(columns[k], rows) for k, rows in tables.items()}
    out = Path(out_dir)
    paths = {}
    try:
        out.mkdir(parents=True, exist_ok=True)
        for k, text in texts.items():
            path = out / f"{k.lower()}.csv"
            tmp = path.with_name(path.name + ".part")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
            paths[k] = path
    except OSError as exc:
        raise FileFormatError(out, f"cannot write SDTM files: {exc.strerror or exc}") from None
    return paths
