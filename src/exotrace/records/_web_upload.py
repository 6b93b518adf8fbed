"""Attach an uploaded result to a lot: the services behind the upload page and
``POST /api/v1/measurements``.

Nothing new is decided here: a vendor file goes through
:func:`import_measurement_file` (as ``exotrace measurement import``), an NTA result
through :func:`exotrace.batch.store_result` (as ``exotrace nta batch --database``),
both once per lot and file (and, for NTA, settings). The number size distribution
is kept beside the measurements (:func:`add_size_distribution`) when the result
has one, so the lot's pages and comparability can draw it. Every row is written
as ``user`` (audited); like every service, nothing is committed here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from ._auth import Permission, require_permission
from ._models_auth import User
from ._views import measurement_view

__all__ = ["attach_instrument_file", "attach_nta_result"]


def _plain_measurement(m) -> dict[str, Any]:
    view = measurement_view(m)
    view["measured_at"] = view["measured_at"].isoformat() if view["measured_at"] else None
    return view


def _distribution(diameters: Any, weights: Any) -> tuple[list[float], list[float]] | None:
    """Bins worth storing (>= 2 positive, finite diameters with non-negative weights
    that are not all zero), else None: an empty analysis has nothing to draw."""
    if not isinstance(diameters, list) or not isinstance(weights, list):
        return None
    if len(diameters) != len(weights) or len(diameters) < 2:
        return None
    try:
        d = [float(x) for x in diameters]
        w = [float(x) for x in weights]
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(x) and x > 0 for x in d):
        return None
    if not all(math.isfinite(x) and x >= 0 for x in w) or sum(w) <= 0:
        return None
    return d, w


def attach_nta_result(session: Session, user: User, lot_number: str, *, video_name: str,
                      video_sha256: str, settings: Mapping[str, Any], settings_sha256: str,
                      result: Mapping[str, Any]) -> dict[str, Any]:
    """Store an NTA result (``NtaResult.to_dict()``) on a lot as measurements.

    Parameters
    ----------
    video_name, video_sha256 : str
        The analysed video's name and SHA-256 (the measurements' source).
    settings, settings_sha256 : mapping, str
        The analysis settings (``AnalysisSettings.to_dict()``) and their hash;
        the same video with the same settings is stored once per lot.
    result : mapping
        What ``exotrace nta analyze --json`` prints.

    Returns
    -------
    dict
        ``lot``, ``result_file``, ``created`` (False: stored before, nothing
        written), ``measurements`` and ``size_distribution`` (stored or not).
    """
    from ..batch import store_result

    require_permission(user, Permission.ENTER_RESULTS, action="attach results to lots")
    record = {"video": video_name, "sample": Path(video_name).stem, "lot": lot_number,
              "video_sha256": video_sha256, "settings_sha256": settings_sha256,
              "settings": dict(settings), "result": dict(result)}
    rf, made, created = store_result(session, user, record)
    bins = None
    if created:
        dist = result.get("distribution") or {}
        bins = _distribution(dist.get("diameter_nm"), dist.get("number_fraction"))
    return _attached(session, user, lot_number, rf, made, created, bins,
                     source=f"NTA {video_name}")


def attach_instrument_file(session: Session, user: User, lot_number: str,
                           path: str | Path) -> dict[str, Any]:
    """Import a vendor file (NanoSight, ZetaView, FCS, BCA plate) on a lot.

    Returns the same dict as :func:`attach_nta_result`.
    """
    from . import import_measurement_file

    require_permission(user, Permission.ENTER_RESULTS, action="attach results to lots")
    rf, made, created = import_measurement_file(session, lot_number, path, user)
    bins, data = None, {}
    if created:
        data = json.loads(rf.result_json) if rf.result_json else {}
        nd = ((data.get("extra") or {}).get("number_distribution") or {}) \
            if isinstance(data, Mapping) else {}
        bins = _distribution(nd.get("diameter_nm"), nd.get("fraction")) \
            if isinstance(nd, Mapping) else None
    fmt = data.get("format") if isinstance(data, Mapping) else None
    return _attached(session, user, lot_number, rf, made, created, bins,
                     source=f"{fmt or 'import'} {rf.file_name}")


def _attached(session: Session, user: User, lot_number: str, rf, made, created: bool,
              bins, *, source: str) -> dict[str, Any]:
    """Store the result's size distribution (``bins``: diameters, weights) when the result
    is new and has one; the answer both attach services give."""
    from . import add_size_distribution  # the package name survives a split of the module

    stored_distribution = False
    if created and bins is not None:
        add_size_distribution(session, user, lot_number, bins[0], bins[1], source=source[:200])
        stored_distribution = True
    return {"lot": lot_number, "result_file": rf.file_name, "created": created,
            "measurements": [_plain_measurement(m) for m in made],
            "size_distribution": stored_distribution}
