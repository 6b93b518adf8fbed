"""Write ZetaView 8.x exports from a known particle population (ground truth for tests/benchmarks).

The files follow what the instrument writes: Windows-1252 (micro sign 0xB5), tab
separated, CRLF, ``Key:<TAB>value<TAB>more`` header lines with ``Dilution::``
and ``NaN``, a ``Results (Pos ...)`` block, and two tables of the same
particles one after the other - linear 5-nm classes (centres 2.5 ... 5997.5 nm,
printed ``2.500E+0``) and, after a row of ``-1.000E+0``, 64 logarithmic
classes per decade (centres 10^(k/64) nm, k = 43 ... 241: 4.70 nm ... 5.83 um).

"Vendor numbers" (what the PDF report would print) are computed from the exact
particle sizes: the sample mean, the 10/50/90 % quantiles, and the measured
concentration and dilution the run was given. A reader is judged on how well it
recovers them from the binned tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CLASSES_PER_DECADE = 64
LOG_K = np.arange(43, 242)
LINEAR_CENTRES_NM = np.arange(2.5, 6000.0, 5.0)  # 1200 classes


def sci(x: float) -> str:
    """ZetaView's number style: ``2.500E+0``, ``-1.000E+0``, ``1.234E-3``."""
    mantissa, exp = f"{x:.3E}".split("E")
    return f"{mantissa}E{int(exp):+d}"


@dataclass
class Run:
    """One simulated run: exact particle sizes and the conditions written to the header."""

    sizes_nm: np.ndarray
    measured_per_ml: float = 3.2e7
    dilution: float = 500.0
    temperature_c: float = 25.13
    sample: str = "EV lot 7 SEC F2"
    date: str = "2025-11-03"
    time: str = "10:42:17"
    positions_used: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 9, 11)
    removed: dict[int, str] = field(default_factory=lambda: {7: "MIN_TRACES", 10: "GRUBBS_NUMBER"})
    seed: int = 0

    @property
    def traces(self) -> int:
        return int(self.sizes_nm.size)


def truth(run: Run) -> dict[str, float | None]:
    """The vendor's numbers for ``run``: exact-sample statistics and concentrations."""
    s = np.asarray(run.sizes_nm, dtype=float)
    if s.size == 0:
        return dict.fromkeys(("mean_nm", "d10_nm", "d50_nm", "d90_nm"), None) | {
            "measured_particles_per_ml": 0.0, "particles_per_ml": 0.0}
    q = np.quantile(s, [0.1, 0.5, 0.9])
    return {"mean_nm": float(s.mean()), "d10_nm": float(q[0]), "d50_nm": float(q[1]),
            "d90_nm": float(q[2]), "measured_particles_per_ml": run.measured_per_ml,
            "particles_per_ml": run.measured_per_ml * run.dilution}


def log_edges_nm() -> np.ndarray:
    return 10.0 ** ((np.arange(LOG_K[0], LOG_K[-1] + 2) - 0.5) / CLASSES_PER_DECADE)


def log_centres_nm() -> np.ndarray:
    return 10.0 ** (LOG_K / CLASSES_PER_DECADE)


def _rows(centres: np.ndarray, counts: np.ndarray, per_particle_cm3: float) -> list[str]:
    out = []
    for c, k in zip(centres, counts, strict=True):
        out.append("\t".join(sci(v) for v in (c, k, k * per_particle_cm3, k * math.pi / 6 * c**3,
                                               k * math.pi * c**2)))
    return out


def _header(run: Run, name: str, kind: str, *, positions: int = 11) -> list[str]:
    avg = run.traces / 20.6 if run.traces else float("nan")
    return [
        f"Original File:\t{name.replace('.txt', '.avi')}\tSection:\t0",
        "Operator:\tQC-2",
        "Experiment:\tEV lot 7",
        "ZetaView S/N:\t19-460\tCell S/N:\tNaN",
        "Camera S/N:\t36919436",
        "Laser:\t488",
        "Software:\tZetaView 8.05.16 SP3",
        "SOP:\tEV_488_size",
        f"Sample:\t{run.sample}",
        "Electrolyte:\tPBS",
        "pH:\t7.0\tentered",
        "Conductivity:\t14830.10\tsensed",
        f"Temperature:\t{run.temperature_c:.6f}\tsensed",
        "Viscosity:\t0.890000",
        f"Date:\t{run.date}",
        f"Time:\t{run.time}",
        "Particle Drift Check Result:\t4.21 \u00b5m/s",
        "Cell Check Result:\tOK",
        f"Type of Measurement:\t{kind}",
        f"Positions:\t{positions}",
        "Microscope Position:\thigh",
        (f"Number of Traces:\t{run.traces}\t(at 0.099990)\tAverage Number of Particles:\t"
         f"{avg:.6f}\tDilution::\t{run.dilution:.6f}").replace("nan", "NaN"),
        "Conversion Factor:\t1.000000E+5\tNaN",
        "Minimum Brightness:\t30",
        "Maximum Brightness:\t255",
        "Minimum Area:\t10",
        "Maximum Area:\t1000",
        "Tracking Radius2:\t100",
        "Minimum Tracelength:\t15",
        "Camera:\tFpSec 30 #Cycles 3 FRate 30.000000",
        "Sensitivity:\t80.000000",
        "Shutter:\t100",
        "Laser Wavelength nm:\t488.000000",
        "Micrometer per Pixel:\t0.713000",
        "Focus:\tNaN",
        "",
    ]


