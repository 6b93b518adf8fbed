"""End to end: videos -> tracks -> size distribution -> concentration.

:func:`track_video` streams one capture through detection and linking, then
iterates drift estimation and re-linking; :func:`analyze_videos` does that for
every capture of one sample, pools all tracks for the size distribution (as
NanoSight pools its 3-5 captures) and reports per-video results beside the
pooled one.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InsufficientData, InvalidInput
from ._detect import (
    DEFAULT_BINNING,
    DEFAULT_NOISE_SIGMA_PX,
    DEFAULT_RADIUS_PX,
    DetectionSettings,
    FrameLocator,
    saturation_count,
)
from ._drift import estimate_drift, subtract_drift
from ._link import Linker, link, search_radius_px
from ._readers import open_frames
from ._stream import default_decode_threads, frame_spots
from ._types import Acquisition, Detections, Tracks
from .concentration import Calibration, calibrate, estimate_concentration
from .diffusion import track_diffusion
from .sizing import size_distribution

__all__ = ["NtaResult", "VideoResult", "analyze_tracks", "analyze_videos", "calibrate_videos",
           "load_tracks",
           "pool_tracks", "track_frames",
           "track_video"]

# A video shorter than this cannot give tracks long enough to size anything.
MIN_FRAMES = 10
# Tracks with fewer one-frame steps are not used for sizing (CVE needs a few
# steps; shorter tracks mostly add noise).
DEFAULT_MIN_STEPS = 5
# Continuation threshold as a fraction of the detection threshold. Off (1.0)
# by default: on simulated videos 0.7-0.85 did not reduce the blur-driven
# selection bias measurably and 0.7 let tracks continue on noise.
DEFAULT_WEAK_FRACTION = 1.0

Progress = Callable[[int], None]


def _combine_detections(parts: list[tuple[np.ndarray, ...]], n_frames: int,
                        frame_shape: tuple[int, int], thresholds: list[float]) -> Detections:
    if parts:
        f, x, y, i, pk, sat = (np.concatenate(c) for c in zip(*parts, strict=True))
    else:
        f, x, y, i = np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0)
        pk, sat = np.zeros(0), np.zeros(0, bool)
    return Detections(frame=f, x_px=x, y_px=y, intensity=i, n_frames=n_frames,
                      frame_shape=frame_shape,
                      threshold=float(np.mean(thresholds)) if thresholds else float("nan"),
                      peak=pk, saturated=sat)


# Frames whose spots teach the streaming linker the flow before it starts.
_WARMUP_FRAMES = 16
# The streaming pass is kept when the flow it predicted by differs from the
# flow then measured on its tracks by at most this on average (px/frame, per
# axis); else the detections are linked again with the measured flow. On
# simulated 1024 x 768 and 640 x 480 captures (flow 3.5 px/frame) the
# difference was 0.14-0.18 px/frame and relinking gave the same sizes; on
# small crowded fields (192 x 160, 240 x 192) 0.24-0.45, and those relink.
RELINK_TOLERANCE_PX = 0.2


def _track_chunks(chunks: Iterable[tuple[int, np.ndarray]], acquisition: Acquisition, *,
                  source: str, settings: DetectionSettings, engine: str, min_diameter_nm: float,
                  memory: int, drift_iterations: int, weak_fraction: float,
                  progress: Progress | None, pixel_dtype=np.uint8,
                  max_count: float | None = None, workers: int | None = None) -> Tracks:
    # Saturation level: ``max_count`` when known (8-bit), else inferred from the
    # pixel type and the largest count seen so far (12-bit data in 16-bit words).
    locator = FrameLocator(settings, engine=engine)
    radius = search_radius_px(acquisition, min_diameter_nm=min_diameter_nm)
    first_pass: Linker | None = None
    warmup: list[tuple] = []

    def feed(linker: Linker, f: int, sp) -> None:
        linker.add(f, sp.x_px, sp.y_px, sp.intensity, sp.strong, peak=sp.peak,
                   saturated=sp.saturated)

    def start_first_pass() -> Linker:
        # the flow learnt on the first frames, so that the streaming pass
        # predicts positions well from its first frame on
        scratch = Linker(radius, memory=memory, online_drift=True)
        for f, sp in warmup:
            feed(scratch, f, sp)
        linker = Linker(radius, memory=memory, online_drift=True, initial_flow=scratch.flow)
        for f, sp in warmup:
            feed(linker, f, sp)
        warmup.clear()
        return linker

    parts: list[tuple[np.ndarray, ...]] = []
    strong_parts: list[np.ndarray] = []
    thresholds: list[float] = []
    n_frames = 0
    frame_shape = (0, 0)

    def with_levels():
        nonlocal frame_shape
        seen_max = 0.0
        for first, chunk in chunks:
            frame_shape = (int(chunk.shape[1]), int(chunk.shape[2]))
            if max_count is None and chunk.size:
                seen_max = max(seen_max, float(chunk.max()))
            yield first, chunk, (max_count if max_count is not None
                                 else saturation_count(pixel_dtype, seen_max))

    for f, sp, done in frame_spots(with_levels(), locator, weak_fraction=weak_fraction,
                                   workers=workers):
        if first_pass is None:
            warmup.append((f, sp))
            if len(warmup) >= _WARMUP_FRAMES:
                first_pass = start_first_pass()
        else:
            feed(first_pass, f, sp)
        parts.append((np.full(len(sp.x_px), f, np.int64), sp.x_px, sp.y_px, sp.intensity,
                      sp.peak, sp.saturated))
        strong_parts.append(sp.strong)
        thresholds.append(sp.threshold)
        n_frames = f + 1
        if done and progress is not None:
            progress(done)
    if n_frames < MIN_FRAMES:
        raise InsufficientData(f"{source}: only {n_frames} frames; at least {MIN_FRAMES} are "
                               "needed to follow particles")
    if first_pass is None:
        first_pass = start_first_pass()
    detections = _combine_detections(parts, n_frames, frame_shape, thresholds)
    strong = np.concatenate(strong_parts) if strong_parts else np.zeros(0, bool)
    if not strong.any():
        raise InsufficientData(f"{source}: no particles detected in {n_frames} frames at "
                               f"threshold {settings.threshold_sigma:g} sigma; lower "
                               "--threshold-sigma or check the video")
    tracks = first_pass.result(n_frames=n_frames, frame_shape=frame_shape,
                               threshold=detections.threshold, source=source)
    drift = estimate_drift(tracks)
    # Re-link with positions predicted by the measured flow, then measure the
    # flow again on the better links -- unless the streaming pass already
    # predicted by that flow (a relink would change nothing but the time).
    predicted = first_pass.online_flow(n_frames)
    with np.errstate(invalid="ignore"):
        mismatch = np.nanmean(np.abs(predicted - drift), axis=0)
    relinked = 0
    if not (np.all(np.isfinite(mismatch)) and mismatch.max() <= RELINK_TOLERANCE_PX):
        for _ in range(max(0, drift_iterations - 1)):
            tracks = link(detections, search_radius_px=radius, memory=memory,
                          drift_px_per_frame=drift, strong=strong, source=source)
            drift = estimate_drift(tracks)
            relinked += 1
    out = subtract_drift(tracks, drift)
    # the drift removed up to each frame: where the field's edges lie in the
    # corrected coordinates (the hidden-spot measurement needs them)
    meta = {"n_detections": len(detections), "search_radius_px": radius,
            "detections_per_frame": len(detections) / n_frames, "relinked": relinked,
            "cumulative_drift_px": np.cumsum(np.asarray(drift, dtype=float), axis=0)}
    if "flow_field" in out.metadata:
        # the flow varying across the field that subtract_drift removed
        meta["flow_field"] = out.metadata["flow_field"]
    return Tracks(track_id=out.track_id, frame=out.frame, x_px=out.x_px, y_px=out.y_px,
                  intensity=out.intensity, n_frames=out.n_frames, frame_shape=out.frame_shape,
                  drift_px_per_frame=out.drift_px_per_frame, drift_corrected=True,
                  threshold=out.threshold, source=source, metadata=meta, peak=out.peak,
                  saturated=out.saturated)


def track_video(
    source: str | Path,
    acquisition: Acquisition,
    *,
    invert: bool = False,
    threshold_sigma: float = 5.0,
    radius_px: int = DEFAULT_RADIUS_PX,
    noise_sigma_px: float = DEFAULT_NOISE_SIGMA_PX,
    binning: int = DEFAULT_BINNING,
    min_diameter_nm: float = 30.0,
    memory: int = 1,
    drift_iterations: int = 2,
    weak_fraction: float = DEFAULT_WEAK_FRACTION,
    engine: str = "auto",
    chunk_frames: int = 16,
    progress: Progress | None = None,
    workers: int | None = None,
) -> Tracks:
    """Detect, link and drift-correct the particles of one capture, streaming it.

    Parameters
    ----------
    source : str or Path
        Video file, TIFF stack, folder or glob of PNG/TIFF frames.
    acquisition : Acquisition
        Pixel size (nm), frame rate (fps), temperature (C): set the search radius.
    invert : bool
        Dark particles on a bright background.
    threshold_sigma : float
        Detection threshold in noise sigmas (NanoSight-like 4-6).
    radius_px : int
        Spot radius, px.
    noise_sigma_px : float
        Sigma of the noise-suppressing Gaussian of the band-pass, px.
    binning : {1, 2}
        Find spots on 2 x 2 binned frames (default; twice as fast) or on the
        full frames; centres are always measured on the full frames.
    min_diameter_nm : float
        Smallest diameter of interest, nm: the fastest diffusion the linker expects.
    memory : int
        Frames a particle may vanish inside a track.
    drift_iterations : int
        Link -> drift passes (2: link, measure drift, re-link with prediction).
    weak_fraction : float
        Hysteresis: spots down to this fraction of the threshold may continue a
        track (never start one). Without it, a dim particle is lost in exactly
        the frames where it moved most during the exposure (its light spread
        over a streak), which biases diffusion low; 1.0 switches it off.
    engine : {"auto", "numba", "numpy"}
    chunk_frames : int
        Frames held in memory at a time (16 float32 frames of 1280x1024 are 80 MiB).
    progress : callable, optional
        Called with the number of frames processed after each chunk.
    workers : int, optional
        Threads that centre spots while the next frames are decoded and
        band-passed (default: one per core but one); 0 runs decoding and
        detection in the calling thread. The tracks are the same either way.

    Returns
    -------
    Tracks
        Drift-corrected; ``metadata`` holds ``n_detections`` and the search radius (px).
    """
    src = open_frames(source, invert=invert)
    settings = DetectionSettings(threshold_sigma=threshold_sigma, radius_px=radius_px,
                                 noise_sigma_px=noise_sigma_px, binning=binning)
    decode_threads = 1 if workers == 0 else default_decode_threads()
    return _track_chunks(src.chunks(chunk_frames, decode_threads=decode_threads), acquisition,
                         source=str(source),
                         settings=settings, engine=engine, min_diameter_nm=min_diameter_nm,
                         memory=memory, drift_iterations=drift_iterations,
                         weak_fraction=weak_fraction, progress=progress, workers=workers,
                         pixel_dtype=np.uint8 if src.max_value <= 255 else np.uint16,
                         max_count=src.max_value if src.max_value <= 255 else None)


def track_frames(
    frames: np.ndarray,
    acquisition: Acquisition,
    *,
    threshold_sigma: float = 5.0,
    radius_px: int = DEFAULT_RADIUS_PX,
    noise_sigma_px: float = DEFAULT_NOISE_SIGMA_PX,
    binning: int = DEFAULT_BINNING,
    min_diameter_nm: float = 30.0,
    memory: int = 1,
    drift_iterations: int = 2,
    weak_fraction: float = DEFAULT_WEAK_FRACTION,
    engine: str = "auto",
    source: str = "frames",
    workers: int | None = None,
) -> Tracks:
    """:func:`track_video` for frames already in memory, shape (n, rows, cols)."""
    arr = np.asarray(frames)
    if arr.ndim != 3:
        raise InvalidInput(f"frames must have shape (n, rows, cols), got {arr.shape}")
    settings = DetectionSettings(threshold_sigma=threshold_sigma, radius_px=radius_px,
                                 noise_sigma_px=noise_sigma_px, binning=binning)

    def chunks():
        # frames are converted to float32 one at a time by the locator (into
        # a reused buffer), not a chunk at a time
        step = 32
        for a in range(0, arr.shape[0], step):
            yield a, arr[a:a + step]

    return _track_chunks(chunks(), acquisition, source=source, settings=settings, engine=engine,
                         min_diameter_nm=min_diameter_nm, memory=memory,
                         drift_iterations=drift_iterations, weak_fraction=weak_fraction,
                         progress=None, pixel_dtype=arr.dtype, workers=workers,
                         max_count=(saturation_count(arr.dtype, float(arr.max()))
                                    if arr.size and np.issubdtype(arr.dtype, np.integer)
                                    else float("inf")))


@dataclass
class VideoResult:
    """Per-capture figures inside an :class:`NtaResult`."""

    source: str
    n_frames: int
    n_detections: int
    n_tracks: int
    particles_per_frame: float | None
    particles_per_ml: float | None
    drift_px_per_frame: tuple[float, float]
    threshold: float
    mean_nm: float | None = None
    mode_nm: float | None = None
    d50_nm: float | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class NtaResult:
    """Size distribution and concentration of one sample (all its captures pooled).

    Attributes
    ----------
    n_tracks : int
        Tracks used for sizing (all captures).
    mean_nm, mode_nm, sd_nm, d10_nm, d50_nm, d90_nm : float
        Number-weighted statistics, nm.
    peaks_nm : list of float
        Peaks of the number distribution, nm.
    particles_per_frame : float
        Mean particles in view per frame (pooled).
    particles_per_ml : float or None
        Concentration in the original sample (after the dilution factor),
        particles/mL; ``None`` without a calibration.
    drift_px_per_frame : (float, float)
        Mean drift over all captures (x, y), px/frame.
    diameter_nm, number_fraction : ndarray
        The distribution on its diameter grid.
    videos : list of VideoResult
    warnings : list of str
    dilution : float
    acquisition : Acquisition
    method : str
        Size method (``"em"`` or ``"histogram"``).
    distribution : object
        The sizing engineer's ``SizeDistribution`` (full detail; not serialized).
    tracks : Tracks
        Pooled tracks (not serialized).
    """

    n_tracks: int
    mean_nm: float
    mode_nm: float
    sd_nm: float
    d10_nm: float
    d50_nm: float
    d90_nm: float
    peaks_nm: list[float]
    particles_per_frame: float | None
    particles_per_ml: float | None
    drift_px_per_frame: tuple[float, float]
    diameter_nm: np.ndarray
    number_fraction: np.ndarray
    videos: list[VideoResult]
    warnings: list[str]
    dilution: float
    acquisition: Acquisition
    method: str = "em"
    distribution: object = field(default=None, repr=False)
    tracks: Tracks | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """JSON-ready summary (the shape ``exotrace nta analyze --json`` prints)."""
        a = self.acquisition
        return {
            "n_tracks": self.n_tracks,
            "mean_nm": self.mean_nm,
            "mode_nm": self.mode_nm,
            "sd_nm": self.sd_nm,
            "d10_nm": self.d10_nm,
            "d50_nm": self.d50_nm,
            "d90_nm": self.d90_nm,
            "span_d90_d10": (self.d90_nm / self.d10_nm
                             if self.d10_nm and math.isfinite(self.d10_nm) else None),
            "peaks_nm": list(self.peaks_nm),
            "particles_per_frame": self.particles_per_frame,
            "particles_per_ml": self.particles_per_ml,
            "dilution": self.dilution,
            "drift_px_per_frame": list(self.drift_px_per_frame),
            "distribution": {"diameter_nm": np.asarray(self.diameter_nm).tolist(),
                             "number_fraction": np.asarray(self.number_fraction).tolist()},
            "videos": [v.__dict__ for v in self.videos],
            "warnings": list(self.warnings),
            "method": self.method,
            "acquisition": {"pixel_size_nm": a.pixel_size_nm, "fps": a.fps,
                            "temperature_c": a.temperature_c, "exposure_ms": a.exposure_ms,
                            "viscosity_cp": a.viscosity_cp},
        }


def pool_tracks(tracks: Sequence[Tracks]) -> Tracks:
    """Concatenate the tracks of several captures (ids and frames made distinct).

    Frames are offset so each capture occupies its own frame range; the pooled
    ``n_frames`` is the total, so particles per frame stays an average over captures.
    """
    if not tracks:
        raise InsufficientData("no tracks to pool")
    if len(tracks) == 1:
        return tracks[0]
    ids, frames, xs, ys, ins, peaks, sats = [], [], [], [], [], [], []
    id_off = 0
    f_off = 0
    n_det_frames = []
    for t in tracks:
        uniq, inv = np.unique(t.track_id, return_inverse=True)
        ids.append(inv.astype(np.int64) + id_off)
        frames.append(t.frame + f_off)
        xs.append(t.x_px)
        ys.append(t.y_px)
        ins.append(t.intensity)
        peaks.append(t.peak)
        sats.append(t.saturated)
        id_off += len(uniq)
        f_off += t.n_frames
        n_det_frames.append(t.n_frames)
    w = np.asarray(n_det_frames, dtype=float)
    drift = tuple(float(np.average([t.drift_px_per_frame[k] for t in tracks], weights=w))
                  for k in (0, 1))
    thr = [t.threshold for t in tracks if math.isfinite(t.threshold)]
    meta = {}
    drifts = [t.metadata.get("cumulative_drift_px") for t in tracks]
    if all(d is not None and len(d) == t.n_frames for d, t in zip(drifts, tracks, strict=True)):
        # each capture's removed drift over its own frame range
        meta["cumulative_drift_px"] = np.concatenate([np.asarray(d, float) for d in drifts])
    return Tracks(track_id=np.concatenate(ids), frame=np.concatenate(frames),
                  x_px=np.concatenate(xs), y_px=np.concatenate(ys),
                  intensity=np.concatenate(ins), n_frames=int(f_off),
                  frame_shape=tracks[0].frame_shape, drift_px_per_frame=drift,
                  drift_corrected=all(t.drift_corrected for t in tracks),
                  threshold=float(np.mean(thr)) if thr else float("nan"),
                  source=", ".join(t.source for t in tracks), metadata=meta,
                  peak=np.concatenate(peaks), saturated=np.concatenate(sats))


def _particles_per_frame(tracks: Tracks) -> float:
    return len(tracks) / tracks.n_frames if tracks.n_frames else 0.0


# Crowding: expected number of other spots within the linking radius (six
# step SDs) of a fast particle (80th percentile of the tracks' consecutive-step
# variance). Simulated 70/140 nm 60:40 videos, flow 3.5 px/frame: 0.28-0.34
# on 1024 x 768 at 5e8/mL and 640 x 480 at 5e8/mL (number fraction error
# -0.02 to -0.14), 0.54-0.58 on 640 x 480 at 1e9/mL (-0.11 to -0.30, with a
# spurious ~21 nm peak); 100 nm at 5e8/mL on 1024 x 768: 0.34 (sizes within
# their targets).
CROWDING_LIMIT = 0.45
_CROWDING_RADIUS_SIGMAS = 6.0
_FAST_STEP_PERCENTILE = 80


def _spots_per_frame(tracks: Tracks) -> float:
    """All detections per frame (tracked or not), ``len(tracks)`` when not recorded."""
    return float(tracks.metadata.get("n_detections", len(tracks))) / tracks.n_frames


def _crowding_warning(tracks: Tracks, diffusion, acquisition: Acquisition) -> str | None:
    lam = crowding_index(tracks, diffusion, acquisition)
    if lam is None or lam <= CROWDING_LIMIT:
        return None
    spots = _spots_per_frame(tracks)
    advised = spots * CROWDING_LIMIT / lam
    return (f"crowded field: {spots:.0f} spots per frame leave ~{lam:.2f} other spots within "
            f"a fast particle's linking radius (limit {CROWDING_LIMIT}); tracks of neighbouring "
            "particles swap, which puts tracks at small sizes and biases mixture fractions "
            f"towards large particles; dilute to fewer than ~{advised:.0f} spots per frame")


def crowding_index(tracks: Tracks, diffusion, acquisition: Acquisition) -> float | None:
    """Expected other spots within a fast particle's linking radius (see ``CROWDING_LIMIT``).

    Parameters
    ----------
    tracks : Tracks
        One capture's tracks (``metadata["n_detections"]`` counts all spots).
    diffusion : TrackDiffusion
        Their per-track diffusion estimates (consecutive-step moments, m^2).
    acquisition : Acquisition
        Pixel size.

    Returns
    -------
    float or None
        rho pi (6 sigma)^2, rho the detections per frame per px^2 and sigma^2
        the 80th percentile of the tracks' mean squared consecutive step per
        axis (px^2); ``None`` without a frame size or step moments.
    """
    rows, cols = tracks.frame_shape
    m1 = diffusion.mean_step_sq1_m2
    if rows <= 0 or cols <= 0 or not tracks.n_frames or m1 is None:
        return None
    ok = np.isfinite(m1) & (diffusion.n_steps1 > 0)
    if not np.any(ok):
        return None
    step_var_px2 = (float(np.percentile(m1[ok], _FAST_STEP_PERCENTILE))
                    / acquisition.pixel_size_m ** 2)
    disc_px2 = math.pi * _CROWDING_RADIUS_SIGMAS ** 2 * step_var_px2
    return _spots_per_frame(tracks) / (rows * cols) * disc_px2


def analyze_tracks(
    tracks: Sequence[Tracks],
    acquisition: Acquisition,
    *,
    calibration: Calibration | None = None,
    dilution: float = 1.0,
    method: str = "em",
    min_steps: int = DEFAULT_MIN_STEPS,
    detection_correction: bool = True,
) -> NtaResult:
    """Size distribution and concentration from the tracks of one sample's captures.

    Parameters are those of :func:`analyze_videos` after tracking.
    """
    if not math.isfinite(dilution) or dilution <= 0:
        raise InvalidInput(f"dilution must be a positive factor, got {dilution}")
    if not tracks:
        raise InvalidInput("no captures given")
    warnings: list[str] = []
    videos: list[VideoResult] = []
    # one capture: its pooled figures are its own, computed once
    single = None
    for t in tracks:
        vr = VideoResult(source=t.source, n_frames=t.n_frames,
                         n_detections=int(t.metadata.get("n_detections", len(t))),
                         n_tracks=0, particles_per_frame=_particles_per_frame(t),
                         particles_per_ml=None, drift_px_per_frame=t.drift_px_per_frame,
                         threshold=t.threshold)
        try:
            d = track_diffusion(t, acquisition, method="cve", min_steps=min_steps)
            dist = size_distribution(d, acquisition, method=method,
                                     detection_correction=detection_correction)
            conc = estimate_concentration(t, d, dist, acquisition, calibration=calibration,
                                          dilution=dilution)
            crowded = _crowding_warning(t, d, acquisition)
            if crowded:
                warnings.append(f"{t.source}: {crowded}")
            vr.n_tracks = int(dist.n_tracks)
            vr.mean_nm, vr.mode_nm, vr.d50_nm = dist.mean_nm, dist.mode_nm, dist.d50_nm
            vr.particles_per_frame = conc.particles_per_frame
            vr.particles_per_ml = conc.particles_per_ml
            vr.warnings = list(dist.warnings) + list(conc.warnings) + ([crowded] if crowded else [])
            if len(tracks) == 1:
                single = (d, dist, conc)
        except InsufficientData as exc:
            vr.warnings = [str(exc)]
            warnings.append(f"{t.source}: {exc}")
        videos.append(vr)
    pooled = pool_tracks(list(tracks))
    if single is not None:
        diff, dist, conc = single
    else:
        diff = track_diffusion(pooled, acquisition, method="cve", min_steps=min_steps)
        dist = size_distribution(diff, acquisition, method=method,
                                 detection_correction=detection_correction)
    warnings.extend(dist.warnings)
    if single is None:
        conc = estimate_concentration(pooled, diff, dist, acquisition, calibration=calibration,
                                      dilution=dilution)
    warnings.extend(w for w in conc.warnings if w not in warnings)
    ppf, ppm = conc.particles_per_frame, conc.particles_per_ml
    return NtaResult(
        n_tracks=int(dist.n_tracks), mean_nm=float(dist.mean_nm), mode_nm=float(dist.mode_nm),
        sd_nm=float(dist.sd_nm), d10_nm=float(dist.d10_nm), d50_nm=float(dist.d50_nm),
        d90_nm=float(dist.d90_nm), peaks_nm=[float(p) for p in dist.peaks_nm],
        particles_per_frame=ppf, particles_per_ml=ppm,
        drift_px_per_frame=pooled.drift_px_per_frame,
        diameter_nm=np.asarray(dist.diameter_nm), number_fraction=np.asarray(dist.number_fraction),
        videos=videos, warnings=warnings, dilution=float(dilution), acquisition=acquisition,
        method=method, distribution=dist, tracks=pooled)


def _is_track_table(path: Path) -> bool:
    return path.suffix.lower() == ".csv" and path.is_file()


def load_tracks(path: str | Path) -> Tracks:
    """Tracks from a NanoSight per-particle export (``AllTracks`` CSV), drift removed.

    The export's coordinates still hold the flow, so the drift is estimated
    from its tracks and subtracted, as for a video.
    """
    instruments = importlib.import_module("exotrace.instruments")
    reader = getattr(instruments, "read_nanosight_tracks", None)
    if reader is None:
        raise InvalidInput(f"{path}: reading NanoSight track tables needs "
                           "exotrace.instruments.read_nanosight_tracks, not installed")
    tracks = reader(path)
    if not tracks.drift_corrected:
        tracks = subtract_drift(tracks, estimate_drift(tracks))
    return tracks


def _track_inputs(paths: Sequence[str | Path], acquisition: Acquisition, **tracking
                  ) -> list[Tracks]:
    """Tracks of each input: videos/frame folders are tracked, AllTracks tables read."""
    return [load_tracks(Path(p)) if _is_track_table(Path(p))
            else track_video(Path(p), acquisition, **tracking) for p in paths]


def analyze_videos(
    paths: Sequence[str | Path] | str | Path,
    acquisition: Acquisition,
    *,
    calibration: Calibration | None = None,
    dilution: float = 1.0,
    invert: bool = False,
    threshold_sigma: float = 5.0,
    radius_px: int = DEFAULT_RADIUS_PX,
    binning: int = DEFAULT_BINNING,
    min_diameter_nm: float = 30.0,
    memory: int = 1,
    method: str = "em",
    min_steps: int = DEFAULT_MIN_STEPS,
    engine: str = "auto",
    progress: Progress | None = None,
    workers: int | None = None,
) -> NtaResult:
    """Analyse the captures of one sample: size distribution and concentration.

    Parameters
    ----------
    paths : path or sequence of paths
        Videos (AVI...), TIFF stacks, folders/globs of frames, or NanoSight
        ``AllTracks`` CSV exports (tracks re-analysed with exotrace's estimator).
    acquisition : Acquisition
        Pixel size (nm), fps, temperature (C), exposure (ms), viscosity (cP).
    calibration : Calibration, optional
        Effective-volume calibration from beads (``exotrace nta calibrate``);
        without it ``particles_per_ml`` is ``None``.
    dilution : float
        Dilution factor of the measured suspension (concentration is multiplied by it).
    invert : bool
        Dark particles on a bright background.
    threshold_sigma : float
        Detection threshold in noise sigmas.
    radius_px : int
        Spot radius, px.
    binning : {1, 2}
        Find spots on 2 x 2 binned frames (default) or full frames.
    min_diameter_nm : float
        Smallest diameter of interest (sets the linking radius), nm.
    memory : int
        Frames a particle may vanish inside a track.
    method : {"em", "histogram"}
        Size distribution method.
    min_steps : int
        Shortest track used for sizing, steps.
    engine : {"auto", "numba", "numpy"}
    progress : callable, optional
        Called with the number of frames processed.
    workers : int, optional
        Threads of :func:`track_video` (default: every core; 0: the calling
        thread only, as a batch worker that has one core to itself). The result
        is the same either way.

    Returns
    -------
    NtaResult
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise InvalidInput("give at least one video, folder or track table")
    all_tracks = _track_inputs(paths, acquisition, invert=invert,
                               threshold_sigma=threshold_sigma, radius_px=radius_px,
                               binning=binning, min_diameter_nm=min_diameter_nm, memory=memory,
                               engine=engine, progress=progress, workers=workers)
    return analyze_tracks(all_tracks, acquisition, calibration=calibration, dilution=dilution,
                          method=method, min_steps=min_steps)


def calibrate_videos(
    paths: Sequence[str | Path] | str | Path,
    acquisition: Acquisition,
    *,
    particles_per_ml: float,
    bead_diameter_nm: float | None = None,
    invert: bool = False,
    threshold_sigma: float = 5.0,
    radius_px: int = DEFAULT_RADIUS_PX,
    binning: int = DEFAULT_BINNING,
    min_diameter_nm: float = 30.0,
    memory: int = 1,
    min_steps: int = DEFAULT_MIN_STEPS,
    engine: str = "auto",
    progress: Progress | None = None,
) -> Calibration:
    """Effective-volume calibration from videos of beads of known concentration.

    Tracks the bead videos exactly as :func:`analyze_videos` tracks samples
    (same threshold and spot radius matter: keep them the same), then calls
    :func:`exotrace.nta.concentration.calibrate`.

    Parameters
    ----------
    paths : path or sequence of paths
        Bead videos (or frame folders / track tables).
    acquisition : Acquisition
    particles_per_ml : float
        Bead concentration in the measured suspension, particles/mL.
    bead_diameter_nm : float, optional
        Nominal bead diameter, nm (recorded in the calibration).
    Other parameters as in :func:`analyze_videos`.

    Returns
    -------
    Calibration
        Save with ``Calibration.to_json(path)``.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise InvalidInput("give at least one bead video")
    all_tracks = _track_inputs(paths, acquisition, invert=invert,
                               threshold_sigma=threshold_sigma, radius_px=radius_px,
                               binning=binning, min_diameter_nm=min_diameter_nm, memory=memory,
                               engine=engine, progress=progress)
    pooled = pool_tracks(all_tracks)
    diff = track_diffusion(pooled, acquisition, method="cve", min_steps=min_steps)
    return calibrate(pooled, diff, acquisition, particles_per_ml=particles_per_ml,
                     bead_diameter_nm=bead_diameter_nm)
