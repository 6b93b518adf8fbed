"""Particle:protein ratio and the Webber & Clayton bands, boundaries included."""

from __future__ import annotations

import math

import numpy as np
import pytest

from exotrace.characterization import PurityBand, purity_band, purity_ratio
from exotrace.errors import InvalidInput

# One part in 1e9 moves a value off a boundary while staying far above float rounding
# (relative spacing of doubles is ~2e-16).
EPS = 1e-9


@pytest.mark.parametrize(
    ("ratio", "band"),
    [
        (3e10 * (1 + EPS), PurityBand.HIGH),
        (1e12, PurityBand.HIGH),
        (3e10, PurityBand.BETWEEN),            # 3e10 itself is not "> 3e10"
        (2.5e10, PurityBand.BETWEEN),          # upper gap
        (2e10 * (1 + EPS), PurityBand.BETWEEN),
        (2e10, PurityBand.LOW),                # low band is closed at both ends
        (1e10, PurityBand.LOW),
        (2e9, PurityBand.LOW),
        (2e9 * (1 - EPS), PurityBand.BETWEEN),
        (1.75e9, PurityBand.BETWEEN),          # lower gap
        (1.5e9, PurityBand.BETWEEN),           # 1.5e9 itself is not "< 1.5e9"
        (1.5e9 * (1 - EPS), PurityBand.IMPURE),
        (1e8, PurityBand.IMPURE),
        (0.0, PurityBand.IMPURE),
    ],
)
def test_band_boundaries(ratio, band):
    assert purity_band(ratio)[0] is band


def test_between_bands_names_its_neighbours():
    assert "high purity" in purity_band(2.5e10)[1] and "low purity" in purity_band(2.5e10)[1]
    assert "impure" in purity_band(1.75e9)[1] and "low purity" in purity_band(1.75e9)[1]


@pytest.mark.parametrize(
    ("particles", "protein", "band"),
    [
        (6e10, 2.0, PurityBand.BETWEEN),   # exactly 3e10 (division by 2 is exact)
        (4e10, 2.0, PurityBand.LOW),       # exactly 2e10
        (4e9, 2.0, PurityBand.LOW),        # exactly 2e9
        (3e9, 2.0, PurityBand.BETWEEN),    # exactly 1.5e9
        (6.09e12, 100.0, PurityBand.HIGH),
    ],
)
def test_ratio_at_exact_boundaries(particles, protein, band):
    result = purity_ratio(particles, protein, particle_method="NTA", protein_method="micro-BCA")
    assert result.particles_per_ug == particles / protein
    assert result.band is band
    assert result.unit == "particles/ug protein"


def test_methods_units_and_note_are_carried():
    r = purity_ratio(6e11, 12.0, particle_method="NTA (NS300)", protein_method="micro-BCA")
    assert r.particles_per_ug == pytest.approx(5e10, rel=1e-15)
    assert (r.particles_per_ml, r.protein_ug_per_ml) == (6e11, 12.0)
    assert (r.particle_method, r.protein_method) == ("NTA (NS300)", "micro-BCA")
    assert any("depends on the methods" in n for n in r.notes)
    assert not any("State both methods" in n for n in r.notes)
    bare = purity_ratio(6e11, 12.0)
    assert bare.particle_method == "not stated"
    assert any("State both methods" in n for n in bare.notes)


def test_numpy_scalars_accepted():
    r = purity_ratio(np.float32(4e9), np.int64(2))
    assert r.band is PurityBand.LOW


@pytest.mark.parametrize("protein", [0, 0.0, -1.0, math.nan, math.inf, "abc", None, True])
def test_invalid_protein(protein):
    with pytest.raises(InvalidInput) as err:
        purity_ratio(1e10, protein)
    assert "\n" not in str(err.value)
    assert "protein" in str(err.value)


@pytest.mark.parametrize("particles", [-1.0, math.nan, math.inf, "x"])
def test_invalid_particles(particles):
    with pytest.raises(InvalidInput, match="particles"):
        purity_ratio(particles, 10.0)


def test_zero_particles_is_impure_with_a_warning():
    r = purity_ratio(0, 10.0)
    assert r.band is PurityBand.IMPURE
    assert any("No particles" in n for n in r.notes)


def test_overflowing_ratio_is_rejected():
    with pytest.raises(InvalidInput, match="overflows"):
        purity_ratio(1e308, 1e-300)
