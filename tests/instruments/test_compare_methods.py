"""One lot, several sizing methods: the pure comparison, the records service and the CLI."""

from __future__ import annotations

import json
import math
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import lognorm

from exotrace.cli.main import main
from exotrace.errors import InsufficientData, InvalidInput
from exotrace.quality import MethodDistribution, compare_methods, fraction_in_range
from exotrace.records import create_lot, import_measurement_file, lot_method_comparison
from quality_records.conftest import build_source

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data" / "instruments"))
import zetaview_gen  # noqa: E402

# The lot's true population: lognormal, median 100 nm, sigma 0.4, 1e11 particles/mL in all.
MEDIAN_NM, SIGMA, TOTAL_PER_ML = 100.0, 0.4, 1.0e11
POP = lognorm(s=SIGMA, scale=MEDIAN_NM)


def _seen(low_nm: float, high_nm: float, step_nm: float, method: str, *, factor: float = 1.0) -> dict:
    """What a method with window [low, high] reports: the population cut to it, binned exactly."""
    edges = np.arange(low_nm, high_nm + step_nm / 2, step_nm)
    mass = np.diff(POP.cdf(edges))
    return {"format": method, "method": method, "instrument": method,
            "particles_per_ml": factor * TOTAL_PER_ML * mass.sum(),
            "extra": {"number_distribution": {"diameter_nm": list(0.5 * (edges[1:] + edges[:-1])),
                                              "fraction": list(mass / mass.sum())},
                      "detection_range_nm": [low_nm, high_nm]}}


def _item(d: dict, source: str = "f") -> MethodDistribution:
    nd = d["extra"]["number_distribution"]
    return MethodDistribution(method=d["method"], source=source, diameter_nm=tuple(nd["diameter_nm"]),
                              fraction=tuple(nd["fraction"]), particles_per_ml=d["particles_per_ml"],
                              detection_range_nm=tuple(d["extra"]["detection_range_nm"]))


def test_fraction_in_range_cuts_bins_pro_rata():
    # Four 10-nm bins (edges 0..40), equal shares: 5-25 nm covers half a bin + one + half.
    assert fraction_in_range([5.0, 15.0, 25.0, 35.0], [0.25] * 4, 5.0, 25.0) == pytest.approx(0.5)
    assert fraction_in_range([5.0, 15.0, 25.0, 35.0], [0.25] * 4, 0.0, 100.0) == pytest.approx(1.0)
    assert fraction_in_range([5.0, 15.0, 25.0, 35.0], [0.25] * 4, 50.0, 60.0) == 0.0


def test_different_lower_limits_explain_the_concentration_gap():
    nta, flow = _seen(30.0, 1000.0, 1.0, "NTA"), _seen(90.0, 1000.0, 10.0, "flow")
    cmp = compare_methods([_item(nta), _item(flow)])
    assert cmp.common_range_nm == (90.0, 1000.0)
    ref, fl = cmp.rows
    # Raw ratio = P(90 < d < 1000) / P(30 < d < 1000) of the population (~0.60), not 1.
    expected_raw = (POP.cdf(1000) - POP.cdf(90)) / (POP.cdf(1000) - POP.cdf(30))
    assert fl.ratio_raw == pytest.approx(expected_raw, rel=1e-9) and fl.ratio_raw < 0.7
    # On the common range both see the same particles: the bins of both methods have edges
    # at 90 nm, so the restriction is exact and the ratio is 1 to rounding.
    assert fl.ratio_common_range == pytest.approx(1.0, rel=1e-9)
    assert fl.explained_percent == pytest.approx(100.0)
    assert ref.ratio_raw == 1.0 and ref.explained_percent is None
    assert fl.particles_per_ml_in_common_range == pytest.approx(TOTAL_PER_ML * (POP.cdf(1000) - POP.cdf(90)))


def test_a_calibration_error_is_not_explained_by_the_ranges():
    # Flow reads 2x too high on top of its 90 nm limit: the common-range ratio is 2, and the
    # share explained is 1 - ln 2 / |ln(2 F)| with F the raw range factor.
    nta, flow = _seen(30.0, 1000.0, 1.0, "NTA"), _seen(90.0, 1000.0, 10.0, "flow", factor=2.0)
    row = compare_methods([_item(nta), _item(flow)]).rows[1]
    f = (POP.cdf(1000) - POP.cdf(90)) / (POP.cdf(1000) - POP.cdf(30))
    assert row.ratio_common_range == pytest.approx(2.0, rel=1e-9)
    assert row.explained_percent == pytest.approx(100 * max(0.0, 1 - math.log(2) / abs(math.log(2 * f))))


