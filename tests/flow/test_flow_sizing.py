"""Sizing above the detection limit against the simulator's truth; the curve's inversion."""

from __future__ import annotations

import numpy as np
import pytest

from exotrace.errors import InsufficientData, InvalidInput
from exotrace.flow import ParticleModel, ScatterCurve, size_events
from exotrace.flow._model import ABOVE_RANGE, AMBIGUOUS, BELOW_RANGE, SIZED


def test_median_and_detection_limit_match_truth(session_dir, truth, calibration):
    r = size_events(session_dir / "sample.fcs", calibration, blank=session_dir / "blank.fcs",
                    dilution=truth["sample"]["dilution"])
    t = truth["sample"]
    # The limit maps the threshold through the calibrated model: the scale's 2 %
    # error moves a d^6 curve by ~0.3 %.
    assert r.detection_limit_nm == pytest.approx(t["detection_limit_nm"], rel=0.01)
    # ~70000 sized events; noise blurs sizes by ~2 % near the limit: D50 within 2 %.
    assert r.d50_nm == pytest.approx(t["median_diameter_above_limit_nm"], rel=0.02)
    assert r.sized_events + r.below_limit_events + r.ambiguous_events + r.above_range_events == r.events
    # Nothing is sized below the limit.
    edges = np.asarray(r.bin_edges_nm)
    assert edges[0] == pytest.approx(r.detection_limit_nm)
    # Concentration above the limit: blank-subtracted, within 3 % of the truth (Poisson ~0.4 %,
    # events migrating across the limit by noise ~1-2 %).
    assert r.particles_per_ml_above_limit == pytest.approx(t["particles_above_limit_per_ml"], rel=0.03)
    nd = r.number_distribution()
    assert sum(nd["fraction"]) == pytest.approx(1.0)
    assert len(nd["diameter_nm"]) <= 400
    # The low-contrast EV curve has a Mie maximum near 180 nm at 405 nm / 90 degrees.
    assert r.ambiguous_ranges_nm and 150 < r.ambiguous_ranges_nm[0][0] < 220
    assert r.detection_range_nm == [r.detection_limit_nm, r.ambiguous_ranges_nm[0][0]]


def test_instrument_result_carries_the_shared_keys(session_dir, calibration):
    r = size_events(session_dir / "sample.fcs", calibration, dilution=100.0)
    ir = r.to_instrument_result().to_dict(full=False)
    assert ir["extra"]["number_distribution"]["diameter_nm"] == r.number_distribution()["diameter_nm"]
    assert ir["extra"]["detection_range_nm"] == r.detection_range_nm
    assert ir["extra"]["method"] == "flow" and ir["format"] == "fcs"
    assert ir["d50_nm"] == r.d50_nm and ir["particles_per_ml"] == r.particles_per_ml_above_limit


def test_a_higher_threshold_refuses_smaller_sizes(session_dir, truth, calibration):
    from exotrace.flow.simulate import FlowInstrument

    base = size_events(session_dir / "sample.fcs", calibration)
    high = size_events(session_dir / "sample.fcs", calibration, threshold_au=4000.0)
    # 8x the threshold: more than 8^(1/6) = 1.41x the diameter, as the curve flattens
    # past Rayleigh; the simulator's own optics give the true limit.
    true_limit = FlowInstrument(trigger_threshold_au=4000.0).detection_limit_nm(ParticleModel())
    assert high.detection_limit_nm == pytest.approx(true_limit, rel=0.01)
    assert high.detection_limit_nm > base.detection_limit_nm * 8 ** (1 / 6)
    assert high.below_limit_events > 0.3 * high.events  # counted ...
    assert high.bin_edges_nm[0] == pytest.approx(high.detection_limit_nm)  # ... not sized
    assert high.d10_nm >= high.detection_limit_nm


def test_threshold_beyond_every_size_is_refused(session_dir, calibration):
    with pytest.raises(InsufficientData, match="exceeds the scatter"):
        size_events(session_dir / "sample.fcs", calibration, threshold_au=1e12,
                    diameter_range_nm=(20, 150))


def test_coated_model_sizes_the_same_events(session_dir, truth, calibration):
    coated = size_events(session_dir / "sample.fcs", calibration,
                         model=ParticleModel(kind="coated", core_index=1.38, shell_index=1.48,
                                             shell_thickness_nm=5.0))
    # A coated vesicle scatters like a homogeneous sphere of a slightly higher index,
    # so its detection limit is lower than the 1.40 sphere's.
    homo = size_events(session_dir / "sample.fcs", calibration)
    assert coated.detection_limit_nm < homo.detection_limit_nm
    assert coated.model["kind"] == "coated"


