"""Detection: localization accuracy, no pixel locking, noise-scaled threshold, both engines."""

from __future__ import annotations

import numpy as np
import pytest

from exotrace.errors import InvalidInput
from exotrace.nta import DetectionSettings, _detect, locate, resolve_engine
from exotrace.nta._detect import FrameLocator
from exotrace.nta._kernels import render_spots_nb

ENGINES = ["numba", "numpy"]


def spot_frames(n_frames=8, *, counts=3000.0, psf_sigma=1.6, noise=True, seed=0,
                spacing=24, size=192):
    """Frames with spots on a jittered grid at random sub-pixel positions.

    Returns frames (float32) and true (frame, x, y).
    """
    rng = np.random.default_rng(seed)
    frames = []
    truth = []
    centres = np.arange(spacing, size - spacing + 1, spacing, dtype=float)
    for f in range(n_frames):
        gx, gy = np.meshgrid(centres, centres)
        x = gx.ravel() + rng.uniform(-3, 3, gx.size)
        y = gy.ravel() + rng.uniform(-3, 3, gy.size)
        img = np.zeros((size, size))
        render_spots_nb(img, x, y, np.full(x.size, counts), psf_sigma, 7)
        if noise:
            img = rng.poisson(img + 10.0) + rng.normal(0, 2.0, img.shape)
        else:
            img = img + 10.0
        frames.append(img.astype(np.float32))
        truth.append(np.column_stack([np.full(x.size, f), x, y]))
    return np.stack(frames), np.concatenate(truth)


def match(det, truth, max_px=2.0):
    """Errors (dx, dy) of detections matched to the nearest true spot of their frame."""
    errs = []
    for f in np.unique(truth[:, 0]).astype(int):
        t = truth[truth[:, 0] == f]
        m = det.frame == f
        d2 = (det.x_px[m, None] - t[None, :, 1]) ** 2 + (det.y_px[m, None] - t[None, :, 2]) ** 2
        k = np.argmin(d2, axis=1)
        ok = d2[np.arange(len(k)), k] < max_px**2
        errs.append(np.column_stack([det.x_px[m][ok] - t[k[ok], 1], det.y_px[m][ok] - t[k[ok], 2]]))
    return np.concatenate(errs)


@pytest.mark.parametrize("binning", [1, 2])
@pytest.mark.parametrize("engine", ENGINES)
def test_noiseless_spots_are_located_to_a_few_hundredths_of_a_pixel(engine, binning):
    frames, truth = spot_frames(4, noise=False)
    det = locate(frames, engine=engine, binning=binning)
    assert len(det) == len(truth)  # every spot, nothing else
    err = match(det, truth)
    # The Gaussian-mask centroid of a pixel-integrated Gaussian is not exactly
    # its centre (the band-pass and the window truncate it); measured 0.02 px.
    assert np.sqrt(np.mean(err**2)) < 0.05
    assert np.abs(err.mean(axis=0)).max() < 0.01


@pytest.mark.parametrize("binning", [1, 2])
@pytest.mark.parametrize("engine", ENGINES)
def test_noisy_spots_localization_error_is_small_and_unbiased(engine, binning):
    frames, truth = spot_frames(10, counts=3000.0, seed=1)
    det = locate(frames, engine=engine, binning=binning)
    err = match(det, truth)
    assert len(err) >= 0.98 * len(truth)
    # Photon-limited precision for 3000 counts, PSF sigma 1.6 px, background
    # 10/px is ~0.04 px (Thompson et al. 2002); the mask centroid reaches
    # ~0.05 px here. 0.1 px leaves room but catches a broken centroid.
    assert np.sqrt(np.mean(err**2)) < 0.1
    # mean error over ~1000 spots: standard error ~0.002 px
    assert np.abs(err.mean(axis=0)).max() < 0.01


@pytest.mark.parametrize("binning", [1, 2])
@pytest.mark.parametrize("engine", ENGINES)
def test_fractional_positions_show_no_pixel_locking(engine, binning):
    frames, truth = spot_frames(24, counts=3000.0, seed=2)
    det = locate(frames, engine=engine, binning=binning)
    frac = np.concatenate([det.x_px % 1.0, det.y_px % 1.0])
    counts, _ = np.histogram(frac, bins=10, range=(0, 1))
    expected = len(frac) / 10
    # ~5000 values: Poisson scatter per bin is ~4 %; pixel locking piles
    # values near 0 and 1 and empties the middle by tens of percent.
    assert counts.min() > 0.85 * expected
    assert counts.max() < 1.15 * expected
    chi2 = np.sum((counts - expected) ** 2 / expected)
    assert chi2 < 27.9  # 99.9th percentile of chi-square with 9 degrees of freedom


