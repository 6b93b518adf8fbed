"""Concentration, blank subtraction, percent positive and MESF against the simulator's truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from exotrace.errors import InsufficientData, InvalidInput
from exotrace.flow import (
    dilution_series,
    event_concentration,
    flow_report,
    load_events,
    mesf_calibration,
    percent_positive,
)
from exotrace.flow.simulate import (
    FlowInstrument,
    VesicleSample,
    simulate_blank,
    simulate_sample,
    write_fcs,
)


def test_concentration_matches_the_triggered_vesicles(session_dir, truth):
    t = truth["sample"]
    r = event_concentration(session_dir / "sample.fcs", blank=session_dir / "blank.fcs",
                            dilution=t["dilution"])
    assert r.volume_source == "$VOL" and r.volume_nl == pytest.approx(t["volume_nl"])
    # Blank subtraction leaves (noise in sample - noise in blank): two Poisson counts
    # of the same mean, so 4 SD of their difference bounds the error.
    sd = math.sqrt(t["noise_events"] + truth["blank"]["noise_events"]) / (t["volume_nl"] * 1e-6) * t["dilution"]
    assert abs(r.particles_per_ml - t["triggered_particles_per_ml"]) < 4 * sd
    # The reported SD is the same Poisson propagation.
    expected_sd = math.sqrt(r.events + r.blank_events) / (t["volume_nl"] * 1e-6) * t["dilution"]
    assert r.sd_particles_per_ml == pytest.approx(expected_sd)
    assert r.blank_fraction == pytest.approx(truth["blank"]["events"] / t["events"])


def test_blank_subtraction_matters_when_the_background_is_high(tmp_path):
    inst = FlowInstrument(noise_event_rate_per_s=800.0)
    smp = VesicleSample(particles_per_ml=2e9, dilution=10.0)
    s = simulate_sample(smp, inst, seed=11)
    b = simulate_blank(inst, seed=12)
    sp, bp = write_fcs(s, tmp_path / "s.fcs", instrument=inst), write_fcs(b, tmp_path / "b.fcs", instrument=inst)
    raw = event_concentration(sp, dilution=10.0)
    net = event_concentration(sp, blank=bp, dilution=10.0)
    want = s.truth["triggered_particles_per_ml"]
    assert raw.particles_per_ml > 1.25 * want  # 48000 noise events on ~143000 vesicles
    assert net.particles_per_ml == pytest.approx(want, abs=4 * net.sd_particles_per_ml)
    assert any("blank's event rate" in w for w in net.warnings)


def test_an_empty_blank_is_a_clean_blank(session_dir, tmp_path):
    import flowio

    empty = tmp_path / "empty_blank.fcs"
    with empty.open("wb") as fh:
        flowio.create_fcs(fh, [], ["VSSC-H", "FITC-H", "Time"], metadata_dict={"$VOL": "1000"})
    r = event_concentration(session_dir / "sample.fcs", blank=empty)
    assert r.blank_events == 0 and r.particles_per_ml == r.events_per_ml
    from exotrace.errors import FileFormatError

    with pytest.raises(FileFormatError, match="holds no events"):
        event_concentration(empty)


def test_blank_above_sample_reports_zero_with_a_warning(session_dir):
    r = event_concentration(session_dir / "blank.fcs", blank=session_dir / "sample.fcs")
    assert r.particles_per_ml == 0.0 and r.relative_sd is None
    assert any("not above the blank" in w for w in r.warnings)


def test_volume_from_flow_rate_and_duration(session_dir, truth):
    ev = load_events(session_dir / "sample.fcs")
    no_vol = type(ev)(file=ev.file, names=ev.names, labels=ev.labels, data=ev.data,
                      keywords={k: v for k, v in ev.keywords.items() if k not in ("vol", "flowrate")})
    with pytest.raises(InvalidInput, match=r"no analysed volume.*flow rate"):
        event_concentration(no_vol)
    r = event_concentration(no_vol, flow_rate_ul_per_min=1.0)
    # 1 uL/min for $DURTIM = 60 s is 1000 nL, the simulator's $VOL.
    assert r.volume_nl == pytest.approx(truth["sample"]["volume_nl"])
    assert r.volume_source == "flow rate given x acquisition time"
    clocks = dict(no_vol.keywords, btim="23:59:30", etim="00:00:30")
    clocks.pop("durtim")
    over_midnight = type(ev)(file=ev.file, names=ev.names, labels=ev.labels, data=ev.data, keywords=clocks)
    assert event_concentration(over_midnight, flow_rate_ul_per_min=2.0).volume_nl == pytest.approx(2000.0)


@pytest.mark.parametrize("kwargs", [{"dilution": 0.0}, {"dilution": float("nan")},
                                    {"volume_nl": -1.0}, {"flow_rate_ul_per_min": 0.0}])
def test_bad_concentration_options(session_dir, kwargs):
    with pytest.raises(InvalidInput):
        event_concentration(session_dir / "sample.fcs", **kwargs)


def test_percent_positive_against_isotype(session_dir, truth):
    r = percent_positive(session_dir / "sample.fcs", session_dir / "isotype.fcs", "CD63")
    true_pct = 100 * truth["sample"]["positive_fraction_of_events"]
    # The control's 0.5 % false positives are removed by (p - c) / (1 - c); what is
    # left is binomial noise (SE ~0.17 points) plus the control's own quantile noise.
    assert r.net_percent_positive == pytest.approx(true_pct, abs=0.6)
    assert r.control_percent_positive == pytest.approx(0.5, abs=0.05)
    assert r.gate == pytest.approx(float(np.quantile(load_events(session_dir / "isotype.fcs").values("FITC-H"), 0.995)))


def test_mesf_calibration_recovers_the_instrument(session_dir, truth):
    m = mesf_calibration(session_dir / "mesf_beads.fcs", truth["mesf_beads"]["mesf"], "FITC-H")
    au_per_mesf = truth["mesf_beads"]["au_per_mesf"]
    # Linear detector: slope 1, intercept log10(1 / au_per_mesf); 3000 events per bead.
    assert m.slope == pytest.approx(1.0, abs=0.02)
    assert m.intercept == pytest.approx(math.log10(1 / au_per_mesf), abs=0.03)
    assert m.blank_fluorescence == pytest.approx(truth["mesf_beads"]["fluorescence_background_au"], rel=0.02)
    assert m.mesf(m.blank_fluorescence + 5000 * au_per_mesf) == pytest.approx(5000, rel=0.03)
    with pytest.raises(InsufficientData):
        mesf_calibration(session_dir / "mesf_beads.fcs", [0, 10, 100, 1000, 1e4, 1e5, 1e6], "FITC-H")
    with pytest.raises(InvalidInput):
        mesf_calibration(session_dir / "mesf_beads.fcs", [0, 1000], "FITC-H")


def test_report_lists_what_is_missing(session_dir, calibration, truth):
    bare = flow_report(session_dir / "sample.fcs")
    text = " | ".join(bare.missing)
    for item in ("buffer-only", "scatter calibration", "isotype", "MESF", "detergent", "dilution series"):
        assert item in text
    full = flow_report(session_dir / "sample.fcs", calibration=calibration, blank=session_dir / "blank.fcs",
                       control=session_dir / "isotype.fcs", marker_channel="FITC-H", dilution=100.0,
                       detergent_control="sample+triton.fcs")
    joined = " | ".join(full.missing)
    assert "scatter calibration" not in joined and "buffer-only" not in joined and "isotype" not in joined
    assert full.detection_limits["lower_nm"] == pytest.approx(truth["sample"]["detection_limit_nm"], rel=0.01)
    assert full.controls["detergent_lysis"] == "sample+triton.fcs"
    assert full.trigger == {"channel": "VSSC-H", "threshold": 500.0}
    assert full.positive["channel"] == "FITC-H" and full.concentration["dilution"] == 100.0


def test_dilution_series_shows_single_particle_counting(tmp_path):
    inst = FlowInstrument(noise_event_rate_per_s=0.0)
    files, dils = [], [50.0, 100.0, 200.0]
    for i, d in enumerate(dils):
        sim = simulate_sample(VesicleSample(particles_per_ml=1e10, dilution=d), inst, seed=20 + i)
        files.append(write_fcs(sim, tmp_path / f"d{i}.fcs", instrument=inst))
    s = dilution_series(files, dils)
    # Counts halve with each doubling of the dilution: slope 1 within Poisson (~1 %).
    assert s.slope == pytest.approx(1.0, abs=0.03) and s.single_particle
    assert s.median_scatter_cv < 0.05
    with pytest.raises(InvalidInput):
        dilution_series(files[:2], dils[:2])
