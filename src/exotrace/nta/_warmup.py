"""Compile (or load) the numba kernels of the pipeline before the first analysis.

numba compiles each kernel on its first call and caches it on disk; on a new
installation the first analysis would spend about a minute compiling. A
small simulated capture analysed once compiles every kernel with the
argument types the pipeline uses: once as an 8-bit video (read as uint8
frames) and once as a 12-bit one (float32 frames, as TIFF stacks and image
folders are read too).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ._kernels import kernels_cached

__all__ = ["warm_up"]

# Small enough to simulate in a second, dense enough to give sized tracks.
_CAPTURE = dict(diameters_nm=(100.0,), particles_per_ml=4e9, n_frames=40, width_px=192,
                height_px=160, exposure_ms=30.0, fps=25.0, pixel_size_nm=140.0,
                temperature_c=22.0, drift_px_per_frame=(2.0, -1.0), seed=1)


def warm_up() -> dict:
    """Analyse a small simulated capture so that every kernel is compiled and cached.

    Returns
    -------
    dict
        ``was_cached`` (the kernels were on disk already), ``seconds`` (wall
        time, s) and ``n_tracks`` of the capture.
    """
    from ._pipeline import analyze_videos
    from ._types import Acquisition
    from .simulate import simulate

    was_cached = kernels_cached()
    t0 = time.perf_counter()
    acq = Acquisition(pixel_size_nm=140.0, fps=25.0, temperature_c=22.0, exposure_ms=30.0)
    with tempfile.TemporaryDirectory() as tmp:
        for bit_depth in (12, 8):
            path = Path(tmp) / f"warmup-{bit_depth}bit.avi"
            simulate(path, bit_depth=bit_depth, **_CAPTURE)
            result = analyze_videos(path, acq)
    return {"was_cached": was_cached, "seconds": time.perf_counter() - t0,
            "n_tracks": int(result.n_tracks)}
