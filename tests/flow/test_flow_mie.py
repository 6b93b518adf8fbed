"""Mie scattering: amplitudes, collection integral, Rayleigh limit, coated spheres."""

from __future__ import annotations

import math

import miepython
import numpy as np
import pytest

from exotrace.errors import InvalidInput
from exotrace.flow import (
    CollectionOptics,
    ParticleModel,
    coated_sphere_coefficients,
    collected_cross_section_nm2,
    homogeneous_sphere_coefficients,
    scattering_amplitudes,
    water_index,
)

# Around the beam axis the pattern is symmetric in azimuth: a few azimuths are exact.
FULL = CollectionOptics(half_angle_deg=180.0, axis_deg=0.0, n_polar=96, n_azimuth=8)


def _total_cross_section(m, x):
    # wavelength 2 pi and medium 1 make k = 1: the cross-section is Qsca * pi * x^2.
    return float(collected_cross_section_nm2([homogeneous_sphere_coefficients(m, x)],
                                             wavelength_nm=2 * math.pi, medium_index=1.0,
                                             optics=FULL)[0])


def test_full_sphere_integral_reproduces_bohren_huffman_bhmie_example():
    # Bohren & Huffman Appendix A: n = 1.55, radius 0.525 um, wavelength 0.6328 um
    # (x = 5.213) gives QSCA = 3.10543 (printed to 6 digits).
    x = 2 * math.pi * 0.525 / 0.6328
    q = _total_cross_section(1.55, x) / (math.pi * x**2)
    assert q == pytest.approx(3.10543, abs=2e-4)


@pytest.mark.parametrize(("m", "x"), [(1.05, 0.3), (1.2, 2.0), (1.59 / 1.333, 3.5), (1.33, 10.0)])
def test_full_sphere_integral_equals_miepython_efficiency(m, x):
    qsca = float(miepython.efficiencies_mx(m, x)[1])
    # Gauss-Legendre with 96 nodes integrates the angular pattern far below 1e-6.
    assert _total_cross_section(m, x) == pytest.approx(qsca * math.pi * x**2, rel=1e-6)


