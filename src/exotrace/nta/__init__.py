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
from ._types import Acquisition, Detections, Tracks

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
