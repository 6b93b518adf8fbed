"""Physical constants and relations used across exotrace.

All functions take and return SI floats (or numpy arrays) unless a name says
otherwise (``temperature_c``, ``viscosity_cp``, ``diameter_nm``); conversion
happens at the edges.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import InvalidInput

__all__ = [
    "BOLTZMANN_J_PER_K",
    "ZERO_CELSIUS_K",
    "celsius_to_kelvin",
    "diameter_nm_from_diffusion",
    "diffusion_m2_per_s_from_diameter",
    "effective_viscosity_pa_s",
    "water_viscosity_cp",
    "water_viscosity_pa_s",
]

BOLTZMANN_J_PER_K = 1.380649e-23  # exact since the 2019 SI redefinition
ZERO_CELSIUS_K = 273.15
CP_PER_PA_S = 1000.0


def _check_temperature_c(temperature_c: float) -> None:
    if not np.all(np.isfinite(temperature_c)):
        raise InvalidInput(f"temperature must be a finite number of degrees C, got {temperature_c}")
    # Liquid water at ambient pressure; NTA cells run 15-45 C. Outside 0-100 C
    # the viscosity formula (and the sample) makes no sense.
    if np.any(np.asarray(temperature_c) <= 0.0) or np.any(np.asarray(temperature_c) >= 100.0):
        raise InvalidInput(
            f"temperature {temperature_c} C is outside liquid water (0-100 C); "
            "give the cell temperature in degrees Celsius"
        )


def celsius_to_kelvin(temperature_c: float) -> float:
    """Convert degrees Celsius to kelvin."""
    return temperature_c + ZERO_CELSIUS_K


def water_viscosity_cp(temperature_c: float) -> float:
    """Dynamic viscosity of water in centipoise at ``temperature_c``.

    Parameters
    ----------
    temperature_c : float or ndarray
        Temperature in degrees Celsius, 0 < T < 100.

    Returns
    -------
    float or ndarray
        Viscosity in cP (mPa s).

    Notes
    -----
    The empirical relation used by NanoSight NTA software, which reproduces the
    viscosities printed in its exports to better than 1 ppm::

        eta(T) = 1.000 cP * 10 ** ((1.3272 (20 - T) - 0.001053 (T - 20)**2) / (T + 105))

    References
    ----------
    .. [1] Kestin, Sokolov & Wakeham, J. Phys. Chem. Ref. Data 7, 941 (1978).
    """
    _check_temperature_c(temperature_c)
    t = np.asarray(temperature_c, dtype=float)
    exponent = (1.3272 * (20.0 - t) - 0.001053 * (t - 20.0) ** 2) / (t + 105.0)
    value = 1.000 * np.power(10.0, exponent)
    return float(value) if value.ndim == 0 else value


def water_viscosity_pa_s(temperature_c: float) -> float:
    """Dynamic viscosity of water in Pa s (see :func:`water_viscosity_cp`)."""
    return water_viscosity_cp(temperature_c) / CP_PER_PA_S


def effective_viscosity_pa_s(temperature_c: float, viscosity_cp: float | None = None) -> float:
    """Viscosity to use: an explicit ``viscosity_cp`` overrides water at ``temperature_c``.

    Parameters
    ----------
    temperature_c : float
        Temperature in degrees Celsius.
    viscosity_cp : float, optional
        Measured or known viscosity of the medium in cP. ``None`` means water.

    Returns
    -------
    float
        Viscosity in Pa s.
    """
    _check_temperature_c(temperature_c)
    if viscosity_cp is None:
        return water_viscosity_pa_s(temperature_c)
    if not math.isfinite(viscosity_cp) or viscosity_cp <= 0:
        raise InvalidInput(f"viscosity must be a positive number of cP, got {viscosity_cp}")
    return viscosity_cp / CP_PER_PA_S


def _stokes_einstein_factor(temperature_c: float, viscosity_pa_s: float) -> float:
    _check_temperature_c(temperature_c)
    if not math.isfinite(viscosity_pa_s) or viscosity_pa_s <= 0:
        raise InvalidInput(f"viscosity must be positive, got {viscosity_pa_s} Pa s")
    return BOLTZMANN_J_PER_K * celsius_to_kelvin(temperature_c) / (3.0 * math.pi * viscosity_pa_s)


def diameter_nm_from_diffusion(
    diffusion_m2_per_s, *, temperature_c: float, viscosity_pa_s: float
):
    """Hydrodynamic diameter from a translational diffusion coefficient.

    Parameters
    ----------
    diffusion_m2_per_s : float or ndarray
        Diffusion coefficient in m^2/s. Non-positive values give ``nan``.
    temperature_c : float
        Temperature in degrees Celsius.
    viscosity_pa_s : float
        Dynamic viscosity of the medium in Pa s.

    Returns
    -------
    float or ndarray
        Diameter in nm.

    Notes
    -----
    Stokes-Einstein: :math:`d = k_B T / (3 \\pi \\eta D)`.
    """
    factor = _stokes_einstein_factor(temperature_c, viscosity_pa_s)
    d = np.asarray(diffusion_m2_per_s, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(d > 0, factor / d * 1e9, np.nan)
    return float(out) if out.ndim == 0 else out


def diffusion_m2_per_s_from_diameter(
    diameter_nm, *, temperature_c: float, viscosity_pa_s: float
):
    """Translational diffusion coefficient (m^2/s) of a sphere of ``diameter_nm``.

    Inverse of :func:`diameter_nm_from_diffusion`.
    """
    factor = _stokes_einstein_factor(temperature_c, viscosity_pa_s)
    d = np.asarray(diameter_nm, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(d > 0, factor / (d * 1e-9), np.nan)
    return float(out) if out.ndim == 0 else out