def test_a_missing_limit_comes_from_the_distribution_and_disjoint_ranges_are_said():
    a = _seen(30.0, 80.0, 1.0, "NTA")
    b = _seen(200.0, 900.0, 10.0, "flow")
    b["extra"]["detection_range_nm"] = [None, None]
    item_b = _item(b)
    cmp = compare_methods([_item(a), item_b])
    assert cmp.rows[1].detection_range_nm == pytest.approx((200.0, 900.0))  # outer bin edges
    assert cmp.common_range_nm is None and cmp.rows[1].ratio_common_range is None
    assert any("do not overlap" in n for n in cmp.notes)


def test_bad_inputs_are_refused():
    with pytest.raises(InsufficientData, match="at least two"):
        compare_methods([_item(_seen(30.0, 100.0, 1.0, "NTA"))])
    good = _item(_seen(30.0, 100.0, 1.0, "NTA"))
    bad = MethodDistribution(method="flow", source="x", diameter_nm=(100.0, 90.0), fraction=(0.5, 0.5))
    with pytest.raises(InvalidInput, match="increasing"):
        compare_methods([good, bad])
    empty = MethodDistribution(method="flow", source="x", diameter_nm=(100.0,), fraction=(1.0,),
                               detection_range_nm=(120.0, 110.0))
    with pytest.raises(InvalidInput, match="is empty"):
        compare_methods([good, empty])


def _zetaview_file(folder: Path, *, lower_nm: float) -> tuple[Path, float]:
    """A ZetaView run of the lot's population that sees nothing below ``lower_nm``."""
    rng = np.random.default_rng(5)
    sizes = POP.rvs(size=40000, random_state=rng)
    sizes = sizes[sizes > lower_nm]
    seen_per_ml = TOTAL_PER_ML * POP.sf(lower_nm)
    run = zetaview_gen.Run(sizes_nm=sizes, measured_per_ml=seen_per_ml / 500.0, dilution=500.0)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "20251103_0009_L-CM_size_488.txt"
    path.write_bytes(zetaview_gen.size_file(run, path.name))
    return path, seen_per_ml


def _import_three_methods(session, analyst, lot, tmp_path: Path) -> float:
    for name, result in (("nta.csv", _seen(30.0, 1000.0, 1.0, "NTA")),
                         ("flow.json", _seen(90.0, 1000.0, 10.0, "flow"))):
        f = tmp_path / name
        f.write_text(name)
        import_measurement_file(session, lot, f, analyst, reader=lambda p, r=result: r)
    zv, seen = _zetaview_file(tmp_path / "zv", lower_nm=60.0)
    import_measurement_file(session, lot, zv, analyst)  # the real reader, stored JSON
    return seen


def test_service_compares_the_lots_stored_results(session, record_users, tmp_path):
    analyst = record_users["analyst"]
    iso = build_source(session, analyst, donor="CM-1")
    lot = create_lot(session, analyst, "L-CM", isolation_code=iso,
                     intended_use="clinical_manufacturing", manufactured_on=date(2025, 3, 1))
    with pytest.raises(InsufficientData, match="L-CM has 0 imported result"):
        lot_method_comparison(session, "L-CM")
    seen_zv = _import_three_methods(session, analyst, lot, tmp_path)
    cmp, view = lot_method_comparison(session, "L-CM", plot=tmp_path / "cmp.png")
    assert [r.method for r in cmp.rows] == ["NTA", "ZetaView", "flow"]
    nta, zv, flow = cmp.rows
    # ZetaView's window comes from what it saw: its first class begins at or below 60 nm
    # (a 3.66 % class), its last ends past the largest of the 40000 draws.
    assert 57.0 < zv.detection_range_nm[0] <= 60.0
    assert zv.particles_per_ml == pytest.approx(seen_zv, rel=1e-3)
    # Common range: from flow's 90 nm to ZetaView's largest particle.
    assert cmp.common_range_nm[0] == 90.0
    assert zv.ratio_raw == pytest.approx(POP.sf(60.0) / (POP.cdf(1000) - POP.cdf(30)), rel=1e-3)
    # On the common range all three count the same particles. ZetaView's share there is a
    # sample of ~35000 draws cut at 90 nm inside a log class: within 2 % (SE 0.3 %, the cut
    # class's pro-rata split adds up to ~1 %).
    assert zv.ratio_common_range == pytest.approx(1.0, abs=0.02)
    assert flow.ratio_common_range == pytest.approx(1.0, abs=0.005)
    assert flow.ratio_raw < 0.7 and flow.explained_percent > 95.0
    assert view["methods"][2]["explained_percent"] == flow.explained_percent
    assert (tmp_path / "cmp.png").read_bytes()[:4] == b"\x89PNG"


