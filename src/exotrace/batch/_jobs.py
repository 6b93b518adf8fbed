"""What one video of a batch is analysed with, and the hash that identifies it.

A result is reused only when both the video's bytes (SHA-256 of the file) and
the settings that change the numbers (:meth:`AnalysisSettings.identity`) are
the same; anything else is analysed again.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import InvalidInput
from ..nta import Acquisition
from ..nta.concentration import Calibration

__all__ = ["SIZE_METHODS", "AnalysisSettings", "VideoJob", "result_file_name", "settings_sha256"]

SIZE_METHODS = ("em", "histogram")
_ENGINES = ("auto", "numba", "numpy")


@dataclass(frozen=True)
class AnalysisSettings:
    """Acquisition and analysis options of one video (those of ``exotrace nta analyze``).

    Parameters
    ----------
    pixel_size_nm : float
        Pixel size in the sample plane, nm.
    fps : float
        Frame rate, frames/s.
    temperature_c : float
        Cell temperature, C.
    exposure_ms : float, optional
        Shutter time per frame, ms (``None``: no motion blur).
    viscosity_cp : float, optional
        Medium viscosity, cP (``None``: water at the temperature).
    invert : bool
        Dark particles on a bright background.
    calibration : Calibration, optional
        Effective-volume calibration; without it there is no concentration.
    calibration_file : str, optional
        Where the calibration was read from (shown, not part of the identity:
        the calibration's values are).
    dilution : float
        Dilution factor of the measured suspension.
    threshold_sigma : float
        Detection threshold, noise sigmas.
    radius_px : int
        Spot radius, px.
    binning : {1, 2}
        Spot finding on full or 2 x 2 binned frames.
    min_diameter_nm : float
        Smallest diameter of interest (linking radius), nm.
    method : {"em", "histogram"}
        Size-distribution method.
    engine : {"auto", "numba", "numpy"}
        Kernel engine; not part of the identity (both engines pass the same
        tests to the same tolerances, the choice is one of speed only).
    """

    pixel_size_nm: float
    fps: float
    temperature_c: float
    exposure_ms: float | None = None
    viscosity_cp: float | None = None
    invert: bool = False
    calibration: Calibration | None = None
    calibration_file: str | None = None
    dilution: float = 1.0
    threshold_sigma: float = 5.0
    radius_px: int = 9
    binning: int = 2
    min_diameter_nm: float = 30.0
    method: str = "em"
    engine: str = "auto"

    def __post_init__(self) -> None:
        self.acquisition()  # validates pixel size, fps, temperature, exposure, viscosity
        if not (self.dilution > 0 and self.dilution < float("inf")):
            raise InvalidInput(f"dilution must be a positive factor, got {self.dilution}")
        if not (self.threshold_sigma > 0 and self.threshold_sigma < float("inf")):
            raise InvalidInput(f"threshold-sigma must be a positive number, got "
                               f"{self.threshold_sigma}")
        if int(self.radius_px) != self.radius_px or self.radius_px < 1:
            raise InvalidInput(f"radius-px must be a positive whole number, got {self.radius_px}")
        if self.binning not in (1, 2):
            raise InvalidInput(f"binning must be 1 or 2, got {self.binning}")
        if not (self.min_diameter_nm > 0 and self.min_diameter_nm < float("inf")):
            raise InvalidInput(f"min-diameter-nm must be a positive number, got "
                               f"{self.min_diameter_nm}")
        if self.method not in SIZE_METHODS:
            raise InvalidInput(f"method must be one of {', '.join(SIZE_METHODS)}, got "
                               f"{self.method!r}")
        if self.engine not in _ENGINES:
            raise InvalidInput(f"engine must be one of {', '.join(_ENGINES)}, got {self.engine!r}")

    def acquisition(self) -> Acquisition:
        """The :class:`~exotrace.nta.Acquisition` of these settings."""
        return Acquisition(pixel_size_nm=self.pixel_size_nm, fps=self.fps,
                           temperature_c=self.temperature_c, exposure_ms=self.exposure_ms,
                           viscosity_cp=self.viscosity_cp)

    def replace(self, **changes: Any) -> AnalysisSettings:
        """A copy with ``changes`` applied (and validated)."""
        return replace(self, **changes)

    def identity(self) -> dict[str, Any]:
        """Everything that changes the numbers of a result, JSON-ready.

        The exotrace version is part of it: another version of the analysis
        may give other numbers, so its results are not reused.
        """
        data = asdict(self)
        data.pop("engine")
        data.pop("calibration_file")
        data["calibration"] = (None if self.calibration is None
                               else asdict(self.calibration))
        data["exotrace"] = __version__
        return data

    def to_dict(self) -> dict[str, Any]:
        """Readable settings for result files (calibration by file, not by value)."""
        data = {k: v for k, v in asdict(self).items() if k != "calibration"}
        return data


def settings_sha256(settings: AnalysisSettings) -> str:
    """SHA-256 of the canonical JSON of :meth:`AnalysisSettings.identity`."""
    text = json.dumps(settings.identity(), sort_keys=True, separators=(",", ":"),
                      allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def result_file_name(sample: str, video_sha256: str, settings_sha256_hex: str) -> str:
    """``<sample>.<video hash 12>.<settings hash 12>.json``, safe on every file system."""
    slug = _UNSAFE.sub("_", sample).strip("._") or "video"
    return f"{slug[:80]}.{video_sha256[:12]}.{settings_sha256_hex[:12]}.json"


@dataclass(frozen=True)
class VideoJob:
    """One video to analyse.

    Attributes
    ----------
    video : Path
        The video (absolute path; workers on other machines need it at the same path).
    sample : str
        Label of the video in results and the summary (default: the file stem).
    group : str
        Sample group the summary aggregates over ("" for none).
    lot : str or None
        Lot number the result is stored on with ``--database``.
    settings : AnalysisSettings
    origin : str
        Where the job came from, for messages (``"manifest.csv, line 4"`` or the path).
    """

    video: Path
    sample: str
    group: str
    settings: AnalysisSettings
    lot: str | None = None
    origin: str = field(default="", compare=False)
