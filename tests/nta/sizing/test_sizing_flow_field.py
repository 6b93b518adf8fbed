"""Flow that varies across the field and in time: measured and removed before sizing.

Walkers are simulated here directly (no video): exact Brownian steps of known
variance plus a flow ``m(t) (v0 + G r)``, seen only inside a field, one track
id per visit. A residual velocity e left in a track adds e^2 to its
squared steps, which the sizing reads as diffusion.
"""

from __future__ import annotations

import numpy as np
import pytest

from exotrace.nta._drift import estimate_drift, estimate_flow_field, subtract_drift
from exotrace.nta._types import Tracks

SHAPE = (240, 320)  # rows, cols
STEP_SD_PX = 3.0  # Brownian step per axis per frame: variance 9 px^2


def _walkers(seed, *, gradient=((0.0, 0.012), (-0.003, 0.0)), modulation=0.0, period=90.0,
             v0=(5.0, -1.0), n=500, frames=200):
    """Flowing Brownian walkers; returns tracks and the true flow per step."""
    rng = np.random.default_rng(seed)
    rows, cols = SHAPE
    g = np.asarray(gradient)
    centre = np.array([(cols - 1) / 2, (rows - 1) / 2])
    x = rng.uniform(-150, cols + 150, n)
    y = rng.uniform(-40, rows + 40, n)
    tid, fr, xs, ys, vxs, vys = [], [], [], [], [], []
    current = np.full(n, -1)
    next_id = 0
    for f in range(frames):
        m = 1.0 + modulation * np.sin(2 * np.pi * (f - 0.5) / period)
        vx = m * (v0[0] + g[0, 0] * (x - centre[0]) + g[0, 1] * (y - centre[1]))
        vy = m * (v0[1] + g[1, 0] * (x - centre[0]) + g[1, 1] * (y - centre[1]))
        x = x + vx + STEP_SD_PX * rng.standard_normal(n)
        y = y + vy + STEP_SD_PX * rng.standard_normal(n)
        # re-enter upstream so the field stays populated
        x = np.where(x > cols + 150, x - (cols + 300), x)
        y = np.where(y < -40, y + rows + 80, y)
        y = np.where(y > rows + 40, y - (rows + 80), y)
        inside = (x >= 11) & (x <= cols - 12) & (y >= 11) & (y <= rows - 12)
        new = inside & (current < 0)
        current[new] = np.arange(next_id, next_id + new.sum())
        next_id += int(new.sum())
        current[~inside] = -1
        idx = np.flatnonzero(inside)
        tid.append(current[idx])
        fr.append(np.full(len(idx), f))
        xs.append(x[idx])
        ys.append(y[idx])
        vxs.append(vx[idx])
        vys.append(vy[idx])
    tid, fr, xs, ys, vxs, vys = (np.concatenate(a) for a in (tid, fr, xs, ys, vxs, vys))
    o = np.lexsort((fr, tid))
    t = Tracks(track_id=tid[o], frame=fr[o], x_px=xs[o], y_px=ys[o],
               intensity=np.ones(len(o)), n_frames=frames, frame_shape=SHAPE)
    return t, vxs[o], vys[o]


def _step_msd(t: Tracks) -> float:
    """Per-axis mean squared one-frame step, px^2."""
    one = (t.track_id[1:] == t.track_id[:-1]) & (np.diff(t.frame) == 1)
    return 0.5 * float(np.mean(np.diff(t.x_px)[one] ** 2 + np.diff(t.y_px)[one] ** 2))


def test_shear_is_measured_and_removed():
    t, _, _ = _walkers(seed=3)
    drift = estimate_drift(t)
    field = estimate_flow_field(t, drift)
    assert field is not None and field.p_value < 1e-6
    # dv_x/dy = 0.012 px/frame per px, i.e. 0.012 x half the tracked height
    # (~108 px) = 1.30 in the field's scaled coordinate; dv_y/dx = -0.003 x
    # ~148 = -0.44. ~30k steps of 3 px give an SE of ~0.03 on each.
    half_x, half_y = field.half_extent_px
    assert field.coef[0, 2] == pytest.approx(0.012 * half_y, abs=0.1)
    assert field.coef[1, 1] == pytest.approx(-0.003 * half_x, abs=0.1)
    flat = subtract_drift(t, drift, flow_field=False)
    fixed = subtract_drift(t, drift)
    assert "flow_field" in fixed.metadata and "flow_field" not in flat.metadata
    # The shear leaves e ~ 0.012 x 62 px rms ~ 0.75 px/frame in x: +e^2/2 per
    # axis ~ +0.3 px^2 on 9 (+3 %); removed, the steps are Brownian again.
    # ~30k steps: SE of the mean squared step ~0.8 % (0.07 px^2).
    assert _step_msd(flat) > 9.0 * 1.02
    assert _step_msd(fixed) == pytest.approx(9.0, rel=0.025)


def test_uniform_flow_is_left_alone():
    # no gradient: the field test (false alarm 1e-3) finds none
    t, _, _ = _walkers(seed=4, gradient=((0.0, 0.0), (0.0, 0.0)))
    drift = estimate_drift(t)
    assert estimate_flow_field(t, drift) is None
    assert "flow_field" not in subtract_drift(t, drift).metadata


def test_drift_follows_a_pump_that_varies_in_time():
    # 30 % swings over 60 frames of a 5 px/frame flow (no shear). Averaged
    # over the spans of the tracks spanning a frame (tens of frames) such a
    # swing was lost (rms error ~0.7 px/frame on videos); the steps follow it.
    # ~40 steps per frame of 3 px, smoothed over 11 frames: noise ~0.15 px.
    t, vx, vy = _walkers(seed=5, gradient=((0.0, 0.0), (0.0, 0.0)), modulation=0.3,
                         period=60.0, frames=240)
    drift = estimate_drift(t)
    f = np.arange(5, 235)  # away from the ends, where the smoothing window is cut
    true = 5.0 * (1 + 0.3 * np.sin(2 * np.pi * (f - 0.5) / 60.0))
    err = drift[f, 0] - true
    assert np.sqrt(np.mean(err ** 2)) < 0.3
    # the 11-frame smoothing passes 95 % of a 60-frame swing (sin(11 pi / 60) / (11 sin(pi / 60)))
    amp = np.polyfit(np.sin(2 * np.pi * (f - 0.5) / 60.0), drift[f, 0], 1)[0]
    assert amp == pytest.approx(1.5 * 0.946, abs=0.15)
