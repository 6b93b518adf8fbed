"""ZetaView 8.x reader (size, position table, profile) and the binned-distribution statistics."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exotrace.errors import FileFormatError
from exotrace.instruments import binned_statistics, read_file

DATA = Path(__file__).resolve().parents[1] / "data" / "instruments"
SIZE = DATA / "20251103_0001_EVlot7_size_488.txt"
POS11 = DATA / "20251103_0001_EVlot7_size_488_11pos.txt"
PROF = DATA / "20251103_0003_EVlot7_prof_488.txt"
ZERO = DATA / "20251103_0004_buffer_size_488.txt"
HAND = DATA / "handwritten_beads_size_488.txt"

sys.path.insert(0, str(DATA))
import zetaview_gen  # noqa: E402
from make_fixtures import zetaview_run  # noqa: E402


def test_uniform_distribution_has_exact_percentiles():
    # 20 bins of 5 nm centred 52.5..147.5 (edges 50..150), equal counts: particles are
    # uniform on 50-150 nm, so X10 = 60, X50 = 100, X90 = 140, mean = 100 exactly.
    centres = np.arange(52.5, 150.0, 5.0)
    s = binned_statistics(centres, np.full(centres.size, 7.0))
    assert s["d10_nm"] == pytest.approx(60.0)
    assert s["d50_nm"] == pytest.approx(100.0)
    assert s["d90_nm"] == pytest.approx(140.0)
    assert s["mean_nm"] == pytest.approx(100.0)
    # Population SD over bin centres: 20 equally spaced points, step 5 -> 5 sqrt((20^2-1)/12).
    assert s["sd_nm"] == pytest.approx(5.0 * np.sqrt((20**2 - 1) / 12.0))


def test_log_bins_interpolate_in_log_size():
    # Four classes of ratio 2 (edges 10, 20, 40, 80, 160 nm), equal counts: the X50 is the
    # edge 40 nm and the X25 sits at the 20 nm edge; X10 is 0.4 of the first class in log.
    centres = 10.0 * 2.0 ** (np.arange(4) + 0.5)
    s = binned_statistics(centres, [5.0, 5.0, 5.0, 5.0], log_bins=True)
    assert s["d50_nm"] == pytest.approx(40.0)
    assert s["d10_nm"] == pytest.approx(10.0 * 2.0**0.4)
    assert s["d90_nm"] == pytest.approx(80.0 * 2.0**0.6)


def test_single_bin_and_empty_distribution():
    s = binned_statistics([10.0, 15.0, 20.0], [0.0, 4.0, 0.0])
    # All particles in the 12.5-17.5 bin: X50 at its middle, X10 a tenth in.
    assert s["d50_nm"] == pytest.approx(15.0) and s["d10_nm"] == pytest.approx(13.0)
    assert s["mode_nm"] == 15.0
    assert all(v is None for v in binned_statistics([10.0, 15.0], [0.0, 0.0]).values())


def test_handwritten_uniform_beads():
    # Written by hand: 630 particles uniform on 85-115 nm in both tables. Truth: X10 88,
    # X50 100, X90 112, mean 100. The log classes (3.66 %) are not aligned with 85/115, so
    # the answer is within 0.1 % (log-linear interpolation of a density that is flat in size).
    r = read_file(HAND)
    assert r.d10_nm == pytest.approx(88.0, rel=1e-3)
    assert r.d50_nm == pytest.approx(100.0, rel=1e-3)
    assert r.d90_nm == pytest.approx(112.0, rel=1e-3)
    assert r.mean_nm == pytest.approx(100.0, rel=1e-3)
    # Concentration column sums to 1.0e7 /cm3 (4-digit printing: 12 classes x 0.05 % at most).
    assert r.measured_particles_per_ml == pytest.approx(1.0e7, rel=1e-3)
    assert r.particles_per_ml == pytest.approx(5.0e9, rel=1e-3)
    assert r.dilution_factor == 500.0 and r.temperature_c == 22.87
    assert r.extra["traces"] == 630 and r.extra["average_particles_per_frame"] == 30.606061
    assert r.measured_at == datetime(2024, 6, 12, 9, 5, tzinfo=UTC)
    assert r.extra["header"]["pH"] == "NaN entered"
    assert r.extra["statistics_table"] == "logarithmic"
    lo, hi = r.extra["detection_range_nm"]
    # First and last non-empty log classes: 85 nm lies in k=123 (edges 10^(122.5/64) ..), 115 nm
    # in k=132 (.. 10^(132.5/64)).
    assert lo == pytest.approx(10 ** (122.5 / 64), rel=2e-3) and hi == pytest.approx(10 ** (132.5 / 64), rel=2e-3)
    assert r.warnings == ()


def test_generated_size_file_reproduces_the_vendor_numbers():
    r = read_file(SIZE)
    truth = zetaview_gen.truth(zetaview_run())
    assert r.format == "zetaview-txt" and r.instrument == "ZetaView" and r.extra["variant"] == "size"
    # Targets of the issue: D50 and mean within 1 %, X10/X90/concentrations within 5 %. The
    # log classes are 3.66 % wide and 2000 particles fill them, so interpolation does better.
    assert r.d50_nm == pytest.approx(truth["d50_nm"], rel=0.01)
    assert r.mean_nm == pytest.approx(truth["mean_nm"], rel=0.01)
    assert r.d10_nm == pytest.approx(truth["d10_nm"], rel=0.05)
    assert r.d90_nm == pytest.approx(truth["d90_nm"], rel=0.05)
    assert r.measured_particles_per_ml == pytest.approx(truth["measured_particles_per_ml"], rel=0.005)
    assert r.particles_per_ml == pytest.approx(truth["particles_per_ml"], rel=0.005)
    assert r.dilution_factor == 500.0
    assert r.measured_at == datetime(2025, 11, 3, 10, 42, 17, tzinfo=UTC)
    assert r.software_version == "ZetaView 8.05.16 SP3" and r.sample == "EV lot 7 SEC F2"
    assert r.extra["header"]["Particle Drift Check Result"] == "4.21 \u00b5m/s"  # cp1252 0xB5
    assert r.extra["camera"] == "FpSec 30 #Cycles 3 FRate 30.000000"
    assert r.extra["um_per_pixel"] == 0.713
    assert len(r.extra["size_distribution"]["Size / nm"]) == 1200
    assert len(r.extra["log_distribution"]["Size / nm"]) == 199
    nd = r.extra["number_distribution"]
    assert sum(nd["fraction"]) == pytest.approx(1.0) and len(nd["diameter_nm"]) <= 400
    assert r.warnings == ()


def test_statistics_come_from_the_log_table_not_the_linear_one(tmp_path):
    # A file whose linear table is shifted by one class (5 nm) must give the log table's X50:
    # shifting changes the linear X50 by ~5 nm, and the reader must not move.
    run = zetaview_run()
    text = zetaview_gen.size_file(run, "x.txt").decode("cp1252").split("\r\n")
    start = text.index("Size / nm\tNumber\tConcentration / cm-3\tVolume / nm^3\tArea / nm^2") + 1
    sep = next(i for i in range(start, len(text)) if text[i].startswith("-1.000E+0"))
    counts = [t.split("\t", 2)[1] for t in text[start:sep]]
    for i, k in enumerate(range(start, sep)):
        cells = text[k].split("\t")
        cells[1] = counts[i - 1] if i else "0.000E+0"
        text[k] = "\t".join(cells)
    f = tmp_path / "shifted_size_488.txt"
    f.write_bytes("\r\n".join(text).encode("cp1252"))
    shifted, plain = read_file(f), read_file(SIZE)
    assert shifted.d50_nm == plain.d50_nm
    # Linear-only: without the separator and log rows the 5-nm table is used, with a warning.
    g = tmp_path / "linear_only_size_488.txt"
    g.write_bytes(zetaview_gen.size_file(run, g.name, log_table=False))
    lin = read_file(g)
    assert lin.extra["statistics_table"] == "linear 5 nm"
    assert any("no logarithmic table" in w for w in lin.warnings)
    assert lin.d50_nm == pytest.approx(plain.d50_nm, rel=0.02)  # both within a class of the truth


def test_position_table_is_attached_to_its_run():
    r = read_file(SIZE)
    table = r.extra["position_table"]
    assert table["file"] == POS11.name and table["positions_used"] == 9
    assert r.extra["removed_positions"] == [{"position": 7, "reason": "MIN_TRACES"},
                                            {"position": 10, "reason": "GRUBBS_NUMBER"}]
    # The generator scales the used positions to average the run's concentration exactly.
    assert table["measured_particles_per_ml"] == pytest.approx(3.2e7, rel=1e-3)
    alone = read_file(POS11)
    assert alone.extra["variant"] == "11pos" and alone.extra["run"] == SIZE.stem
    assert alone.particles_per_ml == pytest.approx(3.2e7 * 500, rel=1e-3)
    assert alone.d50_nm is None
    # to_dict keeps the compact keys for the lot (position table, removed positions).
    d = r.to_dict()
    assert d["extra"]["removed_positions"][0]["reason"] == "MIN_TRACES"
    assert d["extra"]["number_distribution"] is not None and "log_distribution" not in d["extra"]


def test_broken_sibling_position_table_is_a_warning(tmp_path):
    (tmp_path / SIZE.name).write_bytes(SIZE.read_bytes())
    (tmp_path / POS11.name).write_bytes(POS11.read_bytes().replace(b"GRUBBS_NUMBER", b"")
                                        .replace(b"\r\n0\t7\t", b"\r\nmaybe\t7\t"))
    r = read_file(tmp_path / SIZE.name)
    assert r.extra["position_table"] is None
    assert any("position table not attached" in w and "Use" in w for w in r.warnings)
    assert r.d50_nm == read_file(SIZE).d50_nm


def test_profile_gives_zeta_potential_at_25c():
    r = read_file(PROF)
    assert r.extra["variant"] == "prof" and r.particles_per_ml is None
    # Smoluchowski at 25 C from mobility -1.9 um cm/(V s) measured at 25.13 C:
    # zeta = mu eta(25.13) / (eps0 eps_r(25)), eta from the physics module.
    from exotrace.physics import water_viscosity_cp
    eps_r25 = 87.740 - 0.40008 * 25 + 9.398e-4 * 25**2 - 1.410e-6 * 25**3
    expected = 1e3 * -1.9e-8 * water_viscosity_cp(25.13) * 1e-3 / (8.8541878128e-12 * eps_r25)
    assert r.extra["zeta_potential_mv"] == pytest.approx(expected, rel=1e-9)
    assert -25.0 < r.extra["zeta_potential_mv"] < -23.5
    assert r.extra["vendor_zeta_potential_mv"] == -24.2
    assert len(r.extra["zp_profile"]["Velocity / \u00b5m/s"]) == 11
    assert r.warnings == ()


def test_profile_vendor_value_far_from_mobility_is_flagged(tmp_path):
    f = tmp_path / "x_prof_488.txt"
    f.write_bytes(zetaview_gen.profile_file(zetaview_run(), f.name, vendor_zeta_mv=-40.0))
    assert any("differs" in w for w in read_file(f).warnings)


def test_zero_traces_is_reported_not_a_crash():
    r = read_file(ZERO)
    assert r.particles_per_ml == 0.0 and r.measured_particles_per_ml == 0.0
    assert r.mean_nm is None and r.d50_nm is None
    assert r.extra["traces"] == 0 and r.extra["number_distribution"] is None
    assert any("zero traces" in w for w in r.warnings)
    assert not r.videos[0].has_results


def test_missing_table_and_bad_dilution(tmp_path):
    text = SIZE.read_bytes().decode("cp1252")
    head = text.split("Size Distribution")[0]
    f = tmp_path / "notable.txt"
    f.write_bytes(head.encode("cp1252"))
    with pytest.raises(FileFormatError, match="no 'Size / nm' table"):
        read_file(f)
    g = tmp_path / "baddil.txt"
    g.write_bytes(text.replace("Dilution::\t500.000000", "Dilution::\tabc").encode("cp1252"))
    with pytest.raises(FileFormatError, match=r"line 22.*Dilution"):
        read_file(g)
    h = tmp_path / "zerodil.txt"
    h.write_bytes(text.replace("Dilution::\t500.000000", "Dilution::\t0").encode("cp1252"))
    with pytest.raises(FileFormatError, match="must be positive"):
        read_file(h)


def test_bad_table_cell_names_line(tmp_path):
    text = SIZE.read_bytes().decode("cp1252").splitlines()
    k = next(i for i, ln in enumerate(text) if ln.startswith("Size / nm")) + 3
    cells = text[k].split("\t")
    cells[1] = "1e999"
    text[k] = "\t".join(cells)
    f = tmp_path / "huge.txt"
    f.write_bytes("\r\n".join(text).encode("cp1252"))
    with pytest.raises(FileFormatError, match=rf"line {k + 1}"):
        read_file(f)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.integers(0, 1000), min_size=1, max_size=60).filter(lambda c: sum(c) > 0))
def test_binned_statistics_are_ordered_and_inside_the_bins(counts):
    centres = 2.5 + 5.0 * np.arange(len(counts))
    s = binned_statistics(centres, counts)
    assert 0.0 <= s["d10_nm"] <= s["d50_nm"] <= s["d90_nm"] <= centres[-1] + 2.5
    assert centres[0] <= s["mean_nm"] <= centres[-1]
    assert s["sd_nm"] >= 0.0
    # The X50 splits the particles in two: the bins wholly below it hold <= half of them.
    below = np.asarray(counts)[centres + 2.5 <= s["d50_nm"] + 1e-9].sum()
    assert below <= sum(counts) / 2 + 1e-9
