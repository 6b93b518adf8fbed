"""Plain data records passed between the NTA stages (no behaviour beyond validation).

Stages: frames -> :class:`Detections` -> :class:`Tracks` -> per-track diffusion ->
size distribution -> concentration. Arrays are 1-D, one entry per spot, all the
same length; coordinates are in pixels with (0, 0) at the centre of the top-left
pixel, x along columns and y along rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidInput

__all__ = ["Acquisition", "Detections", "Tracks"]


@dataclass(frozen=True)
class Acquisition:
    """How a video was captured and what medium the particles were in.

    Parameters
    ----------
    pixel_size_nm : float
        Size of one camera pixel in the sample plane, nm (NanoSight ~140 nm).
    fps : float
        Frame rate, frames per second.
    temperature_c : float
        Cell temperature, degrees Celsius.
    exposure_ms : float, optional
        Shutter (exposure) time per frame in ms; ``None`` means unknown, taken as
        no motion blur. Must not exceed the frame interval.
    viscosity_cp : float, optional
        Medium viscosity in cP; ``None`` means water at ``temperature_c``.
    """

    pixel_size_nm: float
    fps: float
    temperature_c: float
    exposure_ms: float | None = None
    viscosity_cp: float | None = None

    def __post_init__(self) -> None:
        for name in ("pixel_size_nm", "fps"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise InvalidInput(f"{name.replace('_', '-')} must be a positive number, got {value}")
        if not np.isfinite(self.temperature_c) or not 0 < self.temperature_c < 100:
            raise InvalidInput(
                f"temperature-c must be between 0 and 100 C (liquid water), got {self.temperature_c}"
            )
        if self.exposure_ms is not None:
            if not np.isfinite(self.exposure_ms) or self.exposure_ms < 0:
                raise InvalidInput(f"exposure-ms must be >= 0, got {self.exposure_ms}")
            if self.exposure_ms > 1000.0 / self.fps * (1 + 1e-9):
                raise InvalidInput(
                    f"exposure-ms {self.exposure_ms} is longer than the frame interval "
                    f"{1000.0 / self.fps:.3g} ms at {self.fps} fps"
                )
        if self.viscosity_cp is not None and (
            not np.isfinite(self.viscosity_cp) or self.viscosity_cp <= 0
        ):
            raise InvalidInput(f"viscosity-cp must be a positive number, got {self.viscosity_cp}")

    @property
    def frame_interval_s(self) -> float:
        return 1.0 / self.fps

    @property
    def exposure_s(self) -> float:
        return 0.0 if self.exposure_ms is None else self.exposure_ms / 1000.0

    @property
    def pixel_size_m(self) -> float:
        return self.pixel_size_nm * 1e-9


def _fill_spot_extras(obj) -> None:
    """Default the optional per-spot ``peak`` (nan) and ``saturated`` (False) arrays."""
    n = len(obj.frame)
    peak = np.full(n, np.nan) if obj.peak is None else np.asarray(obj.peak, dtype=np.float64)
    sat = (np.zeros(n, dtype=bool) if obj.saturated is None
           else np.asarray(obj.saturated, dtype=bool))
    object.__setattr__(obj, "peak", peak)
    object.__setattr__(obj, "saturated", sat)


def _check_lengths(obj, names) -> None:
    n = len(getattr(obj, names[0]))
    for name in names:
        arr = getattr(obj, name)
        if arr.ndim != 1 or len(arr) != n:
            raise InvalidInput(f"{type(obj).__name__}.{name} must be 1-D of length {n}")


@dataclass(frozen=True)
class Detections:
    """Spots found in frames.

    Attributes
    ----------
    frame : ndarray of int64, shape (n,)
        0-based frame index of each spot.
    x_px, y_px : ndarray of float64, shape (n,)
        Sub-pixel centroid, pixels.
    intensity : ndarray of float64, shape (n,)
        Integrated background-subtracted brightness of the spot (camera counts).
    n_frames : int
        Number of frames searched (some may hold no spot).
    frame_shape : tuple of int
        (rows, columns) of the frames.
    threshold : float
        Detection threshold actually used: the mean over frames of the value the
        band-passed peak of a spot must exceed (band-passed counts, the units of
        ``peak``); ``nan`` if unknown.
    peak : ndarray of float64, shape (n,), optional
        Band-passed value at the spot's maximum, the quantity compared with the
        threshold (band-passed counts); ``nan`` where unknown (the default).
    saturated : ndarray of bool, shape (n,), optional
        True where a raw pixel within ``radius_px`` of the spot reached the
        camera's largest count (its brightness is clipped); default all False.
    """

    frame: np.ndarray
    x_px: np.ndarray
    y_px: np.ndarray
    intensity: np.ndarray
    n_frames: int
    frame_shape: tuple[int, int]
    threshold: float = float("nan")
    peak: np.ndarray | None = None
    saturated: np.ndarray | None = None

    def __post_init__(self) -> None:
        _fill_spot_extras(self)
        _check_lengths(self, ("frame", "x_px", "y_px", "intensity", "peak", "saturated"))

    def __len__(self) -> int:
        return len(self.frame)


@dataclass(frozen=True)
class Tracks:
    """Linked trajectories, sorted by (track_id, frame).

    A track may skip frames (gaps); consumers use ``frame`` for time, never the
    row index. Coordinates are drift-corrected when ``drift_corrected`` is true.

    Attributes
    ----------
    track_id, frame : ndarray of int64, shape (n,)
    x_px, y_px, intensity : ndarray of float64, shape (n,)
    n_frames : int
        Frames in the video(s) the tracks came from (for particles per frame).
    frame_shape : tuple of int
        (rows, columns) of the field of view, pixels.
    drift_px_per_frame : tuple of float
        Mean (x, y) drift that was removed, px/frame.
    drift_corrected : bool
    threshold : float
        Detection threshold used (see :class:`Detections`).
    source : str
        Where the tracks came from (file name), for messages.
    metadata : dict
        Free-form figures from the tracking stage.
    peak, saturated : ndarray, shape (n,), optional
        Per spot, as in :class:`Detections` (default nan / False).
    """

    track_id: np.ndarray
    frame: np.ndarray
    x_px: np.ndarray
    y_px: np.ndarray
    intensity: np.ndarray
    n_frames: int
    frame_shape: tuple[int, int]
    drift_px_per_frame: tuple[float, float] = (0.0, 0.0)
    drift_corrected: bool = False
    threshold: float = float("nan")
    source: str = ""
    metadata: dict = field(default_factory=dict)
    peak: np.ndarray | None = None
    saturated: np.ndarray | None = None

    def __post_init__(self) -> None:
        _fill_spot_extras(self)
        _check_lengths(self, ("track_id", "frame", "x_px", "y_px", "intensity", "peak",
                              "saturated"))

    def __len__(self) -> int:
        return len(self.track_id)

    @property
    def n_tracks(self) -> int:
        return int(np.unique(self.track_id).size)

    def boundaries(self) -> np.ndarray:
        """Start index of each track plus the end, shape (n_tracks + 1,)."""
        if len(self.track_id) == 0:
            return np.zeros(1, dtype=np.int64)
        starts = np.flatnonzero(np.diff(self.track_id)) + 1
        return np.concatenate(([0], starts, [len(self.track_id)])).astype(np.int64)
