"""Zeta-potential (``Type of Measurement: Profile``) runs of the ZetaView.

The instrument tracks particles at several depths of the cell while an electric
field is applied; electro-osmosis makes the velocity a parabola of depth, and
at the stationary layers the velocity is the particles' own electrophoretic
velocity. The file gives the fitted parabola, the electrophoretic mobility, the
zeta potential the software derived from it, and the ``ZP Profile`` table
(depth, velocity, traces).

Reported value: zeta potential normalised to 25 C. From the mobility mu_T
measured at the cell temperature T (Smoluchowski, kappa a >> 1):
mu_25 = mu_T eta(T) / eta(25 C) (viscosity scaling of the mobility) and
zeta_25 = mu_25 eta(25 C) / (eps0 eps_r(25 C)) = mu_T eta(T) / (eps0 eps_r(25 C)),
with water's viscosity (:func:`exotrace.physics.water_viscosity_cp`) and
relative permittivity (Malmberg & Maryott 1956). Without a mobility the
file's own zeta potential is reported, with a warning that its temperature
basis is not known.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import FileFormatError
from ..physics import water_viscosity_cp
from ._zetaview_text import Header, read_rows, split_cells

__all__ = ["VACUUM_PERMITTIVITY_F_PER_M", "read_profile", "water_relative_permittivity",
           "zeta_mv_at_25c"]

VACUUM_PERMITTIVITY_F_PER_M = 8.8541878128e-12
MOBILITY_SI_PER_UM_CM_PER_V_S = 1e-8  # (um/s)/(V/cm) -> m^2/(V s)
_ZP_KEYS = ("Zeta Potential / mV", "Zeta Potential", "ZP / mV", "ZP")
_MOBILITY_KEYS = ("Mobility / \u00b5m cm / V s", "Mobility / um cm / V s", "Mobility / \u00b5mcm/Vs",
                  "Mobility")
# The vendor's value and ours differ by the temperature normalisation only
# (eps_r changes 0.46 %/K); beyond this the file is inconsistent.
ZP_AGREEMENT = 0.05


def water_relative_permittivity(temperature_c: float) -> float:
    """Relative permittivity of water at ``temperature_c`` (0-100 C; Malmberg & Maryott 1956)."""
    t = float(temperature_c)
    return 87.740 - 0.40008 * t + 9.398e-4 * t**2 - 1.410e-6 * t**3


def zeta_mv_at_25c(mobility_um_cm_per_v_s: float, temperature_c: float) -> float:
    """Smoluchowski zeta potential (mV) normalised to 25 C from a mobility measured at ``temperature_c``."""
    mu = mobility_um_cm_per_v_s * MOBILITY_SI_PER_UM_CM_PER_V_S
    eta_pa_s = water_viscosity_cp(temperature_c) * 1e-3
    return 1e3 * mu * eta_pa_s / (VACUUM_PERMITTIVITY_F_PER_M * water_relative_permittivity(25.0))


def _profile_table(lines: list[str], start: int, path) -> dict[str, list[float]] | None:
    head = None
    for i in range(start, min(start + 4, len(lines))):
        cells = [c for c in split_cells(lines[i]) if c]
        if cells and not cells[0][0].isdigit() and cells[0][0] not in "+-.":
            head = (i, cells)
            break
    if head is None:
        return None
    i, names = head
    rows, _ = read_rows(lines, i + 1, len(names), path, table="ZP Profile")
    if rows.shape[0] == 0:
        return None
    return {name: [float(v) for v in rows[:, j]] for j, name in enumerate(names)}


def read_profile(lines: list[str], header: Header, temperature_c: float | None, path,
                 warnings: list[str]) -> dict[str, Any]:
    """Zeta potential, mobility, parabola fit and the ZP Profile table of a profile run.

    Returns
    -------
    dict
        ``zeta_potential_mv`` (normalised to 25 C, see the module notes),
        ``vendor_zeta_potential_mv``, ``mobility_um_cm_per_v_s``, ``parabola_fit``
        (the file's coefficients, as written), ``zp_profile`` (columns of the table).

    Raises
    ------
    FileFormatError
        When the run has neither a zeta potential nor a mobility.
    """
    vendor = header.number(*_ZP_KEYS, path=path)
    mobility = header.number(*_MOBILITY_KEYS, path=path)
    fit = header.find("Parabola Fit", "Parabola")
    start = next((i for i, ln in enumerate(lines) if ln.strip().lower().startswith("zp profile")), None)
    table = None if start is None else _profile_table(lines, start + 1, path)
    if vendor is None and mobility is None:
        hit = header.find(*_ZP_KEYS)
        raise FileFormatError(path, "profile run without a zeta potential or mobility value",
                              line=hit.line if hit else None, field="Zeta Potential / mV")
    zeta = vendor
    if mobility is not None and temperature_c is not None:
        zeta = zeta_mv_at_25c(mobility, temperature_c)
        if vendor is not None and abs(vendor) > 1.0 and abs(zeta - vendor) > ZP_AGREEMENT * abs(vendor):
            warnings.append(f"zeta potential {vendor:.2f} mV in the file differs from "
                            f"{zeta:.2f} mV derived from its mobility at 25 C by more than "
                            f"{ZP_AGREEMENT:.0%}")
    elif vendor is not None:
        warnings.append("no mobility or temperature: the file's zeta potential is reported as "
                        "written (its temperature basis is unknown)")
    if zeta is not None and not -500.0 < zeta < 500.0:
        raise FileFormatError(path, f"zeta potential {zeta:.1f} mV is not physical",
                              field="Zeta Potential / mV")
    coefficients = None
    if fit is not None:
        coefficients = [float(v) for v in (np.asarray([_num(c) for c in fit.values], dtype=float))
                        if np.isfinite(v)]
    return {"zeta_potential_mv": zeta, "vendor_zeta_potential_mv": vendor,
            "mobility_um_cm_per_v_s": mobility, "parabola_fit": coefficients or None,
            "zp_profile": table}


def _num(cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        return float("nan")
