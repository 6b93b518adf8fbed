"""Accuracy of the exotrace NTA pipeline on simulated videos with known truth.

Scenarios (issue 2): flow drift 3-4 px/frame, exposure 75 % of the frame time
(30 ms at 25 fps), EVs of refractive index 1.39:

1. monodisperse 100 nm: D50 within 2 %, D90/D10 <= 1.20; trackpy's lag-1 MSD
   sizes of the same frames for comparison;
2. 70/140 nm at 60:40 by number: peaks within 7 %, fractions within 0.10;
3. concentration after a bead calibration (100 nm polystyrene of known
   concentration) within 10 %, judged on the mean of 4 bead/sample pairs per
   bit depth against each video's simulated concentration;
4. the same size targets on a crowded field: the CLI's default capture
   (640 x 480 px, 8-bit) at 1e9/mL, the issue's example command, ~60 spots
   per frame in the sheet (~80 detected).

Prints measured vs target. Run: ``.venv/bin/python benchmarks/nta_accuracy.py
[--quick] [--seeds N] [--mix-seeds N] [--conc-seeds N] [--crowded-seeds N]
[--only-crowded] [--only-concentration]``
(about 30 minutes on 2 cores with the defaults: 12 seeds of the 100 nm case,
4 of the mixture per bit depth, 6 of each crowded case).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from exotrace.nta import Acquisition, analyze_tracks, track_frames
from exotrace.nta.concentration import calibrate
from exotrace.nta.diffusion import track_diffusion
from exotrace.nta.simulate import simulate_video
from exotrace.physics import diameter_nm_from_diffusion, water_viscosity_pa_s

FPS = 25.0
EXPOSURE_MS = 30.0  # 75 % of the 40 ms frame interval
ACQ = Acquisition(pixel_size_nm=140.0, fps=FPS, temperature_c=22.0, exposure_ms=EXPOSURE_MS)


def video(seed, *, diameters, fractions=None, ppml, frames, size, index=1.39, drift=(3.5, -1.0),
          bit_depth=8):
    t0 = time.perf_counter()
    v = simulate_video(diameters_nm=diameters, fractions=fractions, particles_per_ml=ppml,
                       n_frames=frames, width_px=size[0], height_px=size[1], fps=FPS,
                       exposure_ms=EXPOSURE_MS, drift_px_per_frame=drift,
                       refractive_index=index, seed=seed, bit_depth=bit_depth)
    print(f"  simulated {frames} frames {size[0]}x{size[1]} in {time.perf_counter() - t0:.0f} s, "
          f"{v.truth['particles_in_view_per_frame']:.0f} particles/frame in the slab")
    return v


def realized_size_nm(v, tracks, drift=(3.5, -1.0)) -> float:
    """Size from the tracked particles' *true* motion (diagnostic).

    Each tracked spot is matched to the simulated particle within 3 px of it
    (tracks are drift-corrected: the simulated flow plus a per-frame median
    offset maps them back). Over the same consecutive lag-1 and lag-3 pairs
    the tracks use, D = (MSD(3) - MSD(1)) / (4 dt) of the true exposure-averaged
    positions is the motion these particles really made: it differs from the
    nominal size's D by the video's sampling (a few hundred particles) and by
    any selection of slow moments by detection and linking.
    """
    from scipy.spatial import cKDTree

    X, Y = v.x_px.astype(np.float64), v.y_px.astype(np.float64)
    xr = tracks.x_px + drift[0] * tracks.frame
    yr = tracks.y_px + drift[1] * tracks.frame
    pid = np.full(len(xr), -1)
    for f in range(tracks.n_frames):
        m = np.flatnonzero(tracks.frame == f)
        if len(m) < 3:
            continue
        tree = cKDTree(np.column_stack([X[f], Y[f]]))
        d, j = tree.query(np.column_stack([xr[m], yr[m]]), distance_upper_bound=20)
        ok = np.isfinite(d)
        if ok.sum() < 3:
            continue
        off = np.median(X[f][j[ok]] - xr[m][ok]), np.median(Y[f][j[ok]] - yr[m][ok])
        d, j = tree.query(np.column_stack([xr[m] + off[0], yr[m] + off[1]]),
                          distance_upper_bound=3)
        ok = np.isfinite(d)
        pid[m[ok]] = j[ok]
    msd = []
    for lag in (1, 3):
        ok = ((tracks.track_id[lag:] == tracks.track_id[:-lag])
              & (tracks.frame[lag:] - tracks.frame[:-lag] == lag)
              & (pid[lag:] >= 0) & (pid[lag:] == pid[:-lag]))
        f0, p = tracks.frame[:-lag][ok], pid[:-lag][ok]
        dx = X[f0 + lag, p] - X[f0, p] - drift[0] * lag
        dy = Y[f0 + lag, p] - Y[f0, p] - drift[1] * lag
        inside = (np.abs(dx) < 60) & (np.abs(dy) < 60)  # not across the periodic wrap
        msd.append(0.5 * np.mean(dx[inside] ** 2 + dy[inside] ** 2))
    d_m2_s = (msd[1] - msd[0]) / (4.0 / FPS) * (ACQ.pixel_size_nm * 1e-9) ** 2
    return float(diameter_nm_from_diffusion(d_m2_s, temperature_c=22.0,
                                            viscosity_pa_s=water_viscosity_pa_s(22.0)))


def trackpy_sizes(frames) -> np.ndarray:
    """Per-track diameters from a trackpy pipeline with lag-1 MSD (the usual recipe)."""
    import trackpy as tp

    tp.quiet()
    f = tp.batch(frames, diameter=11, minmass=300, processes=1)
    t = tp.link(f, search_range=25, memory=1)
    t = tp.filter_stubs(t, 6)
    drift = tp.compute_drift(t)
    t = tp.subtract_drift(t.copy(), drift)
    msd = tp.imsd(t, mpp=ACQ.pixel_size_nm * 1e-3, fps=FPS, max_lagtime=1)
    d_um2_s = msd.iloc[0].to_numpy() / (4 * (1 / FPS))
    return diameter_nm_from_diffusion(d_um2_s * 1e-12, temperature_c=22.0,
                                      viscosity_pa_s=water_viscosity_pa_s(22.0))


def mixture_figures(res, v):
    """Peaks, the peaks nearest 70 and 140 nm, the number fraction below
    sqrt(70 x 140) = 99 nm and the video's simulated 70 nm fraction."""
    peaks = sorted(res.peaks_nm)
    lo = min(peaks, key=lambda p: abs(p - 70)) if len(peaks) >= 2 else float("nan")
    hi = min(peaks, key=lambda p: abs(p - 140)) if len(peaks) >= 2 else float("nan")
    frac_small = float(res.number_fraction[res.diameter_nm < np.sqrt(70 * 140)].sum())
    simulated = float(np.mean(np.asarray(v.truth["component"]) == 0))
    return peaks, lo, hi, frac_small, simulated


