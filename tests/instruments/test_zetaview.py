"""ZetaView .txt reader and the binned-distribution statistics it uses."""

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
POS11 = DATA / "20251103_0002_EVlot7_11pos_488.txt"
PROF = DATA / "20251103_0003_EVlot7_prof_488.txt"
ZERO = DATA / "20251103_0004_buffer_size_488.txt"

sys.path.insert(0, str(DATA))
from make_fixtures import zetaview_counts  # noqa: E402


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


def test_single_bin_and_empty_distribution():
    s = binned_statistics([10.0, 15.0, 20.0], [0.0, 4.0, 0.0])
    # All particles in the 12.5-17.5 bin: X50 at its middle, X10 a tenth in.
    assert s["d50_nm"] == pytest.approx(15.0) and s["d10_nm"] == pytest.approx(13.0)
    assert s["mode_nm"] == 15.0
    assert all(v is None for v in binned_statistics([10.0, 15.0], [0.0, 0.0]).values())


def test_size_file_statistics_and_concentration():
    r = read_file(SIZE)
    assert r.format == "zetaview-txt" and r.instrument == "ZetaView"
    counts = zetaview_counts()
    centres = np.arange(2.5, 1000.0, 5.0)
    # Independent computation: cumulative over the 5-nm edges, linear interpolation.
    edges = np.arange(0.0, 1005.0, 5.0)
    cum = np.concatenate(([0.0], np.cumsum(counts))) / counts.sum()
    for q, key in ((0.1, "d10_nm"), (0.5, "d50_nm"), (0.9, "d90_nm")):
        k = np.searchsorted(cum, q)
        expected = edges[k - 1] + (q - cum[k - 1]) / (cum[k] - cum[k - 1]) * 5.0
        assert getattr(r, key) == pytest.approx(expected, rel=1e-12)
    assert r.mean_nm == pytest.approx(np.sum(counts * centres) / counts.sum(), rel=1e-12)
    # Ground truth of the simulated traces: lognormal, median 110 nm, sigma 0.35. 1500 draws
    # binned at 5 nm: the X50 lies within 5 % of 110 (sample median SE ~1.2 %, binning < 2.5 nm).
    assert r.d50_nm == pytest.approx(110.0, rel=0.05)
    # The concentration column sums to 3.2e7 /cm3 (printed with 4 significant figures).
    assert r.measured_particles_per_ml == pytest.approx(3.2e7, rel=1e-3)
    assert r.dilution_factor == 2000.0
    assert r.particles_per_ml == pytest.approx(3.2e7 * 2000, rel=1e-3)
    assert r.temperature_c == 24.83 and r.viscosity_cp == 0.893
    assert r.measured_at == datetime(2025, 11, 3, 10, 42, 17, tzinfo=UTC)
    assert r.software_version == "ZetaView 8.05.16 SP3"
    assert r.sample == "EV lot 7 SEC F2"
    assert r.extra["traces"] == 1500
    assert r.extra["average_particles_per_frame"] == pytest.approx(1500 / 55.0, abs=0.01)
    assert r.extra["variant"] == "size"
    assert r.extra["laser_wavelength_nm"] == 488.0
    assert r.extra["um_per_pixel"] == 0.703
    assert r.extra["vendor_median_number_nm"] == 112.5
    assert r.extra["header"]["Particle Drift Check Result"] == "4.21 \u00b5m/s"  # Latin-1 0xB5
    assert r.extra["log_distribution"] is not None and len(r.extra["log_distribution"]["Size / nm"]) == 30
    assert r.videos[0].valid_tracks == 1500 and r.videos[0].has_results


def test_variants_from_header_content(tmp_path):
    assert read_file(POS11).extra["variant"] == "11pos"
    assert read_file(POS11).extra["positions"] == 11
    prof = read_file(PROF)
    assert prof.extra["variant"] == "prof" and prof.extra["log_distribution"] is None
    # Content decides, not the name: a renamed profile file is still a profile.
    renamed = tmp_path / "renamed_size_488.dat"
    renamed.write_bytes(PROF.read_bytes())
    assert read_file(renamed).extra["variant"] == "prof"


def test_zero_traces_is_reported_not_a_crash():
    r = read_file(ZERO)
    assert r.particles_per_ml == 0.0 and r.measured_particles_per_ml == 0.0
    assert r.mean_nm is None and r.d50_nm is None
    assert r.extra["traces"] == 0
    assert any("zero traces" in w for w in r.warnings)
    assert not r.videos[0].has_results


def test_missing_table_and_bad_dilution(tmp_path):
    text = SIZE.read_bytes().decode("latin-1")
    head = text.split("Size Distribution")[0]
    f = tmp_path / "notable.txt"
    f.write_bytes(head.encode("latin-1"))
    with pytest.raises(FileFormatError, match="Size / nm"):
        read_file(f)
    g = tmp_path / "baddil.txt"
    g.write_bytes(text.replace("Dilution::\t2000", "Dilution::\tabc").encode("latin-1"))
    with pytest.raises(FileFormatError, match="Dilution"):
        read_file(g)


def test_bad_table_cell_names_line(tmp_path):
    text = SIZE.read_bytes().decode("latin-1").splitlines()
    k = next(i for i, ln in enumerate(text) if ln.startswith("Size / nm")) + 3
    cells = text[k].split("\t")
    cells[1] = "1e999"
    text[k] = "\t".join(cells)
    f = tmp_path / "huge.txt"
    f.write_bytes("\r\n".join(text).encode("latin-1"))
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
