"""Particle models and the scatter-versus-diameter curve that is inverted to size events.

A curve is the collected cross-section (nm^2) of a particle model on a
diameter grid. Mie oscillations make it non-monotonic for large particles, so
it is split into monotonic pieces and every scatter value is looked up in all
of them: one diameter (or several within ``ambiguity_tolerance`` of each
other) sizes the event; solutions further apart make it ambiguous and it is
left unsized.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from ..errors import InvalidInput
from ._mie import (
    CollectionOptics,
    coated_sphere_coefficients,
    collected_cross_section_nm2,
    homogeneous_sphere_coefficients,
)

__all__ = ["SIZED", "ABOVE_RANGE", "AMBIGUOUS", "BELOW_RANGE", "ParticleModel", "ScatterCurve"]

SIZED, BELOW_RANGE, ABOVE_RANGE, AMBIGUOUS = 0, 1, 2, 3


@dataclass(frozen=True)
class ParticleModel:
    """Optical model of a particle.

    Parameters
    ----------
    kind : {"homogeneous", "coated"}
        A homogeneous sphere of ``index``, or a core of ``core_index`` inside a shell
        (membrane) of ``shell_index`` and ``shell_thickness_nm``.
    index : float
        Effective index of a homogeneous sphere (EVs: 1.37-1.42; default 1.40).
    core_index, shell_index, shell_thickness_nm : float
        Coated model (EVs: core ~1.38, membrane ~1.46-1.48, 4-5 nm thick).
    """

    kind: str = "homogeneous"
    index: float = 1.40
    core_index: float = 1.38
    shell_index: float = 1.48
    shell_thickness_nm: float = 5.0

    def __post_init__(self) -> None:
        if self.kind not in ("homogeneous", "coated"):
            raise InvalidInput(f"particle model must be 'homogeneous' or 'coated', got {self.kind!r}")
        for name in ("index", "core_index", "shell_index"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and 1.0 <= v <= 3.0):
                raise InvalidInput(f"{name.replace('_', ' ')} must be a refractive index "
                                   f"between 1 and 3, got {v}")
        t = self.shell_thickness_nm
        if not (isinstance(t, (int, float)) and math.isfinite(t) and 0.0 <= t <= 100.0):
            raise InvalidInput(f"shell thickness must lie in [0, 100] nm, got {t}")

    def describe(self) -> str:
        if self.kind == "homogeneous":
            return f"homogeneous sphere n={self.index:g}"
        return (f"coated sphere core n={self.core_index:g}, shell n={self.shell_index:g} "
                f"{self.shell_thickness_nm:g} nm")

    def to_dict(self) -> dict:
        return asdict(self)

    def coefficients(self, diameter_nm: float, *, wavelength_nm: float, medium_index: float):
        """Mie coefficients ``(a, b)`` of one particle of ``diameter_nm`` in the medium."""
        k = math.pi * medium_index / wavelength_nm
        if self.kind == "homogeneous":
            return homogeneous_sphere_coefficients(self.index / medium_index, k * diameter_nm)
        core_nm = diameter_nm - 2.0 * self.shell_thickness_nm
        if core_nm <= 0:
            return homogeneous_sphere_coefficients(self.shell_index / medium_index, k * diameter_nm)
        return coated_sphere_coefficients(self.core_index / medium_index,
                                          self.shell_index / medium_index,
                                          k * core_nm, k * diameter_nm)

    def cross_section_nm2(self, diameters_nm, *, wavelength_nm: float, medium_index: float,
                          optics: CollectionOptics) -> np.ndarray:
        """Collected scattering cross-section of each diameter, nm^2."""
        d = np.atleast_1d(np.asarray(diameters_nm, dtype=float))
        coeffs = [self.coefficients(v, wavelength_nm=wavelength_nm, medium_index=medium_index)
                  for v in d]
        return collected_cross_section_nm2(coeffs, wavelength_nm=wavelength_nm,
                                           medium_index=medium_index, optics=optics)


@lru_cache(maxsize=16)
def _curve(model, wavelength_nm, medium_index, optics, lo, hi, step_nm):
    # A 1-nm curve to 1000 nm costs ~1 s of Mie sums; sessions reuse a few models.
    d = np.arange(lo, hi + 0.5 * step_nm, step_nm)
    c = model.cross_section_nm2(d, wavelength_nm=wavelength_nm, medium_index=medium_index,
                                optics=optics)
    d.flags.writeable = False
    c.flags.writeable = False
    return d, c


@dataclass(frozen=True)
class ScatterCurve:
    """Collected cross-section on a diameter grid, and its inversion.

    Attributes
    ----------
    diameter_nm : ndarray, shape (G,)
        Ascending grid.
    cross_section_nm2 : ndarray, shape (G,)
    ambiguity_tolerance : float
        Solutions whose spread is at most this fraction of the smallest count as one
        size (their mean is taken).
    scatter_uncertainty : float
        Relative uncertainty of a measured scatter value used to call it ambiguous.
    """

    diameter_nm: np.ndarray
    cross_section_nm2: np.ndarray
    ambiguity_tolerance: float = 0.1
    scatter_uncertainty: float = 0.05

    @classmethod
    def compute(cls, model: ParticleModel, *, wavelength_nm: float, medium_index: float,
                optics: CollectionOptics, diameter_range_nm=(20.0, 1000.0), step_nm: float = 1.0,
                ambiguity_tolerance: float = 0.1, scatter_uncertainty: float = 0.05) -> ScatterCurve:
        lo, hi = (float(v) for v in diameter_range_nm)
        if not (math.isfinite(lo) and math.isfinite(hi) and 1.0 <= lo < hi <= 20000.0):
            raise InvalidInput(f"diameter range must satisfy 1 <= min < max <= 20000 nm, "
                               f"got {lo}, {hi}")
        if not (math.isfinite(step_nm) and 0.01 <= step_nm <= (hi - lo) / 2):
            raise InvalidInput(f"diameter step must lie in [0.01, {(hi - lo) / 2:g}] nm, got {step_nm}")
        if (hi - lo) / step_nm > 20000:
            raise InvalidInput("diameter grid too fine: at most 20000 points")
        if not (math.isfinite(ambiguity_tolerance) and 0 <= ambiguity_tolerance <= 1):
            raise InvalidInput(f"ambiguity tolerance must lie in [0, 1], got {ambiguity_tolerance}")
        if not (math.isfinite(scatter_uncertainty) and 0 <= scatter_uncertainty < 1):
            raise InvalidInput(f"scatter uncertainty must lie in [0, 1), got {scatter_uncertainty}")
        d, c = _curve(model, float(wavelength_nm), float(medium_index), optics, lo, hi,
                      float(step_nm))
        return cls(d, c, ambiguity_tolerance, scatter_uncertainty)

    def _pieces(self) -> list[tuple[int, int]]:
        c = self.cross_section_nm2
        sign = np.sign(np.diff(c))
        # Flat steps belong to the piece before them.
        for i in range(1, sign.size):
            if sign[i] == 0:
                sign[i] = sign[i - 1]
        cuts = [0] + [i + 1 for i in range(sign.size - 1) if sign[i] != sign[i + 1]] + [c.size - 1]
        return [(cuts[k], cuts[k + 1]) for k in range(len(cuts) - 1)]

    def invert(self, cross_section_nm2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Diameters (nm, nan where unsized), a status, and the smallest solution per value.

        Status: ``SIZED`` (0), ``BELOW_RANGE`` (1, less scatter than the smallest
        diameter of the grid), ``ABOVE_RANGE`` (2, more than any diameter of the grid),
        ``AMBIGUOUS`` (3). A value is ambiguous when the scatter values within
        ``scatter_uncertainty`` of it reach monotonic pieces of the curve whose
        diameters lie further apart than ``ambiguity_tolerance``: near a Mie maximum
        a little noise lifts a particle over the top, where only a much larger
        diameter scatters as much. The smallest such diameter (nan where none)
        bounds an ambiguous particle from below.
        """
        s = np.asarray(cross_section_nm2, dtype=float)
        s_lo, s_hi = s * (1.0 - self.scatter_uncertainty), s * (1.0 + self.scatter_uncertainty)
        d, c = self.diameter_nm, self.cross_section_nm2
        count = np.zeros(s.shape, dtype=np.int64)
        total = np.zeros(s.shape)
        w_count = np.zeros(s.shape, dtype=np.int64)
        w_min = np.full(s.shape, np.inf)
        w_max = np.full(s.shape, -np.inf)
        for i0, i1 in self._pieces():
            cp, dp = c[i0:i1 + 1], d[i0:i1 + 1]
            if cp[-1] < cp[0]:
                cp, dp = cp[::-1], dp[::-1]
            near = (s_hi >= cp[0]) & (s_lo <= cp[-1])
            if not np.any(near):
                continue
            rep = np.interp(np.clip(s[near], cp[0], cp[-1]), cp, dp)
            w_count[near] += 1
            w_min[near] = np.minimum(w_min[near], rep)
            w_max[near] = np.maximum(w_max[near], rep)
            hit = (s >= cp[0]) & (s <= cp[-1])
            count[hit] += 1
            total[hit] += np.interp(s[hit], cp, dp)
        status = np.full(s.shape, SIZED, dtype=np.int64)
        status[(count == 0) & (s < c[0])] = BELOW_RANGE
        status[(count == 0) & (s >= c[0])] = ABOVE_RANGE
        with np.errstate(invalid="ignore", divide="ignore"):
            spread = (w_max - w_min) / w_min
            ambiguous = (w_count > 1) & (spread > self.ambiguity_tolerance)
            status[ambiguous & (count > 0)] = AMBIGUOUS
            out = np.where(status == SIZED, total / np.maximum(count, 1), np.nan)
            lowest = np.where(w_count > 0, w_min, np.nan)
        return out, status, lowest

    def diameter_at(self, cross_section_nm2: float) -> float | None:
        """Smallest diameter whose cross-section reaches the value (nm), None if none does."""
        c, d = self.cross_section_nm2, self.diameter_nm
        idx = np.flatnonzero(c >= cross_section_nm2)
        if idx.size == 0:
            return None
        i = int(idx[0])
        if i == 0:
            return float(d[0])
        f = (cross_section_nm2 - c[i - 1]) / (c[i] - c[i - 1])
        return float(d[i - 1] + f * (d[i] - d[i - 1]))

    def ambiguous_ranges_nm(self) -> list[tuple[float, float]]:
        """Diameter intervals whose scatter is shared by a diameter further than the tolerance."""
        _, status, _ = self.invert(self.cross_section_nm2)
        bad = status == AMBIGUOUS
        out: list[tuple[float, float]] = []
        i = 0
        while i < bad.size:
            if bad[i]:
                j = i
                while j + 1 < bad.size and bad[j + 1]:
                    j += 1
                out.append((float(self.diameter_nm[i]), float(self.diameter_nm[j])))
                i = j + 1
            else:
                i += 1
        return out