def row(name, measured, target, ok):
    print(f"  {name:<34} {measured:<22} target {target:<18} {'PASS' if ok else 'FAIL'}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller videos (less precise)")
    ap.add_argument("--no-trackpy", action="store_true")
    ap.add_argument("--seeds", type=int, default=12, help="100 nm videos averaged (default 12)")
    ap.add_argument("--mix-seeds", type=int, default=4,
                    help="70/140 nm videos averaged per bit depth (default 4)")
    ap.add_argument("--crowded-seeds", type=int, default=6,
                    help="videos per case of the crowded field (default 6)")
    ap.add_argument("--conc-seeds", type=int, default=4,
                    help="bead/sample video pairs per bit depth (default 4)")
    ap.add_argument("--only-crowded", action="store_true", help="run scenario 4 only")
    ap.add_argument("--only-concentration", action="store_true", help="run scenario 3 only")
    args = ap.parse_args()
    if args.only_crowded:
        crowded(args.crowded_seeds)
        return
    frames = 150 if args.quick else 300
    size = (640, 480) if args.quick else (1024, 768)
    if args.only_concentration:
        concentration(args.conc_seeds, frames=frames, size=size)
        return

    print("1. monodisperse 100 nm EVs, drift (3.5, -1.0) px/frame, exposure 30 ms at 25 fps")
    # One video's sizes scatter ~1.2 % (SD) about the truth with the
    # particles' realized motion (a few hundred particles per video), so the
    # targets are judged on the mean over seeds; 12 seeds put its standard
    # error at ~0.35 %, small beside the 2 % target (4 seeds: ~0.6 %).
    d50s, spans, realized = [], [], []
    v = None
    for seed in range(1, args.seeds + 1):
        vs = video(seed, diameters=(100.0,), ppml=5e8, frames=frames, size=size)
        v = vs if seed == 1 else v
        t0 = time.perf_counter()
        tracks = track_frames(vs.frames, ACQ)
        res = analyze_tracks([tracks], ACQ)
        diff = track_diffusion(tracks, ACQ)
        d_mean = np.average(diff.diffusion_m2_per_s, weights=diff.n_steps)
        d_nm = diameter_nm_from_diffusion(d_mean, temperature_c=22.0,
                                          viscosity_pa_s=water_viscosity_pa_s(22.0))
        d50s.append(res.d50_nm)
        spans.append(res.d90_nm / res.d10_nm)
        realized.append(realized_size_nm(vs, tracks))
        print(f"  seed {seed}: {res.n_tracks} tracks in {time.perf_counter() - t0:.1f} s, "
              f"D50 {res.d50_nm:.1f} nm, D90/D10 {res.d90_nm / res.d10_nm:.3f}, drift "
              f"{res.drift_px_per_frame[0]:.2f}, {res.drift_px_per_frame[1]:.2f} px/frame "
              f"(truth 3.50, -1.00); size from the step-weighted mean CVE D {d_nm:.1f} nm; "
              f"from the tracked particles' true motion {realized[-1]:.1f} nm")
    d50, span = float(np.mean(d50s)), float(np.mean(spans))
    se = float(np.std(d50s, ddof=1) / np.sqrt(len(d50s))) if len(d50s) > 1 else float("nan")
    row(f"D50 (nm), mean of {len(d50s)}", f"{d50:.1f} ({100 * (d50 / 100 - 1):+.1f} %, SE {se:.1f})",
        "100 +- 2 %", abs(d50 / 100 - 1) <= 0.02)
    row(f"D90/D10, mean of {len(spans)}", f"{span:.3f}", "<= 1.20", span <= 1.2)
    print(f"  (the tracked particles' true motion gives {np.mean(realized):.1f} nm on average: "
          f"D50 is {100 * (d50 / np.mean(realized) - 1):+.1f} % from it)")
    if not args.no_trackpy:
        t0 = time.perf_counter()
        sizes = trackpy_sizes(v.frames)
        sizes = sizes[np.isfinite(sizes)]
        d10, d50t, d90 = np.percentile(sizes, [10, 50, 90])
        print(f"  trackpy lag-1 MSD on seed 1 ({len(sizes)} tracks, {time.perf_counter() - t0:.0f} s): "
              f"D10/D50/D90 = {d10:.1f}/{d50t:.1f}/{d90:.1f} nm, D90/D10 = {d90 / d10:.2f}")

    print("\n2. 70/140 nm EVs at 60:40 by number")
    # 12-bit first: at 8 bits a third of the 140 nm spots saturate, which hides
    # the brightness the detection-depth model needs (8-bit printed too). The
    # fraction of one video scatters by several points with the realized
    # draw of particles (and their motion), so it is judged on the mean error
    # over seeds against each video's simulated fraction.
    for bits in (12, 8):
        lows, highs, errs = [], [], []
        for seed in range(1, args.mix_seeds + 1):
            v2 = video(seed, diameters=(70.0, 140.0), fractions=(0.6, 0.4), ppml=5e8,
                       frames=frames, size=size, bit_depth=bits)
            tracks2 = track_frames(v2.frames, ACQ)
            res2 = analyze_tracks([tracks2], ACQ)
            peaks, lo, hi, frac_small, simulated = mixture_figures(res2, v2)
            lows.append(lo)
            highs.append(hi)
            errs.append(frac_small - simulated)
            print(f"  {bits}-bit seed {seed}: {res2.n_tracks} tracks, peaks "
                  f"{[round(p, 1) for p in peaks]} nm, number fraction < 99 nm {frac_small:.3f} "
                  f"(simulated {simulated:.3f}), {100 * tracks2.saturated.mean():.0f} % of "
                  "tracked spots saturated")
        lo, hi, err = float(np.mean(lows)), float(np.mean(highs)), float(np.mean(errs))
        row(f"{bits}-bit: peak near 70 nm, mean", f"{lo:.1f} ({100 * (lo / 70 - 1):+.1f} %)",
            "70 +- 7 %", abs(lo / 70 - 1) <= 0.07)
        row(f"{bits}-bit: peak near 140 nm, mean", f"{hi:.1f} ({100 * (hi / 140 - 1):+.1f} %)",
            "140 +- 7 %", abs(hi / 140 - 1) <= 0.07)
        row(f"{bits}-bit: fraction < 99 nm, mean error", f"{err:+.3f}", "+- 0.10",
            abs(err) <= 0.1)

    concentration(args.conc_seeds, frames=frames, size=size)

    crowded(args.crowded_seeds)


