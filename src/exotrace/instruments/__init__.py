"""Instrument files users bring: NanoSight, ZetaView, flow cytometry (FCS), BCA plates.

Every reader returns the same :class:`InstrumentResult`; :func:`read_file`
detects the format by content and calls the right one.

>>> from exotrace.instruments import read_file          # doctest: +SKIP
>>> r = read_file("beads_ExperimentSummary.csv")         # doctest: +SKIP
>>> r.particles_per_ml, r.mean_nm, r.d90_nm              # doctest: +SKIP
"""

from ._detect import FORMATS, detect_format, read_file
from ._distribution import binned_statistics
from ._fcs import read_fcs
from ._flow import PercentPositive, ScatterCalibration, percent_positive, scatter_calibration
from ._nano import read_nanosight_nano
from ._nanosight import read_nanosight_summary
from ._particles import read_nanosight_particles, read_nanosight_tracks, track_size_statistics
from ._plate_grid import read_protein_grid
from ._protein import fit_standard_curve, read_protein_plate
from ._record import FcsChannel, InstrumentResult, ProteinSample, StandardCurve, VideoResult
from ._zetaview import read_zetaview

__all__ = [
    "FORMATS",
    "FcsChannel",
    "InstrumentResult",
    "PercentPositive",
    "ProteinSample",
    "ScatterCalibration",
    "StandardCurve",
    "VideoResult",
    "binned_statistics",
    "detect_format",
    "fit_standard_curve",
    "percent_positive",
    "read_fcs",
    "read_file",
    "read_nanosight_nano",
    "read_nanosight_particles",
    "read_nanosight_summary",
    "read_nanosight_tracks",
    "read_protein_grid",
    "read_protein_plate",
    "read_zetaview",
    "scatter_calibration",
    "track_size_statistics",
]
