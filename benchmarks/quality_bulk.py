"""Evaluate and trend 10,000 lots x 20 attributes; target < 2 s.

Run: ``.venv/bin/python benchmarks/quality_bulk.py [--lots 10000] [--attributes 20]``

Times (best of ``--repeat``):

* vectorised evaluation of every lot against a 20-test specification
  (:func:`exotrace.quality.evaluate_matrix`, unit conversion included);
* I-MR limits from a 100-lot baseline and all eight Nelson rules on each
  attribute (:func:`exotrace.quality.trend_matrix`).

No maintained Python SPC library exists to run side by side, so the peer is
the per-lot path (:func:`exotrace.quality.evaluate` on record objects and
:func:`exotrace.quality.nelson_rules` per attribute) on a subset, extrapolated
linearly; the script also checks that both paths give the same outcomes.
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import numpy as np

from exotrace.quality import (
    Conclusion,
    RangeCriterion,
    Specification,
    TestResult,
    TestSpec,
    evaluate,
    evaluate_matrix,
    nelson_flags,
    nelson_rules,
    trend_matrix,
)


def build(n_lots: int, n_attr: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    tests = [TestSpec(name=f"attr{j:02d}", method="simulated",
                      criterion=RangeCriterion(lower=90.0, upper=110.0, unit="nm",
                                               upper_inclusive=bool(j % 2)))
             for j in range(n_attr)]
    spec = Specification(name="bench", product_type="sim", version="1",
                         effective_date=date(2026, 1, 1), status="effective", tests=tests)
    values = rng.normal(100.0, 3.0, (n_lots, n_attr))
    values[n_lots // 2:, 0] += 2.0  # a drift for the trending to find
    # values reported in um for half the columns: conversion is part of the work
    units = ["um" if j % 2 else "nm" for j in range(n_attr)]
    reported = values.copy()
    reported[:, 1::2] /= 1000.0
    return spec, reported, units


def best(fn, repeat):
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lots", type=int, default=10_000)
    ap.add_argument("--attributes", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--subset", type=int, default=300)
    args = ap.parse_args()
    spec, reported, units = build(args.lots, args.attributes)
    names = [t.name for t in spec.tests]

    t_eval, bulk = best(lambda: evaluate_matrix(spec, names, reported, units), args.repeat)
    t_trend, trend = best(lambda: trend_matrix(
        np.where(np.array([u == "um" for u in units]), reported * 1000.0, reported),
        baseline=100), args.repeat)
    total = t_eval + t_trend

    # Peer: the per-lot path on a subset, checked equal to the bulk path.
    k = min(args.subset, args.lots)
    t0 = time.perf_counter()
    for i in range(k):
        res = [TestResult(f"{i}-{j}", names[j], float(reported[i, j]), units[j])
               for j in range(len(names))]
        ev = evaluate(spec, res)
        want = {0: Conclusion.COMPLIES, 1: Conclusion.DOES_NOT_COMPLY,
                2: Conclusion.INCOMPLETE}[int(bulk.conclusion[i])]
        assert ev.conclusion == want, (i, ev.conclusion, want)
    t_lot = (time.perf_counter() - t0) / k * args.lots
    nm_values = np.where(np.array([u == "um" for u in units]), reported * 1000.0, reported)
    t0 = time.perf_counter()
    for j in range(len(names)):
        v = nelson_rules(nm_values[:, j], mean=float(trend.mean[j]), sigma=float(trend.sigma[j]))
        n_flagged = int(nelson_flags(nm_values[:, j], trend.mean[j], trend.sigma[j]).sum())
        assert len(v) == n_flagged
    t_series = time.perf_counter() - t0

    print(f"lots x attributes: {args.lots} x {args.attributes}")
    print(f"evaluate (vectorised):      {t_eval * 1e3:8.1f} ms  "
          f"(complies {int((bulk.conclusion == 0).sum())}, "
          f"does not comply {int((bulk.conclusion == 1).sum())})")
    print(f"trend I-MR + Nelson 1-8:    {t_trend * 1e3:8.1f} ms  "
          f"(attr00 signals: {int(trend.flags[:, 0].any(axis=0).sum())})")
    print(f"total:                      {total * 1e3:8.1f} ms  (target < 2000 ms)")
    print(f"per-lot evaluate(), extrapolated from {k} lots: {t_lot:8.2f} s  "
          f"(ratio {t_lot / t_eval:.0f}x)")
    print(f"per-attribute nelson_rules() + checks: {t_series * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
