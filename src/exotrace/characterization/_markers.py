"""Protein markers sorted into the MISEV categories, and evaluation of a marker panel.

Categories (MISEV2018 Table 3, kept in MISEV2023):

1. transmembrane or GPI-anchored proteins of the plasma membrane/endosomes
   (tetraspanins CD9/CD63/CD81/CD82, integrins, MHC, LAMP1/2, ...): EV membrane;
2. cytosolic proteins that bind membranes or lipids (TSG101, ALIX, syntenin,
   flotillins, annexins, Rabs, ...): proves a lipid bilayer around cytosol;
3. major components of non-EV co-isolated structures (lipoproteins APOA1/APOA2/
   APOB, albumin, uromodulin, ribosomal proteins): purity controls;
4. proteins of other intracellular compartments (calnexin, GRP94, GM130,
   mitochondrial proteins, histones, Argonaute): needed to claim EV subtypes;
5. secreted proteins recovered with EVs (cytokines, growth factors,
   fibronectin, collagens): needed when a function is claimed.

HSPA8 (HSC70), HSP90AB1, actins, tubulins and GAPDH are found in nearly every
preparation, EV or not, and count for no category. exotrace also treats the
ambiguous "HSP70" and HSPA1A that way, because HSP70 antibodies commonly detect
HSPA8.

The table holds HGNC gene symbols, common protein names as synonyms and a few
gene families as patterns; look-ups ignore case, spaces, hyphens, dots and
underscores. A marker not in the table counts for nothing unless the caller
gives its category (cell-type specific markers such as CD90/THY1 on MSC-EVs
are in the table as category 1; others can be added that way).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from ..errors import InvalidInput

__all__ = [
    "CATEGORY_TITLES",
    "ClassifiedMarker",
    "CategorySummary",
    "MarkerCategory",
    "MarkerInfo",
    "MarkerObservation",
    "MarkerPanelReport",
    "NON_PROVING_SYMBOLS",
    "classify_marker",
    "evaluate_markers",
    "normalize_marker_name",
]


class MarkerCategory(IntEnum):
    """MISEV protein categories (1-5)."""

    TRANSMEMBRANE = 1
    CYTOSOLIC = 2
    PURITY_CONTROL = 3
    OTHER_COMPARTMENT = 4
    SECRETED = 5


CATEGORY_TITLES: dict[int, str] = {
    1: "transmembrane or GPI-anchored (EV membrane)",
    2: "cytosolic with membrane or lipid binding",
    3: "non-EV co-isolated structures (purity controls)",
    4: "other intracellular compartments",
    5: "secreted proteins recovered with EVs",
}

NON_PROVING_SYMBOLS: tuple[str, ...] = ("HSPA8", "HSP90AB1", "ACTB", "TUBA/TUBB", "GAPDH")


@dataclass(frozen=True)
class MarkerInfo:
    """What the curated table knows about one marker.

    Attributes
    ----------
    symbol : str
        HGNC gene symbol (or family label such as "histone H3").
    category : MarkerCategory or None
        MISEV category; ``None`` for markers that prove nothing.
    group : str
        Protein family or reason, in words.
    note : str
        Caveat shown whenever the marker is used.
    """

    symbol: str
    category: MarkerCategory | None
    group: str
    note: str = ""


_C1, _C2, _C3, _C4, _C5 = (MarkerCategory(i) for i in range(1, 6))
_NON_PROVING_NOTE = (
    "is found in nearly every preparation, EV or not; MISEV counts it for no category"
)

# symbol -> (category, group, synonyms..., note)
_TABLE: list[tuple[str, MarkerCategory | None, str, tuple[str, ...], str]] = [
    # --- category 1: transmembrane / GPI-anchored -------------------------------------
    ("CD9", _C1, "tetraspanin", ("TSPAN29", "MRP-1"), ""),
    ("CD63", _C1, "tetraspanin", ("TSPAN30",), ""),
    ("CD81", _C1, "tetraspanin", ("TSPAN28", "TAPA1", "TAPA-1"), ""),
    ("CD82", _C1, "tetraspanin", ("TSPAN27", "KAI1"), ""),
    ("CD37", _C1, "tetraspanin", ("TSPAN26",), ""),
    ("CD53", _C1, "tetraspanin", ("TSPAN25",), ""),
    ("CD151", _C1, "tetraspanin", ("TSPAN24",), ""),
    ("LAMP1", _C1, "lysosome-associated membrane protein", ("CD107a", "LAMP-1"), ""),
    ("LAMP2", _C1, "lysosome-associated membrane protein", ("CD107b", "LAMP-2"), ""),
    ("MFGE8", _C1, "lipid (phosphatidylserine)-bound surface protein",
     ("lactadherin", "MFG-E8"),
     "binds the EV surface from outside; MISEV2018 also lists it among secreted "
     "proteins, so pair it with a second category-1 marker"),
    ("HLA-A", _C1, "MHC class I", ("MHC class I", "MHC-I", "HLA-ABC", "HLA class I"), ""),
    ("HLA-B", _C1, "MHC class I", (), ""),
    ("HLA-C", _C1, "MHC class I", (), ""),
    ("HLA-DRA", _C1, "MHC class II", ("HLA-DR", "MHC class II", "MHC-II"), ""),
    ("TFRC", _C1, "transferrin receptor", ("CD71", "transferrin receptor"), ""),
    ("BSG", _C1, "EMMPRIN", ("CD147", "EMMPRIN", "basigin"), ""),
    ("ADAM10", _C1, "metalloprotease", ("CD156c",), ""),
    ("NT5E", _C1, "GPI-anchored", ("CD73", "5'-nucleotidase", "5-nucleotidase"), ""),
    ("CD55", _C1, "GPI-anchored complement regulator", ("DAF",), ""),
    ("CD59", _C1, "GPI-anchored complement regulator", ("protectin",), ""),
    ("SHH", _C1, "lipid-anchored", ("sonic hedgehog",), ""),
    ("CD47", _C1, "multi-pass membrane protein", ("IAP",), ""),
    ("PTGFRN", _C1, "transmembrane", ("EWI-F", "CD9P-1", "CD315"), ""),
    ("IGSF8", _C1, "transmembrane", ("EWI-2", "CD316"), ""),
    ("SDC1", _C1, "syndecan", ("CD138", "syndecan-1"), ""),
    ("SDC4", _C1, "syndecan", ("syndecan-4",), ""),
    ("THY1", _C1, "GPI-anchored (cell-type specific, MSC)", ("CD90",), ""),
    ("ENG", _C1, "transmembrane (cell-type specific, MSC)", ("CD105", "endoglin"), ""),
    ("CD44", _C1, "transmembrane (cell-type specific)", (), ""),
    ("PECAM1", _C1, "transmembrane (cell-type specific)", ("CD31",), ""),
    ("EPCAM", _C1, "transmembrane (cell-type specific)", ("CD326",), ""),
    ("ERBB2", _C1, "transmembrane (cell-type specific)", ("HER2", "CD340"), ""),
    ("PTPRC", _C1, "transmembrane (cell-type specific)", ("CD45",), ""),
    ("CD14", _C1, "GPI-anchored (cell-type specific)", (), ""),
    ("GYPA", _C1, "transmembrane (cell-type specific)", ("glycophorin A", "CD235a"), ""),
    ("ITGA2B", _C1, "integrin (cell-type specific)", ("CD41",), ""),
    ("ITGB1", _C1, "integrin", ("CD29",), ""),
    # --- category 2: cytosolic, membrane/lipid binding ---------------------------------
    ("TSG101", _C2, "ESCRT-I", ("TSG-101",), ""),
    ("PDCD6IP", _C2, "ESCRT accessory", ("ALIX", "AIP1", "HP95"), ""),
    ("VPS4A", _C2, "ESCRT accessory", (), ""),
    ("VPS4B", _C2, "ESCRT accessory", (), ""),
    ("SDCBP", _C2, "syntenin", ("syntenin", "syntenin-1", "MDA-9"), ""),
    ("FLOT1", _C2, "flotillin", ("flotillin-1", "flotillin 1", "reggie-2"), ""),
    ("FLOT2", _C2, "flotillin", ("flotillin-2", "flotillin 2", "reggie-1"), ""),
    ("CAV1", _C2, "caveolin", ("caveolin-1", "caveolin 1"), ""),
    ("ARRDC1", _C2, "arrestin domain", (), ""),
    ("RHOA", _C2, "small GTPase", (), ""),
    ("ARF6", _C2, "small GTPase", (), ""),
    ("EHD1", _C2, "EH-domain protein", (), ""),
    ("EHD4", _C2, "EH-domain protein", (), ""),
    # --- category 3: non-EV co-isolated structures --------------------------------------
    ("APOA1", _C3, "lipoprotein (HDL)", ("ApoA-I", "ApoA1", "apolipoprotein A-I",
                                         "apolipoprotein A1"), ""),
    ("APOA2", _C3, "lipoprotein (HDL)", ("ApoA-II", "apolipoprotein A-II",
                                         "apolipoprotein A2"), ""),
    ("APOB", _C3, "lipoprotein (LDL/VLDL/chylomicron)",
     ("ApoB-100", "ApoB100", "ApoB-48", "apolipoprotein B"), ""),
    ("ALB", _C3, "protein aggregate (albumin)", ("albumin", "serum albumin", "BSA", "HSA"), ""),
    ("UMOD", _C3, "protein aggregate (urine)", ("uromodulin", "Tamm-Horsfall protein",
                                                 "THP"), ""),
    # --- category 4: other intracellular compartments -----------------------------------
    ("CANX", _C4, "endoplasmic reticulum", ("calnexin",), ""),
    ("HSP90B1", _C4, "endoplasmic reticulum", ("GRP94", "GP96", "endoplasmin"), ""),
    ("HSPA5", _C4, "endoplasmic reticulum", ("BiP", "GRP78"), ""),
    ("CALR", _C4, "endoplasmic reticulum", ("calreticulin",), ""),
    ("GOLGA2", _C4, "Golgi", ("GM130",), ""),
    ("CYC1", _C4, "mitochondria", ("cytochrome c1",), ""),
    ("CYCS", _C4, "mitochondria", ("cytochrome c",), ""),
    ("TOMM20", _C4, "mitochondria", ("TOM20",), ""),
    ("IMMT", _C4, "mitochondria", ("mitofilin",), ""),
    ("VDAC1", _C4, "mitochondria", ("porin",), ""),
    ("LMNA", _C4, "nucleus", ("lamin A/C", "lamin A", "lamin"), ""),
    ("MAP1LC3B", _C4, "autophagosome", ("LC3", "LC3B"), ""),
    ("MAP1LC3A", _C4, "autophagosome", ("LC3A",), ""),
    ("ACTN1", _C4, "cytoskeleton (actinin)", ("actinin-1",), ""),
    ("ACTN4", _C4, "cytoskeleton (actinin)", ("actinin-4",), ""),
    ("KRT18", _C4, "cytoskeleton (keratin)", ("cytokeratin 18", "cytokeratin-18"), ""),
    # --- category 5: secreted ----------------------------------------------------------
    ("FN1", _C5, "extracellular matrix", ("fibronectin",), ""),
    ("TGFB1", _C5, "growth factor", ("TGF-beta1", "TGF-beta", "TGFbeta1"), ""),
    ("TGFB2", _C5, "growth factor", ("TGF-beta2",), ""),
    ("VEGFA", _C5, "growth factor", ("VEGF", "VEGF-A"), ""),
    ("FGF2", _C5, "growth factor", ("bFGF", "FGF-2"), ""),
    ("HGF", _C5, "growth factor", ("hepatocyte growth factor",), ""),
    ("EGF", _C5, "growth factor", (), ""),
    ("PDGFB", _C5, "growth factor", ("PDGF-BB",), ""),
    ("IFNG", _C5, "cytokine", ("IFN-gamma", "interferon gamma"), ""),
    ("TNF", _C5, "cytokine", ("TNF-alpha", "TNFalpha"), ""),
    ("CXCL8", _C5, "cytokine", ("IL-8", "IL8"), ""),
    ("LGALS3BP", _C5, "secreted glycoprotein", ("90K", "Mac-2 binding protein"), ""),
    ("AHSG", _C5, "secreted plasma protein", ("fetuin-A",), ""),
    ("CD5L", _C5, "secreted glycoprotein", (), ""),
    # --- prove nothing ----------------------------------------------------------------
    ("HSPA8", None, "heat shock protein", ("HSC70", "HSC-70", "HSP73", "HSPA10"),
     f"HSPA8 (HSC70) {_NON_PROVING_NOTE}"),
    ("HSP90AB1", None, "heat shock protein", ("HSP84", "HSP90beta", "HSP90B", "HSP90AB"),
     f"HSP90AB1 {_NON_PROVING_NOTE}"),
    ("HSP70", None, "heat shock protein (ambiguous)", ("HSPA1A", "HSP72", "HSPA1B"),
     "'HSP70' antibodies commonly detect HSPA8 (HSC70), which " + _NON_PROVING_NOTE
     + "; counted for no category"),
    ("HSP90", None, "heat shock protein (ambiguous)", ("HSP90AA1", "HSP90alpha"),
     f"HSP90 {_NON_PROVING_NOTE}"),
    ("ACTB", None, "cytoskeleton (actin)", ("actin", "beta-actin", "b-actin"),
     f"actin {_NON_PROVING_NOTE}"),
    ("ACTG1", None, "cytoskeleton (actin)", ("gamma-actin",), f"actin {_NON_PROVING_NOTE}"),
    ("GAPDH", None, "glycolytic enzyme", (), f"GAPDH {_NON_PROVING_NOTE}"),
    ("TUBA/TUBB", None, "cytoskeleton (tubulin)",
     ("tubulin", "alpha-tubulin", "beta-tubulin", "TUBA", "TUBB"),
     f"tubulin {_NON_PROVING_NOTE}"),
]

# Gene families: (pattern on the normalized name, category, group, symbol template)
_FAMILIES: list[tuple[re.Pattern[str], MarkerCategory | None, str]] = [
    (re.compile(r"^TSPAN\d+$"), _C1, "tetraspanin"),
    (re.compile(r"^ITG[AB]\d+[A-Z]?$"), _C1, "integrin"),
    (re.compile(r"^CHMP\d[A-Z]?$"), _C2, "ESCRT-III"),
    (re.compile(r"^ANXA\d+$"), _C2, "annexin"),
    (re.compile(r"^RAB\d+[A-Z]?$"), _C2, "Rab GTPase"),
    (re.compile(r"^CAV[23]$"), _C2, "caveolin"),
    (re.compile(r"^EHD[23]$"), _C2, "EH-domain protein"),
    (re.compile(r"^RP[LS]\d+[A-Z]?\d*$"), _C3, "ribosomal protein"),
    (re.compile(r"^(HIST\d+H\w+|H2A\w*|H2B\w*|H3C?\d*|H4C?\d*|H1\d*|HISTONE\w*)$"), _C4,
     "histone (nucleus)"),
    (re.compile(r"^AGO\d$"), _C4, "Argonaute (RISC)"),
    (re.compile(r"^TOMM\d+$"), _C4, "mitochondria"),
    (re.compile(r"^COL\d+A\d$"), _C5, "extracellular matrix (collagen)"),
    (re.compile(r"^IL\d+[AB]?$"), _C5, "cytokine (interleukin)"),
    (re.compile(r"^TUB[AB]\d*[A-Z]?$"), None, "cytoskeleton (tubulin)"),
    (re.compile(r"^ACT[ABG]\d?$"), None, "cytoskeleton (actin)"),
]

# Word forms turned into gene symbols before the family patterns run.
_REWRITES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^ANNEXINA?(\d+)$"), r"ANXA\1"),
    (re.compile(r"^INTEGRINALPHA(\d+)$"), r"ITGA\1"),
    (re.compile(r"^INTEGRINBETA(\d+)$"), r"ITGB\1"),
    (re.compile(r"^ARGONAUTE(\d)$"), r"AGO\1"),
    (re.compile(r"^EIF2C(\d)$"), r"AGO\1"),
    (re.compile(r"^RIBOSOMALPROTEIN([LS]\d+[A-Z]?)$"), r"RP\1"),
    (re.compile(r"^COLLAGEN(\d+)A?(\d)?$"), r"COL\1A1"),
    (re.compile(r"^INTERLEUKIN(\d+[AB]?)$"), r"IL\1"),
]
_ROMAN_ANNEXINS = {"ANNEXINI": "ANXA1", "ANNEXINII": "ANXA2", "ANNEXINV": "ANXA5",
                   "ANNEXINVI": "ANXA6", "ANNEXINXI": "ANXA11"}

_GREEK = {"α": "ALPHA", "β": "BETA", "γ": "GAMMA", "κ": "KAPPA", "Α": "ALPHA", "Β": "BETA",
          "Γ": "GAMMA"}
_DROP = re.compile(r"[\s\-_./()'’,:;]+")


def normalize_marker_name(name: str) -> str:
    """Upper-case a marker name and drop spaces, hyphens, dots and similar.

    Greek letters become words ("β-actin" -> "BETAACTIN").
    """
    text = "".join(_GREEK.get(ch, ch) for ch in str(name))
    return _DROP.sub("", text).upper()


_BY_KEY: dict[str, MarkerInfo] = {}
for _symbol, _cat, _group, _syns, _note in _TABLE:
    _info = MarkerInfo(symbol=_symbol, category=_cat, group=_group, note=_note)
    for _key in (_symbol, *_syns):
        _norm = normalize_marker_name(_key)
        if _norm in _BY_KEY and _BY_KEY[_norm].symbol != _symbol:  # pragma: no cover - table bug
            raise RuntimeError(f"marker table: {_key!r} names both {_BY_KEY[_norm].symbol} "
                               f"and {_symbol}")
        _BY_KEY[_norm] = _info
for _name, _symbol in _ROMAN_ANNEXINS.items():
    _BY_KEY[_name] = MarkerInfo(symbol=_symbol, category=_C2, group="annexin")


def classify_marker(name: str) -> MarkerInfo | None:
    """Look a marker up in the curated table.

    Parameters
    ----------
    name : str
        Gene symbol or protein name, any case ("CD63", "Alix", "GM130",
        "annexin A1", "β-actin").

    Returns
    -------
    MarkerInfo or None
        ``None`` when the name is not in the table. ``MarkerInfo.category`` is
        ``None`` for markers that prove nothing (HSPA8, HSP90AB1, actin,
        tubulin, GAPDH).
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"a marker name must be a non-empty text, got {name!r}")
    key = normalize_marker_name(name)
    if key in _BY_KEY:
        return _BY_KEY[key]
    for pattern, replacement in _REWRITES:
        if pattern.match(key):
            key = pattern.sub(replacement, key)
            if key in _BY_KEY:
                return _BY_KEY[key]
            break
    for pattern, category, group in _FAMILIES:
        if pattern.match(key):
            note = "" if category is not None else f"{key} {_NON_PROVING_NOTE}"
            return MarkerInfo(symbol=key, category=category, group=group, note=note)
    return None


