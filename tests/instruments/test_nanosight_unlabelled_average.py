"""NanoSight summaries whose Average / Standard Error columns carry no label.

Some exports leave the two summary columns unlabelled; the reader then takes
them from their place (the column after the last video). Blanking the labels
of a labelled file must give exactly the same summary, so a fallback that read
a neighbouring column (a video, or the standard error) fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from exotrace.instruments import read_file
from exotrace.instruments._nanosight_csv import average_index

DATA = Path(__file__).resolve().parents[1] / "data" / "instruments"
REAL = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "nanosight"
KEYS = ("mean_nm", "mode_nm", "sd_nm", "d10_nm", "d50_nm", "d90_nm", "particles_per_ml")


def _unlabel(src: Path, dst: Path, encoding: str) -> Path:
    lines = src.read_text(encoding=encoding).splitlines(keepends=True)
    out = []
    for line in lines:
        if line.startswith(("[Results]", "Filename")):
            cells = line.rstrip("\r\n").split(",")
            cells = ["" if c in ("Average", "Standard Error") else c for c in cells]
            line = ",".join(cells) + line[len(line.rstrip("\r\n")):]
        out.append(line)
    text = "".join(out)
    assert "Average," not in "".join(x for x in out if x.startswith(("[Results]", "Filename")))
    dst.write_text(text, encoding=encoding)
    return dst


def test_average_index_falls_back_to_the_column_after_the_videos():
    assert average_index(None, 4) == (5, 6)
    assert average_index(["[Results]", "", "", "", "", "", ""], 4) == (5, 6)
    assert average_index(["Filename", "a", "b", "Average", "Standard Error"], 2) == (3, 4)
    assert average_index(["Filename", "a", "b", "c", "Average"], 3) == (4, None)


@pytest.mark.parametrize(("path", "encoding"), [
    (DATA / "nta34_weightings_ExperimentSummary.csv", "cp1252"),
    (REAL / "beads2.csv", "cp1252"),
    (REAL / "nanotest.csv", "cp1252"),
])
def test_unlabelled_summary_reads_the_same_average(tmp_path, path, encoding):
    if not path.is_file():
        pytest.skip("shared fixtures not available")
    labelled = read_file(path)
    unlabelled = read_file(_unlabel(path, tmp_path / path.name, encoding))
    assert len(unlabelled.videos) == len(labelled.videos)
    for key in KEYS:
        assert getattr(unlabelled, key) == getattr(labelled, key), key
    assert labelled.particles_per_ml is not None and labelled.mean_nm is not None
