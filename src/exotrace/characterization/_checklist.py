"""MISEV2023 checklist engine: a study description + measurements -> itemized report.

Each item is ``met``, ``missing`` or ``not applicable`` and names its evidence
(the YAML field and line, or the measurement file). The completeness score is
EV-TRACK style: met / applicable x 100.

Items (24; the three EV-TRACK method-specific ones are marked *):

===========================  ===========================================================
source.identity              kind, species and cell type / tissue / biofluid
source.donor                 donor age, sex, characteristics (n/a: cell lines)
collection.conditions        cultures: medium, serum condition (+ depletion method),
                             volume, duration; biofluid/tissue: volume or mass, procedure
collection.harvest           cell count and viability at harvest (cultures only)
collection.cell_depletion    how cells and debris were removed
separation.method            separation steps, each with details or parameters
separation.uc_details *      g-force, time, rotor, k-factor of every UC step (UC only)
separation.volumes           input and output volumes
storage.before_separation    temperature, time, container, freeze-thaw (+ thaw method)
storage.after_separation     the same for the separated EVs
quantification.starting_material  volume (or mass) and, for cultures, cell number
quantification.global_measures    >= 2 of particles, protein, lipid, RNA
quantification.ratio         a ratio of two global measures (particles per ug protein)
markers.category1            >= 1 transmembrane/GPI marker detected
markers.category2            >= 1 cytosolic marker detected
markers.category3            a purity control assessed (detected or not)
markers.category4            other-compartment marker assessed (only with subtype claims)
markers.category5            secreted protein assessed (only with function claims)
markers.antibody_details *   supplier and clone or catalog number (antibody methods only)
markers.lysate_preparation * lysis buffer and amount loaded (western blots only)
single_vesicle.imaging       an image method with wide-field and close-up images
single_vesicle.counting      a single-particle counting method (NTA, TRPS, flow)
function.dose_response       dose-response for every function claim (claims only)
nomenclature                 term stated; biogenesis terms need biogenesis evidence,
                             size terms a size measurement
===========================  ===========================================================

References
----------
.. [1] Welsh JA et al. Minimal information for studies of extracellular
   vesicles (MISEV2023). J Extracell Vesicles 2024;13:e12404.
.. [2] EV-TRACK Consortium, Van Deun J et al. Nat Methods 2017;14:228-232.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ..errors import InvalidInput
from ._markers import MarkerObservation, MarkerPanelReport, evaluate_markers
from ._measurements import MeasurementEvidence, measurement_evidence, sample_key
from ._purity import PurityBand, PurityResult, purity_band, purity_ratio
from ._study import (
    ANTIBODY_METHODS,
    BIOGENESIS_TERMS,
    CULTURE_KINDS,
    SIZE_TERMS,
    UC_METHODS,
    StorageCondition,
    Study,
    StudyDocument,
    load_study,
)

__all__ = [
    "CHECKLIST_ITEM_IDS",
    "ChecklistItem",
    "ChecklistReport",
    "ItemStatus",
    "check_study",
]


class ItemStatus(StrEnum):
    """Status of one checklist item."""

    MET = "met"
    MISSING = "missing"
    NOT_APPLICABLE = "not applicable"


@dataclass(frozen=True)
class ChecklistItem:
    """One MISEV2023 checklist item and how the study fares.

    Attributes
    ----------
    id : str
        Stable identifier (``"separation.uc_details"``).
    section : str
    title : str
        What is required, in words.
    status : ItemStatus
    evidence : tuple of str
        What satisfied (part of) the item: YAML fields with their line, or files.
    missing : tuple of str
        What is still needed (empty when met or not applicable).
    reason : str
        Why the item does not apply (empty otherwise).
    method_specific : bool
        EV-TRACK's method-specific items (UC details, antibody details, lysate).
    """

    id: str
    section: str
    title: str
    status: ItemStatus
    evidence: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    reason: str = ""
    method_specific: bool = False


@dataclass(frozen=True)
class ChecklistReport:
    """A study judged against the MISEV2023 checklist.

    Attributes
    ----------
    study_title : str or None
    study_file : str
    guideline : str
    items : tuple of ChecklistItem
    n_met, n_missing, n_not_applicable, n_applicable : int
    score_percent : float
        Completeness, met / applicable x 100 (EV-TRACK style).
    purity : tuple of PurityResult
        Particle:protein ratios computed from paired measurements.
    reported_particles_per_ug : float or None
        Ratio given in the study file, if any.
    reported_purity_band : str or None
        Its Webber & Clayton band.
    markers : MarkerPanelReport
    measurements : tuple of MeasurementEvidence
    notes : tuple of str
    """

    study_title: str | None
    study_file: str
    guideline: str
    items: tuple[ChecklistItem, ...]
    n_met: int
    n_missing: int
    n_not_applicable: int
    n_applicable: int
    score_percent: float
    purity: tuple[PurityResult, ...]
    reported_particles_per_ug: float | None
    reported_purity_band: str | None
    markers: MarkerPanelReport
    measurements: tuple[MeasurementEvidence, ...]
    notes: tuple[str, ...]

    def item(self, item_id: str) -> ChecklistItem:
        """The item with ``item_id``."""
        for it in self.items:
            if it.id == item_id:
                return it
        raise KeyError(item_id)

    @property
    def missing_ids(self) -> tuple[str, ...]:
        """Ids of the items still missing."""
        return tuple(it.id for it in self.items if it.status is ItemStatus.MISSING)


# --------------------------------------------------------------------------- context
@dataclass(frozen=True)
class _Quantity:
    """A global measure value from the YAML or a file, for ratio pairing."""

    origin: str
    key: str | None  # sample key; None = "the study preparation" (a YAML value)
    value: float
    method: str


class _Ctx:
    def __init__(self, doc: StudyDocument, evidence: tuple[MeasurementEvidence, ...]) -> None:
        self.doc = doc
        self.study: Study = doc.study
        self.files = evidence
        s = self.study
        entries = s.markers or []
        self.panel: MarkerPanelReport = evaluate_markers(
            [MarkerObservation(m.name, m.detected, m.method.replace("_", " "), m.category)
             for m in entries]
        )
        self.kind = s.source.kind if s.source else None
        # Unknown kind: judge as a culture (the common case); the source item is missing anyway.
        self.culture = self.kind is None or self.kind in CULTURE_KINDS
        self.function_claims = [a for a in (s.functional_assays or []) if a.claims_function]
        term = s.nomenclature.term if s.nomenclature else None
        self.subtype_claimed = bool(s.subtype_claims) or term in BIOGENESIS_TERMS
        self.counting_files = [e for e in evidence if e.counting_method]

    def where(self, dotted: str) -> str:
        line = self.doc.line_of(dotted)
        return f"{dotted} (line {line})" if line else dotted

    def field(self, dotted: str, value: object) -> str:
        if isinstance(value, bool):
            shown: object = "true" if value else "false"
        elif isinstance(value, float):
            shown = f"{value:g}"
        else:
            shown = value
        return f"{self.where(dotted)} = {shown}"


_Check = Callable[[_Ctx], tuple[ItemStatus, list[str], list[str], str]]
_ITEMS: list[tuple[str, str, str, bool, _Check]] = []


def _item(item_id: str, section: str, title: str, method_specific: bool = False):
    def deco(fn: _Check) -> _Check:
        _ITEMS.append((item_id, section, title, method_specific, fn))
        return fn
    return deco


def _status(missing: list[str]) -> ItemStatus:
    return ItemStatus.MISSING if missing else ItemStatus.MET


def _present(ctx: _Ctx, obj, base: str, names: Iterable[str], ev: list[str], miss: list[str],
             *, labels: dict[str, str] | None = None) -> None:
    for name in names:
        value = getattr(obj, name, None) if obj is not None else None
        if value is None:
            miss.append(f"{base}.{name}" + (f" ({labels[name]})" if labels and name in labels
                                              else ""))
        else:
            ev.append(ctx.field(f"{base}.{name}", value))


NA = ItemStatus.NOT_APPLICABLE


# ----------------------------------------------------------------------- source
@_item("source.identity", "Source", "Source described: kind, species and cell type, "
       "tissue or biofluid")
def _source_identity(ctx: _Ctx):
    ev: list[str] = []
    miss: list[str] = []
    src = ctx.study.source
    if src is None:
        return ItemStatus.MISSING, ev, ["source (kind, species, cell type/tissue/biofluid)"], ""
    ev.append(ctx.field("source.kind", src.kind))
    _present(ctx, src, "source", ["species"], ev, miss)
    named = [(n, getattr(src, n)) for n in ("cell_type", "tissue", "biofluid")
             if getattr(src, n) is not None]
    if named:
        ev.extend(ctx.field(f"source.{n}", v) for n, v in named)
    else:
        miss.append("source.cell_type, source.tissue or source.biofluid")
    return _status(miss), ev, miss, ""


@_item("source.donor", "Source", "Donor characteristics: age, sex and other characteristics")
def _source_donor(ctx: _Ctx):
    if ctx.kind == "cell_line":
        return NA, [], [], "established cell line: no donor to describe"
    ev: list[str] = []
    miss: list[str] = []
    donor = ctx.study.donor
    if donor is None:
        return ItemStatus.MISSING, ev, ["donor (age_years or age_range, sex, characteristics)"], ""
    if donor.age_years is not None:
        ev.append(ctx.field("donor.age_years", donor.age_years))
    elif donor.age_range is not None:
        ev.append(ctx.field("donor.age_range", donor.age_range))
    else:
        miss.append("donor.age_years or donor.age_range")
    _present(ctx, donor, "donor", ["sex", "characteristics"], ev, miss)
    return _status(miss), ev, miss, ""


# ------------------------------------------------------------------- collection
@_item("collection.conditions", "Collection", "Collection conditions: medium, serum-free or "
       "EV-depleted serum, volume, duration (cultures); volume or mass and procedure (others)")
def _collection_conditions(ctx: _Ctx):
    ev: list[str] = []
    miss: list[str] = []
    col = ctx.study.collection
    if ctx.culture:
        _present(ctx, col, "collection", ["medium", "serum", "volume_ml", "duration_days"], ev,
                 miss)
        if col is not None and col.serum is not None and col.serum.startswith("ev_depleted"):
            _present(ctx, col, "collection", ["ev_depletion_method"], ev, miss)
        if col is not None and col.serum in ("serum", "platelet_lysate"):
            miss.append("collection.serum: serum or platelet lysate brings its own EVs; "
                        "use serum-free or EV-depleted medium, or justify and deplete")
    else:
        if col is not None and (col.volume_ml is not None or col.tissue_mass_g is not None):
            name = "volume_ml" if col.volume_ml is not None else "tissue_mass_g"
            ev.append(ctx.field(f"collection.{name}", getattr(col, name)))
        else:
            miss.append("collection.volume_ml or collection.tissue_mass_g")
        _present(ctx, col, "collection", ["procedure"], ev, miss)
    return _status(miss), ev, miss, ""


@_item("collection.harvest", "Collection", "Cell count and viability at harvest")
def _collection_harvest(ctx: _Ctx):
    if not ctx.culture:
        return NA, [], [], f"source is {ctx.kind}, not a cell culture"
    ev: list[str] = []
    miss: list[str] = []
    _present(ctx, ctx.study.collection, "collection",
             ["cell_count_at_harvest", "viability_percent_at_harvest"], ev, miss)
    return _status(miss), ev, miss, ""


@_item("collection.cell_depletion", "Collection", "Removal of cells and debris before "
       "separation described")
def _cell_depletion(ctx: _Ctx):
    dep = ctx.study.cell_depletion
    ev: list[str] = []
    if dep is not None:
        if dep.description:
            ev.append(ctx.field("cell_depletion.description", dep.description))
        for i, spin in enumerate(dep.centrifugation or []):
            ev.append(ctx.field(f"cell_depletion.centrifugation[{i}]",
                                f"{spin.g_force:g} x g, {spin.time_min:g} min"))
        if dep.filtration:
            ev.append(ctx.field("cell_depletion.filtration", dep.filtration))
    miss = [] if ev else ["cell_depletion (description, centrifugation steps or filtration)"]
    return _status(miss), ev, miss, ""


# ------------------------------------------------------------------- separation
@_item("separation.method", "Separation", "Separation method(s) stated with details")
def _separation_method(ctx: _Ctx):
    sep = ctx.study.separation
    if sep is None:
        return ItemStatus.MISSING, [], ["separation.steps"], ""
    ev: list[str] = []
    miss: list[str] = []
    for i, step in enumerate(sep.steps):
        params = {k: v for k, v in step.model_dump(exclude_none=True).items() if k != "method"}
        base = f"separation.steps[{i}]"
        if params:
            ev.append(ctx.field(f"{base}.method", step.method) + " with "
                      + ", ".join(sorted(params)))
        else:
            miss.append(f"{base}: details or parameters of {step.method}")
    return _status(miss), ev, miss, ""


@_item("separation.uc_details", "Separation", "Ultracentrifugation: g-force, time, rotor and "
       "k-factor of every step", method_specific=True)
def _uc_details(ctx: _Ctx):
    sep = ctx.study.separation
    steps = [(i, s) for i, s in enumerate(sep.steps if sep else []) if s.method in UC_METHODS]
    if not steps:
        return NA, [], [], "no ultracentrifugation step"
    ev: list[str] = []
    miss: list[str] = []
    for i, step in steps:
        _present(ctx, step, f"separation.steps[{i}]", ["g_force", "time_min", "rotor",
                                                         "k_factor"], ev, miss)
    return _status(miss), ev, miss, ""


@_item("separation.volumes", "Separation", "Input and output volumes of the separation")
def _separation_volumes(ctx: _Ctx):
    ev: list[str] = []
    miss: list[str] = []
    _present(ctx, ctx.study.separation, "separation", ["input_volume_ml", "output_volume_ml"],
             ev, miss)
    return _status(miss), ev, miss, ""


# ---------------------------------------------------------------------- storage
def _storage(ctx: _Ctx, name: str):
    storage = ctx.study.storage
    cond: StorageCondition | None = getattr(storage, name) if storage else None
    base = f"storage.{name}"
    if cond is None:
        return ItemStatus.MISSING, [], [f"{base} (temperature_c, duration_h, container, "
                                        "freeze_thaw_cycles, thaw_method)"], ""
    if cond.processed_fresh:
        return ItemStatus.MET, [ctx.field(f"{base}.processed_fresh", True)], [], ""
    ev: list[str] = []
    miss: list[str] = []
    _present(ctx, cond, base, ["temperature_c", "duration_h", "container",
                               "freeze_thaw_cycles"], ev, miss)
    if cond.freeze_thaw_cycles:
        _present(ctx, cond, base, ["thaw_method"], ev, miss)
    return _status(miss), ev, miss, ""


@_item("storage.before_separation", "Storage", "Storage of the starting material before "
       "separation: temperature, time, container, freeze-thaw cycles, thaw method")
def _storage_before(ctx: _Ctx):
    return _storage(ctx, "before_separation")


@_item("storage.after_separation", "Storage", "Storage of the EVs after separation: "
       "temperature, time, container, freeze-thaw cycles, thaw method")
def _storage_after(ctx: _Ctx):
    return _storage(ctx, "after_separation")


# --------------------------------------------------------------- quantification
@_item("quantification.starting_material", "Quantification", "Amount of starting material: "
       "volume (or mass) and, for cultures, cell number at harvest")
def _starting_material(ctx: _Ctx):
    col = ctx.study.collection
    ev: list[str] = []
    miss: list[str] = []
    if col is not None and col.volume_ml is not None:
        ev.append(ctx.field("collection.volume_ml", col.volume_ml))
    elif col is not None and col.tissue_mass_g is not None:
        ev.append(ctx.field("collection.tissue_mass_g", col.tissue_mass_g))
    else:
        miss.append("collection.volume_ml (or tissue_mass_g)")
    if ctx.culture:
        _present(ctx, col, "collection", ["cell_count_at_harvest"], ev, miss)
    return _status(miss), ev, miss, ""


def _global_quantities(ctx: _Ctx) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    quant = ctx.study.quantification
    for i, m in enumerate((quant.measures or []) if quant else []):
        found.setdefault(m.quantity, []).append(
            ctx.field(f"quantification.measures[{i}]", f"{m.quantity} by {m.method}"))
    for e in ctx.files:
        if e.particles_per_ml is not None:
            found.setdefault("particles", []).append(e.summary)
        if e.protein:
            found.setdefault("protein", []).append(e.summary)
    return found


@_item("quantification.global_measures", "Quantification", "At least two global measures "
       "(particles, protein, lipid, RNA)")
def _global_measures(ctx: _Ctx):
    found = _global_quantities(ctx)
    ev = [text for quantity in found for text in found[quantity]]
    miss = [] if len(found) >= 2 else [
        f"{2 - len(found)} more global measure(s) besides {', '.join(found) or 'none'} "
        "(quantification.measures or a measurement file)"
    ]
    return _status(miss), ev, miss, ""


def _quantities(ctx: _Ctx) -> tuple[list[_Quantity], list[_Quantity]]:
    particles: list[_Quantity] = []
    protein: list[_Quantity] = []
    for e in ctx.files:
        if e.particles_per_ml is not None:
            particles.append(_Quantity(e.file, sample_key(e.sample) or None, e.particles_per_ml,
                                       f"{e.counting_method or e.format} ({e.instrument})"))
        for p in e.protein:
            protein.append(_Quantity(f"{e.file} [{p.sample}]", sample_key(p.sample) or None,
                                     p.protein_ug_per_ml, e.format))
    quant = ctx.study.quantification
    for i, m in enumerate((quant.measures or []) if quant else []):
        if m.value is None:
            continue
        origin = ctx.where(f"quantification.measures[{i}]")
        if m.quantity == "particles":
            particles.append(_Quantity(origin, None, m.value, m.method))
        elif m.quantity == "protein" and m.value > 0:
            protein.append(_Quantity(origin, None, m.value, m.method))
    return particles, protein


def _pairs(ctx: _Ctx) -> list[tuple[_Quantity, _Quantity]]:
    """Pair particle and protein values of the same preparation.

    Same sample name first; otherwise a single protein value pairs with every
    particle value; a study-level (YAML) value pairs with a study-level value.
    """
    particles, protein = _quantities(ctx)
    out = []
    for p in particles:
        same = [q for q in protein if p.key is not None and q.key == p.key]
        study_level = [q for q in protein if q.key is None]
        if same:
            out.append((p, same[0]))
        elif len(protein) == 1:
            out.append((p, protein[0]))
        elif study_level:
            out.append((p, study_level[0]))
    return out


def _purity_results(ctx: _Ctx) -> list[PurityResult]:
    results = []
    for p, q in _pairs(ctx):
        results.append(purity_ratio(p.value, q.value,
                                    particle_method=f"{p.method} from {p.origin}",
                                    protein_method=f"{q.method} from {q.origin}"))
    return results


@_item("quantification.ratio", "Quantification", "Ratio of two global measures "
       "(particles per ug protein) reported")
def _ratio(ctx: _Ctx):
    ev: list[str] = []
    for r in _purity_results(ctx):
        ev.append(f"{r.particles_per_ug:.3g} particles/ug ({r.band.value}) = "
                  f"{r.particle_method} / {r.protein_method}")
    quant = ctx.study.quantification
    if quant is not None and quant.particles_per_ug_protein is not None:
        band, _ = purity_band(quant.particles_per_ug_protein)
        ev.append(ctx.field("quantification.particles_per_ug_protein",
                            f"{quant.particles_per_ug_protein:.3g} ({band.value})"))
    if ev:
        return ItemStatus.MET, ev, [], ""
    particles, protein = _quantities(ctx)
    if particles and protein:
        miss = ["particle and protein values could not be paired by sample name; give "
                "quantification.particles_per_ug_protein or matching sample names"]
    else:
        miss = ["particles/mL and protein ug/mL of the same preparation (values in "
                "quantification.measures or measurement files), or "
                "quantification.particles_per_ug_protein"]
    return ItemStatus.MISSING, ev, miss, ""


# ---------------------------------------------------------------------- markers
def _marker_evidence(ctx: _Ctx, category: int) -> list[str]:
    ev = []
    for i, m in enumerate(ctx.panel.markers):
        if m.category == category:
            state = "detected" if m.detected else "not detected"
            ev.append(f"{ctx.where(f'markers[{i}]')}: {m.symbol or m.marker} {state} by "
                      f"{m.method}")
    return ev


@_item("markers.category1", "Markers", "At least one transmembrane/GPI-anchored protein "
       "(category 1) detected")
def _cat1(ctx: _Ctx):
    ev = _marker_evidence(ctx, 1)
    miss = [] if ctx.panel.category1_detected else [
        "a detected category-1 marker (e.g. CD9, CD63, CD81)"]
    return _status(miss), ev, miss, ""


@_item("markers.category2", "Markers", "At least one cytosolic membrane-binding protein "
       "(category 2) detected")
def _cat2(ctx: _Ctx):
    ev = _marker_evidence(ctx, 2)
    miss = [] if ctx.panel.category2_detected else [
        "a detected category-2 marker (e.g. TSG101, ALIX, syntenin)"]
    return _status(miss), ev, miss, ""


@_item("markers.category3", "Markers", "A purity control (category 3) assessed, detected "
       "or not")
def _cat3(ctx: _Ctx):
    ev = _marker_evidence(ctx, 3)
    miss = [] if ctx.panel.category3_assessed else [
        "a tested category-3 purity control (e.g. APOA1, APOB, albumin, uromodulin)"]
    return _status(miss), ev, miss, ""


@_item("markers.category4", "Markers", "Other-compartment proteins (category 4) assessed "
       "when EV subtypes are claimed")
def _cat4(ctx: _Ctx):
    if not ctx.subtype_claimed:
        return NA, [], [], "no EV subtype claimed (subtype_claims empty, generic nomenclature)"
    ev = _marker_evidence(ctx, 4)
    miss = [] if ctx.panel.category(4).assessed else [
        "a tested category-4 marker (e.g. calnexin, GM130, GRP94, TOMM20, histones)"]
    return _status(miss), ev, miss, ""


@_item("markers.category5", "Markers", "Secreted proteins (category 5) assessed when a "
       "function is claimed")
def _cat5(ctx: _Ctx):
    if not ctx.function_claims:
        return NA, [], [], "no function claimed (no functional assay with claims_function)"
    ev = _marker_evidence(ctx, 5)
    miss = [] if ctx.panel.category(5).assessed else [
        "a tested category-5 secreted protein (e.g. fibronectin, TGFB1, VEGFA)"]
    return _status(miss), ev, miss, ""


@_item("markers.antibody_details", "Markers", "Antibody details (supplier and clone or "
       "catalog number) for antibody-based detection", method_specific=True)
def _antibodies(ctx: _Ctx):
    entries = [(i, m) for i, m in enumerate(ctx.study.markers or [])
               if m.method in ANTIBODY_METHODS]
    if not entries:
        return NA, [], [], "no antibody-based marker detection"
    ev: list[str] = []
    miss: list[str] = []
    for i, m in entries:
        ab = m.antibody
        base = f"markers[{i}].antibody"
        if ab is None or ab.supplier is None or (ab.clone is None and ab.catalog_number is None):
            need = []
            if ab is None or ab.supplier is None:
                need.append("supplier")
            if ab is None or (ab.clone is None and ab.catalog_number is None):
                need.append("clone or catalog_number")
            miss.append(f"{base} ({m.name}): {' and '.join(need)}")
        else:
            ident = ab.clone if ab.clone is not None else ab.catalog_number
            ev.append(ctx.field(base, f"{m.name}: {ab.supplier} {ident}"))
    return _status(miss), ev, miss, ""


@_item("markers.lysate_preparation", "Markers", "Lysate preparation for western blots "
       "(buffer, amount loaded)", method_specific=True)
def _lysate(ctx: _Ctx):
    if not any(m.method == "western_blot" for m in ctx.study.markers or []):
        return NA, [], [], "no western blot"
    lys = ctx.study.lysate_preparation
    ev: list[str] = []
    miss: list[str] = []
    _present(ctx, lys, "lysate_preparation", ["buffer"], ev, miss)
    if lys is not None and lys.amount_loaded_ug is not None:
        ev.append(ctx.field("lysate_preparation.amount_loaded_ug", lys.amount_loaded_ug))
    elif lys is not None and lys.particles_loaded is not None:
        ev.append(ctx.field("lysate_preparation.particles_loaded", lys.particles_loaded))
    else:
        miss.append("lysate_preparation.amount_loaded_ug or particles_loaded")
    return _status(miss), ev, miss, ""


# -------------------------------------------------------------- single vesicles
@_item("single_vesicle.imaging", "Single vesicles", "Images of single EVs (EM, AFM, "
       "super-resolution) with wide-field and close-up views")
def _imaging(ctx: _Ctx):
    sv = ctx.study.single_vesicle
    methods = (sv.imaging or []) if sv else []
    ev: list[str] = []
    for i, im in enumerate(methods):
        views = [v for v, flag in (("wide field", im.wide_field), ("close-up", im.close_up))
                 if flag]
        ev.append(ctx.field(f"single_vesicle.imaging[{i}]",
                            f"{im.method} ({', '.join(views) or 'views not stated'})"))
    if not methods:
        return ItemStatus.MISSING, ev, ["single_vesicle.imaging (e.g. TEM with wide-field "
                                        "and close-up images)"], ""
    wide = any(im.wide_field for im in methods)
    close = any(im.close_up for im in methods)
    miss = []
    if not wide:
        miss.append("a wide-field image (single_vesicle.imaging[].wide_field: true)")
    if not close:
        miss.append("a close-up image (single_vesicle.imaging[].close_up: true)")
    return _status(miss), ev, miss, ""


def _counting_evidence(ctx: _Ctx) -> list[str]:
    ev = []
    sv = ctx.study.single_vesicle
    for i, c in enumerate((sv.counting or []) if sv else []):
        ev.append(ctx.field(f"single_vesicle.counting[{i}]", c.method))
    quant = ctx.study.quantification
    for i, m in enumerate((quant.measures or []) if quant else []):
        if m.quantity == "particles" and m.method in ("nta", "trps", "high_resolution_flow",
                                                      "flow_cytometry"):
            ev.append(ctx.field(f"quantification.measures[{i}]", f"particles by {m.method}"))
    ev.extend(f"{e.summary} [{e.counting_method}]" for e in ctx.counting_files)
    return ev


@_item("single_vesicle.counting", "Single vesicles", "A single-particle counting method "
       "(NTA, TRPS, high-resolution flow)")
def _counting(ctx: _Ctx):
    ev = _counting_evidence(ctx)
    miss = [] if ev else ["single_vesicle.counting or an NTA/TRPS/flow measurement file"]
    return _status(miss), ev, miss, ""


# --------------------------------------------------------------------- function
@_item("function.dose_response", "Function", "Dose-response for every claimed function")
def _dose_response(ctx: _Ctx):
    if not ctx.function_claims:
        return NA, [], [], "no function claimed"
    ev: list[str] = []
    miss: list[str] = []
    for i, a in enumerate(ctx.study.functional_assays or []):
        if not a.claims_function:
            continue
        if a.dose_response:
            ev.append(ctx.field(f"functional_assays[{i}].dose_response",
                                f"true ({a.name}{', doses ' + a.doses if a.doses else ''})"))
        else:
            miss.append(f"functional_assays[{i}] ({a.name}): dose_response")
    return _status(miss), ev, miss, ""


# ----------------------------------------------------------------- nomenclature
@_item("nomenclature", "Nomenclature", "EV term stated; 'exosome'-type terms need biogenesis "
       "evidence, size terms a size measurement")
def _nomenclature(ctx: _Ctx):
    nom = ctx.study.nomenclature
    if nom is None:
        return ItemStatus.MISSING, [], ["nomenclature.term (e.g. extracellular_vesicle)"], ""
    ev = [ctx.field("nomenclature.term", nom.term)]
    miss: list[str] = []
    if nom.term in BIOGENESIS_TERMS:
        claims = [(i, c) for i, c in enumerate(ctx.study.subtype_claims or [])
                  if c.basis == "biogenesis" and c.evidence]
        if claims:
            ev.extend(ctx.field(f"subtype_claims[{i}]", f"{c.subtype}: {c.evidence}")
                      for i, c in claims)
        else:
            miss.append(f"'{nom.term}' names a biogenesis pathway: add a subtype_claims entry "
                        "with basis biogenesis and its evidence, or use extracellular_vesicle")
    elif nom.term in SIZE_TERMS:
        size = _counting_evidence(ctx)
        sv = ctx.study.single_vesicle
        if sv is not None and sv.imaging:
            size.append(ctx.where("single_vesicle.imaging"))
        if size:
            ev.append("size measured: " + "; ".join(size[:2]))
        else:
            miss.append(f"'{nom.term}' is a size term: measure size (single_vesicle.counting, "
                        "imaging or a measurement file)")
    elif nom.term == "other":
        if nom.justification:
            ev.append(ctx.field("nomenclature.justification", nom.justification))
        else:
            miss.append("nomenclature.justification for a term outside the MISEV terms")
    return _status(miss), ev, miss, ""


CHECKLIST_ITEM_IDS: tuple[str, ...] = tuple(item_id for item_id, *_ in _ITEMS)


# ------------------------------------------------------------------------ engine
def _as_document(study: object) -> StudyDocument:
    if isinstance(study, StudyDocument):
        return study
    if isinstance(study, Study):
        return StudyDocument(study)
    if isinstance(study, (str, Path)):
        return load_study(study)
    raise InvalidInput(f"check_study needs a study file path, Study or StudyDocument, "
                       f"got {type(study).__name__}")


def check_study(study: object, measurements: Iterable[object] = ()) -> ChecklistReport:
    """Judge a study against the MISEV2023 checklist.

    Parameters
    ----------
    study : str, Path, Study or StudyDocument
        A study YAML file or an already validated study.
    measurements : iterable
        Imported measurements: :class:`exotrace.instruments.InstrumentResult`
        objects, stand-ins with the same attributes, or
        :class:`MeasurementEvidence`.

    Returns
    -------
    ChecklistReport

    Raises
    ------
    FileFormatError
        The study file cannot be read or validated.
    InvalidInput
        A measurement is not an instrument result.

    Notes
    -----
    score = met / applicable x 100, where applicable = met + missing (EV-TRACK
    style). The items are listed in the module docstring.
    """
    doc = _as_document(study)
    evidence = tuple(m if isinstance(m, MeasurementEvidence) else measurement_evidence(m)
                     for m in measurements)
    ctx = _Ctx(doc, evidence)
    items = []
    for item_id, section, title, method_specific, check in _ITEMS:
        status, ev, miss, reason = check(ctx)
        items.append(ChecklistItem(item_id, section, title, status, tuple(ev), tuple(miss),
                                   reason, method_specific))
    n_met = sum(it.status is ItemStatus.MET for it in items)
    n_missing = sum(it.status is ItemStatus.MISSING for it in items)
    n_na = sum(it.status is NA for it in items)
    applicable = n_met + n_missing
    quant = doc.study.quantification
    reported = quant.particles_per_ug_protein if quant is not None else None
    reported_band: PurityBand | None = purity_band(reported)[0] if reported is not None else None
    notes = list(ctx.panel.notes)
    term = doc.study.nomenclature.term if doc.study.nomenclature else None
    if term == "small_extracellular_vesicle":
        # MISEV: "small EV" means < 200 nm; flag measurements whose typical size is not.
        for e in evidence:
            size = e.mode_nm if e.mode_nm is not None else e.d50_nm
            if size is not None and size >= 200.0:
                notes.append(f"{e.file}: typical size {size:.0f} nm is not below 200 nm, "
                             "yet the study calls its particles small EVs")
    for e in evidence:
        notes.extend(f"{e.file}: {w}" for w in e.warnings)
    return ChecklistReport(
        study_title=doc.study.title,
        study_file=doc.path,
        guideline="MISEV2023",
        items=tuple(items),
        n_met=n_met,
        n_missing=n_missing,
        n_not_applicable=n_na,
        n_applicable=applicable,
        score_percent=100.0 * n_met / applicable if applicable else 100.0,
        purity=tuple(_purity_results(ctx)),
        reported_particles_per_ug=reported,
        reported_purity_band=None if reported_band is None else reported_band.value,
        markers=ctx.panel,
        measurements=evidence,
        notes=tuple(notes),
    )