@dataclass(frozen=True)
class MarkerObservation:
    """One marker tested on the preparation.

    Attributes
    ----------
    marker : str
        Name as reported (gene symbol or protein name).
    detected : bool
        Whether the marker was found in the EV preparation.
    method : str
        How it was tested (western blot, ELISA, flow cytometry, mass spectrometry, ...).
    category : int, optional
        MISEV category (1-5) for a marker the table does not know; ignored
        for markers the table knows (the table wins, so HSPA8 cannot be
        promoted).
    """

    marker: str
    detected: bool
    method: str = "not stated"
    category: int | None = None


@dataclass(frozen=True)
class ClassifiedMarker:
    """A tested marker with the category the table gives it."""

    marker: str
    symbol: str | None
    category: int | None
    group: str
    detected: bool
    method: str
    proves_nothing: bool
    recognized: bool
    note: str


@dataclass(frozen=True)
class CategorySummary:
    """Markers of one MISEV category, split into detected and tested-but-absent."""

    category: int
    title: str
    detected: tuple[str, ...]
    not_detected: tuple[str, ...]
    assessed: bool


@dataclass(frozen=True)
class MarkerPanelReport:
    """A marker panel judged against the MISEV protein requirements.

    ``requirement_met`` means: at least one category-1 marker detected AND at
    least one category-2 marker detected AND at least one category-3 purity
    control assessed (tested and reported, whether detected or not).
    """

    markers: tuple[ClassifiedMarker, ...]
    categories: tuple[CategorySummary, ...]
    category1_detected: bool
    category2_detected: bool
    category3_assessed: bool
    requirement_met: bool
    non_proving: tuple[str, ...]
    unrecognized: tuple[str, ...]
    notes: tuple[str, ...]

    def category(self, number: int) -> CategorySummary:
        """Summary of category ``number`` (1-5)."""
        return self.categories[int(number) - 1]


