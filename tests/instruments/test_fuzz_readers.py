"""Fuzzing every reader: whatever the bytes, the answer is a result or one-line ExotraceError."""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exotrace.errors import ExotraceError
from exotrace.instruments import InstrumentResult, read_file, read_nanosight_tracks

DATA = Path(__file__).resolve().parents[1] / "data" / "instruments"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"

SEEDS = [
    DATA / "nta34_weightings_ExperimentSummary.csv",
    DATA / "ev_lot7.nano",
    DATA / "ev_lot7_00_ParticleData.csv",
    DATA / "ev_lot7_00_AllTracks.csv",
    DATA / "20251103_0001_EVlot7_size_488.txt",
    DATA / "bca_plate.csv",
    DATA / "bca_grid.csv",
    SHARED / "nanosight" / "beads2.csv",
    SHARED / "fcs" / "data1.fcs",
    SHARED / "fcs" / "cyflow_cube_8.fcs",
]
SEEDS = [p for p in SEEDS if p.is_file()]
_TMP = Path(tempfile.mkdtemp(prefix="exotrace-fuzz-"))


def _generated_seeds() -> list[Path]:
    """ZetaView position/profile/zero-trace files and FCS exports built for the new readers."""
    sys.path.insert(0, str(DATA))
    import fcs_gen

    events = np.random.default_rng(3).lognormal(5.0, 1.0, (40, 10)).astype(np.float32)
    out = [DATA / "20251103_0001_EVlot7_size_488_11pos.txt", DATA / "20251103_0003_EVlot7_prof_488.txt",
           DATA / "20251103_0004_buffer_size_488.txt", DATA / "handwritten_beads_size_488.txt"]
    for name, raw in (("canto.fcs", fcs_gen.canto_like(events)), ("cytek.fcs", fcs_gen.cytek_like(events)),
                      ("beckman.lmd", fcs_gen.beckman_lmd(events[:, :4]))):
        path = _TMP / name
        path.write_bytes(raw)
        out.append(path)
    return out


SEEDS += _generated_seeds()
TEXT_SEEDS = [p for p in SEEDS if p.suffix not in (".fcs", ".lmd")]
FUZZ = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _check(data: bytes, name: str = "fuzzed.bin") -> None:
    path = _TMP / name
    path.write_bytes(data)
    try:
        result = read_file(path)
    except ExotraceError as exc:
        msg = str(exc)
        assert "\n" not in msg and "\r" not in msg, msg
        assert str(path) in msg, msg
        assert len(msg) < 600
    else:
        assert isinstance(result, InstrumentResult)
        result.to_dict()  # the JSON shape must build too


@pytest.mark.parametrize("seed", SEEDS, ids=lambda p: p.name)
@FUZZ
@given(st.data())
def test_truncation(seed, data):
    raw = seed.read_bytes()
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
    _check(raw[:cut])


@pytest.mark.parametrize("seed", SEEDS, ids=lambda p: p.name)
@FUZZ
@given(st.data())
def test_byte_flips(seed, data):
    raw = bytearray(seed.read_bytes())
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)),
                               min_size=1, max_size=20))
    for pos, value in flips:
        raw[pos] = value
    _check(bytes(raw))


@pytest.mark.parametrize("seed", TEXT_SEEDS, ids=lambda p: p.name)
@FUZZ
@given(st.data())
def test_number_corruption(seed, data):
    text = seed.read_bytes().decode("latin-1")
    numbers = list(re.finditer(r"\d+\.\d+|\d+", text))
    match = numbers[data.draw(st.integers(0, len(numbers) - 1))]
    bad = data.draw(st.sampled_from(["1e999", "9" * 400, "-1", "nan", "inf", "", "x", "0", "1e-320"]))
    _check((text[:match.start()] + bad + text[match.end():]).encode("latin-1"))


@pytest.mark.parametrize("seed", TEXT_SEEDS, ids=lambda p: p.name)
@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-8"])
def test_wrong_encodings(seed, encoding):
    _check(seed.read_bytes().decode("latin-1").encode(encoding))


@FUZZ
@given(st.binary(max_size=3000))
def test_random_bytes(data):
    _check(data)


@FUZZ
@given(st.text(max_size=2000))
def test_random_text(text):
    _check(text.encode("utf-8"))


@FUZZ
@given(st.sampled_from([b"[Experiment Details]\n", b"FCS3.1    ", b"Particle ID,Size/nm,Frame,X/pixels,Y/pixels\n",
                        b"Original File:\tx\n", b"Well,Type,ID,Concentration,Absorbance,Dilution\n",
                        b"[Filenames]\n", b"NTA Experiment Summary File,\n",
                        b"Number of Traces:\t5\tDilution::\t2\r\nSize / nm\tNumber\r\n",
                        b"Use\tPosition\tConc. (p./mL)\r\n", b"Type of Measurement:\tProfile\r\nZP Profile\r\n"]),
       st.binary(max_size=2000))
def test_format_markers_followed_by_garbage(marker, tail):
    _check(marker + tail)


def test_empty_file_and_directory():
    _check(b"")
    with pytest.raises(ExotraceError, match="is a directory"):
        read_file(_TMP)


@FUZZ
@given(st.data())
def test_alltracks_to_tracks_fuzzed(data):
    raw = (DATA / "ev_lot7_00_AllTracks.csv").read_bytes()
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
    path = _TMP / "tracks.csv"
    path.write_bytes(raw[:cut])
    try:
        read_nanosight_tracks(path)
    except ExotraceError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)


@FUZZ
@given(st.data())
def test_zetaview_lines_dropped_duplicated_or_swapped(data):
    # Structural damage rather than byte damage: whole lines of a ZetaView export removed,
    # repeated or exchanged (the separator row, the header row, table rows).
    seed = data.draw(st.sampled_from([DATA / "20251103_0001_EVlot7_size_488.txt",
                                      DATA / "20251103_0001_EVlot7_size_488_11pos.txt",
                                      DATA / "20251103_0003_EVlot7_prof_488.txt"]))
    lines = seed.read_bytes().split(b"\r\n")
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(lines) - 1))
        op = data.draw(st.sampled_from(["drop", "dup", "swap", "cells"]))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = data.draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            lines[i] = b"\t".join(lines[i].split(b"\t")[: data.draw(st.integers(0, 3))])
    _check(b"\r\n".join(lines))


def test_fcs_header_offsets_pointing_anywhere():
    # Every 8-byte offset field of the HEADER set to values around and beyond the file.
    raw = (_TMP / "canto.fcs").read_bytes()
    for field in range(10, 58, 8):
        for value in (0, 1, 57, len(raw) - 1, len(raw), len(raw) + 1, 99999999):
            _check(raw[:field] + f"{value:>8}".encode() + raw[field + 8:])
