"""BCA / micro-BCA plate reader: curve choice, recovery of known concentrations, flags."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from exotrace.errors import FileFormatError, InsufficientData
from exotrace.instruments import fit_standard_curve, read_file

DATA = Path(__file__).resolve().parents[1] / "data" / "instruments"
sys.path.insert(0, str(DATA))
import make_fixtures as mf  # noqa: E402


def _slope_4pl(c):
    """d A / d c of the true 4PL at c (ug/mL), for propagating absorbance noise."""
    h = 1e-3 * max(c, 1.0)
    return (mf.four_pl(c + h, **mf.BCA_TRUE) - mf.four_pl(c - h, **mf.BCA_TRUE)) / (2 * h)


def test_bca_plate_picks_4pl_and_recovers_samples():
    r = read_file(DATA / "bca_plate.csv")
    assert r.format == "bca-plate"
    curve = r.standard_curve
    # The simulated response is a 4PL that bends over 0-2000 ug/mL; AICc must prefer it.
    assert curve.model == "4pl" and curve.aicc["4pl"] < curve.aicc["linear"]
    assert curve.r_squared > 0.999
    assert curve.concentration_range_ug_per_ml == (25.0, 2000.0)
    # Blank: mean of 3 wells around 0.095 with SD 0.006.
    assert r.extra["blank_absorbance"] == pytest.approx(mf.BCA_BLANK, abs=0.012)
    by_id = {s.sample: s for s in r.protein_samples}
    for name in ("EV-lot7", "EV-lot8"):
        true, dil = mf.BCA_SAMPLES[name]
        s = by_id[name]
        assert s.dilution_factor == dil and s.replicates == 3
        # Tolerance: 4 x the concentration error of the sample mean (SD 0.006/sqrt(3)) and the
        # blank (0.006/sqrt(3)) propagated through the true curve's slope, times dilution.
        tol = 4 * np.hypot(0.006 / np.sqrt(3), 0.006 / np.sqrt(3)) / _slope_4pl(true / dil) * dil
        assert s.protein_ug_per_ml == pytest.approx(true, abs=tol)
        assert s.measured_ug_per_ml * dil == pytest.approx(s.protein_ug_per_ml)
        assert s.flags == ()
        assert s.cv_percent is not None and s.cv_percent < 15
    # 3100 ug/mL lies above the 2000 standard: still reported, and flagged.
    high = by_id["EV-lot9-conc"]
    assert high.flags == ("above-highest-standard",)
    assert high.protein_ug_per_ml > 2000
    low = by_id["EV-lot10-dilute"]
    assert low.flags == ("below-lowest-standard",)
    assert low.protein_ug_per_ml is not None and low.protein_ug_per_ml < 25
    assert any("flagged" in w for w in r.warnings)


def test_micro_bca_plate_picks_linear():
    r = read_file(DATA / "microbca_plate.csv")  # semicolon separated, no Blank wells
    curve = r.standard_curve
    assert curve.model == "linear"
    # Slope of the simulation 0.0262 A per ug/mL; 14 points with SD 0.004 -> SE ~1e-4.
    assert curve.parameters["slope"] == pytest.approx(mf.MICRO_TRUE["slope"], abs=5e-4)
    assert any("zero standard is used as blank" in w for w in r.warnings)
    by_id = {s.sample: s for s in r.protein_samples}
    for name, (true, dil) in mf.MICRO_SAMPLES.items():
        # SD 0.004 over 2 replicates plus the blank (2 zero-standard wells), / slope, x dilution.
        tol = 4 * np.hypot(0.004 / np.sqrt(2), 0.004 / np.sqrt(2)) / mf.MICRO_TRUE["slope"] * dil
        assert by_id[name].protein_ug_per_ml == pytest.approx(true, abs=tol)


def test_fit_prefers_linear_on_straight_data_and_4pl_on_curved():
    rng = np.random.default_rng(5)
    c = np.repeat([0, 5, 10, 20, 40, 80, 120, 160], 2).astype(float)
    straight = 0.01 * c + rng.normal(0, 0.005, c.size)
    assert fit_standard_curve(c, straight).model == "linear"
    curved = mf.four_pl(c, a=0.0, b=1.5, c50=60.0, d=2.0) + rng.normal(0, 0.005, c.size)
    fit = fit_standard_curve(c, curved)
    assert fit.model == "4pl"
    assert fit.parameters["c50"] == pytest.approx(60.0, rel=0.05)
    assert fit.parameters["b"] == pytest.approx(1.5, rel=0.05)
    with pytest.raises(InsufficientData):
        fit_standard_curve([0, 1], [0.0, 0.1])


def test_high_cv_is_flagged(tmp_path):
    text = (DATA / "bca_plate.csv").read_text()
    lines = text.splitlines()
    k = next(i for i, ln in enumerate(lines) if ",EV-lot7," in ln)
    cells = lines[k].split(",")
    cells[4] = f"{float(cells[4]) * 1.6:.4f}"
    lines[k] = ",".join(cells)
    f = tmp_path / "cv.csv"
    f.write_text("\n".join(lines))
    s = {x.sample: x for x in read_file(f).protein_samples}["EV-lot7"]
    assert "high-cv" in s.flags and s.cv_percent > 15


@pytest.mark.parametrize(("old", "new", "match"), [
    (",Standard,S500,500,", ",Standard,S500,,", "concentration"),
    (",Sample,EV-lot8,,", ",Sampel,EV-lot8,,", "not Standard, Sample or Blank"),
    ("Absorbance (562 nm)", "Signal", "not a recognised instrument file"),
])
def test_bad_layouts_are_refused(tmp_path, old, new, match):
    text = (DATA / "bca_plate.csv").read_text()
    assert old in text
    f = tmp_path / "bad.csv"
    f.write_text(text.replace(old, new, 1))
    with pytest.raises(FileFormatError, match=match):
        read_file(f)


def test_absurd_absorbance_names_line(tmp_path):
    lines = (DATA / "bca_plate.csv").read_text().splitlines()
    cells = lines[6].split(",")
    cells[4] = "1e300"
    lines[6] = ",".join(cells)
    f = tmp_path / "abs.csv"
    f.write_text("\n".join(lines))
    with pytest.raises(FileFormatError, match="line 7"):
        read_file(f)


def test_grid_export_with_layout_equals_the_well_table():
    from exotrace.instruments import read_protein_grid

    grid = read_protein_grid(DATA / "bca_grid.csv", DATA / "bca_layout.csv")
    table = read_file(DATA / "bca_plate.csv")  # the same simulated plate, one row per well
    assert grid.protein_samples == table.protein_samples
    assert grid.standard_curve == table.standard_curve
    assert grid.extra["layout_file"] == str(DATA / "bca_layout.csv")
    with pytest.raises(FileFormatError, match="needs its layout"):
        read_file(DATA / "bca_grid.csv")


def test_layout_well_missing_from_grid(tmp_path):
    from exotrace.instruments import read_protein_grid

    layout = tmp_path / "layout.csv"
    layout.write_text((DATA / "bca_layout.csv").read_text() + "H12,Sample,X,,\n")
    with pytest.raises(FileFormatError, match="'H12' has no absorbance"):
        read_protein_grid(DATA / "bca_grid.csv", layout)


def _grid_with(tmp_path, well_row: str, col: int, value: str):
    lines = (DATA / "bca_grid.csv").read_text().splitlines()
    k = next(i for i, ln in enumerate(lines) if ln.startswith(f"{well_row},"))
    cells = lines[k].split(",")
    cells[col] = value
    lines[k] = ",".join(cells)
    grid = tmp_path / "grid.csv"
    grid.write_text("\n".join(lines) + "\n")
    return grid, k + 1


@pytest.mark.parametrize("value", ["10.0", "-1.0", "12.0"])
def test_grid_absorbance_out_of_range_names_the_grid_file_and_line(tmp_path, value):
    from exotrace.instruments import read_protein_grid

    grid, line = _grid_with(tmp_path, "C", 3, value)
    with pytest.raises(FileFormatError) as err:
        read_protein_grid(grid, DATA / "bca_layout.csv")
    msg = str(err.value)
    assert msg.startswith(f"{grid}, line {line}, field 'well C3': absorbance {float(value)} is outside")
    assert "bca_layout" not in msg


def test_grid_absorbance_just_inside_the_range_is_read(tmp_path):
    from exotrace.instruments import read_protein_grid

    # C3 holds a standard replicate: a high but possible value is read, not refused.
    grid, _ = _grid_with(tmp_path, "C", 3, "9.99")
    result = read_protein_grid(grid, DATA / "bca_layout.csv")
    wells = {w["well"]: w["absorbance"] for w in result.extra["wells"]}
    assert wells["C3"] == 9.99


def test_layout_error_names_the_layout_file_and_its_own_line(tmp_path):
    from exotrace.instruments import read_protein_grid

    lines = (DATA / "bca_layout.csv").read_text().splitlines()
    k = next(i for i, ln in enumerate(lines) if ln.startswith("G3,"))
    lines[k] = "G3,Sample,EV-lot7,,0.5"  # a dilution below 1
    layout = tmp_path / "layout.csv"
    layout.write_text("\n".join(lines) + "\n")
    with pytest.raises(FileFormatError) as err:
        read_protein_grid(DATA / "bca_grid.csv", layout)
    assert str(err.value).startswith(f"{layout}, line {k + 1}, field 'Dilution': dilution factor")


def test_grid_from_bytes_equals_grid_from_file():
    from exotrace.instruments import read_protein_grid

    from_file = read_protein_grid(DATA / "bca_grid.csv", DATA / "bca_layout.csv")
    from_bytes = read_protein_grid("upload.csv", DATA / "bca_layout.csv",
                                   data=(DATA / "bca_grid.csv").read_bytes())
    assert from_bytes.protein_samples == from_file.protein_samples
    assert from_bytes.file == "upload.csv"


def test_a_plate_problem_names_the_layout_and_the_grid(tmp_path):
    from exotrace.instruments import read_protein_grid

    # Two standard wells left (the others become blanks): no curve can be fitted.
    kept = 0
    lines = []
    for line in (DATA / "bca_layout.csv").read_text().splitlines():
        if ",Standard," in line:
            kept += 1
            if kept > 2:
                line = line.split(",")[0] + ",Blank,Blank,,"
        lines.append(line)
    layout = tmp_path / "layout.csv"
    layout.write_text("\n".join(lines) + "\n")
    with pytest.raises(FileFormatError) as err:
        read_protein_grid(DATA / "bca_grid.csv", layout)
    assert str(err.value) == (f"{layout}: 2 standard wells: a curve needs at least 3 "
                              f"(with grid {DATA / 'bca_grid.csv'})")
