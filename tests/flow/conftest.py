"""A simulated nano-flow session (files + ground truth) shared by the flow tests."""

from __future__ import annotations

import json

import pytest

from exotrace.flow.simulate import simulate_session

BEADS_NM = (100.0, 200.0, 300.0, 500.0)


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory):
    """beads.fcs, mesf_beads.fcs, sample.fcs, blank.fcs, isotype.fcs and truth.json (seed 7)."""
    out = tmp_path_factory.mktemp("flow_session")
    simulate_session(out, seed=7, bead_diameters_nm=BEADS_NM)
    return out


@pytest.fixture(scope="session")
def truth(session_dir):
    return json.loads((session_dir / "truth.json").read_text())


@pytest.fixture(scope="session")
def calibration(session_dir):
    from exotrace.flow import calibrate_scatter

    return calibrate_scatter(session_dir / "beads.fcs", BEADS_NM, bead_index=1.59)