def test_amplitudes_match_miepython():
    mu = np.linspace(-1, 1, 13)
    for m, x in ((1.2, 2.0), (1.05, 8.0)):
        a, b = homogeneous_sphere_coefficients(m, x)
        s1, s2 = scattering_amplitudes(a, b, mu)
        ref1, ref2 = miepython.S1_S2(m, x, mu, norm="wiscombe")  # Bohren & Huffman scaling
        # miepython returns the amplitudes of the opposite time convention (complex
        # conjugates); intensities |S|^2, all that scattering into a detector needs, agree.
        np.testing.assert_allclose(s1, np.conj(ref1), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(s2, np.conj(ref2), rtol=1e-9, atol=1e-12)


def test_rayleigh_limit_scales_as_d6_and_matches_the_dipole_formula():
    model = ParticleModel(index=1.45)
    side = CollectionOptics(half_angle_deg=30.0)
    c = model.cross_section_nm2([5.0, 10.0, 20.0], wavelength_nm=488.0, medium_index=1.333,
                                optics=side)
    # d^6, with the first Mie correction O(x^2): x = 0.04 at 10 nm, 0.17 at 20 nm.
    low, high = c[1] / c[0], c[2] / c[1]
    assert low == pytest.approx(64.0, rel=2e-3)
    assert high == pytest.approx(64.0, rel=1.5e-2)
    # Doubling every diameter quadruples x^2, hence the deficit from 64.
    assert (64.0 - high) / (64.0 - low) == pytest.approx(4.0, rel=0.1)
    full = model.cross_section_nm2([10.0], wavelength_nm=488.0, medium_index=1.333, optics=FULL)[0]
    k = 2 * math.pi * 1.333 / 488.0
    m = 1.45 / 1.333
    rayleigh = 8 * math.pi / 3 * k**4 * 5.0**6 * ((m * m - 1) / (m * m + 2)) ** 2
    assert full == pytest.approx(rayleigh, rel=5e-3)  # x = 0.086: O(x^2) ~ 0.7 % correction


def test_linear_polarization_geometry():
    model = ParticleModel(index=1.45)
    kw = dict(wavelength_nm=488.0, medium_index=1.333)
    narrow = dict(half_angle_deg=5.0, n_polar=16, n_azimuth=32)
    along = model.cross_section_nm2([20.0], optics=CollectionOptics(
        polarization="linear", axis_azimuth_deg=0.0, **narrow), **kw)[0]
    across = model.cross_section_nm2([20.0], optics=CollectionOptics(
        polarization="linear", axis_azimuth_deg=90.0, **narrow), **kw)[0]
    unpol = model.cross_section_nm2([20.0], optics=CollectionOptics(**narrow), **kw)[0]
    # A dipole does not radiate along its field: a 5-degree cone there collects
    # ~sin^2(5 deg)/2 of what the perpendicular one does.
    assert along / across < 0.01
    # Unpolarized light is the mean of two orthogonal polarizations.
    assert unpol == pytest.approx(0.5 * (along + across), rel=1e-9)


def test_water_index():
    assert water_index(404.7) == pytest.approx(1.34284, abs=2e-4)
    assert water_index(589.3) == pytest.approx(1.3330, abs=2e-4)
    assert water_index(488.0) < water_index(405.0)
    with pytest.raises(InvalidInput):
        water_index(1500.0)


@pytest.mark.parametrize("kwargs", [{"half_angle_deg": 0.0}, {"half_angle_deg": 200.0},
                                    {"axis_deg": -5.0}, {"polarization": "circular"},
                                    {"half_angle_deg": float("nan")}, {"n_polar": 1}])
def test_bad_optics_are_refused(kwargs):
    with pytest.raises(InvalidInput):
        CollectionOptics(**kwargs)


@pytest.mark.parametrize(("m", "x_core", "x_shell"), [(1.05, 0.5, 1.0), (1.2, 1.0, 2.0),
                                                      (1.1, 3.0, 6.0), (1.035, 5.0, 9.0)])
def test_coated_sphere_with_equal_indices_is_the_homogeneous_sphere(m, x_core, x_shell):
    a, b = coated_sphere_coefficients(m, m, x_core, x_shell)
    ra, rb = miepython.coefficients(m, x_shell)
    n = min(len(a), len(ra))
    np.testing.assert_allclose(a[:n], ra[:n], rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(b[:n], rb[:n], rtol=1e-9, atol=1e-13)


def test_vanishing_shell_and_vanishing_core_limits():
    ra, rb = miepython.coefficients(1.2, 2.0)
    a, b = coated_sphere_coefficients(1.2, 1.5, 2.0 * (1 - 1e-9), 2.0)  # shell 1e-9 thick
    np.testing.assert_allclose(a[: len(ra)], ra, atol=1e-7)
    np.testing.assert_allclose(b[: len(rb)], rb, atol=1e-7)
    sa, sb = miepython.coefficients(1.5, 2.0)
    a, b = coated_sphere_coefficients(1.2, 1.5, 1e-4, 2.0)  # a core of 1/20000 the radius
    np.testing.assert_allclose(a[: len(sa)], sa, atol=1e-9)
    np.testing.assert_allclose(b[: len(sb)], sb, atol=1e-9)


def test_coated_vesicle_scatters_between_its_core_and_membrane_materials():
    optics = CollectionOptics(half_angle_deg=30.0)
    kw = dict(wavelength_nm=405.0, medium_index=1.343, optics=optics)
    d = [80.0, 150.0]
    coated = ParticleModel(kind="coated", core_index=1.38, shell_index=1.48,
                           shell_thickness_nm=5.0).cross_section_nm2(d, **kw)
    core_only = ParticleModel(index=1.38).cross_section_nm2(d, **kw)
    membrane_only = ParticleModel(index=1.48).cross_section_nm2(d, **kw)
    assert np.all(core_only < coated) and np.all(coated < membrane_only)
    # A shell thicker than the radius leaves a sphere of membrane.
    tiny = ParticleModel(kind="coated", shell_thickness_nm=10.0)
    np.testing.assert_allclose(tiny.cross_section_nm2([15.0], **kw),
                               ParticleModel(index=1.48).cross_section_nm2([15.0], **kw))


def test_coated_coefficients_refuse_a_core_larger_than_the_particle():
    with pytest.raises(InvalidInput):
        coated_sphere_coefficients(1.4, 1.5, 2.0, 1.0)
    with pytest.raises(InvalidInput):
        ParticleModel(kind="lipid")
    with pytest.raises(InvalidInput):
        ParticleModel(index=0.5)