@pytest.mark.parametrize("binning", [1, 2])
def test_engines_agree(binning):
    frames, _ = spot_frames(4, seed=3)
    a = locate(frames, engine="numba", binning=binning)
    b = locate(frames, engine="numpy", binning=binning)
    assert len(a) == len(b)
    assert np.array_equal(a.frame, b.frame)
    # float32 filters summed in different orders: agreement to 1e-4 px
    np.testing.assert_allclose(a.x_px, b.x_px, atol=1e-4)
    np.testing.assert_allclose(a.y_px, b.y_px, atol=1e-4)
    np.testing.assert_allclose(a.intensity, b.intensity, rtol=1e-4, atol=1e-2)
    assert a.threshold == pytest.approx(b.threshold, rel=1e-4)


@pytest.mark.parametrize("engine", ENGINES)
def test_threshold_follows_the_noise_not_the_counts(engine):
    rng = np.random.default_rng(4)
    # pure noise at two very different levels: the same threshold in sigmas
    # finds (almost) nothing in both
    quiet = (rng.normal(100, 2, (6, 160, 160))).astype(np.float32)
    loud = (rng.normal(100, 20, (6, 160, 160))).astype(np.float32)
    dq = locate(quiet, engine=engine, threshold_sigma=5)
    dl = locate(loud, engine=engine, threshold_sigma=5)
    # 5 sigma on ~150k pixels of filtered white noise: a handful at most
    assert len(dq) <= 6 and len(dl) <= 6
    assert dl.threshold == pytest.approx(10 * dq.threshold, rel=0.1)


@pytest.mark.parametrize("engine", ENGINES)
def test_intensity_is_proportional_to_brightness(engine):
    f1, _ = spot_frames(4, counts=2000.0, noise=False, seed=5)
    f2, _ = spot_frames(4, counts=4000.0, noise=False, seed=5)
    i1 = locate(f1, engine=engine).intensity
    i2 = locate(f2, engine=engine).intensity
    np.testing.assert_allclose(i2 / i1, 2.0, rtol=1e-3)
    # the disc of radius 6 px holds all but ~0.1 % of a sigma 1.6 px spot
    assert np.median(i1) == pytest.approx(2000.0, rel=0.02)


def test_saturated_flat_top_gives_one_detection():
    img = np.full((64, 64), 10.0, dtype=np.float32)
    render_spots_nb(img, np.array([31.3]), np.array([30.6]), np.array([40000.0]), 1.6, 7)
    img = np.minimum(img, 255.0).astype(np.float32)
    for engine in ENGINES:
        det = locate(img, engine=engine)
        assert len(det) == 1
        assert det.x_px[0] == pytest.approx(31.3, abs=0.05)
        assert det.y_px[0] == pytest.approx(30.6, abs=0.05)


def test_first_frame_offset_and_shape():
    frames, _ = spot_frames(2, seed=6)
    det = locate(frames, first_frame=100)
    assert set(np.unique(det.frame)) == {100, 101}
    assert det.frame_shape == frames.shape[1:]
    assert det.n_frames == 2


@pytest.mark.parametrize("kwargs", [
    {"threshold_sigma": 0}, {"threshold_sigma": float("nan")}, {"radius_px": 0},
    {"radius_px": 2.5}, {"noise_sigma_px": -1}, {"separation_px": 0}, {"binning": 3},
])
def test_bad_settings_are_rejected(kwargs):
    with pytest.raises(InvalidInput):
        DetectionSettings(**kwargs)


def test_bad_engine_and_frame_size():
    with pytest.raises(InvalidInput, match="engine"):
        resolve_engine("cuda")
    with pytest.raises(InvalidInput, match="too small"):
        FrameLocator().frame(np.zeros((10, 10), np.float32))
    with pytest.raises(InvalidInput):
        locate(np.zeros(5))


