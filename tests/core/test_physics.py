"""Physics: water viscosity against NanoSight's own exports, Stokes-Einstein round trips."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from exotrace.errors import InvalidInput
from exotrace.physics import (
    BOLTZMANN_J_PER_K,
    diameter_nm_from_diffusion,
    diffusion_m2_per_s_from_diameter,
    effective_viscosity_pa_s,
    water_viscosity_cp,
)


def _temperature_viscosity_rows(path):
    rows = {}
    with open(path, encoding="cp1252", newline="") as fh:
        for row in csv.reader(fh):
            if row and row[0] in ("Temperature/C", "Viscosity/cP"):
                rows[row[0]] = [float(v) for v in row[1:] if v.strip()]
    return rows["Temperature/C"], rows["Viscosity/cP"]


@pytest.mark.parametrize("name", ["beads.csv", "beads2.csv", "nanotest.csv"])
def test_water_viscosity_matches_nanosight_exports(fixtures_dir, name):
    temps, viscs = _temperature_viscosity_rows(fixtures_dir / "nanosight" / name)
    assert len(temps) == len(viscs) > 0
    for t, v in zip(temps, viscs, strict=True):
        # The exports print 6 decimals (<= 5e-7 cP rounding) and 3 decimals of
        # temperature (<= 5e-4 C, ~1e-5 cP): allow 2e-5 cP, i.e. ~20 ppm.
        assert water_viscosity_cp(t) == pytest.approx(v, abs=2e-5)


def test_water_viscosity_is_one_cp_at_20c_and_falls_with_temperature():
    assert water_viscosity_cp(20.0) == pytest.approx(1.0, abs=1e-12)
    t = np.linspace(5, 60, 50)
    assert np.all(np.diff(water_viscosity_cp(t)) < 0)


def test_explicit_viscosity_overrides_water():
    assert effective_viscosity_pa_s(22.0, 1.5) == pytest.approx(1.5e-3)
    assert effective_viscosity_pa_s(22.0) == pytest.approx(water_viscosity_cp(22.0) * 1e-3)


def test_stokes_einstein_hand_value_and_round_trip():
    eta = 0.952941e-3  # water at 22.000 C as NanoSight prints it
    d_nm = 100.0
    expected = BOLTZMANN_J_PER_K * (22.0 + 273.15) / (3 * math.pi * eta * 100e-9)
    diff = diffusion_m2_per_s_from_diameter(d_nm, temperature_c=22.0, viscosity_pa_s=eta)
    assert diff == pytest.approx(expected, rel=1e-12)
    assert diff == pytest.approx(4.535e-12, rel=1e-3)  # ~4.5 um^2/s for 100 nm in water
    back = diameter_nm_from_diffusion(diff, temperature_c=22.0, viscosity_pa_s=eta)
    assert back == pytest.approx(d_nm, rel=1e-12)


def test_non_positive_diffusion_gives_nan_not_negative_sizes():
    out = diameter_nm_from_diffusion(np.array([-1e-12, 0.0, 1e-12]), temperature_c=22,
                                     viscosity_pa_s=1e-3)
    assert np.isnan(out[0]) and np.isnan(out[1]) and out[2] > 0


@pytest.mark.parametrize("temperature_c", [-5.0, 0.0, 100.0, float("nan"), float("inf")])
def test_nonsense_temperature_is_refused(temperature_c):
    with pytest.raises(InvalidInput, match="temperature"):
        water_viscosity_cp(temperature_c)


@pytest.mark.parametrize("viscosity_cp", [0.0, -1.0, float("nan")])
def test_nonsense_viscosity_is_refused(viscosity_cp):
    with pytest.raises(InvalidInput, match="viscosity"):
        effective_viscosity_pa_s(22.0, viscosity_cp)
