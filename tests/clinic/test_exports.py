"""FHIR R5 bundle and SDTM-shaped CSVs from a small, fully known case."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest
from fhir.resources.adverseevent import AdverseEvent as FhirAdverseEvent
from fhir.resources.bundle import Bundle
from fhir.resources.observation import Observation

from exotrace.clinic import (
    AE_COLUMNS,
    CTCAE_GRADE_EXTENSION_URL,
    DM_COLUMNS,
    EX_COLUMNS,
    AdministrationRecord,
    AdverseEvent,
    AdverseEventRecord,
    ConsentRecord,
    ExportData,
    LotRecord,
    ObservationRecord,
    Route,
    SubjectRecord,
    VialRecord,
    build_fhir_bundle,
    fhir_uuid,
    sdtm_tables,
    write_fhir_bundle,
    write_sdtm,
)
from exotrace.errors import InvalidInput

CET = timezone(timedelta(hours=1))


@pytest.fixture
def export(cardio) -> ExportData:
    def adm(aid, subject, vial, when, weight):
        return AdministrationRecord(aid, subject, vial, when, 2.0e10, "particles/kg",
                                    2.0e10 * weight, 2.0e10 * weight / 2.0e11, Route.INTRAVENOUS,
                                    "nurse.a")
    return ExportData(
        protocol=cardio,
        subjects=(SubjectRecord("P001", "IV", date(2026, 1, 5), "F", 64, "S1"),
                  SubjectRecord("P002", "IV", date(2026, 1, 12), "M", 58, "S1")),
        consents=(ConsentRecord("C1", "P001", date(2026, 1, 2)),
                  ConsentRecord("C2", "P002", date(2026, 1, 9), withdrawn_on=date(2026, 3, 1))),
        lots=(LotRecord("7", "EV-2026-007", "cpc-ev", "D-0042", "released", date(2026, 12, 31),
                        2.0e11),),
        vials=(VialRecord("V1", "7"), VialRecord("V2", "7"), VialRecord("V3", "7")),
        administrations=(
            adm("A1", "P001", "V1", datetime(2026, 1, 5, 9, 30, tzinfo=CET), 70.0),
            adm("A2", "P001", "V2", datetime(2026, 1, 26, 10, 0, tzinfo=CET), 70.0),
            adm("A3", "P002", "V3", datetime(2026, 1, 12, 14, 15, tzinfo=CET), 85.0),
        ),
        observations=(
            ObservationRecord("O1", "P001", "LVEF", "baseline", 32.0, "%", date(2026, 1, 3)),
            ObservationRecord("O2", "P001", "LVEF", "month3", 36.5, "%", date(2026, 4, 6)),
            ObservationRecord("O3", "P001", "NTPROBNP", "baseline", 2150.0, "pg/mL",
                              date(2026, 1, 3)),
        ),
        adverse_events=(
            AdverseEventRecord("P001", AdverseEvent(
                "infusion-related reaction", 2, date(2026, 1, 5), "probable",
                resolution_date=date(2026, 1, 6), outcome="recovered/resolved", ae_id="AE1"), "A1"),
            AdverseEventRecord("P002", AdverseEvent(
                "atrial fibrillation", 3, date(2026, 2, 2), "unlikely",
                seriousness={"hospitalisation"}, outcome="recovering/resolving", ae_id="AE2")),
        ),
    )


def test_bundle_validates_and_counts(export):
    bundle = build_fhir_bundle(export)
    parsed = Bundle.model_validate(bundle)  # round-trips through the R5 models
    assert parsed.type == "collection"
    counts = Counter(e["resource"]["resourceType"] for e in bundle["entry"])
    assert counts == {"ResearchStudy": 1, "Patient": 2, "Consent": 2, "ResearchSubject": 2,
                      "BiologicallyDerivedProduct": 4, "MedicationAdministration": 3,
                      "Observation": 3, "AdverseEvent": 2}
    for e in bundle["entry"]:
        assert e["fullUrl"] == "urn:uuid:" + e["resource"]["id"]
    # re-serialising the parsed bundle gives the same JSON
    assert json.loads(parsed.model_dump_json(exclude_none=True)) == bundle


def test_bundle_is_reproducible(export):
    assert json.dumps(build_fhir_bundle(export)) == json.dumps(build_fhir_bundle(export))


def _resources(bundle, rtype):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def test_lvef_observation_has_loinc_and_ucum(export):
    bundle = build_fhir_bundle(export)
    obs = [o for o in _resources(bundle, "Observation")
           if any(c.get("code") == "10230-1" for c in o["code"]["coding"])]
    assert len(obs) == 2
    o = Observation.model_validate(obs[0])
    assert o.code.coding[0].system == "http://loinc.org"
    assert (o.valueQuantity.value, o.valueQuantity.system, o.valueQuantity.code) == (
        32.0, "http://unitsofmeasure.org", "%")
    patient_url = "urn:uuid:" + fhir_uuid("EXO-CARD-01", "Patient", "P001")
    assert o.subject.reference == patient_url


def test_products_trace_to_the_donor(export):
    bundle = build_fhir_bundle(export)
    bdp = _resources(bundle, "BiologicallyDerivedProduct")
    assert {b["biologicalSourceEvent"]["value"] for b in bdp} == {"D-0042"}
    lot_url = "urn:uuid:" + fhir_uuid("EXO-CARD-01", "BiologicallyDerivedProduct", "lot/7")
    vials = [b for b in bdp if "parent" in b]
    assert len(vials) == 3 and all(v["parent"][0]["reference"] == lot_url for v in vials)
    a1 = next(m for m in _resources(bundle, "MedicationAdministration")
              if m["identifier"][0]["value"] == "A1")
    assert a1["dosage"]["dose"]["value"] == pytest.approx(1.4e12)
    assert a1["dosage"]["route"]["coding"][0]["code"] == "47625008"
    assert lot_url in [r["reference"] for r in a1["supportingInformation"]]


def test_adverse_events(export):
    bundle = build_fhir_bundle(export)
    aes = {a["identifier"][0]["value"]: a for a in _resources(bundle, "AdverseEvent")}
    ae1 = FhirAdverseEvent.model_validate(aes["AE1"])
    assert ae1.extension[0].url == CTCAE_GRADE_EXTENSION_URL and ae1.extension[0].valueInteger == 2
    assert ae1.seriousness.coding[0].code == "non-serious"
    assert ae1.suspectEntity[0].instanceReference.reference == "urn:uuid:" + fhir_uuid(
        "EXO-CARD-01", "MedicationAdministration", "A1")
    assert aes["AE2"]["seriousness"]["coding"][0]["code"] == "serious"
    assert aes["AE2"]["status"] == "in-progress"
    consents = {c["identifier"][0]["value"]: c for c in _resources(bundle, "Consent")}
    assert consents["C2"]["status"] == "inactive" and consents["C2"]["period"]["end"] == "2026-03-01"


def test_dangling_reference_is_named(export):
    bad = dataclasses.replace(export, vials=export.vials[:2])
    with pytest.raises(InvalidInput, match="administration A3: vial 'V3' is not in the export"):
        build_fhir_bundle(bad)


def test_invalid_fhir_names_the_resource(export):
    # an empty medication text breaks FHIR's "string must not be empty" rule
    bad_lot = dataclasses.replace(export.lots[0], donor_code="")
    with pytest.raises(InvalidInput, match="FHIR BiologicallyDerivedProduct for lot EV-2026-007"):
        build_fhir_bundle(dataclasses.replace(export, lots=(bad_lot,)))


def test_write_bundle(export, tmp_path):
    path = write_fhir_bundle(export, tmp_path / "out" / "bundle.json")
    assert json.loads(path.read_text())["type"] == "collection"


def test_sdtm_exact_values(export):
    t = sdtm_tables(export)
    assert t["DM"] == [
        {"STUDYID": "EXO-CARD-01", "DOMAIN": "DM", "USUBJID": "EXO-CARD-01-P001", "SUBJID": "P001",
         "RFSTDTC": "2026-01-05T08:30", "RFENDTC": "2026-01-26T09:00", "RFICDTC": "2026-01-02",
         "SITEID": "S1", "AGE": "64", "AGEU": "YEARS", "SEX": "F", "ARMCD": "IV",
         "ARM": "Three intravenous EV infusions, three weeks apart", "ACTARMCD": "IV",
         "ACTARM": "Three intravenous EV infusions, three weeks apart"},
        {"STUDYID": "EXO-CARD-01", "DOMAIN": "DM", "USUBJID": "EXO-CARD-01-P002", "SUBJID": "P002",
         "RFSTDTC": "2026-01-12T13:15", "RFENDTC": "2026-01-12T13:15", "RFICDTC": "2026-01-09",
         "SITEID": "S1", "AGE": "58", "AGEU": "YEARS", "SEX": "M", "ARMCD": "IV",
         "ARM": "Three intravenous EV infusions, three weeks apart", "ACTARMCD": "IV",
         "ACTARM": "Three intravenous EV infusions, three weeks apart"},
    ]
    ex = t["EX"]
    assert [(r["USUBJID"], r["EXSEQ"], r["EXSTDTC"], r["EXLOT"]) for r in ex] == [
        ("EXO-CARD-01-P001", "1", "2026-01-05T08:30", "EV-2026-007"),
        ("EXO-CARD-01-P001", "2", "2026-01-26T09:00", "EV-2026-007"),
        ("EXO-CARD-01-P002", "1", "2026-01-12T13:15", "EV-2026-007"),
    ]
    assert ex[0] | {} == {
        "STUDYID": "EXO-CARD-01", "DOMAIN": "EX", "USUBJID": "EXO-CARD-01-P001", "EXSEQ": "1",
        "EXTRT": "EV product cpc-ev", "EXDOSE": "20000000000", "EXDOSU": "particles/kg",
        "EXROUTE": "INTRAVENOUS", "EXLOT": "EV-2026-007", "EXSTDTC": "2026-01-05T08:30",
        "EXENDTC": "2026-01-05T08:30", "EXVOL": "7", "EXVOLU": "mL"}
    assert ex[2]["EXVOL"] == "8.5"  # 85 kg x 2e10 / 2e11 per mL
    assert t["AE"] == [
        {"STUDYID": "EXO-CARD-01", "DOMAIN": "AE", "USUBJID": "EXO-CARD-01-P001", "AESEQ": "1",
         "AETERM": "infusion-related reaction", "AESTDTC": "2026-01-05", "AEENDTC": "2026-01-06",
         "AETOXGR": "2", "AESER": "N", "AEREL": "PROBABLY RELATED", "AEOUT": "RECOVERED/RESOLVED",
         "AESDTH": "N", "AESLIFE": "N", "AESHOSP": "N", "AESDISAB": "N", "AESCONG": "N",
         "AESMIE": "N"},
        {"STUDYID": "EXO-CARD-01", "DOMAIN": "AE", "USUBJID": "EXO-CARD-01-P002", "AESEQ": "1",
         "AETERM": "atrial fibrillation", "AESTDTC": "2026-02-02", "AEENDTC": "",
         "AETOXGR": "3", "AESER": "Y", "AEREL": "UNLIKELY RELATED",
         "AEOUT": "RECOVERING/RESOLVING", "AESDTH": "N", "AESLIFE": "N", "AESHOSP": "Y",
         "AESDISAB": "N", "AESCONG": "N", "AESMIE": "N"},
    ]


def test_write_sdtm_files(export, tmp_path):
    paths = write_sdtm(export, tmp_path / "sdtm")
    assert sorted(p.name for p in paths.values()) == ["ae.csv", "dm.csv", "ex.csv"]
    for domain, cols in (("DM", DM_COLUMNS), ("EX", EX_COLUMNS), ("AE", AE_COLUMNS)):
        with paths[domain].open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        assert tuple(rows[0]) == cols
    with paths["EX"].open(newline="", encoding="utf-8") as fh:
        assert len(list(csv.DictReader(fh))) == 3


def test_bad_export_writes_nothing(export, tmp_path):
    bad = dataclasses.replace(export, observations=(
        ObservationRecord("O9", "P404", "LVEF", "baseline", 30.0, "%", date(2026, 1, 1)),))
    with pytest.raises(InvalidInput, match="observation O9: subject 'P404'"):
        write_sdtm(bad, tmp_path / "sdtm")
    assert not (tmp_path / "sdtm").exists()
