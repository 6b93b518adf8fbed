"""Accuracy of exotrace's flow analysis on simulated nano-flow sessions with known truth.

For each scenario: simulate a polystyrene bead mixture (100/200/300/500 nm)
on an instrument whose scale and collection half-angle the analysis does not
know, calibrate on it (Mie fit of scale and half-angle), then simulate EV
samples (several seeds, median sizes and background levels) with a blank of
the same session, and compare:

* concentration (``event_concentration`` with the blank and the dilution)
  against the vesicles that triggered (what event counting claims to measure);
* median size (``size_events`` D50 above the detection limit, blank-subtracted)
  against the true median of the vesicles larger than the true detection limit;
* the detection limit against the diameter whose mean scatter is the threshold.

Targets (issue 15): concentration and median size within 5 %.

Run: ``.venv/bin/python benchmarks/flow_accuracy.py [--seeds N] [--quick]``
(about 1 minute on 2 cores with the defaults).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from exotrace.flow import ParticleModel, calibrate_scatter, event_concentration, size_events
from exotrace.flow.simulate import (
    FlowInstrument,
    VesicleSample,
    simulate_beads,
    simulate_blank,
    simulate_sample,
    write_fcs,
)

BEADS_NM = (100.0, 200.0, 300.0, 500.0)


def run(seeds: int, quick: bool) -> int:
    medians = (100.0,) if quick else (80.0, 100.0, 130.0)
    noise_rates = (20.0,) if quick else (20.0, 300.0)
    # (name, instrument, bead diameters): at 20 degrees 200 and 300 nm polystyrene
    # scatter alike, so that instrument is calibrated with 100/150/200/500 nm.
    instruments = [("405 nm, 30 deg", FlowInstrument(half_angle_deg=30.0), BEADS_NM),
                   ("488 nm, 20 deg, noisier", FlowInstrument(wavelength_nm=488.0, half_angle_deg=20.0,
                                                              electronic_noise_pe=10.0,
                                                              photoelectrons_per_nm2=600.0),
                    (100.0, 150.0, 200.0, 500.0))]
    if quick:
        instruments = instruments[:1]
    models = [("homogeneous n=1.40", ParticleModel()),
              ("coated 1.38/1.48 5 nm", ParticleModel(kind="coated"))]
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for inst_name, inst, bead_nm in instruments:
            beads = write_fcs(simulate_beads(bead_nm, instrument=inst, seed=1000), root / "beads.fcs",
                              instrument=inst)
            cal = calibrate_scatter(beads, bead_nm, bead_index=1.59, wavelength_nm=inst.wavelength_nm)
            for model_name, model in models:
                for median in medians:
                    for rate in noise_rates:
                        noisy = FlowInstrument(**{**inst.__dict__, "noise_event_rate_per_s": rate})
                        for seed in range(seeds):
                            smp = VesicleSample(particles_per_ml=1e10, dilution=100.0,
                                                median_diameter_nm=median, model=model)
                            s = simulate_sample(smp, noisy, seed=seed)
                            b = simulate_blank(noisy, seed=10_000 + seed)
                            sp = write_fcs(s, root / "s.fcs", instrument=noisy)
                            bp = write_fcs(b, root / "b.fcs", instrument=noisy)
                            conc = event_concentration(sp, blank=bp, dilution=smp.dilution)
                            size = size_events(sp, cal, model=model, blank=bp, dilution=smp.dilution)
                            t = s.truth
                            rows.append({
                                "instrument": inst_name, "model": model_name, "median": median,
                                "noise_rate": rate, "seed": seed,
                                "conc_err": conc.particles_per_ml / t["triggered_particles_per_ml"] - 1,
                                "conc_sd": conc.sd_particles_per_ml / t["triggered_particles_per_ml"],
                                "above_err": size.particles_per_ml_above_limit
                                / t["particles_above_limit_per_ml"] - 1,
                                "d50_err": size.d50_nm / t["median_diameter_above_limit_nm"] - 1,
                                "limit_err_nm": size.detection_limit_nm - t["detection_limit_nm"],
                                "limit_nm": t["detection_limit_nm"],
                                "blank_fraction": conc.blank_fraction,
                            })
            print(f"{inst_name}: scale {cal.scale_au_per_nm2:.0f} (true {inst.scale_au_per_nm2:.0f}) "
                  f"AU/nm^2, half-angle {cal.half_angle_deg:.1f} (true {inst.half_angle_deg:.0f}) deg")
    elapsed = time.perf_counter() - t0
    print(f"\n{len(rows)} samples in {elapsed:.0f} s\n")
    print("| instrument | model | median nm | noise /s | blank % | limit nm | conc err % "
          "(Poisson SD %) | above-limit conc err % | D50 err % |")
    print("|---|---|---|---|---|---|---|---|---|")
    keys = sorted({(r["instrument"], r["model"], r["median"], r["noise_rate"]) for r in rows},
                  key=lambda k: (k[0], k[1], k[2], k[3]))
    for k in keys:
        g = [r for r in rows if (r["instrument"], r["model"], r["median"], r["noise_rate"]) == k]

        def span(key, g=g):
            v = 100 * np.array([r[key] for r in g])
            return f"{v.mean():+.2f} [{v.min():+.2f}, {v.max():+.2f}]"

        print(f"| {k[0]} | {k[1]} | {k[2]:.0f} | {k[3]:.0f} | "
              f"{100 * np.mean([r['blank_fraction'] for r in g]):.1f} | "
              f"{np.mean([r['limit_nm'] for r in g]):.1f} | {span('conc_err')} "
              f"({100 * np.mean([r['conc_sd'] for r in g]):.2f}) | {span('above_err')} | {span('d50_err')} |")
    _model_mismatch(seeds)
    worst_c = max(abs(r["conc_err"]) for r in rows)
    worst_d = max(abs(r["d50_err"]) for r in rows)
    worst_l = max(abs(r["limit_err_nm"]) for r in rows)
    print(f"\nworst |concentration error| {100 * worst_c:.2f} % (target 5 %): "
          f"{'PASS' if worst_c <= 0.05 else 'FAIL'}")
    print(f"worst |D50 error| {100 * worst_d:.2f} % (target 5 %): {'PASS' if worst_d <= 0.05 else 'FAIL'}")
    print(f"worst |detection limit error| {worst_l:.2f} nm")
    return 0 if worst_c <= 0.05 and worst_d <= 0.05 else 1


def _model_mismatch(seeds: int) -> None:
    """Informative: vesicles simulated as coated spheres, sized with other models."""
    inst = FlowInstrument(half_angle_deg=30.0)
    truth_model = ParticleModel(kind="coated")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        beads = write_fcs(simulate_beads(BEADS_NM, instrument=inst, seed=1000), root / "beads.fcs",
                          instrument=inst)
        cal = calibrate_scatter(beads, BEADS_NM)
        print("\nModel mismatch (truth: coated 1.38/1.48 5 nm, median 100 nm, 405 nm / 30 deg; no blank;"
              " D50 against the true median above the true limit):")
        print("| sized as | detection limit nm (true) | D50 err % |")
        print("|---|---|---|")
        for name, model in (("coated 1.38/1.48 5 nm", truth_model), ("homogeneous n=1.40", ParticleModel()),
                            ("homogeneous n=1.38", ParticleModel(index=1.38)),
                            ("homogeneous n=1.42", ParticleModel(index=1.42))):
            errs, limits = [], []
            for seed in range(seeds):
                s = simulate_sample(VesicleSample(model=truth_model), inst, seed=seed)
                sp = write_fcs(s, root / "s.fcs", instrument=inst)
                r = size_events(sp, cal, model=model)
                errs.append(100 * (r.d50_nm / s.truth["median_diameter_above_limit_nm"] - 1))
                limits.append(r.detection_limit_nm)
            print(f"| {name} | {np.mean(limits):.1f} ({s.truth['detection_limit_nm']:.1f}) | "
                  f"{np.mean(errs):+.1f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="samples per scenario")
    ap.add_argument("--quick", action="store_true", help="one instrument, one median, one noise level")
    args = ap.parse_args()
    return run(args.seeds, args.quick)


if __name__ == "__main__":
    raise SystemExit(main())
