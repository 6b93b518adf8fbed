"""FHIR R5 export: one Bundle (type collection) validated with fhir.resources.

Resources: ResearchStudy (the protocol, arms as comparison groups), Patient
(pseudonym only), Consent, ResearchSubject, BiologicallyDerivedProduct (each
lot, with its donor as ``biologicalSourceEvent``, and each vial as a child of
its lot), MedicationAdministration (dose and route; the vial and lot as
supporting information), Observation (LOINC where the protocol defines one,
UCUM units) and AdverseEvent (CTCAE grade as an extension, seriousness,
outcome, causality against the administration).

Every resource id is a UUID derived (uuid5) from the study id, the resource
type and the record id, and every reference is the ``urn:uuid:`` full URL,
so the same records always give the same bundle.
"""

from __future__ import annotations

import importlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import FileFormatError, InvalidInput
from ._export_data import ExportData
from ._protocol import Route
from ._safety import AEOutcome
from ._units import ucum_code

__all__ = ["CTCAE_GRADE_EXTENSION_URL", "build_fhir_bundle", "fhir_uuid", "write_fhir_bundle"]

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://exotrace.org/fhir")
CTCAE_GRADE_EXTENSION_URL = "urn:exotrace:fhir:extension:ctcae-v5-grade"
_LOINC = "http://loinc.org"
_UCUM = "http://unitsofmeasure.org"
_SNOMED = "http://snomed.info/sct"
_ID_SYSTEM = "urn:exotrace:id:"

# SNOMED CT route qualifiers where one fits exactly; the others go as text.
_ROUTE_SNOMED: dict[Route, tuple[str, str]] = {
    Route.INTRAVENOUS: ("47625008", "Intravenous route"),
    Route.INTRADERMAL: ("372464004", "Intradermal route"),
    Route.TOPICAL_AFTER_CLEANSING: ("6064005", "Topical route"),
    Route.TOPICAL_MICRONEEDLING: ("6064005", "Topical route"),
    Route.TOPICAL_LASER: ("6064005", "Topical route"),
    Route.INTRANASAL: ("46713006", "Nasal route"),
    Route.INHALED: ("447694001", "Respiratory tract route"),
}
_ROUTE_TEXT: dict[Route, str] = {
    Route.TOPICAL_AFTER_CLEANSING: "topical, after skin cleansing",
    Route.TOPICAL_MICRONEEDLING: "topical, with microneedling",
    Route.TOPICAL_LASER: "topical, after fractional laser",
    Route.INTRADERMAL: "intradermal injection",
    Route.INTRAMYOCARDIAL: "intramyocardial injection",
    Route.INTRAVENOUS: "intravenous infusion",
    Route.INTRANASAL: "intranasal",
    Route.INHALED: "inhaled (nebulised)",
}
_AE_OUTCOME: dict[AEOutcome, tuple[str, str]] = {
    AEOutcome.RECOVERED: ("resolved", "Resolved"),
    AEOutcome.RECOVERING: ("recovering", "Recovering"),
    AEOutcome.NOT_RECOVERED: ("ongoing", "Ongoing"),
    AEOutcome.RECOVERED_WITH_SEQUELAE: ("resolvedWithSequelae", "Resolved with Sequelae"),
    AEOutcome.FATAL: ("fatal", "Fatal"),
    AEOutcome.UNKNOWN: ("unknown", "Unknown"),
}
_GENDER = {"F": "female", "M": "male", "U": "unknown", "UNDIFFERENTIATED": "other"}

_MODELS = {
    "Bundle": "bundle",
    "Patient": "patient",
    "Consent": "consent",
    "ResearchStudy": "researchstudy",
    "ResearchSubject": "researchsubject",
    "BiologicallyDerivedProduct": "biologicallyderivedproduct",
    "MedicationAdministration": "medicationadministration",
    "Observation": "observation",
    "AdverseEvent": "adverseevent",
}


def _model(resource_type: str) -> Callable[..., Any]:
    module = importlib.import_module(f"fhir.resources.{_MODELS[resource_type]}")
    return getattr(module, resource_type)