def concentration(n_pairs: int, *, frames: int, size) -> None:
    """Scenario 3: 100 nm EVs after a calibration with 100 nm polystyrene beads."""
    print(f"\n3. concentration after calibration with 100 nm polystyrene beads, {n_pairs} "
          "seed pairs per bit depth")
    # Each video holds a Poisson draw of particles (a few hundred): its own
    # concentration differs from the nominal one by ~5 %. The method is judged
    # as the fractions are, against each video's simulated (realized)
    # concentration, with the beads' realized concentration given to the
    # calibration (a bead stock's certified value); one pair scatters ~4 %.
    # 12-bit camera: the beads are ~19x brighter than the EVs; in 8 bits 60 %
    # of their spots saturate.
    for bits in (12, 8):
        errs, ppf_b, ppf_s = [], [], []
        for k in range(n_pairs):
            beads = video(3 + 2 * k, diameters=(100.0,), ppml=3e8, frames=frames, size=size,
                          index=1.59, bit_depth=bits)
            bead_tracks = track_frames(beads.frames, ACQ)
            cal = calibrate(bead_tracks, track_diffusion(bead_tracks, ACQ), ACQ,
                            particles_per_ml=realized_per_ml(beads), bead_diameter_nm=100.0)
            sample = video(4 + 2 * k, diameters=(100.0,), ppml=5e8, frames=frames, size=size,
                           bit_depth=bits)
            res3 = analyze_tracks([track_frames(sample.frames, ACQ)], ACQ, calibration=cal)
            truth = realized_per_ml(sample)
            errs.append(res3.particles_per_ml / truth - 1)
            ppf_b.append(len(bead_tracks) / bead_tracks.n_frames)
            ppf_s.append(res3.particles_per_frame)
            print(f"  {bits}-bit pair {k + 1}: {res3.particles_per_ml:.3g} particles/mL vs "
                  f"{truth:.3g} simulated ({100 * errs[-1]:+.1f} %)")
        err = float(np.mean(errs))
        sd = 100 * np.std(errs, ddof=1) if len(errs) > 1 else 0.0
        row(f"{bits}-bit: 100 nm EVs, mean error", f"{100 * err:+.1f} % (SD {sd:.1f})",
            "+- 10 %", abs(err) <= 0.1)
        print(f"  (spots per frame: beads {np.mean(ppf_b):.1f}, sample counted "
              f"{np.mean(ppf_s):.1f})")


