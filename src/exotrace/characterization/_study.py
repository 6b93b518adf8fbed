"""The study description file: a YAML schema (pydantic v2) and its loader.

A study file says how an EV preparation was made and characterized; the
MISEV2023 checklist (:func:`exotrace.characterization.check_study`) judges it.
Every section is optional: what is absent becomes a "missing" checklist item,
not a load error. Load errors are reserved for what cannot be right: YAML
syntax, unknown fields (typos), wrong types, values outside the allowed lists
(e.g. an unknown separation method) or ranges. They raise
:class:`~exotrace.errors.FileFormatError` naming the file, the YAML line and
the field path (``separation.steps[0].method``).

The schema, field by field, is documented in ``docs/characterization.md``;
``exotrace/characterization/examples/msc_ev_study.yaml`` is a complete example.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .._yaml import StrictLoader
from ..errors import FileFormatError

__all__ = [
    "ANTIBODY_METHODS",
    "Antibody",
    "CellDepletion",
    "Collection",
    "Counting",
    "Donor",
    "FunctionalAssay",
    "Imaging",
    "LysatePreparation",
    "MAX_STUDY_BYTES",
    "MarkerEntry",
    "Measure",
    "Nomenclature",
    "Quantification",
    "SEPARATION_METHODS",
    "Separation",
    "SeparationStep",
    "SingleVesicle",
    "Source",
    "Spin",
    "Storage",
    "StorageCondition",
    "Study",
    "StudyDocument",
    "SubtypeClaim",
    "UC_METHODS",
    "load_study",
    "parse_study",
]

MAX_STUDY_BYTES = 1_000_000  # a study description is a page of text; refuse anything huge

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Percent = Annotated[float, Field(ge=0, le=100)]
Text = Annotated[str, Field(min_length=1, max_length=5000)]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        str_strip_whitespace=True,
        allow_inf_nan=False,
        coerce_numbers_to_str=True,
    )


# ----------------------------------------------------------------- source and collection
SourceKind = Literal["primary_cells", "cell_line", "biofluid", "tissue", "other"]
CULTURE_KINDS = ("primary_cells", "cell_line")


class Source(_Model):
    """Where the EVs come from.

    ``kind``: primary_cells | cell_line | biofluid | tissue | other.
    """

    kind: SourceKind
    species: Text | None = None
    cell_type: Text | None = None
    tissue: Text | None = None
    biofluid: Text | None = None
    passage: Annotated[int, Field(ge=0)] | None = None
    cell_authentication: Text | None = None


class Donor(_Model):
    """Donor characteristics (primary cells, biofluids, tissues)."""

    number_of_donors: Annotated[int, Field(ge=1)] | None = None
    age_years: Annotated[float, Field(ge=0, le=130)] | None = None
    age_range: Text | None = None
    sex: Literal["female", "male", "intersex", "mixed", "not_known"] | None = None
    characteristics: Text | None = None
    pooling: Text | None = None


SerumCondition = Literal[
    "serum_free", "ev_depleted_serum", "serum", "platelet_lysate",
    "ev_depleted_platelet_lysate", "not_applicable",
]


class Collection(_Model):
    """Culture and collection of the starting material.

    For cultures: medium, serum condition, volume, duration, cell count and
    viability at harvest. For biofluids and tissues: volume (or mass) and the
    collection procedure.
    """

    medium: Text | None = None
    serum: SerumCondition | None = None
    ev_depletion_method: Text | None = None
    volume_ml: PositiveFloat | None = None
    tissue_mass_g: PositiveFloat | None = None
    duration_days: PositiveFloat | None = None
    cell_count_at_harvest: NonNegFloat | None = None
    viability_percent_at_harvest: Percent | None = None
    procedure: Text | None = None


class Spin(_Model):
    """One centrifugation step (force in x g, time in minutes)."""

    g_force: PositiveFloat
    time_min: PositiveFloat
    temperature_c: Annotated[float, Field(ge=-30, le=60)] | None = None


class CellDepletion(_Model):
    """How cells and debris were removed before EV separation."""

    description: Text | None = None
    centrifugation: list[Spin] | None = None
    filtration: Text | None = None


# ---------------------------------------------------------------------------- separation
SEPARATION_METHODS: tuple[str, ...] = (
    "differential_ultracentrifugation", "ultracentrifugation", "density_gradient",
    "size_exclusion_chromatography", "tangential_flow_filtration", "ultrafiltration",
    "precipitation", "immunoaffinity", "asymmetric_flow_field_flow_fractionation",
    "filtration", "ion_exchange_chromatography", "other",
)
# Methods that spin in an ultracentrifuge: EV-TRACK asks for g-force, time, rotor, k-factor.
UC_METHODS: tuple[str, ...] = (
    "differential_ultracentrifugation", "ultracentrifugation", "density_gradient",
)
SeparationMethod = Literal[
    "differential_ultracentrifugation", "ultracentrifugation", "density_gradient",
    "size_exclusion_chromatography", "tangential_flow_filtration", "ultrafiltration",
    "precipitation", "immunoaffinity", "asymmetric_flow_field_flow_fractionation",
    "filtration", "ion_exchange_chromatography", "other",
]


class SeparationStep(_Model):
    """One step of EV separation/concentration.

    Ultracentrifugation steps carry ``g_force`` (average RCF, x g),
    ``time_min``, ``rotor`` and ``k_factor`` (clearing factor of the rotor at
    the speed used, which with the time makes runs comparable across rotors).
    """

    method: SeparationMethod
    details: Text | None = None
    g_force: PositiveFloat | None = None
    time_min: PositiveFloat | None = None
    rotor: Text | None = None
    k_factor: PositiveFloat | None = None
    temperature_c: Annotated[float, Field(ge=-30, le=60)] | None = None
    column: Text | None = None
    fractions: Text | None = None
    mwco_kda: PositiveFloat | None = None
    kit: Text | None = None


class Separation(_Model):
    """The separation workflow, in order."""

    steps: Annotated[list[SeparationStep], Field(min_length=1)]
    input_volume_ml: PositiveFloat | None = None
    output_volume_ml: PositiveFloat | None = None


# ------------------------------------------------------------------------------- storage
class StorageCondition(_Model):
    """How material was kept at one stage.

    ``processed_fresh: true`` says it was not stored (used at once).
    """

    processed_fresh: bool = False
    temperature_c: Annotated[float, Field(ge=-273, le=60)] | None = None
    duration_h: NonNegFloat | None = None
    container: Text | None = None
    freeze_thaw_cycles: Annotated[int, Field(ge=0)] | None = None
    thaw_method: Text | None = None
    buffer: Text | None = None


class Storage(_Model):
    """Storage of the starting material (before) and of the EVs (after separation)."""

    before_separation: StorageCondition | None = None
    after_separation: StorageCondition | None = None


# ------------------------------------------------------------------------ quantification
Quantity = Literal["particles", "protein", "lipid", "rna"]
QuantMethod = Literal[
    "nta", "trps", "high_resolution_flow", "flow_cytometry", "dls",
    "bca", "micro_bca", "bradford", "qubit_protein", "nanodrop", "sds_page",
    "sulfophosphovanillin", "fluorescent_lipid_dye", "ribogreen", "qubit_rna", "bioanalyzer",
    "other",
]
_UNIT_FOR: dict[str, str] = {
    "particles": "particles/mL", "protein": "ug/mL", "lipid": "nmol/mL", "rna": "ng/mL",
}


class Measure(_Model):
    """One global quantification of the preparation.

    ``value`` is per mL of the EV preparation, in ``unit``: particles/mL
    (particles), ug/mL (protein), nmol/mL (lipid), ng/mL (RNA).
    """

    quantity: Quantity
    method: QuantMethod
    value: NonNegFloat | None = None
    unit: Literal["particles/mL", "ug/mL", "nmol/mL", "ng/mL"] | None = None
    details: Text | None = None

    @model_validator(mode="after")
    def _unit_matches(self) -> Measure:
        expected = _UNIT_FOR[self.quantity]
        if self.value is not None and self.unit is None:
            raise ValueError(f"a {self.quantity} value needs its unit ({expected})")
        if self.unit is not None and self.unit != expected:
            raise ValueError(f"unit of {self.quantity} must be {expected}, got {self.unit}")
        return self


class Quantification(_Model):
    """Global measures and, where reported, their ratio."""

    measures: list[Measure] | None = None
    particles_per_ug_protein: PositiveFloat | None = None


# ------------------------------------------------------------------------------- markers
MarkerMethod = Literal[
    "western_blot", "elisa", "flow_cytometry", "bead_flow_cytometry", "single_ev_flow",
    "mass_spectrometry", "immuno_em", "super_resolution", "simoa", "spr", "other",
]
# Methods that rely on antibodies: EV-TRACK asks for antibody details.
ANTIBODY_METHODS: tuple[str, ...] = (
    "western_blot", "elisa", "flow_cytometry", "bead_flow_cytometry", "single_ev_flow",
    "immuno_em", "super_resolution", "simoa", "spr",
)


class Antibody(_Model):
    """The antibody used to detect a marker."""

    supplier: Text | None = None
    catalog_number: Text | None = None
    clone: Text | None = None
    host: Text | None = None
    dilution: Text | None = None
    lot: Text | None = None


class MarkerEntry(_Model):
    """A protein tested on the EV preparation.

    ``category`` (1-5) classifies a marker exotrace's table does not know.
    """

    name: Text
    detected: bool
    method: MarkerMethod
    antibody: Antibody | None = None
    category: Annotated[int, Field(ge=1, le=5)] | None = None


class LysatePreparation(_Model):
    """How EVs were lysed for western blots (an EV-TRACK method-specific item)."""

    buffer: Text | None = None
    reducing: bool | None = None
    amount_loaded_ug: PositiveFloat | None = None
    particles_loaded: PositiveFloat | None = None
    details: Text | None = None


# ------------------------------------------------------------------- single vesicles etc.
class Imaging(_Model):
    """An imaging method with wide-field and close-up images."""

    method: Literal["tem", "cryo_em", "sem", "afm", "super_resolution", "immuno_em", "other"]
    wide_field: bool = False
    close_up: bool = False
    details: Text | None = None


class Counting(_Model):
    """A single-particle counting/sizing method."""

    method: Literal["nta", "trps", "high_resolution_flow", "flow_cytometry",
                    "single_particle_interferometry", "other"]
    instrument: Text | None = None
    details: Text | None = None


class SingleVesicle(_Model):
    """Single-vesicle characterization: imaging and counting."""

    imaging: list[Imaging] | None = None
    counting: list[Counting] | None = None


class FunctionalAssay(_Model):
    """A functional assay; ``claims_function`` says the study attributes a function to EVs."""

    name: Text
    claims_function: bool = True
    dose_response: bool = False
    doses: Text | None = None
    controls: Text | None = None


class SubtypeClaim(_Model):
    """A claim about an EV subtype (by size, density, marker or biogenesis)."""

    subtype: Text
    basis: Literal["size", "density", "marker", "biogenesis", "other"]
    evidence: Text | None = None


NomenclatureTerm = Literal[
    "extracellular_vesicle", "small_extracellular_vesicle", "large_extracellular_vesicle",
    "exosome", "microvesicle", "ectosome", "apoptotic_body", "other",
]
BIOGENESIS_TERMS: tuple[str, ...] = ("exosome", "microvesicle", "ectosome", "apoptotic_body")
SIZE_TERMS: tuple[str, ...] = ("small_extracellular_vesicle", "large_extracellular_vesicle")


class Nomenclature(_Model):
    """The term the study uses for its particles."""

    term: NomenclatureTerm
    justification: Text | None = None


class Study(_Model):
    """A study description: how an EV preparation was made and characterized."""

    schema_version: Literal[1] = 1
    title: Text | None = None
    source: Source | None = None
    donor: Donor | None = None
    collection: Collection | None = None
    cell_depletion: CellDepletion | None = None
    separation: Separation | None = None
    storage: Storage | None = None
    quantification: Quantification | None = None
    markers: list[MarkerEntry] | None = None
    lysate_preparation: LysatePreparation | None = None
    single_vesicle: SingleVesicle | None = None
    functional_assays: list[FunctionalAssay] | None = None
    subtype_claims: list[SubtypeClaim] | None = None
    nomenclature: Nomenclature | None = None


# --------------------------------------------------------------------------------- loader
@dataclass(frozen=True)
class StudyDocument:
    """A validated study with where it came from.

    Attributes
    ----------
    study : Study
    path : str
        File name (or ``"<string>"``).
    lines : dict
        Dotted field path (``"separation.steps[0].method"``) -> 1-based YAML line.
    """

    study: Study
    path: str = "<string>"
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, dotted: str) -> int | None:
        """YAML line of a field, or of its closest reported parent."""
        while dotted:
            if dotted in self.lines:
                return self.lines[dotted]
            cut = max(dotted.rfind("."), dotted.rfind("["))
            dotted = dotted[:cut] if cut > 0 else ""
        return None


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _index_lines(node: yaml.Node, prefix: str, lines: dict[str, int], source: str) -> None:
    """Record the line of every field; refuse duplicate keys (YAML silently keeps the last)."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            line = key_node.start_mark.line + 1
            if key in seen:
                raise FileFormatError(
                    source, f"duplicate key {key!r} (first on line {seen[key]})",
                    line=line, field=f"{prefix}.{key}" if prefix else key,
                )
            seen[key] = line
            path = f"{prefix}.{key}" if prefix else key
            lines[path] = line
            _index_lines(value_node, path, lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            path = f"{prefix}[{i}]"
            lines[path] = item.start_mark.line + 1
            _index_lines(item, path, lines, source)


def _problem_text(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    loc = err.get("loc", ())
    if kind == "extra_forbidden":
        return f"unknown field {str(loc[-1])!r} (check the spelling; see docs/characterization.md)"
    if kind == "missing":
        return f"required field {str(loc[-1])!r} is missing"
    msg = str(err.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    given = err.get("input")
    if kind not in ("missing",) and not isinstance(given, (dict, list)):
        shown = repr(given)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        msg += f" (got {shown})"
    return msg


def parse_study(text: str, *, source: str = "<string>") -> StudyDocument:
    """Validate the text of a study YAML file.

    Parameters
    ----------
    text : str
        YAML text.
    source : str
        File name for messages.

    Returns
    -------
    StudyDocument

    Raises
    ------
    FileFormatError
        Syntax errors, aliases, duplicate keys, a top level that is not a
        mapping, unknown fields, wrong types or values; the message names the
        line and the field.
    """
    loader = None
    try:
        loader = StrictLoader(text)
        node = loader.get_single_node()
        if node is None:
            raise FileFormatError(source, "the study file is empty; start with 'source:' "
                                  "(see docs/characterization.md)")
        lines: dict[str, int] = {}
        _index_lines(node, "", lines, source)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(str(exc.problem or exc.context or "YAML syntax error").split())
        raise FileFormatError(source, f"YAML syntax error: {problem}",
                              line=None if mark is None else mark.line + 1) from None
    except yaml.YAMLError as exc:  # reader errors: control characters, bad encodings
        raise FileFormatError(source, f"not valid YAML text: {' '.join(str(exc).split())}") \
            from None
    except RecursionError:
        raise FileFormatError(source, "YAML nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        raise FileFormatError(source, "the top level must be a mapping of sections "
                              f"(source:, separation:, ...), got {type(data).__name__}", line=1)
    try:
        study = Study.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        loc = tuple(first.get("loc", ()))
        dotted = _dotted(loc)
        doc = StudyDocument(Study(), source, lines)
        line = doc.line_of(dotted) if dotted else None
        problem = _problem_text(first)
        if len(errors) > 1:
            problem += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        raise FileFormatError(source, problem, line=line, field=dotted or None) from None
    except RecursionError:
        raise FileFormatError(source, "YAML nested too deeply") from None
    return StudyDocument(study, source, lines)


def load_study(path: str | Path) -> StudyDocument:
    """Read and validate a study YAML file.

    Parameters
    ----------
    path : str or Path
        The file (UTF-8, at most 1 MB).

    Returns
    -------
    StudyDocument

    Raises
    ------
    FileFormatError
        Missing or unreadable file, wrong encoding, invalid content (see
        :func:`parse_study`).
    """
    p = Path(path)
    try:
        if p.is_dir():
            raise FileFormatError(p, "is a directory, expected a study YAML file")
        # Read at most one byte more than allowed: device files and pipes report no size.
        with p.open("rb") as fh:
            raw = fh.read(MAX_STUDY_BYTES + 1)
        if len(raw) > MAX_STUDY_BYTES:
            raise FileFormatError(p, "file is larger than a study description can be "
                                  f"(at most {MAX_STUDY_BYTES} bytes)")
    except FileNotFoundError:
        raise FileFormatError(p, "file not found") from None
    except OSError as exc:
        raise FileFormatError(p, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileFormatError(p, "not UTF-8 text", offset=exc.start) from None
    return parse_study(text, source=str(p))