def fhir_uuid(study_id: str, resource_type: str, record_id: str) -> str:
    """Deterministic UUID of a record's FHIR resource (uuid5 over study, type and id)."""
    return str(uuid.uuid5(_NAMESPACE, f"{study_id}/{resource_type}/{record_id}"))


def _ident(kind: str, value: str) -> dict:
    return {"system": _ID_SYSTEM + kind, "value": str(value)}


def _validate(resource: dict, what: str) -> dict:
    cls = _model(resource["resourceType"])
    try:
        obj = cls.model_validate(resource)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        raise InvalidInput(f"FHIR {resource['resourceType']} for {what} is invalid: "
                           f"{loc or 'resource'}: {err.get('msg', 'invalid')}") from None
    return json.loads(obj.model_dump_json(exclude_none=True))


class _Builder:
    def __init__(self, data: ExportData) -> None:
        self.data = data
        self.study_id = data.protocol.id
        self.entries: list[dict] = []

    def url(self, rtype: str, record_id: str) -> str:
        return "urn:uuid:" + fhir_uuid(self.study_id, rtype, record_id)

    def ref(self, rtype: str, record_id: str, display: str | None = None) -> dict:
        out = {"reference": self.url(rtype, record_id)}
        if display:
            out["display"] = display
        return out

    def add(self, resource: dict, record_id: str, what: str) -> None:
        rtype = resource["resourceType"]
        resource = {"resourceType": rtype, "id": fhir_uuid(self.study_id, rtype, record_id),
                    **{k: v for k, v in resource.items() if k != "resourceType"}}
        self.entries.append({"fullUrl": self.url(rtype, record_id),
                             "resource": _validate(resource, what)})

    def build(self) -> dict:
        d, p = self.data, self.data.protocol
        self.add({
            "resourceType": "ResearchStudy",
            "identifier": [_ident("protocol", p.id)],
            "version": p.version,
            "title": p.title,
            "status": d.study_status,
            "condition": [{"text": p.indication}],
            "comparisonGroup": [{"linkId": a.code, "name": a.name,
                                 "description": f"{_ROUTE_TEXT[a.route]}; doses "
                                 f"{', '.join(f'{x:g}' for x in a.dose_levels)} "
                                 f"{a.dose_unit.value}; maximum {a.maximum_dose:g}"}
                                for a in p.arms],
            "outcomeMeasure": [{"name": f"{o.code}: {o.name} ({o.unit})"} for o in p.outcomes],
        }, p.id, f"protocol {p.id}")
        consents_of: dict[str, list[str]] = {}
        for c in d.consents:
            consents_of.setdefault(c.subject_id, []).append(c.consent_id)
        for s in d.subjects:
            self.add({"resourceType": "Patient", "identifier": [_ident("subject", s.subject_id)],
                      "gender": _GENDER[s.sex]}, s.subject_id, f"subject {s.subject_id}")
        for c in d.consents:
            period = {"start": c.signed_on.isoformat()}
            if c.withdrawn_on is not None:
                period["end"] = c.withdrawn_on.isoformat()
            self.add({
                "resourceType": "Consent",
                "identifier": [_ident("consent", c.consent_id)],
                "status": "inactive" if c.withdrawn_on else "active",
                "category": [{"text": "research study consent"}],
                "subject": self.ref("Patient", c.subject_id),
                "date": c.signed_on.isoformat(),
                "decision": "permit",
                "period": period,
                "provision": [{"purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                             "code": "HRESCH", "display": "healthcare research"}]}],
            }, c.consent_id, f"consent {c.consent_id}")
        for s in d.subjects:
            res = {
                "resourceType": "ResearchSubject",
                "identifier": [_ident("subject", s.subject_id)],
                "status": "active",
                "period": {"start": s.enrolment_date.isoformat()},
                "study": self.ref("ResearchStudy", p.id),
                "subject": self.ref("Patient", s.subject_id),
                "assignedComparisonGroup": s.arm_code,
                "actualComparisonGroup": s.arm_code,
            }
            if consents_of.get(s.subject_id):
                res["consent"] = [self.ref("Consent", c) for c in consents_of[s.subject_id]]
            self.add(res, s.subject_id, f"subject {s.subject_id}")
        lots = {lot.lot_id: lot for lot in d.lots}
        for lot in d.lots:
            res = {
                "resourceType": "BiologicallyDerivedProduct",
                "identifier": [_ident("lot", lot.lot_number)],
                "productCategory": {"system": "http://hl7.org/fhir/product-category",
                                    "code": "biologicalAgent"},
                "productCode": {"text": f"extracellular vesicle product {lot.product_type}"},
                "biologicalSourceEvent": _ident("donor", lot.donor_code),
                "productStatus": {"system": "http://hl7.org/fhir/biologicallyderived-product-status",
                                  "code": "available" if lot.status.lower() == "released"
                                  else "unavailable"},
            }
            if lot.expiry_date is not None:
                res["expirationDate"] = lot.expiry_date.isoformat()
            if lot.particles_per_ml is not None:
                res["property"] = [{"type": {"text": "particle concentration (particles/mL)"},
                                    "valueQuantity": {"value": lot.particles_per_ml,
                                                      "unit": "particles/mL", "system": _UCUM,
                                                      "code": "{particles}/mL"}}]
            self.add(res, "lot/" + lot.lot_id, f"lot {lot.lot_number}")
        vials = {v.vial_id: v for v in d.vials}
        for v in d.vials:
            lot = lots[v.lot_id]
            self.add({
                "resourceType": "BiologicallyDerivedProduct",
                "identifier": [_ident("vial", v.vial_id)],
                "productCategory": {"system": "http://hl7.org/fhir/product-category",
                                    "code": "biologicalAgent"},
                "productCode": {"text": f"extracellular vesicle product {lot.product_type}"},
                "parent": [self.ref("BiologicallyDerivedProduct", "lot/" + lot.lot_id,
                                    f"lot {lot.lot_number}")],
                "biologicalSourceEvent": _ident("donor", lot.donor_code),
            }, "vial/" + v.vial_id, f"vial {v.vial_id}")
        for a in d.administrations:
            lot = lots[vials[a.vial_id].lot_id]
            route: dict[str, Any] = {"text": _ROUTE_TEXT[a.route]}
            if a.route in _ROUTE_SNOMED:
                code, display = _ROUTE_SNOMED[a.route]
                route["coding"] = [{"system": _SNOMED, "code": code, "display": display}]
            dosage: dict[str, Any] = {
                "text": f"{a.dose_amount:.4g} {a.dose_unit}: {a.particles:.4g} particles in "
                        f"{a.volume_ml:.4g} mL",
                "route": route,
                "dose": {"value": a.particles, "unit": "particles", "system": _UCUM,
                         "code": "{particles}"},
            }
            res = {
                "resourceType": "MedicationAdministration",
                "identifier": [_ident("administration", a.administration_id)],
                "status": "completed",
                "medication": {"concept": {"text": f"extracellular vesicle product "
                                                   f"{lot.product_type}, lot {lot.lot_number}"}},
                "subject": self.ref("Patient", a.subject_id),
                "occurenceDateTime": a.administered_at.isoformat(),
                "supportingInformation": [
                    self.ref("BiologicallyDerivedProduct", "vial/" + a.vial_id, f"vial {a.vial_id}"),
                    self.ref("BiologicallyDerivedProduct", "lot/" + lot.lot_id,
                             f"lot {lot.lot_number}"),
                    self.ref("ResearchStudy", p.id),
                ],
                "dosage": dosage,
            }
            if a.performer:
                res["performer"] = [{"actor": {"concept": {"text": a.performer}}}]
            self.add(res, a.administration_id, f"administration {a.administration_id}")
        for o in d.observations:
            outcome = p.outcome(o.outcome_code)
            codings = [{"system": _ID_SYSTEM + "outcome", "code": outcome.code,
                        "display": outcome.name}]
            if outcome.loinc:
                codings.insert(0, {"system": _LOINC, "code": outcome.loinc, "display": outcome.name})
            quantity: dict[str, Any] = {"value": o.value, "unit": o.unit}
            code = ucum_code(o.unit)
            if code is not None:
                quantity |= {"system": _UCUM, "code": code}
            self.add({
                "resourceType": "Observation",
                "identifier": [_ident("observation", o.observation_id)],
                "status": "final",
                "code": {"coding": codings, "text": outcome.name},
                "subject": self.ref("Patient", o.subject_id),
                "effectiveDateTime": o.observed_on.isoformat(),
                "valueQuantity": quantity,
                "note": [{"text": f"protocol {p.id} v{p.version} visit {o.visit_name}"}],
            }, o.observation_id, f"observation {o.observation_id}")
        for r in d.adverse_events:
            ae = r.event
            code, display = _AE_OUTCOME[ae.outcome]
            res = {
                "resourceType": "AdverseEvent",
                "extension": [{"url": CTCAE_GRADE_EXTENSION_URL, "valueInteger": ae.grade}],
                "identifier": [_ident("adverse-event", ae.ae_id)],
                "status": "completed" if ae.resolution_date or ae.outcome is AEOutcome.FATAL
                else "in-progress",
                "actuality": "actual",
                "code": {"text": ae.term},
                "subject": self.ref("Patient", r.subject_id),
                "study": [self.ref("ResearchStudy", p.id)],
                "seriousness": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness",
                    "code": "serious" if ae.serious else "non-serious",
                    "display": "Serious" if ae.serious else "Non-serious"}],
                    "text": ", ".join(sorted(c.value for c in ae.seriousness)) or "not serious"},
                "outcome": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/adverse-event-outcome",
                    "code": code, "display": display}]}],
                "expectedInResearchStudy": ae.expected,
                "note": [{"text": f"CTCAE v5 grade {ae.grade}; relatedness {ae.relatedness.value}"}],
            }
            if ae.resolution_date is not None:
                res["occurrencePeriod"] = {"start": ae.onset_date.isoformat(),
                                           "end": ae.resolution_date.isoformat()}
            else:
                res["occurrenceDateTime"] = ae.onset_date.isoformat()
            if r.administration_id is not None:
                res["suspectEntity"] = [{
                    "instanceReference": self.ref("MedicationAdministration", r.administration_id),
                    "causality": {"entityRelatedness": {"text": ae.relatedness.value}},
                }]
            self.add(res, ae.ae_id, f"adverse event {ae.ae_id}")
        bundle = {
            "resourceType": "Bundle",
            "id": fhir_uuid(self.study_id, "Bundle", self.study_id),
            "identifier": {"system": "urn:ietf:rfc:3986",
                           "value": "urn:uuid:" + fhir_uuid(self.study_id, "Bundle", self.study_id)},
            "type": "collection",
            "entry": self.entries,
        }
        return _validate(bundle, f"study {self.study_id}")


def build_fhir_bundle(export_data: ExportData) -> dict:
    """Build one FHIR R5 Bundle (type ``collection``) from plain export records.

    Parameters
    ----------
    export_data : ExportData

    Returns
    -------
    dict
        The bundle as JSON-ready data, validated by fhir.resources R5 models.

    Raises
    ------
    InvalidInput
        A dangling reference between records, or a resource that fails FHIR
        validation (the message names the resource and the record).
    """
    export_data.check_references()
    return _Builder(export_data).build()


def write_fhir_bundle(export_data: ExportData, path: str | Path) -> Path:
    """Build the bundle and write it as JSON to ``path`` (nothing written on error)."""
    bundle = build_fhir_bundle(export_data)
    out = Path(path)
    text = json.dumps(bundle, indent=2, sort_keys=False)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        raise FileFormatError(out, f"cannot write: {exc.strerror or exc}") from None
    return out
