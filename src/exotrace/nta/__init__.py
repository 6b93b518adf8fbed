"""Nanoparticle tracking analysis: video -> detections -> tracks -> sizes -> concentration."""

from ._types import Acquisition, Detections, Tracks

__all__ = ["Acquisition", "Detections", "Tracks"]