def test_one_streak_found_twice_is_kept_once():
    # A long bright streak (a fast particle during the exposure) has several
    # band-pass maxima more than `separation` apart that the iterated centroid
    # pulls onto the same centre; the duplicates must go.
    img = np.full((96, 160), 10.0)
    xs = np.linspace(50.0, 110.0, 61)
    render_spots_nb(img, xs, np.full(xs.size, 48.0), np.full(xs.size, 400.0), 1.6, 7)
    frame = img.astype(np.float32)
    sp = FrameLocator(DetectionSettings(separation_px=3)).spots(frame)
    # closer than DUPLICATE_PX (3 px) never survives
    d = np.hypot(sp.x_px[:, None] - sp.x_px[None, :], sp.y_px[:, None] - sp.y_px[None, :])
    assert (d + 100 * np.eye(len(d)) >= 3.0).all()
    keep = _detect.unique_spots(np.array([1.0, 2.0, 10.0]), np.zeros(3), np.array([5., 9., 1.]))
    assert keep.tolist() == [False, True, True]  # the brighter of the close pair stays
    # random crowded spots: the same as testing every pair
    rng = np.random.default_rng(8)
    x, y, inten = rng.uniform(0, 60, 300), rng.uniform(0, 40, 300), rng.uniform(1, 9, 300)
    x[:20] = np.round(x[:20])
    y[:20] = 0.0
    d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    a, b = np.nonzero(np.triu(d <= _detect.DUPLICATE_PX, k=1))
    expect = np.ones(300, bool)
    expect[np.where(inten[a] >= inten[b], b, a)] = False
    np.testing.assert_array_equal(_detect.unique_spots(x, y, inten), expect)


def test_inplace_median_equals_numpy_median():
    # the noise threshold's median: odd and even sizes, ties (quantized counts)
    rng = np.random.default_rng(2)
    for n in (1, 2, 3, 4, 7, 10, 101, 1000):
        for a in (rng.standard_normal(n), np.round(3 * rng.standard_normal(n))):
            assert _detect._median_inplace(a.copy()) == np.median(a)


def test_disc_sums_by_row_span_take_exactly_the_pixels_within_the_radius():
    # the compiled intensity disc sums whole row spans found from a square root;
    # the pixels must be those of the test (y - cy)^2 + (x - cx)^2 <= r^2,
    # also for centres whose disc edge passes exactly through pixel centres
    # (integer and half-integer centres) and discs cut by the frame's edges
    from exotrace.nta._kernels import _disc_sum

    rng = np.random.default_rng(11)
    raw = rng.integers(0, 255, (40, 50)).astype(np.uint8)
    yy, xx = np.mgrid[0:40, 0:50]
    centres = [(20.0, 25.0), (20.5, 25.5), (0.0, 0.0), (39.4, 49.6), (-1.2, 10.0), (5.5, 3.0)]
    centres += [tuple(c) for c in rng.uniform(-2, 52, (200, 2))]
    for radius in (1, 5, 9):
        for cy, cx in centres:
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
            total, n = _disc_sum(raw, cy, cx, radius)
            assert (n, total) == (int(inside.sum()), float(raw[inside].sum())), (cy, cx, radius)


@pytest.mark.parametrize("sigma_px", [0.5, 0.75, 1.5])
def test_compiled_smoothing_equals_ndimage(sigma_px):
    # 5, 7 (the default binned band-pass: its own one-pass kernels) and 11 taps,
    # nearest boundary; float32 sums: a few ulp of the largest value
    from scipy import ndimage

    from exotrace.nta._kernels import gauss_smooth_nb

    taps = DetectionSettings(noise_sigma_px=sigma_px).gauss_taps()
    img = np.random.default_rng(7).uniform(0, 255, (61, 83)).astype(np.float32)
    expect = ndimage.correlate1d(ndimage.correlate1d(img, taps, axis=1, mode="nearest"),
                                 taps, axis=0, mode="nearest")
    out = np.empty_like(img)
    gauss_smooth_nb(img, taps, np.empty_like(img), out)
    np.testing.assert_allclose(out, expect, rtol=0, atol=255 * 4e-7 * taps.size)


@pytest.mark.parametrize("order", ["random", "sorted", "reversed", "constant", "two values",
                                   "organ pipe"])