def _as_observation(item: object, index: int) -> MarkerObservation:
    if isinstance(item, MarkerObservation):
        obs = item
    elif isinstance(item, (tuple, list)):
        if len(item) not in (2, 3, 4):
            raise InvalidInput(
                f"marker result {index + 1}: expected (marker, detected, method), got {item!r}"
            )
        obs = MarkerObservation(*item)
    else:
        name = getattr(item, "marker", None) or getattr(item, "name", None)
        obs = MarkerObservation(
            marker=name,
            detected=getattr(item, "detected", None),
            method=getattr(item, "method", None) or "not stated",
            category=getattr(item, "category", None),
        )
    if not isinstance(obs.marker, str) or not obs.marker.strip():
        raise InvalidInput(f"marker result {index + 1}: marker name missing, got {obs.marker!r}")
    if not isinstance(obs.detected, bool):
        raise InvalidInput(
            f"marker result {index + 1} ({obs.marker}): detected must be true or false, "
            f"got {obs.detected!r}"
        )
    if obs.category is not None and (isinstance(obs.category, bool)
                                     or obs.category not in (1, 2, 3, 4, 5)):
        raise InvalidInput(
            f"marker result {index + 1} ({obs.marker}): category must be 1-5, got {obs.category!r}"
        )
    method = obs.method if isinstance(obs.method, str) and obs.method.strip() else "not stated"
    return MarkerObservation(obs.marker.strip(), obs.detected, method, obs.category)