def realized_per_ml(v) -> float:
    """The simulated video's own concentration (its Poisson draw), particles/mL."""
    return v.truth["n_particles"] / v.truth["volume_ml"]


def crowded(n_seeds: int) -> None:
    """Scenario 4: the CLI's default field (640 x 480, 8-bit) at 1e9/mL."""
    print(f"\n4. crowded field: 640 x 480 px, 8-bit, 1e9/mL, drift (3.5, -1.0) px/frame, "
          f"{n_seeds} seeds")
    d50s, spans = [], []
    for seed in range(1, n_seeds + 1):
        vs = video(seed, diameters=(100.0,), ppml=1e9, frames=300, size=(640, 480))
        res = analyze_tracks([track_frames(vs.frames, ACQ)], ACQ)
        d50s.append(res.d50_nm)
        spans.append(res.d90_nm / res.d10_nm)
        print(f"  100 nm seed {seed}: D50 {res.d50_nm:.1f} nm, D90/D10 {spans[-1]:.3f}, peaks "
              f"{[round(p, 1) for p in res.peaks_nm]}")
    d50, span = float(np.mean(d50s)), float(np.mean(spans))
    row("crowded 100 nm: D50, mean", f"{d50:.1f} ({100 * (d50 / 100 - 1):+.1f} %)", "100 +- 2 %",
        abs(d50 / 100 - 1) <= 0.02)
    row("crowded 100 nm: D90/D10, mean", f"{span:.3f}", "<= 1.20", span <= 1.2)
    lows, highs, errs, spurious = [], [], [], 0
    for seed in range(1, n_seeds + 1):
        v2 = video(seed, diameters=(70.0, 140.0), fractions=(0.6, 0.4), ppml=1e9, frames=300,
                   size=(640, 480))
        res2 = analyze_tracks([track_frames(v2.frames, ACQ)], ACQ)
        peaks, lo, hi, frac_small, simulated = mixture_figures(res2, v2)
        spurious += sum(1 for p in peaks if p not in (lo, hi))
        lows.append(lo)
        highs.append(hi)
        errs.append(frac_small - simulated)
        print(f"  70/140 seed {seed}: peaks {[round(p, 1) for p in peaks]} nm, fraction < 99 nm "
              f"{frac_small:.3f} (simulated {simulated:.3f})")
    lo, hi, err = float(np.mean(lows)), float(np.mean(highs)), float(np.mean(errs))
    row("crowded: peak near 70 nm, mean", f"{lo:.1f} ({100 * (lo / 70 - 1):+.1f} %)",
        "70 +- 7 %", abs(lo / 70 - 1) <= 0.07)
    row("crowded: peak near 140 nm, mean", f"{hi:.1f} ({100 * (hi / 140 - 1):+.1f} %)",
        "140 +- 7 %", abs(hi / 140 - 1) <= 0.07)
    row("crowded: fraction < 99 nm, mean error", f"{err:+.3f}", "+- 0.10", abs(err) <= 0.1)
    print(f"  spurious peaks (neither near 70 nor 140 nm): {spurious} in {n_seeds} videos")


if __name__ == "__main__":
    main()