def test_zeta_potential_becomes_its_own_measurement(session, record_users, tmp_path):
    analyst = record_users["analyst"]
    iso = build_source(session, analyst, donor="CM-2")
    lot = create_lot(session, analyst, "L-ZP", isolation_code=iso,
                     intended_use="clinical_manufacturing", manufactured_on=date(2025, 3, 1))
    prof = Path(__file__).resolve().parents[1] / "data" / "instruments" / "20251103_0003_EVlot7_prof_488.txt"
    _, made, _ = import_measurement_file(session, lot, prof, analyst)
    assert [(m.attribute, m.unit) for m in made] == [("zeta_potential", "mV")]
    assert -25.0 < made[0].value < -23.5


@pytest.fixture
def cli(fresh_db_url, monkeypatch, capsys):
    from exotrace.cli import _common

    monkeypatch.setenv("EXOTRACE_DATABASE_URL", fresh_db_url)
    monkeypatch.setattr(_common.console, "width", 250)  # table cells unwrapped, whatever the terminal

    def run(*args):
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_compare_methods_command(cli, fresh_db_url, tmp_path):
    from _db_fixtures import settle_first_passwords
    from exotrace.records import Role, add_user, make_engine, unit_of_work

    engine = make_engine(fresh_db_url)
    try:
        with unit_of_work(engine) as session:
            boss = add_user(session, "boss", Role.ADMIN, password="compare-methods-9")
            ana = add_user(session, "ana", Role.ANALYST, password="compare-methods-9",
                           acting=boss)
            settle_first_passwords(session, (ana,))
            iso = build_source(session, ana, donor="CM-3")
            lot = create_lot(session, ana, "L1", isolation_code=iso,
                             intended_use="clinical_manufacturing", manufactured_on=date(2025, 3, 1))
            create_lot(session, ana, "L2", isolation_code=iso,
                       intended_use="clinical_manufacturing", manufactured_on=date(2025, 3, 1))
            _import_three_methods(session, ana, lot, tmp_path)
    finally:
        engine.dispose()
    code, out, err = cli("lot", "compare-methods", "L1", "--json", "--plot", tmp_path / "c.svg")
    assert code == 0, err
    view = json.loads(out)
    assert [m["method"] for m in view["methods"]] == ["NTA", "ZetaView", "flow"]
    assert view["methods"][2]["ratio_common_range"] == pytest.approx(1.0, abs=0.005)
    assert (tmp_path / "c.svg").read_text().lstrip().startswith("<?xml")
    code, out, _ = cli("lot", "compare-methods", "L1")
    assert code == 0 and "ratio common range" in out and "ZetaView" in out
    code, out, err = cli("lot", "compare-methods", "L2")
    assert code == 4 and "L2 has 0 imported result" in err and "Traceback" not in err + out
    code, _, err = cli("lot", "compare-methods", "L1", "--plot", tmp_path / "c.gif")
    assert code != 0 and "must end in .png or .svg" in err
    # Results saved with --json and not imported for the lot join the comparison.
    (tmp_path / "nta.json").write_text(json.dumps(_seen(30.0, 1000.0, 1.0, "NTA")))
    (tmp_path / "flow.json").write_text(json.dumps([_seen(90.0, 1000.0, 10.0, "flow")]))
    code, out, err = cli("lot", "compare-methods", "L2", "--json", "--result", tmp_path / "flow.json",
                         "--result", tmp_path / "nta.json")
    assert code == 0, err
    assert [m["method"] for m in json.loads(out)["methods"]] == ["NTA", "flow"]
    (tmp_path / "bad.json").write_text("{not json")
    code, out, err = cli("lot", "compare-methods", "L2", "--result", tmp_path / "bad.json")
    assert code == 3 and "bad.json: not JSON" in err and len(err.strip().splitlines()) == 1
