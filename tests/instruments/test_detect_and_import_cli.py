"""Format detection by content and the ``exotrace import`` command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from exotrace.cli.main import main
from exotrace.errors import FileFormatError
from exotrace.instruments import FORMATS, detect_format, read_file

DATA = Path(__file__).resolve().parents[1] / "data" / "instruments"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"

EXPECTED = {
    "nta34_weightings_ExperimentSummary.csv": "nanosight-summary",
    "ev_lot7.nano": "nanosight-nano",
    "ev_lot7_00_ParticleData.csv": "nanosight-particledata",
    "ev_lot7_00_AllTracks.csv": "nanosight-alltracks",
    "20251103_0001_EVlot7_size_488.txt": "zetaview-txt",
    "20251103_0001_EVlot7_size_488_11pos.txt": "zetaview-txt",
    "20251103_0003_EVlot7_prof_488.txt": "zetaview-txt",
    "handwritten_beads_size_488.txt": "zetaview-txt",
    "bca_plate.csv": "bca-plate",
    "microbca_plate.csv": "bca-plate",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_detection_ignores_the_file_name(tmp_path, name):
    # Renamed to a meaningless name and extension: the content still decides.
    renamed = tmp_path / "upload_0001.dat"
    shutil.copy(DATA / name, renamed)
    assert detect_format(renamed.read_bytes()) == EXPECTED[name]
    assert read_file(renamed).format == EXPECTED[name]
    assert EXPECTED[name] in FORMATS


def test_fcs_detected_by_magic(tmp_path):
    if not (SHARED / "fcs").is_dir():
        pytest.skip("shared fixtures not available")
    renamed = tmp_path / "beads.csv"
    shutil.copy(SHARED / "fcs" / "G11.fcs", renamed)
    assert read_file(renamed).format == "fcs"


@pytest.mark.parametrize("content", [b"hello world\n", b"a,b,c\n1,2,3\n", b"\x89PNG\r\n\x1a\n\x00\x00",
                                     b"FCS4.0    garbage"])
def test_unknown_content_is_refused(tmp_path, content):
    f = tmp_path / "mystery.csv"
    f.write_bytes(content)
    with pytest.raises(FileFormatError) as info:
        read_file(f)
    msg = str(info.value)
    assert str(f) in msg and "\n" not in msg
    assert "not a recognised instrument file" in msg or "not supported" in msg


def test_missing_file():
    with pytest.raises(FileFormatError, match="file not found"):
        read_file("/nonexistent/exotrace/file.csv")


def test_import_json_keeps_order_and_reports_failures(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("not an instrument file\n")
    files = [DATA / "20251103_0001_EVlot7_size_488.txt", bad, DATA / "bca_plate.csv",
             tmp_path / "missing.fcs"]
    code = main(["import", "--json", *map(str, files)])
    out = capsys.readouterr()
    assert code == FileFormatError.exit_code  # non-zero: some files failed
    rows = json.loads(out.out)
    assert [r["file"] for r in rows] == [str(f) for f in files]
    assert rows[0]["format"] == "zetaview-txt" and rows[0]["particles_per_ml"] > 0
    assert set(rows[1]) == {"file", "error"} and "\n" not in rows[1]["error"]
    assert rows[2]["format"] == "bca-plate" and rows[2]["protein_samples"][0]["sample"] == "EV-lot7"
    assert "file not found" in rows[3]["error"]
    assert "2 of 4" in out.err


def test_import_all_good_exits_zero_and_prints_a_table(capsys):
    code = main(["import", str(DATA / "ev_lot7.nano"), str(DATA / "nta34_weightings_ExperimentSummary.csv")])
    out = capsys.readouterr().out
    assert code == 0
    assert "1.760e+11" in out and "119.9" in out  # particles/mL and mean of the summary


def test_import_full_json_carries_distributions(capsys):
    code = main(["import", "--json", "--full", str(DATA / "nta34_weightings_ExperimentSummary.csv")])
    assert code == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert len(row["extra"]["distributions"]["size_volume"]["bin_centres_nm"]) == 1000


def test_import_table_shows_zeta_and_positions(capsys, monkeypatch):
    from exotrace.cli import _common

    monkeypatch.setattr(_common.console, "width", 250)  # one table row per line, whatever the terminal
    files = ["20251103_0003_EVlot7_prof_488.txt", "20251103_0001_EVlot7_size_488.txt"]
    assert main(["import", *(str(DATA / f) for f in files)]) == 0
    out = capsys.readouterr().out
    assert "zeta -24.3 mV (25 C)" in out and "9 of 11 positions used" in out
