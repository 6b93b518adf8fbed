"""EV characterization: particle:protein purity, MISEV marker categories, MISEV2023 checklist.

- :func:`purity_ratio` - particles per ug protein and its Webber & Clayton band.
- :func:`evaluate_markers` - a tested marker panel sorted into MISEV categories 1-5.
- :func:`load_study` / :func:`check_study` - a study description (YAML) plus
  imported measurements judged item by item against MISEV2023, with an
  EV-TRACK-style completeness score; :func:`report_to_json`,
  :func:`report_to_markdown`, :func:`report_to_html` render it.

See ``docs/characterization.md``.
"""

from importlib import resources as _resources
from pathlib import Path as _Path

from ._checklist import (
    CHECKLIST_ITEM_IDS,
    ChecklistItem,
    ChecklistReport,
    ItemStatus,
    check_study,
)
from ._markers import (
    CATEGORY_TITLES,
    NON_PROVING_SYMBOLS,
    CategorySummary,
    ClassifiedMarker,
    MarkerCategory,
    MarkerInfo,
    MarkerObservation,
    MarkerPanelReport,
    classify_marker,
    evaluate_markers,
    normalize_marker_name,
)
from ._measurements import MeasurementEvidence, ProteinValue, measurement_evidence
from ._purity import (
    HIGH_PURITY_ABOVE_PARTICLES_PER_UG,
    IMPURE_BELOW_PARTICLES_PER_UG,
    LOW_PURITY_MAX_PARTICLES_PER_UG,
    LOW_PURITY_MIN_PARTICLES_PER_UG,
    PurityBand,
    PurityResult,
    purity_band,
    purity_ratio,
)
from ._render import report_to_dict, report_to_html, report_to_json, report_to_markdown
from ._study import Study, StudyDocument, load_study, parse_study

__all__ = [
    "CATEGORY_TITLES",
    "CHECKLIST_ITEM_IDS",
    "HIGH_PURITY_ABOVE_PARTICLES_PER_UG",
    "IMPURE_BELOW_PARTICLES_PER_UG",
    "LOW_PURITY_MAX_PARTICLES_PER_UG",
    "LOW_PURITY_MIN_PARTICLES_PER_UG",
    "NON_PROVING_SYMBOLS",
    "CategorySummary",
    "ChecklistItem",
    "ChecklistReport",
    "ClassifiedMarker",
    "ItemStatus",
    "MarkerCategory",
    "MarkerInfo",
    "MarkerObservation",
    "MarkerPanelReport",
    "MeasurementEvidence",
    "ProteinValue",
    "PurityBand",
    "PurityResult",
    "Study",
    "StudyDocument",
    "check_study",
    "classify_marker",
    "evaluate_markers",
    "example_study_path",
    "load_study",
    "measurement_evidence",
    "normalize_marker_name",
    "parse_study",
    "purity_band",
    "purity_ratio",
    "report_to_dict",
    "report_to_html",
    "report_to_json",
    "report_to_markdown",
]


def example_study_path() -> _Path:
    """Path of the shipped complete example study (``examples/msc_ev_study.yaml``)."""
    return _Path(str(_resources.files(__name__).joinpath("examples", "msc_ev_study.yaml")))
