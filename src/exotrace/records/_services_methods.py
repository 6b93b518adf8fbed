"""A lot's size distributions by method (NTA, ZetaView, flow), from its imported result files.

Every :class:`ResultFile` whose stored result carries
``extra["number_distribution"]`` (NanoSight, ZetaView, flow ``size`` results)
becomes one :class:`~exotrace.quality.MethodDistribution`; the comparison
itself is :func:`exotrace.quality.compare_methods` (pure).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from sqlalchemy.orm import Session

from ..errors import FileFormatError, InsufficientData
from ..quality import MethodComparison, MethodDistribution, compare_methods, plot_method_comparison
from . import _repositories as repo
from ._models_lot import Lot

__all__ = ["METHOD_ORDER", "load_result_json", "lot_method_comparison", "lot_method_distributions",
           "method_of"]

#: Reference first: NTA sees the widest window of the three.
METHOD_ORDER = ("NTA", "ZetaView", "flow")


def method_of(result: Mapping) -> str:
    """The sizing method of a stored instrument result (``extra["method"]``, else from its format)."""
    extra = result.get("extra") if isinstance(result.get("extra"), Mapping) else {}
    named = result.get("method") or extra.get("method")
    if named:
        return str(named)
    fmt = str(result.get("format") or "")
    if fmt.startswith("nanosight"):
        return "NTA"
    if fmt.startswith("zetaview"):
        return "ZetaView"
    if fmt in ("fcs", "flow") or fmt.startswith("flow"):
        return "flow"
    return fmt or "unknown"


def _distribution(file_name: str, result: Mapping) -> MethodDistribution | None:
    extra = result.get("extra")
    if not isinstance(extra, Mapping):
        return None
    nd = extra.get("number_distribution")
    if not isinstance(nd, Mapping) or not nd.get("diameter_nm"):
        return None
    rng = extra.get("detection_range_nm")
    conc = result.get("particles_per_ml")
    return MethodDistribution(
        method=method_of(result), source=file_name,
        diameter_nm=tuple(float(x) for x in nd["diameter_nm"]),
        fraction=tuple(float(x) for x in nd["fraction"]),
        particles_per_ml=float(conc) if isinstance(conc, (int, float)) else None,
        detection_range_nm=(tuple(None if v is None else float(v) for v in rng)
                            if isinstance(rng, (list, tuple)) and len(rng) == 2 else None),
    )


def load_result_json(path: str | Path) -> list[MethodDistribution]:
    """Size distributions in a saved ``--json`` result (one object or a list of them).

    For results not imported for the lot, e.g. ``exotrace flow size ... --json``.

    Raises
    ------
    FileFormatError
        Unreadable JSON, or no object with ``extra.number_distribution``.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise FileFormatError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FileFormatError(path, f"cannot be read ({exc})") from None
    except ValueError as exc:
        raise FileFormatError(path, f"not JSON ({exc})") from None
    objects = data if isinstance(data, list) else [data]
    found = [d for d in (_distribution(path.name, o) if isinstance(o, Mapping) else None
                         for o in objects) if d is not None]
    if not found:
        raise FileFormatError(path, "holds no result with extra.number_distribution")
    return found


def lot_method_distributions(session: Session, lot: Lot | str) -> list[MethodDistribution]:
    """The lot's stored size distributions, NTA first, then ZetaView, flow, others (by import time)."""
    if isinstance(lot, str):
        lot = repo.get_by(session, Lot, number=lot)
    found = []
    for rf in sorted(repo.lot_result_files(session, lot.id), key=lambda r: (r.imported_at, r.id)):
        try:
            result = json.loads(rf.result_json or "null")
        except ValueError:
            continue
        item = _distribution(rf.file_name, result) if isinstance(result, Mapping) else None
        if item is not None:
            found.append(item)
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    return sorted(found, key=lambda d: rank.get(d.method, len(rank)))


def lot_method_comparison(session: Session, lot: Lot | str, *, plot: str | Path | None = None,
                          extra: Sequence[MethodDistribution] = ()) -> tuple[MethodComparison, dict]:
    """Compare the lot's methods; optionally write the overlay chart (PNG/SVG).

    ``extra`` adds distributions not stored on the lot (see :func:`load_result_json`).

    Returns
    -------
    (MethodComparison, dict)
        The comparison and its JSON view (``lot``, ``reference``,
        ``common_range_nm``, ``methods``, ``notes``, ``plot``).

    Raises
    ------
    InsufficientData
        Fewer than two results with a size distribution.
    """
    if isinstance(lot, str):
        lot = repo.get_by(session, Lot, number=lot)
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    items = sorted([*lot_method_distributions(session, lot), *extra],
                   key=lambda d: rank.get(d.method, len(rank)))
    if len(items) < 2:
        raise InsufficientData(f"lot {lot.number} has {len(items)} imported result(s) with a size "
                               "distribution; import NTA, ZetaView or flow size results first")
    comparison = compare_methods(items)
    written = None
    if plot is not None:
        written = str(plot_method_comparison(items, comparison, plot,
                                             title=f"lot {lot.number}: size by method"))
    view = {
        "lot": lot.number, "reference": comparison.reference,
        "common_range_nm": comparison.common_range_nm,
        "methods": [{"method": r.method, "source": r.source, "particles_per_ml": r.particles_per_ml,
                     "detection_range_nm": r.detection_range_nm,
                     "fraction_in_common_range": r.fraction_in_common_range,
                     "particles_per_ml_in_common_range": r.particles_per_ml_in_common_range,
                     "ratio_raw": r.ratio_raw, "ratio_common_range": r.ratio_common_range,
                     "explained_percent": r.explained_percent} for r in comparison.rows],
        "notes": list(comparison.notes), "plot": written,
    }
    return comparison, view