def _classify(obs: MarkerObservation) -> ClassifiedMarker:
    info = classify_marker(obs.marker)
    if info is None:
        if obs.category is not None:
            return ClassifiedMarker(obs.marker, obs.marker.upper(), int(obs.category),
                                    "category given by the user", obs.detected, obs.method,
                                    False, False, "category given by the user, not the table")
        return ClassifiedMarker(obs.marker, None, None, "unknown", obs.detected, obs.method,
                                False, False,
                                f"{obs.marker} is not in exotrace's marker table; give its "
                                "MISEV category to count it")
    category = None if info.category is None else int(info.category)
    note = info.note
    if obs.category is not None and obs.category != category:
        note = (note + "; " if note else "") + (
            f"category {obs.category} given by the user ignored: the table says "
            f"{'no category' if category is None else f'category {category}'}"
        )
    return ClassifiedMarker(obs.marker, info.symbol, category, info.group, obs.detected,
                            obs.method, info.category is None, True, note)


def evaluate_markers(results: Iterable[object]) -> MarkerPanelReport:
    """Sort tested markers into MISEV categories and check the minimal requirement.

    Parameters
    ----------
    results : iterable
        Each item is a ``(marker, detected, method)`` tuple (``method`` and a
        fourth ``category`` element optional), a :class:`MarkerObservation`, or
        any object with ``marker`` (or ``name``), ``detected`` and ``method``
        attributes.

    Returns
    -------
    MarkerPanelReport

    Raises
    ------
    InvalidInput
        An empty marker name, a ``detected`` that is not a bool, a category
        outside 1-5.

    Notes
    -----
    Requirement (MISEV2018/2023): >= 1 category-1 marker detected, >= 1
    category-2 marker detected, and a category-3 purity control assessed.
    Category 4 (subtype claims) and 5 (function claims) are reported but
    judged by the checklist, which knows the claims.
    """
    if isinstance(results, (str, bytes)):
        raise InvalidInput("marker results must be a list of (marker, detected, method)")
    classified = [_classify(_as_observation(item, i)) for i, item in enumerate(results)]
    categories = []
    for number in range(1, 6):
        members = [m for m in classified if m.category == number]
        det = tuple(dict.fromkeys(m.symbol or m.marker for m in members if m.detected))
        nd = tuple(dict.fromkeys(m.symbol or m.marker for m in members if not m.detected))
        categories.append(CategorySummary(number, CATEGORY_TITLES[number], det, nd,
                                          bool(members)))
    c1 = bool(categories[0].detected)
    c2 = bool(categories[1].detected)
    c3 = categories[2].assessed
    non_proving = tuple(dict.fromkeys(m.symbol for m in classified if m.proves_nothing))
    unrecognized = tuple(dict.fromkeys(m.marker for m in classified
                                       if not m.recognized and m.category is None))
    notes: list[str] = []
    for m in classified:
        if m.proves_nothing and m.note and m.note not in notes:
            notes.append(m.note)
    if not c1:
        notes.append("No category-1 (transmembrane/GPI) marker detected, e.g. CD9, CD63, CD81.")
    if not c2:
        notes.append("No category-2 (cytosolic) marker detected, e.g. TSG101, ALIX, syntenin.")
    if not c3:
        notes.append("No category-3 purity control tested, e.g. APOA1/APOB for plasma, "
                     "albumin for serum-containing media, uromodulin for urine.")
    if categories[2].detected:
        notes.append(f"Purity control(s) {', '.join(categories[2].detected)} detected: the "
                     "preparation carries non-EV co-isolates; report how much.")
    if categories[3].detected:
        notes.append(f"Other-compartment marker(s) {', '.join(categories[3].detected)} "
                     "detected: cell debris or other EV types are present.")
    for name in unrecognized:
        notes.append(f"{name} is not in the marker table and counts for no category.")
    return MarkerPanelReport(
        markers=tuple(classified),
        categories=tuple(categories),
        category1_detected=c1,
        category2_detected=c2,
        category3_assessed=c3,
        requirement_met=c1 and c2 and c3,
        non_proving=non_proving,
        unrecognized=unrecognized,
        notes=tuple(notes),
    )
