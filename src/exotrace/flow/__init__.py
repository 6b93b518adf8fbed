"""EV flow cytometry (nano-flow): concentration, Mie scatter-to-size, fluorescence, reporting.

>>> from exotrace.flow import calibrate_scatter, size_events, event_concentration  # doctest: +SKIP
>>> cal = calibrate_scatter("beads.fcs", [100, 200, 300, 500], bead_index=1.59)    # doctest: +SKIP
>>> size_events("sample.fcs", cal, blank="blank.fcs").d50_nm                        # doctest: +SKIP
>>> event_concentration("sample.fcs", blank="blank.fcs", dilution=100).particles_per_ml  # doctest: +SKIP

Simulated sessions with known truth: :mod:`exotrace.flow.simulate`.
"""

from ._calibration import FlowCalibration, calibrate_scatter, pick_scatter_channel
from ._concentration import ConcentrationResult, analysed_volume_nl, event_concentration
from ._events import FlowEvents, load_events
from ._gating import MesfCalibration, PercentPositive, mesf_calibration, percent_positive
from ._mie import (
    CollectionOptics,
    coated_sphere_coefficients,
    collected_cross_section_nm2,
    homogeneous_sphere_coefficients,
    scattering_amplitudes,
    water_index,
)
from ._model import ParticleModel, ScatterCurve
from ._peaks import BeadPeak, find_bead_peaks
from ._powerlaw import ScatterCalibration, scatter_calibration
from ._report import DilutionSeries, FlowReport, dilution_series, flow_report
from ._sizing import FlowSizeResult, size_events

__all__ = [
    "BeadPeak",
    "CollectionOptics",
    "ConcentrationResult",
    "DilutionSeries",
    "FlowCalibration",
    "FlowEvents",
    "FlowReport",
    "FlowSizeResult",
    "MesfCalibration",
    "ParticleModel",
    "PercentPositive",
    "ScatterCalibration",
    "ScatterCurve",
    "analysed_volume_nl",
    "calibrate_scatter",
    "coated_sphere_coefficients",
    "collected_cross_section_nm2",
    "dilution_series",
    "event_concentration",
    "find_bead_peaks",
    "flow_report",
    "homogeneous_sphere_coefficients",
    "load_events",
    "mesf_calibration",
    "percent_positive",
    "pick_scatter_channel",
    "scatter_calibration",
    "scattering_amplitudes",
    "size_events",
    "water_index",
]