def size_file(run: Run, name: str, *, log_table: bool = True) -> bytes:
    """The ``..._size_488.txt`` bytes of ``run``."""
    s = np.asarray(run.sizes_nm, dtype=float)
    t = truth(run)
    per_particle = run.measured_per_ml / s.size if s.size else 0.0
    lin_counts, _ = np.histogram(s, bins=np.arange(0.0, 6005.0, 5.0))
    log_counts, _ = np.histogram(s, bins=log_edges_nm())
    vol_median = 0.0
    if s.size:
        order = np.sort(s)
        cum = np.cumsum(order**3)
        vol_median = float(order[np.searchsorted(cum, cum[-1] / 2)])
    lines = _header(run, name, "Size") + [
        f"Results (Pos 1-{len(run.positions_used) + len(run.removed)})",
        f"Median Number (D50):\t{(t['d50_nm'] or 0.0):.6f}\tnm",
        f"Median Concentration (D50):\t{(t['d50_nm'] or 0.0):.6f}\tnm",
        f"Median Volume (D50):\t{vol_median:.6f}\tnm",
        "",
        "Size Distribution",
        "Size / nm\tNumber\tConcentration / cm-3\tVolume / nm^3\tArea / nm^2",
        *_rows(LINEAR_CENTRES_NM, lin_counts.astype(float), per_particle),
    ]
    if log_table:
        lines.append("\t".join([sci(-1.0)] * 5))
        lines += _rows(log_centres_nm(), log_counts.astype(float), per_particle)
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def positions_file(run: Run, name: str) -> bytes:
    """The per-position table (``..._size_488_11pos.txt``): used positions average to the run's concentration."""
    rng = np.random.default_rng(run.seed + 1)
    n = len(run.positions_used) + len(run.removed)
    conc = run.measured_per_ml * rng.lognormal(0.0, 0.08, n)
    used = np.array([p in run.positions_used for p in range(1, n + 1)])
    if used.any():
        conc[used] *= run.measured_per_ml / conc[used].mean()
    traces = np.maximum(1, np.round(run.traces / max(used.sum(), 1) * conc / run.measured_per_ml)).astype(int)
    lines = _header(run, name, "Size") + [
        "Use\tPosition\tMean Int.\tAv. No of Particles\tConc. (p./mL)\tOrig. Conc. (p./cm^3)\t"
        "No. of Traces\tX50 (nm)\tPeak (nm)\tSpan\tDrift (um/s)\tRemoval"]
    d50 = truth(run)["d50_nm"] or 0.0
    for p in range(1, n + 1):
        reason = run.removed.get(p, "")
        tr = 3 if reason == "MIN_TRACES" else int(traces[p - 1])
        lines.append("\t".join([
            "1" if used[p - 1] else "0", str(p), f"{rng.normal(42, 3):.2f}",
            f"{conc[p - 1] / 1.2e6:.4f}", sci(conc[p - 1]), sci(conc[p - 1] * run.dilution), str(tr),
            f"{d50 * rng.normal(1, 0.03):.1f}", f"{d50 * rng.normal(0.95, 0.03):.1f}",
            f"{rng.normal(0.9, 0.05):.3f}", f"{rng.normal(4.0, 0.5):.2f}", reason]))
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def profile_file(run: Run, name: str, *, mobility_um_cm_per_v_s: float = -1.9,
                 vendor_zeta_mv: float | None = None) -> bytes:
    """A zeta-potential profile run: mobility, the vendor's ZP, parabola fit and ZP Profile table."""
    rng = np.random.default_rng(run.seed + 2)
    depth = np.linspace(-400.0, 400.0, 11)
    a0, a2 = 12.0, -5.0e-5
    velocity = a0 + a2 * depth**2 + rng.normal(0, 0.3, depth.size)
    zp = "NaN" if vendor_zeta_mv is None else f"{vendor_zeta_mv:.6f}"
    lines = _header(run, name, "Profile") + [
        "Results",
        f"Zeta Potential / mV:\t{zp}\tStdDev:\t3.120000",
        f"Mobility / \u00b5m cm / V s:\t{mobility_um_cm_per_v_s:.6f}\tStdDev:\t0.240000",
        f"Parabola Fit:\t{sci(a0)}\t{sci(0.0)}\t{sci(a2)}",
        "Electric Field / V/cm:\t10.000000",
        "",
        "ZP Profile",
        "Position / \u00b5m\tVelocity / \u00b5m/s\tNumber of Traces",
        *[f"{x:.1f}\t{v:.4f}\t{int(rng.integers(20, 60))}" for x, v in zip(depth, velocity, strict=True)],
    ]
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def lognormal_run(*, n: int = 2000, median_nm: float = 110.0, sigma: float = 0.35, seed: int = 21,
                  **kwargs) -> Run:
    rng = np.random.default_rng(seed)
    return Run(sizes_nm=rng.lognormal(math.log(median_nm), sigma, n), seed=seed, **kwargs)


def write_run(folder: Path, stem: str, run: Run) -> tuple[Path, Path]:
    """Write ``<stem>.txt`` and its ``<stem>_11pos.txt`` position table; return both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    size = folder / f"{stem}.txt"
    pos = folder / f"{stem}_11pos.txt"
    size.write_bytes(size_file(run, size.name))
    pos.write_bytes(positions_file(run, pos.name))
    return size, pos