@pytest.mark.parametrize("kwargs", [{"dilution": 0}, {"bin_width_nm": 0.01},
                                    {"diameter_range_nm": (500, 100)}, {"threshold_au": -1.0},
                                    {"ambiguity_tolerance": 2.0}])
def test_bad_sizing_options(session_dir, calibration, kwargs):
    with pytest.raises(InvalidInput):
        size_events(session_dir / "sample.fcs", calibration, **kwargs)


def _curve(c):
    d = np.arange(10.0, 10.0 + len(c))
    return ScatterCurve(d, np.asarray(c, dtype=float), ambiguity_tolerance=0.1, scatter_uncertainty=0.0)


def test_inversion_of_a_monotonic_curve():
    curve = _curve(np.arange(1.0, 101.0) ** 2)
    d, status, _ = curve.invert([0.5, 4.0, 6.25, 10000.0, 20000.0])
    assert list(status) == [BELOW_RANGE, SIZED, SIZED, SIZED, ABOVE_RANGE]
    # Linear between grid points: 6.25 lies 2.25/5 of the way from c(11) = 4 to c(12) = 9.
    assert d[1] == pytest.approx(11.0) and d[2] == pytest.approx(11.45)
    assert curve.diameter_at(6.25) == pytest.approx(11.45)
    assert curve.ambiguous_ranges_nm() == []


def test_inversion_flags_values_shared_by_distant_diameters():
    # rises 1..50 over d = 10..59, falls to 30 at d = 79, rises again to 90 at d = 139
    c = np.concatenate([np.linspace(1, 50, 50), np.linspace(49, 30, 20), np.linspace(31, 90, 60)])
    curve = _curve(c)
    d, status, lowest = curve.invert([20.0, 40.0, 70.0])
    assert status[0] == SIZED and d[0] == pytest.approx(29.0)
    assert status[1] == AMBIGUOUS and np.isnan(d[1]) and lowest[1] == pytest.approx(49.0)
    assert status[2] == SIZED
    lo, hi = curve.ambiguous_ranges_nm()[0]
    assert lo == pytest.approx(39.0, abs=1) and hi == pytest.approx(98.0, abs=1)


def test_scatter_uncertainty_widens_ambiguity_near_a_maximum():
    c = np.concatenate([np.linspace(1, 50, 50), np.linspace(49, 30, 20), np.linspace(31, 90, 60)])
    exact = ScatterCurve(np.arange(10.0, 140.0), c, 0.1, 0.0)
    noisy = ScatterCurve(np.arange(10.0, 140.0), c, 0.1, 0.05)
    # 51 lies just above the first maximum (50): exactly, only a large diameter
    # scatters so much; within 5 % noise it may be a particle at the maximum.
    assert exact.invert([51.0])[1][0] == SIZED
    assert noisy.invert([51.0])[1][0] == AMBIGUOUS


def test_threshold_under_the_model_range_starts_sizes_at_the_range(session_dir, calibration):
    r = size_events(session_dir / "sample.fcs", calibration, threshold_au=1.0,
                    diameter_range_nm=(90.0, 1000.0))
    assert r.detection_limit_nm == 90.0
    assert any("below the model's smallest diameter" in w for w in r.warnings)
    assert r.below_limit_events > 0  # the 79-90 nm vesicles: counted, not sized
    assert r.sized_events + r.below_limit_events + r.ambiguous_events + r.above_range_events == r.events


def test_detector_full_scale_caps_the_sizes(session_dir, calibration):
    from exotrace.flow import load_events

    ev = load_events(session_dir / "sample.fcs")
    full_scale = 60_000.0  # ~ the scatter of a 150 nm vesicle
    capped = type(ev)(file=ev.file, names=ev.names, labels=ev.labels,
                      data=np.minimum(ev.data, full_scale), keywords=ev.keywords,
                      ranges=(full_scale, *ev.ranges[1:]))
    r = size_events(capped, calibration)
    expected_cap = ScatterCurve.compute(ParticleModel(), wavelength_nm=calibration.wavelength_nm,
                                        medium_index=calibration.medium_index,
                                        optics=calibration.optics).diameter_at(
        full_scale / calibration.scale_au_per_nm2)
    assert r.upper_limit_nm == pytest.approx(expected_cap)
    saturated = int(np.count_nonzero(capped.data[:, 0] >= full_scale))
    assert r.above_range_events == saturated > 0
    # Saturated particles are still particles above the limit: the count does not change.
    assert r.particles_per_ml_above_limit == size_events(ev, calibration).particles_per_ml_above_limit
    assert max(r.bin_edges_nm) <= r.upper_limit_nm + r.bin_edges_nm[1] - r.bin_edges_nm[0]
