"""Accuracy of exotrace's NTA sizing and concentration on simulated tracks.

Runs the track-level simulator (3-D Brownian motion under a Gaussian light
sheet, 30 ms shutter at 25 fps, brightness ~ d^6, localization noise) on a
full 1280 x 1024 field for several seeds and prints the measured figures
next to the issue's targets:

* CVE vs naive MSD: bias of the mean diffusion coefficient;
* monodisperse 100 nm: D50 error and D90/D10 (EM vs per-track histograms);
* 70/140 nm at 60:40 by number: peak errors and number-fraction error,
  with and without the detection correction;
* log-normal EV-like population: D10/D50/D90 errors;
* concentration after a 100 nm bead calibration, for other sizes.

Usage::

    .venv/bin/python benchmarks/nta_sizing_accuracy.py [--seeds 5] [--frames 600]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from exotrace.nta._sizing_sim import simulate_sample
from exotrace.nta._types import Acquisition
from exotrace.nta.concentration import calibrate, estimate_concentration
from exotrace.nta.diffusion import track_diffusion
from exotrace.nta.sizing import size_distribution
from exotrace.physics import diffusion_m2_per_s_from_diameter, effective_viscosity_pa_s

ACQ = Acquisition(pixel_size_nm=140.0, fps=25.0, temperature_c=22.0, exposure_ms=30.0)
FIELD = (1024, 1280)


def _sim(seed, frames, **kw):
    return simulate_sample(ACQ, n_frames=frames, frame_shape=FIELD, seed=seed, **kw)


def _row(name, values, target, fmt="{:.3f}"):
    v = np.asarray(values, dtype=float)
    print(f"  {name:<44s} mean {fmt.format(v.mean()):>8s}  worst {fmt.format(v[np.argmax(np.abs(v))]):>8s}"
          f"   target {target}")


def bench_diffusion(seeds, frames):
    print("CVE vs MSD (100 nm, 1 px = 140 nm localization noise, 30 ms blur at 25 fps)")
    d0 = diffusion_m2_per_s_from_diameter(100.0, temperature_c=22.0,
                                          viscosity_pa_s=effective_viscosity_pa_s(22.0))
    cve, msd = [], []
    for seed in seeds:
        s = _sim(seed, frames, diameters_nm=(100.0,), particles_per_ml=1e9, localization_px=1.0,
                 fixed_localization=True)
        for method, out in (("cve", cve), ("msd", msd)):
            td = track_diffusion(s.tracks, ACQ, method=method)
            out.append(np.average(td.diffusion_m2_per_s, weights=td.n_steps) / d0 - 1.0)
    _row("CVE relative bias of mean D", cve, "~0 (unbiased)")
    _row("MSD relative bias of mean D", msd, "expected -0.14 (blur -0.25, noise +0.11)")


def bench_mono(seeds, frames):
    print("Monodisperse 100 nm")
    d50, ratio, hist_ratio, n, secs = [], [], [], [], []
    for seed in seeds:
        s = _sim(seed, frames, diameters_nm=(100.0,), particles_per_ml=1e9)
        td = track_diffusion(s.tracks, ACQ)
        t0 = time.perf_counter()
        d = size_distribution(td, ACQ)
        secs.append(time.perf_counter() - t0)
        h = size_distribution(td, ACQ, method="histogram")
        d50.append(d.d50_nm / 100.0 - 1.0)
        ratio.append(d.d90_nm / d.d10_nm)
        hist_ratio.append(h.d90_nm / h.d10_nm)
        n.append(len(td) + len(td.short))
    _row("EM D50 relative error", d50, "|err| <= 0.02")
    _row("EM D90/D10", ratio, "<= 1.20")
    _row("histogram of per-track CVE sizes D90/D10", hist_ratio, "(for comparison)")
    print(f"  tracks used {np.mean(n):.0f}; size_distribution wall time {np.mean(secs):.2f} s")


def bench_mixture(seeds, frames, localization_px=0.3):
    print(f"70/140 nm at 60:40 by number (localization SD {localization_px} px at threshold)")
    p70, p140, frac, frac_raw = [], [], [], []
    for seed in seeds:
        s = _sim(seed, frames, diameters_nm=(70.0, 140.0), fractions=(0.6, 0.4),
                 particles_per_ml=1.5e9, localization_px=localization_px)
        td = track_diffusion(s.tracks, ACQ)
        d = size_distribution(td, ACQ)
        raw = size_distribution(td, ACQ, detection_correction=False)
        valley = np.sqrt(70.0 * 140.0)
        truth = np.mean(s.particle_diameter_nm < valley)
        if len(d.peaks_nm) != 2:
            print(f"  seed {seed}: {len(d.peaks_nm)} peaks found: {d.peaks_nm}")
            continue
        p70.append(d.peaks_nm[0] / 70.0 - 1.0)
        p140.append(d.peaks_nm[1] / 140.0 - 1.0)
        frac.append(d.number_fraction[d.diameter_nm < valley].sum() - truth)
        frac_raw.append(raw.number_fraction[raw.diameter_nm < valley].sum() - truth)
    _row("70 nm peak relative error", p70, "|err| <= 0.07")
    _row("140 nm peak relative error", p140, "|err| <= 0.07")
    _row("70 nm number fraction error (corrected)", frac, "|err| <= 0.10")
    _row("70 nm number fraction error (uncorrected)", frac_raw, "(for comparison)")


def bench_lognormal(seeds, frames):
    print("Log-normal population (median 110 nm, sigma_ln 0.3)")
    sizes = np.geomspace(50.0, 300.0, 60)
    w = np.exp(-0.5 * (np.log(sizes / 110.0) / 0.3) ** 2)
    errs = {"D10": [], "D50": [], "D90": []}
    npeaks = []
    for seed in seeds:
        s = _sim(seed, frames, diameters_nm=sizes, fractions=w / w.sum(), particles_per_ml=3e9,
                 brightness_at_100nm=100.0)
        d = size_distribution(track_diffusion(s.tracks, ACQ), ACQ)
        truth = np.percentile(s.particle_diameter_nm, [10, 50, 90])
        for key, est, tru in zip(errs, (d.d10_nm, d.d50_nm, d.d90_nm), truth, strict=True):
            errs[key].append(est / tru - 1.0)
        npeaks.append(len(d.peaks_nm))
    for key, v in errs.items():
        _row(f"{key} relative error", v, "(no target; small)")
    print(f"  peaks found per run: {npeaks} (1 expected)")


def bench_concentration(seeds, frames):
    print("Concentration after a 100 nm bead calibration")
    cases = {"100 nm": ((100.0,), (1.0,), 2.5e9), "70/140 nm 60:40": ((70.0, 140.0), (0.6, 0.4), 1.5e9),
             "60 nm": ((60.0,), (1.0,), 3e9), "200 nm": ((200.0,), (1.0,), 5e8)}
    errs = {k: [] for k in cases}
    for seed in seeds:
        beads = _sim(1000 + seed, frames, diameters_nm=(100.0,), particles_per_ml=1e9)
        cal = calibrate(beads.tracks, track_diffusion(beads.tracks, ACQ), ACQ,
                        particles_per_ml=beads.realized_particles_per_ml, bead_diameter_nm=100.0)
        for name, (dias, fr, conc) in cases.items():
            s = _sim(seed, frames, diameters_nm=dias, fractions=fr, particles_per_ml=conc)
            td = track_diffusion(s.tracks, ACQ)
            res = estimate_concentration(s.tracks, td, size_distribution(td, ACQ), ACQ,
                                         calibration=cal)
            errs[name].append(res.particles_per_ml / s.realized_particles_per_ml - 1.0)
    for name, v in errs.items():
        _row(f"{name}: relative error", v, "|err| <= 0.10")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=600)
    args = parser.parse_args()
    seeds = list(range(1, args.seeds + 1))
    print(f"exotrace NTA sizing accuracy: {args.seeds} seeds x {args.frames} frames, "
          f"{FIELD[1]}x{FIELD[0]} px, 140 nm/px, 25 fps, 30 ms shutter; "
          f"{platform.machine()} {platform.python_version()}")
    t0 = time.perf_counter()
    bench_diffusion(seeds, args.frames)
    bench_mono(seeds, args.frames)
    bench_mixture(seeds, args.frames)
    bench_mixture(seeds, args.frames, localization_px=2.0)
    bench_lognormal(seeds, args.frames)
    bench_concentration(seeds, args.frames)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