def test_branch_free_selection_finds_every_rank(order):
    from exotrace.nta._kernels import kth_smallest_nb

    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 16, 17, 100, 1001):
        x = {"random": rng.standard_normal(n), "sorted": np.arange(n, dtype=float),
             "reversed": np.arange(n, 0, -1, dtype=float), "constant": np.full(n, 2.5),
             "two values": rng.integers(0, 2, n).astype(float),
             "organ pipe": np.minimum(np.arange(n), np.arange(n)[::-1]).astype(float),
             }[order].astype(np.float32)
        before = x.copy()
        expect = np.sort(x)
        work = np.empty(2 * n, np.float32)
        for k in sorted({0, n // 3, n // 2, n - 1}):
            assert kth_smallest_nb(x, k, work) == expect[k], (n, k)
        np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (64, 48), (257, 330)])
def test_compiled_sample_statistics_equal_numpy_reference(shape):
    # the per-frame noise and background medians: same ranks from the numba
    # selection on float32 as from numpy's on the float64 copy, NaNs skipped,
    # odd and even sample sizes, ties (quantized counts)
    rng = np.random.default_rng(sum(shape))
    for img in (rng.standard_normal(shape).astype(np.float32),
                np.round(3 * rng.standard_normal(shape)).astype(np.float32)):
        img[rng.random(shape) < 0.05] = np.nan
        for fn in (_detect.robust_noise_sigma, _detect._frame_background):
            assert fn(img, "numba") == fn(img, "numpy")
    assert _detect.robust_noise_sigma(np.full(shape, np.nan, np.float32), "numba") == 0.0


@pytest.mark.parametrize("engine", ENGINES)
def test_peak_and_saturation_are_reported(engine):
    # 10000 counts in a sigma-1.6 px PSF: ~620 counts in the top pixel, clipped at 255
    frames, truth = spot_frames(2, counts=10000.0, seed=3)
    det = locate(np.clip(frames, 0, 255).astype(np.uint8), engine=engine)
    # peak: the band-passed maximum, always above the threshold it was compared with
    assert np.all(det.peak > det.threshold)
    assert det.saturated.all()
    # 3000 counts: ~190 + 10 background in the top pixel, below 255
    dim, _ = spot_frames(2, counts=3000.0, seed=3)
    det_dim = locate(np.clip(dim, 0, 255).astype(np.uint8), engine=engine)
    assert len(det_dim) > 0 and not det_dim.saturated.any()
    # float frames carry no saturation level
    assert not locate(frames.astype(np.float32), engine=engine).saturated.any()


def test_saturation_level_from_pixel_type():
    assert _detect.saturation_count(np.uint8, 17) == 255
    assert _detect.saturation_count(np.uint16, 4095) == 4095  # 12-bit camera in 16-bit words
    assert _detect.saturation_count(np.uint16, 5000) == 16383
    assert _detect.saturation_count(np.float32, 5000) is None


def test_integer_frames_are_read_without_changing_the_spots():
    # 8- and 16-bit frames go to the kernels as they are (no float32 copy);
    # the spots must be those of the same frame given as float32.
    frames, _ = spot_frames(3, seed=5)
    for dtype in (np.uint8, np.uint16):
        counts = np.clip(np.rint(frames), 0, np.iinfo(dtype).max).astype(dtype)
        # one locator per pixel type: a locator carries the last frame's
        # background and noise into the next frame
        loc_int = FrameLocator(DetectionSettings(binning=2), engine="numba")
        loc_float = FrameLocator(DetectionSettings(binning=2), engine="numba")
        for frame in counts:
            a = loc_int.spots(frame, saturation=float(np.iinfo(dtype).max))
            b = loc_float.spots(frame.astype(np.float32),
                                saturation=float(np.iinfo(dtype).max))
            # fastmath lets LLVM order the centroid sums differently for each
            # pixel type: the same spots to the last few bits (1e-13 px)
            np.testing.assert_allclose(a.x_px, b.x_px, rtol=0, atol=1e-9)
            np.testing.assert_allclose(a.y_px, b.y_px, rtol=0, atol=1e-9)
            np.testing.assert_allclose(a.intensity, b.intensity, rtol=1e-12)
            np.testing.assert_array_equal(a.saturated, b.saturated)
            assert a.threshold == b.threshold
