"""Nanoparticle tracking analysis: video -> detections -> tracks -> sizes -> concentration.

Stages and where they live:

* :func:`open_frames` / :func:`read_frames`: stream AVI, TIFF stacks, folders of frames;
* :func:`locate`: band-pass, noise-scaled threshold, sub-pixel centroids;
* :func:`link` / :class:`Linker`: diffusion-aware linking with drift prediction;
* :func:`estimate_drift` / :func:`subtract_drift`: common flow;
* :func:`track_video`, :func:`analyze_videos`: the whole pipeline;
* :mod:`exotrace.nta.diffusion`, :mod:`exotrace.nta.sizing`,
  :mod:`exotrace.nta.concentration`: per-track diffusion, size distribution and
  concentration (public modules);
* :mod:`exotrace.nta.simulate`: simulated videos with ground truth.
"""

import importlib
from typing import TYPE_CHECKING

from ._types import Acquisition, Detections, Tracks

# The pipeline pulls in numba kernels and scipy; load it on first use so that
# importing the data records (e.g. the instrument readers build Tracks) and
# starting the CLI stay fast.
_LAZY = {
    "DetectionSettings": "._detect", "locate": "._detect", "resolve_engine": "._detect",
    "estimate_drift": "._drift", "subtract_drift": "._drift",
    "Linker": "._link", "link": "._link", "search_radius_px": "._link",
    "NtaResult": "._pipeline", "VideoResult": "._pipeline", "analyze_tracks": "._pipeline",
    "analyze_videos": "._pipeline", "calibrate_videos": "._pipeline",
    "load_tracks": "._pipeline", "pool_tracks": "._pipeline", "track_frames": "._pipeline",
    "track_video": "._pipeline",
    "FrameSource": "._readers", "open_frames": "._readers", "read_frames": "._readers",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from ._detect import DetectionSettings, locate, resolve_engine
    from ._drift import estimate_drift, subtract_drift
    from ._link import Linker, link, search_radius_px
    from ._pipeline import (
        NtaResult,
        VideoResult,
        analyze_tracks,
        analyze_videos,
        calibrate_videos,
        load_tracks,
        pool_tracks,
        track_frames,
        track_video,
    )
    from ._readers import FrameSource, open_frames, read_frames

__all__ = [
    "Acquisition",
    "DetectionSettings",
    "Detections",
    "FrameSource",
    "Linker",
    "NtaResult",
    "Tracks",
    "VideoResult",
    "analyze_tracks",
    "analyze_videos",
    "calibrate_videos",
    "estimate_drift",
    "link",
    "load_tracks",
    "locate",
    "open_frames",
    "pool_tracks",
    "read_frames",
    "resolve_engine",
    "search_radius_px",
    "subtract_drift",
    "track_frames",
    "track_video",
]
