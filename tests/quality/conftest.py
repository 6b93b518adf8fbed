"""Shared builders for the quality tests."""

from __future__ import annotations

import pytest

from exotrace.quality import TestResult, load_specification
from exotrace.quality._spec import example_specification_path


@pytest.fixture(scope="session")
def msc_spec():
    return load_specification(example_specification_path())


def passing_results(entered_by: str = "ana") -> list[TestResult]:
    """A complete set of results of the shipped MSC-sEV specification that complies."""
    q = [TestResult(f"r-{m}", m, qualitative="present", entered_by=entered_by)
         for m in ("CD9", "CD63", "CD81", "TSG101")]
    q += [TestResult(f"r-{m}", m, qualitative="absent", entered_by=entered_by)
          for m in ("calnexin", "GM130")]
    return [
        TestResult("r-size", "size_d50", 0.128, "um", entered_by=entered_by),
        TestResult("r-frac", "fraction_50_400nm", 0.95, "fraction", entered_by=entered_by),
        TestResult("r-conc", "particle_concentration", 1.1e8, "particles/uL",
                   entered_by=entered_by),
        TestResult("r-pur", "purity_ratio", 5e12, "particles/mg", entered_by=entered_by),
        TestResult("r-prot", "protein_concentration", 0.2, "mg/mL", entered_by=entered_by),
        *q,
        TestResult("r-ster", "sterility", qualitative="negative", entered_by=entered_by),
        TestResult("r-endo", "endotoxin", 0.1, "EU/mL", entered_by=entered_by),
        TestResult("r-myco", "mycoplasma", qualitative="not detected", entered_by=entered_by),
        TestResult("r-pot", "potency", 95, "%", entered_by=entered_by),
    ]


LABEL = {"label_claim": (1e11, "particles/mL")}
