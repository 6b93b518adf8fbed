"""NanoSight ExperimentSummary reader against real exports and a synthetic NTA 3.4 file."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from exotrace.errors import FileFormatError
from exotrace.instruments import read_file, read_nanosight_summary
from exotrace.physics import diameter_nm_from_diffusion

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "nanosight"
DATA = Path(__file__).resolve().parents[1] / "data" / "instruments"
SYNTH = DATA / "nta34_weightings_ExperimentSummary.csv"

needs_real = pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared fixtures not available")


def _vendor_average(path: Path) -> dict[str, float]:
    """The Average column of the number-weighted [Size Data], read with plain csv (independent)."""
    rows = list(csv.reader(path.read_text(encoding="cp1252").splitlines()))
    start = next(i for i, r in enumerate(rows) if r and r[0] == "[Size Data]")
    header = next(r for r in rows[start:] if r and r[0] == "Filename")
    col = header.index("Average")
    out = {}
    for r in rows[start:]:
        if r and r[0] in ("Mean", "Mode", "SD", "D10", "D50", "D90") and r[0] not in out:
            out[r[0]] = float(r[col])
    res = next(r for r in rows if r and r[0].startswith("[Results]"))
    conc = next(r for r in rows if r and r[0] == "Concentration (Particles / ml)")
    out["conc"] = float(conc[res.index("Average")])
    return out


# The README's vendor numbers (Average column) and values read by eye from the files.
README = {
    "beads.csv": dict(mean_nm=100.5, mode_nm=95.3, d50_nm=96.4, particles_per_ml=1.47e9,
                      sd_nm=19.1, d10_nm=84.7, d90_nm=113.3, videos=12),
    "beads2.csv": dict(mean_nm=101.5, mode_nm=98.4, sd_nm=12.8, d10_nm=88.7, d50_nm=99.8,
                       d90_nm=115.3, particles_per_ml=6.09e12, videos=5),
    "nanotest.csv": dict(mean_nm=102.0, mode_nm=91.5, sd_nm=21.9, d10_nm=77.6, d50_nm=99.0,
                         d90_nm=128.0, particles_per_ml=1.53e8, videos=36),
}


@needs_real
@pytest.mark.parametrize("name", sorted(README))
def test_summary_equals_vendor_average_column(name):
    r = read_file(FIXTURES / name)
    expected = README[name]
    assert r.format == "nanosight-summary"
    assert len(r.videos) == expected["videos"]
    for key in ("mean_nm", "mode_nm", "sd_nm", "d10_nm", "d50_nm", "d90_nm", "particles_per_ml"):
        assert getattr(r, key) == pytest.approx(expected[key], rel=1e-12), key
    avg = _vendor_average(FIXTURES / name)
    assert (r.mean_nm, r.mode_nm, r.sd_nm, r.d10_nm, r.d50_nm, r.d90_nm) == (
        avg["Mean"], avg["Mode"], avg["SD"], avg["D10"], avg["D50"], avg["D90"])
    assert r.particles_per_ml == avg["conc"]


@needs_real
def test_beads2_dilution_time_and_version():
    r = read_file(FIXTURES / "beads2.csv")
    assert r.software_version == "NTA 3.4 Build 3.4.003"
    assert r.sample == "100nmbeads"
    assert r.dilution_factor == 1e4
    # Dilution-corrected Average / dilution = what was in the cell.
    assert r.measured_particles_per_ml == pytest.approx(6.09e12 / 1e4)
    assert r.measured_at == datetime(2020, 6, 16, 11, 52, 4, tzinfo=UTC)
    assert r.temperature_c == 22.0 and r.viscosity_cp == 0.952941
    assert [v.particles_per_ml for v in r.videos] == [5.91e12, 6.05e12, 6.01e12, 6.25e12, 6.24e12]
    assert [v.d90_nm for v in r.videos] == [116.7, 117.8, 113.4, 115.0, 113.6]
    tz = timezone(timedelta(hours=1))
    local = read_nanosight_summary(FIXTURES / "beads2.csv", instrument_timezone=tz)
    assert local.measured_at.utcoffset() == timedelta(hours=1)
    assert r.extra["settings"]["Detection Threshold"] == [5.0] * 5
    assert r.extra["conditions"]["Camera Type"] == ["sCMOS"] * 5
    assert r.extra["analysis_method"] == {"size": "FTLA"}


@needs_real
def test_beads_unknown_version_and_not_recorded_dilution():
    r = read_file(FIXTURES / "beads.csv")
    # "Software Version,Unknown": the "Created with" line names the build.
    assert r.software_version == "NTA 3.2 Dev Build 3.2.16"
    assert r.dilution_factor is None
    # No factor applied by the vendor: the printed value is the measured suspension's.
    assert r.measured_particles_per_ml == r.particles_per_ml == 1.47e9
    assert any("dilution factor not recorded" in w for w in r.warnings)
    assert r.measured_at is None  # "Time Captured" is blank in this export
    assert r.videos[6].mean_nm == 109.9 and r.videos[6].sd_nm == 55.2
    temps = [22.348, 22.368, 22.387, 22.154, 22.169, 22.212, 21.974, 21.996, 22.018, 21.666, 21.687, 21.677]
    assert r.temperature_c == pytest.approx(np.mean(temps))


@needs_real
def test_nanotest_zero_result_videos_and_vendor_warnings():
    r = read_file(FIXTURES / "nanotest.csv")
    names = [v.name for v in r.videos]
    by_name = dict(zip(names, r.videos, strict=True))
    # README: 400 nm beads ~282-306, 200 nm ~186, 100 nm ~102-105 (per-video means).
    assert [by_name[f"400_no_50_0{i}"].mean_nm for i in range(3)] == [293.1, 305.9, 281.8]
    assert [by_name[f"200_no_125_0{i}"].mean_nm for i in range(3)] == [185.7, 187.3, 186.1]
    assert all(102 <= by_name[f"100_no_125_0{i}"].mean_nm <= 105 for i in range(3))
    zero = [v.name for v in r.videos if not v.has_results]
    assert zero == ["mG15.5_yes_500_01", "mG15.5_yes_500_02", "400_yes_50_00", "400_yes_50_01",
                    "400_yes_50_02", "200_yes_125_00", "200_yes_125_01", "200_yes_125_02",
                    "100_yes_125_00", "100_yes_125_01", "100_yes_125_02"]
    assert by_name["400_yes_50_00"].mean_nm is None and by_name["400_yes_50_00"].particles_per_ml == 0.0
    # The vendor's Average (102.0) counts failed videos as zeros; we keep it and say so.
    assert r.mean_nm == 102.0
    note = next(w for w in r.warnings if "counts the videos without results as zeros" in w)
    with_results = [v for v in r.extra["weightings"]["number"]["videos"]["mean_nm"] if v]
    assert f"{np.mean(with_results):.1f} nm" in note
    assert any(w.startswith("Noise level: High noise (5 of 36") for w in r.warnings)
    assert any(w.startswith("Validity of concentration measurement: Unreliable") for w in r.warnings)
    assert "Brightness: Too bright" in by_name["200_no_125_01"].warnings


@needs_real
@pytest.mark.parametrize("name", sorted(README))
def test_graph_data_and_percentiles_agree_with_video_values(name):
    r = read_file(FIXTURES / name)
    dist = r.extra["distributions"]["size_number"]
    assert dist["bin_centres_nm"][0] == 0.5 and dist["bin_centres_nm"][-1] == 999.5
    assert dist["videos"].shape == (len(r.videos), 1000)
    for v, curve in zip(r.videos, dist["videos"], strict=True):
        if v.has_results and v.particles_per_ml:
            # Concentrations are printed to 3 significant figures (<= 0.5 % rounding) and
            # bins are rounded to whole particles/mL.
            assert curve.sum() == pytest.approx(v.particles_per_ml, rel=6e-3)
    pct = r.extra["percentiles"]["size_number"]
    assert list(pct["percent"]) == list(range(101))
    for v, row in zip(r.videos, pct["videos_nm"], strict=True):
        if v.has_results:
            # The D10/D50/D90 rows repeat the percentile table's 10th/50th/90th rows.
            assert (row[10], row[50], row[90]) == (v.d10_nm, v.d50_nm, v.d90_nm)
    # The stored distribution for a lot: the Average curve, trimmed to its non-empty 1-nm bins
    # (at most 400 bins: merged k at a time beyond that), as number fractions.
    nd = r.extra["number_distribution"]
    avg = np.asarray(dist["average"])
    hit = np.flatnonzero(avg > 0)
    assert sum(nd["fraction"]) == pytest.approx(1.0) and len(nd["diameter_nm"]) <= 400
    assert r.extra["detection_range_nm"] == [hit[0] + 0.0, hit[-1] + 1.0]  # outer 1-nm bin edges
    k = -(-(hit[-1] - hit[0] + 1) // 400)
    assert nd["fraction"][0] == pytest.approx(avg[hit[0]:hit[0] + k].sum() / avg.sum(), rel=1e-12)


def test_synthetic_nta34_all_weightings_and_diffusion():
    r = read_file(SYNTH)
    assert r.sample == "EV lot 7 (SEC F2)"
    assert r.extra["experiment"]["Pre-treatment"] == "0.22 \u00b5m filtered"  # cp1252 byte 0xB5
    assert r.extra["experiment"]["Remarks"] == "stored at -80 \u00b0C, 1 freeze-thaw"  # quoted comma
    assert r.measured_at == datetime(2025, 11, 3, 9, 15, 30, tzinfo=UTC)
    assert r.dilution_factor == 500.0
    assert r.particles_per_ml == 1.76e11
    assert r.measured_particles_per_ml == pytest.approx(1.76e11 / 500)
    w = r.extra["weightings"]
    assert set(w) == {"number", "surface_area", "volume"}
    # Written as NTA_AVERAGE x 1.0 / 1.15 / 1.3 with one decimal (make_fixtures.py).
    assert w["number"]["average"]["mean_nm"] == 119.9 == r.mean_nm
    assert w["surface_area"]["average"]["mean_nm"] == pytest.approx(round(119.9 * 1.15, 1))
    assert w["volume"]["average"]["d90_nm"] == pytest.approx(round(168.0 * 1.3, 1))
    expected = [round(119.9 * 1.3 * m / 119.9, 1) for m in (118.2, 121.6, 119.9)]
    assert w["volume"]["videos"]["mean_nm"][:3] == pytest.approx(expected, abs=1e-9)
    # Diffusion data were written in 1e4 nm^2/s from Stokes-Einstein of the mean sizes at
    # 25 C; converted to m^2/s they must give the sizes back (1 decimal -> < 0.03 %).
    dmean = r.extra["diffusion"]["number"]["average"]["mean_m2_per_s"]
    assert 3e-12 < dmean < 6e-12
    size = diameter_nm_from_diffusion(dmean, temperature_c=25.0, viscosity_pa_s=0.8904e-3)
    assert size == pytest.approx(119.9, rel=3e-4)
    assert "diffusion_number" in r.extra["distributions"]
    assert r.extra["distributions"]["diffusion_number"]["bin_centres_m2_per_s"][0] == pytest.approx(5e-14)
    failed = r.videos[3]
    assert not failed.has_results and failed.mean_nm is None and failed.particles_per_ml == 0.0
    assert r.videos[2].warnings == ("Noise level: High noise",)
    assert "the vendor's Average leaves out the videos without results" in r.warnings


def test_to_dict_keys_and_json_safety():
    import json

    d = read_file(SYNTH).to_dict()
    for key in ("file", "format", "instrument", "software_version", "sample", "measured_at",
                "temperature_c", "viscosity_cp", "dilution_factor", "particles_per_ml",
                "measured_particles_per_ml", "mean_nm", "mode_nm", "sd_nm", "d10_nm", "d50_nm",
                "d90_nm", "videos", "warnings"):
        assert key in d
    assert "distributions" not in d["extra"]  # bulky arrays only with full=True
    json.dumps(d, allow_nan=False)
    full = read_file(SYNTH).to_dict(full=True)
    assert len(full["extra"]["distributions"]["size_number"]["average"]) == 1000
    json.dumps(full, allow_nan=False)


@needs_real
@pytest.mark.parametrize("cut", [2000, 5000, 40000, 62000])
def test_truncated_export_is_refused(tmp_path, cut):
    data = (FIXTURES / "beads.csv").read_bytes()[:cut]
    f = tmp_path / "cut.csv"
    f.write_bytes(data)
    with pytest.raises(FileFormatError, match="truncated") as info:
        read_file(f)
    assert str(f) in str(info.value) and "\n" not in str(info.value)


def test_bad_numbers_name_line_and_field(tmp_path):
    text = SYNTH.read_text(encoding="cp1252").replace("Mean,118.2", "Mean,11x8.2", 1)
    f = tmp_path / "bad.csv"
    f.write_text(text, encoding="cp1252")
    with pytest.raises(FileFormatError) as info:
        read_file(f)
    msg = str(info.value)
    assert "line" in msg and "Mean" in msg and "11x8.2" in msg


def test_nonsense_temperature_refused(tmp_path):
    text = SYNTH.read_text(encoding="cp1252").replace("Temperature/C,25.000", "Temperature/C,250.000", 1)
    f = tmp_path / "hot.csv"
    f.write_text(text, encoding="cp1252")
    with pytest.raises(FileFormatError, match="Temperature/C"):
        read_file(f)


def test_utf8_resaved_export_reads_the_same(tmp_path):
    f = tmp_path / "utf8.csv"
    f.write_text(SYNTH.read_text(encoding="cp1252"), encoding="utf-8-sig")
    r = read_file(f)
    assert r.extra["experiment"]["Pre-treatment"] == "0.22 \u00b5m filtered"
    assert math.isclose(r.particles_per_ml, 1.76e11)
