"""FCS reader on real (good and broken) files; EV gating and bead scatter calibration."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import flowio
import numpy as np
import pytest

from exotrace.errors import FileFormatError, InsufficientData, InvalidInput
from exotrace.instruments import percent_positive, read_fcs, read_file, scatter_calibration

FCS = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "fcs"
needs_real = pytest.mark.skipif(not FCS.is_dir(), reason="shared fixtures not available")


def _write_fcs(path: Path, events: np.ndarray, names, labels=None, metadata=None) -> Path:
    with path.open("wb") as fh:
        flowio.create_fcs(fh, events.astype(np.float32).ravel().tolist(), list(names),
                          opt_channel_names=labels, metadata_dict=metadata or {})
    return path


# name: (FCS version, $TOT events, channels, first $PnN)
GOOD = {
    "G11.fcs": ("3.1", 5785, 12, "Time"),
    "cyflow_cube_8.fcs": ("3.0", 725, 10, "FSC"),
    "data1.fcs": ("2.0", 13367, 8, "FSC-H"),
}


@needs_real
@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_files_load(name):
    version, tot, nchan, first = GOOD[name]
    r = read_file(FCS / name)
    assert r.format == "fcs" and r.extra["fcs_version"] == version
    assert r.events == tot and len(r.channels) == nchan and r.channels[0].name == first
    assert r.extra["event_data"].shape == (tot, nchan)
    assert r.warnings == ()


@needs_real
def test_events_per_ul_from_vol_in_nanolitres():
    r = read_file(FCS / "G11.fcs")
    # $VOL = 46000 nL = 46 uL (FCS 3.1: $VOL in nanolitres).
    assert r.events_per_ul == pytest.approx(5785 / 46.0)
    assert r.measured_at == datetime(2020, 3, 2, 9, 50, 15, tzinfo=UTC)
    assert read_file(FCS / "data1.fcs").events_per_ul is None  # FCS 2.0, no $VOL
    data1 = read_file(FCS / "data1.fcs")
    labels = {c.name: c.label for c in data1.channels}
    assert labels["FL1-H"] == "CD4 FITC"
    assert data1.instrument == "FACSCalibur" and data1.sample == "B07"  # $CYT, $FIL
    comp = read_file(FCS / "test_comp_example.fcs")
    assert comp.software_version == "BD FACSDiva Software Version 6.0"  # $CREATOR
    assert comp.sample == "IL10"  # TUBE NAME


@needs_real
def test_off_by_one_offsets_load_with_a_warning():
    for name, tot in (("SG_2014-09-26_Duplicate_Names.fcs", 8129), ("test_comp_example.fcs", 10703)):
        r = read_file(FCS / name)
        assert r.events == tot
        assert any("off by one byte" in w for w in r.warnings)


@needs_real
def test_offset_discrepancy_uses_text_offsets_with_a_warning():
    r = read_file(FCS / "data_start_offset_discrepancy_example.fcs")
    assert r.events == 2 and len(r.channels) == 26
    assert any("HEADER and TEXT disagree" in w for w in r.warnings)
    assert any("$TIMESTEP" in w for w in r.warnings)
    same = read_file(FCS / "variable_int_example.fcs")
    # Integer parameters of differing $PnB widths: FlowIO decodes them; $TIMESTEP is junk.
    assert same.events == 2 and len(same.channels) == 26
    assert same.warnings == ("invalid $TIMESTEP 'xxxxxxxxx': events left unscaled",)
    # Both files hold the same two events; loaded from TEXT offsets they agree.
    np.testing.assert_array_equal(r.extra["event_data"], same.extra["event_data"])


@needs_real
def test_broken_files_are_refused_with_one_line():
    with pytest.raises(FileFormatError) as info:
        read_file(FCS / "corrupted.fcs")  # 10 bytes of text
    assert "corrupted.fcs" in str(info.value) and "not a recognised instrument file" in str(info.value)
    with pytest.raises(FileFormatError, match="shorter than the 58-byte"):
        read_fcs(FCS / "corrupted.fcs")
    with pytest.raises(FileFormatError, match="DATA segment extends beyond the end") as info:
        read_file(FCS / "sample_header.fcs")  # TEXT claims 20000 events, DATA missing
    assert "\n" not in str(info.value)


def test_truncated_fcs_is_refused(tmp_path):
    rng = np.random.default_rng(1)
    f = _write_fcs(tmp_path / "full.fcs", rng.normal(100, 10, (500, 3)), ["FSC-A", "SSC-A", "CD63"])
    cut = tmp_path / "cut.fcs"
    cut.write_bytes(f.read_bytes()[:-1000])
    with pytest.raises(FileFormatError, match="cut.fcs"):
        read_file(cut)


def test_duplicate_channel_names_are_flagged(tmp_path):
    rng = np.random.default_rng(2)
    f = _write_fcs(tmp_path / "dup.fcs", rng.normal(100, 10, (100, 3)), ["FSC-A", "FL1-A", "FL1-A"])
    r = read_file(f)
    assert any("duplicate channel names FL1-A" in w for w in r.warnings)
    with pytest.raises(InvalidInput, match="not unique"):
        percent_positive(r, r, "FL1-A")


def test_percent_positive_recovers_simulated_fraction(tmp_path):
    rng = np.random.default_rng(3)
    n = 20000
    # Buffer-only/isotype control: lognormal background on the marker channel.
    ctrl = rng.lognormal(np.log(200.0), 0.4, n)
    # Sample: 30 % CD63+ events 20x brighter, the rest like the control.
    pos = rng.random(n) < 0.30
    sample = np.where(pos, rng.lognormal(np.log(4000.0), 0.3, n), rng.lognormal(np.log(200.0), 0.4, n))
    ssc = rng.lognormal(np.log(500.0), 0.5, n)
    fs = _write_fcs(tmp_path / "s.fcs", np.column_stack([ssc, sample]), ["VSSC-A", "FITC-A"],
                    labels=["VSSC-A", "CD63 FITC"], metadata={"VOL": "25000"})
    fc = _write_fcs(tmp_path / "c.fcs", np.column_stack([ssc, ctrl]), ["VSSC-A", "FITC-A"],
                    labels=["VSSC-A", "Isotype FITC"])
    res = percent_positive(fs, fc, "FITC-A", quantile=0.995)
    # Expected: 30 % true positives + 0.5 % of negatives above the gate (70 % x 0.5 %).
    expected = 100 * (0.30 + 0.70 * 0.005)
    # Binomial SE at n = 20000 is ~0.33 points; the gate's own sampling error adds little.
    assert res.percent_positive == pytest.approx(expected, abs=1.5)
    assert res.net_percent_positive == pytest.approx(30.0, abs=1.5)
    assert res.control_percent_positive == pytest.approx(0.5, abs=0.1)
    assert res.standard_error_percent == pytest.approx(100 * np.sqrt(0.3035 * 0.6965 / n), rel=0.05)
    assert res.sample_events == n
    # The gate is the control's 99.5th percentile on the channel.
    assert res.gate == pytest.approx(np.quantile(np.float32(ctrl), 0.995), rel=1e-6)
    # By $PnS label on the sample, with the control given as its values; same answer.
    by_label = percent_positive(fs, np.float32(ctrl), "CD63 FITC")
    assert by_label.percent_positive == res.percent_positive
    # The FCS volume ($VOL, nL) gives events per uL.
    assert read_file(fs).events_per_ul == pytest.approx(n / 25.0)


def test_percent_positive_needs_enough_control_events():
    with pytest.raises(InsufficientData, match="at least 2000"):
        percent_positive(np.ones(100), np.ones(1999), "x")
    with pytest.raises(InvalidInput):
        percent_positive(np.ones(100), np.ones(5000), "x", quantile=1.2)


def test_scatter_calibration_recovers_power_law(tmp_path):
    rng = np.random.default_rng(4)
    diam = np.array([100.0, 200.0, 300.0, 500.0])
    # Scatter = 0.02 d^4 with 15 % lognormal spread per bead population, plus noise events.
    exponent, prefactor = 4.0, 0.02
    events = np.concatenate([prefactor * d**exponent * rng.lognormal(0.0, 0.15, 3000) for d in diam])
    noise = rng.uniform(0.0, 50.0, 2000)
    f = _write_fcs(tmp_path / "beads.fcs", np.column_stack([np.concatenate([events, noise])]), ["VSSC-H"])
    cal = scatter_calibration(f, diam, "VSSC-H", min_scatter=100.0)
    # Medians of 3000 lognormal draws: ~0.3 % each -> exponent within 1 %.
    assert cal.exponent == pytest.approx(exponent, rel=0.01)
    assert cal.prefactor == pytest.approx(prefactor, rel=0.1)
    assert cal.r_squared > 0.999
    assert cal.bead_events == (3000, 3000, 3000, 3000)
    assert cal.diameter_nm(prefactor * 150.0**exponent) == pytest.approx(150.0, rel=0.01)
    assert cal.scatter(200.0) == pytest.approx(prefactor * 200.0**exponent, rel=0.05)


def test_scatter_calibration_rejects_too_few_beads():
    with pytest.raises(InvalidInput):
        scatter_calibration(np.ones(1000), [100.0], "x")
    with pytest.raises(InsufficientData):
        scatter_calibration(np.ones(10), [100.0, 200.0], "x")


# --- synthetic exports of particular instruments and layouts (fcs_gen builds the bytes) ---
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data" / "instruments"))
import fcs_gen  # noqa: E402

RNG_EVENTS = np.random.default_rng(7).lognormal(5.0, 1.0, (300, 10)).astype(np.float32)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    f = tmp_path / name
    f.write_bytes(data)
    return f


def test_bd_facscanto_export_big_endian_with_diva_keywords(tmp_path):
    r = read_file(_write(tmp_path, "EVlot7_CD63.fcs", fcs_gen.canto_like(RNG_EVENTS)))
    assert r.events == 300 and r.instrument == "FACSCanto II" and r.warnings == ()
    assert r.software_version == "BD FACSDiva Software Version 8.0.1" and r.sample == "CD63-CD81-CD9"
    assert r.measured_at == datetime(2024, 3, 12, 14, 2, 11, tzinfo=UTC)
    assert {c.name: c.label for c in r.channels}["FITC-A"] == "CD63"
    ev = r.extra["event_data"]
    # Big-endian floats decoded exactly; FlowIO ignores the gain Diva writes on Time ($P10G)
    # and scales Time by $TIMESTEP 0.01.
    np.testing.assert_array_equal(ev[:, :9], RNG_EVENTS[:, :9].astype(np.float64))
    np.testing.assert_allclose(ev[:, 9], RNG_EVENTS[:, 9].astype(np.float64) * 0.01, rtol=1e-12)


def test_cytek_aurora_export(tmp_path):
    r = read_file(_write(tmp_path, "EV lot 7_Unmixed.fcs", fcs_gen.cytek_like(RNG_EVENTS)))
    assert r.extra["fcs_version"] == "3.1" and r.instrument == "Aurora" and r.warnings == ()
    assert r.software_version == "SpectroFlo 3.0.3" and r.sample == "EV lot 7"
    assert r.events_per_ul == pytest.approx(300 / 30.0)  # $VOL 30000 nL
    assert r.channels[4].name == "FSC-A" and r.channels[4].range == 4194304
    np.testing.assert_allclose(r.extra["event_data"][:, 0], RNG_EVENTS[:, 0] * 1e-4, rtol=1e-6)


def test_beckman_lmd_reads_the_fcs30_data_set(tmp_path):
    r = read_file(_write(tmp_path, "tube1.LMD", fcs_gen.beckman_lmd(RNG_EVENTS[:, :4])))
    assert r.extra["fcs_version"] == "3.0" and r.software_version == "CXP 2.2"
    # The FCS 3.0 set holds the floats; the FCS 2.0 set the 10-bit integers of the same events.
    np.testing.assert_array_equal(r.extra["event_data"], RNG_EVENTS[:, :4].astype(np.float64))
    assert r.warnings == ("file holds 2 data sets (FCS2.0, FCS3.0): the FCS3.0 data set 2 was read",)


def test_lmd_with_a_broken_second_data_set_falls_back_with_a_warning(tmp_path):
    raw = fcs_gen.beckman_lmd(RNG_EVENTS[:, :4])
    second = raw.index(b"FCS3.0")
    r = read_file(_write(tmp_path, "cut.lmd", raw[:second + 20]))
    assert r.extra["fcs_version"] == "2.0" and r.events == 300
    assert any("data set 2" in w and "data set 1 used" in w for w in r.warnings)


def test_64_bit_doubles_are_read(tmp_path):
    kw = fcs_gen.common(300, datatype="D") | fcs_gen.channels(["FSC-A", "SSC-A", "FL1-A", "FL2-A"], width=64)
    ev = RNG_EVENTS[:, :4].astype(np.float64) * 1.000001  # beyond float32 precision
    r = read_file(_write(tmp_path, "d.fcs", fcs_gen.data_set(kw, fcs_gen.float_events(ev, double=True))))
    np.testing.assert_array_equal(r.extra["event_data"], ev)


@pytest.mark.parametrize(("datatype", "width", "message"), [
    ("I", 64, r"\$P1B 64 \(FSC-A\): integer events of 64 bits are not supported"),
    ("I", 10, r"\$P1B 10 \(FSC-A\): integer events of 10 bits"),
    ("I", 24, r"integer events of 24 bits"),
    ("F", 64, r"\$DATATYPE F stores 32-bit values but \$P1B \(FSC-A\) is 64"),
    ("D", 32, r"\$DATATYPE D stores 64-bit values but \$P1B \(FSC-A\) is 32"),
    ("A", 32, r"\$DATATYPE A \(ASCII events\) is not supported"),
    ("X", 32, r"\$DATATYPE 'X' is not I, F or D"),
])
def test_unsupported_widths_are_refused_naming_the_keyword(tmp_path, datatype, width, message):
    kw = fcs_gen.common(100, datatype=datatype) | fcs_gen.channels(["FSC-A", "SSC-A"], width=width)
    f = _write(tmp_path, "w.fcs", fcs_gen.data_set(kw, b"\0" * (100 * 2 * width // 8)))
    with pytest.raises(FileFormatError, match=message) as info:
        read_file(f)
    assert str(f) in str(info.value) and "\n" not in str(info.value)


def test_mixed_integer_widths_and_odd_byte_order(tmp_path):
    ints = np.array([[1, 300, 70000]] * 50)
    data = b"".join(np.uint8(a).tobytes() + np.uint16(b).astype("<u2").tobytes()
                    + np.uint32(c).astype("<u4").tobytes() for a, b, c in ints)
    kw = fcs_gen.common(50, datatype="I") | fcs_gen.channels(["A", "B", "C"], width=[8, 16, 32],
                                                               ranges=[256, 65536, 2**32])
    r = read_file(_write(tmp_path, "mixed.fcs", fcs_gen.data_set(kw, data)))
    np.testing.assert_array_equal(r.extra["event_data"][0], [1.0, 300.0, 70000.0])
    kw["$BYTEORD"] = "3,4,1,2"
    with pytest.raises(FileFormatError, match=r"\$BYTEORD '3,4,1,2'"):
        read_file(_write(tmp_path, "pdp.fcs", fcs_gen.data_set(kw, data)))


def test_data_end_one_byte_too_far_imports_with_a_warning(tmp_path):
    kw = fcs_gen.common(300) | fcs_gen.channels(["FSC-A", "SSC-A", "FL1-A", "FL2-A"])
    raw = fcs_gen.data_set(kw, fcs_gen.float_events(RNG_EVENTS[:, :4]), end_shift=1) + b"\0"
    r = read_file(_write(tmp_path, "off1.fcs", raw))
    np.testing.assert_array_equal(r.extra["event_data"], RNG_EVENTS[:, :4].astype(np.float64))
    assert r.warnings == ("DATA offset was off by one byte; FlowIO corrected it - review events",)


def test_text_data_start_off_by_one_uses_the_header_offsets(tmp_path):
    kw = fcs_gen.common(300) | fcs_gen.channels(["FSC-A", "SSC-A", "FL1-A", "FL2-A"])
    raw = fcs_gen.data_set(kw, fcs_gen.float_events(RNG_EVENTS[:, :4]))
    start = int(raw[26:34])
    raw = raw.replace(f"$BEGINDATA/{start}/".encode(), f"$BEGINDATA/{start + 1}/".encode())
    r = read_file(_write(tmp_path, "begin.fcs", raw))
    np.testing.assert_array_equal(r.extra["event_data"], RNG_EVENTS[:, :4].astype(np.float64))
    assert "HEADER and TEXT disagree on the DATA start; TEXT offsets used" in r.warnings
    assert "DATA read at the HEADER's offsets (TEXT's do not fit the data)" in r.warnings


def test_zero_events_is_a_record_with_a_warning(tmp_path):
    kw = fcs_gen.common(0) | fcs_gen.channels(["FSC-A", "SSC-A"])
    r = read_file(_write(tmp_path, "empty.fcs", fcs_gen.data_set(kw, b"")))
    assert r.events == 0 and r.extra["event_data"].shape == (0, 2)
    assert r.warnings == ("the file holds no events ($TOT 0): nothing was acquired",)
    assert r.to_dict()["events"] == 0


_BASE = fcs_gen.common(10) | fcs_gen.channels(["FSC-A", "SSC-A", "FL1-A", "FL2-A"])


@pytest.mark.parametrize(("change", "message"), [
    ({"$TOT": "abc"}, r"field '\$TOT': \$TOT 'abc' is not a whole number"),
    ({"$PAR": "5"}, r"field '\$P5N': \$PAR is 5 but \$P5N is missing"),
    ({"$PAR": "0"}, r"\$PAR 0 is below 1"),
    ({"$P1E": "x"}, r"\$P1E 'x' is not 'decades,offset'"),
    ({"$P1R": "wide"}, r"\$P1R 'wide' \(FSC-A\) is not a number"),
    ({"$P3B": "thirty-two"}, r"\$P3B 'thirty-two' is not a whole number"),
    ({"$DATATYPE": None}, r"required keyword \$DATATYPE is missing"),
    ({"$P2N": None}, r"\$PAR is 4 but \$P2N is missing"),
])
def test_malformed_required_keywords_are_named(tmp_path, change, message):
    kw = {k: v for k, v in (_BASE | change).items() if v is not None}
    f = _write(tmp_path, "kw.fcs", fcs_gen.data_set(kw, fcs_gen.float_events(RNG_EVENTS[:10, :4])))
    with pytest.raises(FileFormatError, match=message):
        read_file(f)


def test_text_offsets_outside_the_file_are_named(tmp_path):
    raw = fcs_gen.data_set(_BASE, fcs_gen.float_events(RNG_EVENTS[:10, :4]))
    f = _write(tmp_path, "t.fcs", raw[:18] + f"{len(raw) + 5:>8}".encode() + raw[26:])
    with pytest.raises(FileFormatError, match=r"byte 10: HEADER puts TEXT at bytes 58-\d+, outside"):
        read_file(f)


def test_fcs32_is_read_and_mixed_parameter_datatypes_refused(tmp_path):
    kw = _BASE | {"$CYT": "CytoFLEX"}
    r = read_file(_write(tmp_path, "v32.fcs", fcs_gen.data_set(
        kw, fcs_gen.float_events(RNG_EVENTS[:10, :4]), version="FCS3.2")))
    assert r.extra["fcs_version"] == "3.2"
    np.testing.assert_array_equal(r.extra["event_data"], RNG_EVENTS[:10, :4].astype(np.float64))
    mixed = _write(tmp_path, "mixed32.fcs", fcs_gen.data_set(
        kw | {"$P2DATATYPE": "D"}, fcs_gen.float_events(RNG_EVENTS[:10, :4]), version="FCS3.2"))
    with pytest.raises(FileFormatError, match=r"\$P2DATATYPE D \(SSC-A\) differs from \$DATATYPE F"):
        read_file(mixed)


@pytest.mark.parametrize("broken", [{"$P2R": ""}, {"$P2DATATYPE": "D"}, {"$P2B": "64"}])
def test_a_kilobyte_channel_name_is_cut_in_the_one_line_error(tmp_path, broken):
    # A damaged TEXT segment can run a $PnN into the binary DATA: the refusal names
    # the keyword and shows at most 40 characters of the name, escaped.
    name = "FL2-A" + "\x97\x00W\x85k" * 200
    kw = fcs_gen.common(100) | fcs_gen.channels(["FSC-A", name]) | broken
    f = _write(tmp_path, "long.fcs", fcs_gen.data_set(kw, b"\0" * (100 * 2 * 4)))
    with pytest.raises(FileFormatError, match=r"\$P2(R|B|DATATYPE) ") as info:
        read_file(f)
    msg = str(info.value)
    assert msg.startswith(str(f)) and msg.isprintable() and len(msg) - len(str(f)) < 160, msg
    assert "FL2-AW" not in msg and "FL2-A" in msg and "..." in msg


@pytest.mark.parametrize(("keyword", "value", "refused"), [
    ("$P2B", "9" * 400, True), ("$TOT", "9" * 400, True),
    ("$P2B", "1" + "0" * 15, True), ("$P2B", "9" * 15, False),
])
def test_a_keyword_number_of_16_digits_or_more_is_refused_in_a_short_line(tmp_path, keyword,
                                                                          value, refused):
    kw = fcs_gen.common(100) | fcs_gen.channels(["FSC-A", "SSC-A"]) | {keyword: value}
    f = _write(tmp_path, "big.fcs", fcs_gen.data_set(kw, b"\0" * (100 * 2 * 4)))
    with pytest.raises(FileFormatError) as info:
        read_file(f)
    msg = str(info.value)
    assert len(msg) - len(str(f)) < 120, msg
    # 10**15 - 1 passes the bound and is refused later, as a width no file has.
    assert ("is too large to be a count or a width" in msg) is refused, msg
