"""``exotrace nta simulate|analyze|calibrate`` through exotrace.cli.main.main."""

from __future__ import annotations

import json

import pytest

from exotrace.cli.main import main
from exotrace.cli.nta import spread_multi_values

ACQ = ["--pixel-size-nm", "140", "--fps", "25", "--temperature-c", "22", "--exposure-ms", "30"]


def run(capsys, args):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_spread_multi_values():
    assert spread_multi_values(["out.avi", "--diameter-nm", "70", "140", "--fraction", "0.6",
                                "0.4", "--frames", "3"]) == [
        "out.avi", "--diameter-nm", "70", "--diameter-nm", "140", "--fraction", "0.6",
        "--fraction", "0.4", "--frames", "3"]
    # a file name after the values is not swallowed; --opt=value works
    assert spread_multi_values(["--diameter-nm=70", "140", "x.avi"]) == [
        "--diameter-nm", "70", "--diameter-nm", "140", "x.avi"]


@pytest.fixture(scope="module")
def cli_video(tmp_path_factory):
    """The issue's exact command, on a small frame so it runs in a few seconds."""
    folder = tmp_path_factory.mktemp("cli")
    out = folder / "out.avi"
    code = main(["nta", "simulate", str(out), "--diameter-nm", "70", "140", "--fraction", "0.6",
                 "0.4", "--particles-per-ml", "1e9", "--frames", "40", "--seed", "3",
                 "--width", "240", "--height", "192", "--particles-per-ml", "4e9",
                 "--drift-px-per-frame", "-2", "0.5", "--json"])
    assert code == 0
    return out


def test_simulate_writes_video_and_truth(cli_video):
    truth = json.loads(cli_video.with_suffix(".json").read_text())
    s = truth["settings"]
    assert s["diameters_nm"] == [70.0, 140.0]
    assert s["fractions"] == [0.6, 0.4]
    assert s["drift_px_per_frame"] == [-2.0, 0.5]
    assert s["n_frames"] == 40 and s["width_px"] == 240
    assert truth["particles_per_ml"] == 4e9


def test_repeated_option_form_and_json_summary(tmp_path, capsys):
    code, out, err = run(capsys, ["nta", "simulate", str(tmp_path / "a.avi"), "--diameter-nm",
                                  "70", "--diameter-nm", "140", "--frames", "3", "--width", "32",
                                  "--height", "32", "--seed", "1", "--json"])
    assert code == 0, err
    data = json.loads(out)
    assert data["diameters_nm"] == [70.0, 140.0]
    assert data["fractions"] == [0.5, 0.5]


def test_analyze_json(cli_video, capsys, tmp_path):
    plot = tmp_path / "dist.png"
    code, out, err = run(capsys, ["nta", "analyze", str(cli_video), *ACQ, "--dilution", "10",
                                  "--plot", str(plot), "--json"])
    assert code == 0, err
    data = json.loads(out)
    for key in ("n_tracks", "mean_nm", "mode_nm", "sd_nm", "d10_nm", "d50_nm", "d90_nm",
                "peaks_nm", "particles_per_frame", "particles_per_ml", "drift_px_per_frame",
                "distribution", "videos", "warnings"):
        assert key in data
    assert data["particles_per_ml"] is None  # no calibration
    assert data["n_tracks"] > 20
    # the flow was (-2, 0.5) px/frame; on this small field (40 frames of
    # 240 x 192 px) eight seeds gave x -1.85 +- 0.19 and y 0.46 +- 0.14 px/frame:
    # 3 SD about the truth plus the small field's lag of the tracks that
    # linger against the flow (docs/nta.md)
    assert data["drift_px_per_frame"][0] == pytest.approx(-2.0, abs=0.6)
    assert data["drift_px_per_frame"][1] == pytest.approx(0.5, abs=0.45)
    assert 40 < data["d50_nm"] < 200
    assert plot.stat().st_size > 1000
    assert len(data["videos"]) == 1 and data["videos"][0]["n_frames"] == 40


def test_analyze_human_table(cli_video, capsys):
    code, out, err = run(capsys, ["nta", "analyze", str(cli_video), *ACQ])
    assert code == 0, err
    assert "D10 / D50 / D90" in out and "particles / frame" in out


def test_calibrate_then_analyze_with_calibration(cli_video, capsys, tmp_path):
    cal = tmp_path / "cal.json"
    code, out, err = run(capsys, ["nta", "calibrate", str(cli_video), "--particles-per-ml",
                                  "1e10", *ACQ, "--bead-diameter-nm", "100", "-o", str(cal),
                                  "--json"])
    assert code == 0, err
    assert json.loads(out)["calibration"] == str(cal)
    code, out, err = run(capsys, ["nta", "analyze", str(cli_video), *ACQ, "--calibration",
                                  str(cal), "--dilution", "100", "--json"])
    assert code == 0, err
    data = json.loads(out)
    # the same video as its own calibration: the concentration comes back
    # (times the dilution) up to the size-dependent depth model, within 30 %
    assert data["particles_per_ml"] == pytest.approx(1e12, rel=0.3)


@pytest.mark.parametrize("args, code, text", [
    (["nta", "analyze", "missing.avi", *ACQ], 3, "missing.avi: file or folder not found"),
    (["nta", "analyze", "x.avi", "--pixel-size-nm", "140", "--fps", "0", "--temperature-c", "22"],
     2, "fps must be a positive number"),
    (["nta", "analyze", "x.avi", "--pixel-size-nm", "140", "--fps", "25", "--temperature-c", "-5"],
     2, "temperature"),
    (["nta", "simulate", "o.avi", "--diameter-nm", "70", "140", "--fraction", "1", "--frames",
      "3"], 2, "fractions"),
])
def test_bad_input_is_one_line_and_nonzero(capsys, args, code, text):
    rc, out, err = run(capsys, args)
    assert rc == code
    assert text in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_files(tmp_path, capsys, cli_video):
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video " * 100)
    rc, _, err = run(capsys, ["nta", "analyze", str(junk), *ACQ])
    assert rc == 3 and "junk.avi: not a readable video" in err
    cut = tmp_path / "cut.avi"
    data = cli_video.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    rc, _, err = run(capsys, ["nta", "analyze", str(cut), *ACQ])
    assert rc == 3 and "cut.avi" in err and err.count("\n") == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, _, err = run(capsys, ["nta", "analyze", str(empty), *ACQ])
    assert rc == 3 and "no PNG or TIFF frames" in err


def test_too_short_video(tmp_path, capsys):
    short = tmp_path / "short.avi"
    assert main(["nta", "simulate", str(short), "--diameter-nm", "100", "--frames", "4",
                 "--width", "64", "--height", "64", "--seed", "1", "--json"]) == 0
    capsys.readouterr()
    rc, _, err = run(capsys, ["nta", "analyze", str(short), *ACQ])
    assert rc == 4 and "only 4 frames" in err
