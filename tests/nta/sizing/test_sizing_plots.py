"""Distribution plot: PNG and SVG written, bad paths refused."""

from __future__ import annotations

import pytest

from exotrace.errors import FileFormatError, InvalidInput
from exotrace.nta.plots import plot_distribution
from exotrace.nta.sizing import size_distribution


@pytest.fixture(scope="module")
def dist(mix70_140, acq):
    return size_distribution(mix70_140[1], acq)


def test_png_and_svg(dist, tmp_path):
    png = plot_distribution(dist, tmp_path / "d.png", title="70/140 nm")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = plot_distribution(dist, tmp_path / "d.SVG")
    text = svg.read_text()
    assert "<svg" in text and "hydrodynamic diameter" in text


def test_bad_paths(dist, tmp_path):
    with pytest.raises(InvalidInput, match="png or .svg"):
        plot_distribution(dist, tmp_path / "d.jpg")
    with pytest.raises(FileFormatError, match="folder does not exist"):
        plot_distribution(dist, tmp_path / "nowhere" / "d.png")
