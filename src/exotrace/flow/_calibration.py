"""Scatter calibration with beads: find the bead populations, fit the collection optics.

The fit (FCMPASS, Welsh et al. 2020; flowMie) models the median scatter of
each bead population as ``scale * C(d, half_angle)``, with ``C`` the Mie
cross-section (nm^2) of a bead of nominal diameter ``d`` and index
``bead_index`` collected by a cone of ``half_angle`` around the scatter
detector's axis. For each half-angle on a grid the beads are matched to the
peaks in the order of their predicted scatter (Mie oscillations can reorder
large beads), ``log scale`` is the mean log ratio, and the half-angle with the
smallest residual wins. With fewer than three beads, or a best half-angle on
the edge of the search range, the half-angle is not identifiable and is held
at the given value.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

from ..errors import FileFormatError, InvalidInput
from ._events import FlowEvents, channel_list, load_events
from ._mie import CollectionOptics, collected_cross_section_nm2, water_index
from ._model import ParticleModel
from ._peaks import find_bead_peaks

__all__ = ["FlowCalibration", "calibrate_scatter", "pick_scatter_channel"]

SCHEMA = "exotrace-flow-scatter-calibration"
SCHEMA_VERSION = 1
DEFAULT_HALF_ANGLE_DEG = 30.0


def pick_scatter_channel(events: FlowEvents, channel: str | int | None = None) -> str:
    """The scatter channel: the one given, else the trigger (``$TR``), else the one SSC height."""
    if channel is not None:
        return events.names[events.channel_index(channel)]
    tr = events.trigger()
    # The trigger channel is the scatter channel only when it is side scatter (an
    # FSC or fluorescence trigger must not be modelled as a 90-degree cone).
    if tr is not None and tr[0] in events.names and "SS" in tr[0].upper():
        return tr[0]
    ssc = [n for n in events.names if "SSC" in n.upper()]
    for suffix in ("-H", "-A", ""):
        hits = [n for n in ssc if n.upper().endswith(suffix)] if suffix else ssc
        if len(hits) == 1:
            return hits[0]
    raise InvalidInput(f"{events.file}: cannot tell which channel is side scatter "
                       f"(channels: {channel_list(events.names)}); give --channel")


@dataclass(frozen=True)
class FlowCalibration:
    """A scatter detector calibrated on beads: scale (AU per nm^2) and collection cone.

    Attributes
    ----------
    channel : str
        Scatter channel (``$PnN``).
    wavelength_nm, medium_index : float
    bead_index : float
    bead_diameters_nm : tuple of float
        Nominal diameters, each with its population's ``peak_scatter`` (channel units),
        ``bead_events`` and model ``bead_cross_section_nm2``.
    scale_au_per_nm2 : float
        Channel units per nm^2 of collected cross-section.
    half_angle_deg : float
        Collection half-angle; ``half_angle_fitted`` says whether the beads set it,
        ``half_angle_interval_deg`` its approximate 68 % interval.
    axis_deg, polarization, axis_azimuth_deg
        Collection geometry (see :class:`CollectionOptics`).
    residual_rms_log10 : float
        RMS of log10(measured / modelled) bead scatter.
    trigger_threshold : float or None
        Trigger threshold on the channel in the bead file (``$TR``), channel units.
    bead_file : str
    warnings : tuple of str
    """

    channel: str
    wavelength_nm: float
    medium_index: float
    bead_index: float
    bead_diameters_nm: tuple[float, ...]
    peak_scatter: tuple[float, ...]
    bead_events: tuple[int, ...]
    bead_cross_section_nm2: tuple[float, ...]
    scale_au_per_nm2: float
    half_angle_deg: float
    half_angle_fitted: bool
    half_angle_interval_deg: tuple[float, float] | None
    residual_rms_log10: float
    axis_deg: float = 90.0
    polarization: str = "unpolarized"
    axis_azimuth_deg: float = 90.0
    trigger_threshold: float | None = None
    bead_file: str = ""
    warnings: tuple[str, ...] = field(default=())

    @property
    def optics(self) -> CollectionOptics:
        return CollectionOptics(half_angle_deg=self.half_angle_deg, axis_deg=self.axis_deg,
                                polarization=self.polarization,
                                axis_azimuth_deg=self.axis_azimuth_deg)

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "version": SCHEMA_VERSION, **asdict(self)}

    def save(self, path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n",
                        encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data, *, source: str = "calibration") -> FlowCalibration:
        """Validate a mapping (from :meth:`to_dict`); FileFormatError naming the field otherwise."""
        def bad(fld: str, problem: str):
            return FileFormatError(source, problem, field=fld)

        if not isinstance(data, dict):
            raise FileFormatError(source, "is not a flow scatter calibration (not a JSON object)")
        if data.get("schema") != SCHEMA:
            raise FileFormatError(source, f"is not a flow scatter calibration (schema "
                                          f"{str(data.get('schema'))[:40]!r}, expected {SCHEMA!r})")
        if data.get("version") != SCHEMA_VERSION:
            raise bad("version", f"unsupported version {str(data.get('version'))[:20]}")

        def num(fld, lo=-math.inf, hi=math.inf, *, optional=False):
            v = data.get(fld)
            if v is None and optional:
                return None
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise bad(fld, "must be a finite number")
            if not lo <= v <= hi:
                raise bad(fld, f"must lie in [{lo:g}, {hi:g}], got {v:g}")
            return float(v)

        def numlist(fld, lo, hi, n=None, *, integer=False):
            v = data.get(fld)
            if not isinstance(v, list) or not v or (n is not None and len(v) != n):
                raise bad(fld, "must be a list" + (f" of {n} numbers" if n else " of numbers"))
            out = []
            for x in v:
                if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) \
                        or not lo <= x <= hi or (integer and int(x) != x):
                    raise bad(fld, f"holds {str(x)[:20]!r}, not a number in [{lo:g}, {hi:g}]")
                out.append(int(x) if integer else float(x))
            return tuple(out)

        channel = data.get("channel")
        if not isinstance(channel, str) or not channel.strip() or len(channel) > 200:
            raise bad("channel", "must be a channel name")
        diam = numlist("bead_diameters_nm", 1.0, 20000.0)
        k = len(diam)
        interval = data.get("half_angle_interval_deg")
        if interval is not None:
            interval = numlist("half_angle_interval_deg", 0.0, 180.0, 2)
        pol = data.get("polarization", "unpolarized")
        if pol not in ("unpolarized", "linear"):
            raise bad("polarization", "must be 'unpolarized' or 'linear'")
        fitted = data.get("half_angle_fitted")
        if not isinstance(fitted, bool):
            raise bad("half_angle_fitted", "must be true or false")
        warnings = data.get("warnings", [])
        if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
            raise bad("warnings", "must be a list of strings")
        bead_file = data.get("bead_file", "")
        if not isinstance(bead_file, str):
            raise bad("bead_file", "must be a string")
        return cls(
            channel=channel, wavelength_nm=num("wavelength_nm", 200.0, 2000.0),
            medium_index=num("medium_index", 1.0, 2.0), bead_index=num("bead_index", 1.0, 3.0),
            bead_diameters_nm=diam, peak_scatter=numlist("peak_scatter", 1e-300, 1e300, k),
            bead_events=numlist("bead_events", 0, 1e12, k, integer=True),
            bead_cross_section_nm2=numlist("bead_cross_section_nm2", 0.0, 1e300, k),
            scale_au_per_nm2=num("scale_au_per_nm2", 1e-300, 1e300),
            half_angle_deg=num("half_angle_deg", 1e-3, 180.0), half_angle_fitted=fitted,
            half_angle_interval_deg=interval,
            residual_rms_log10=num("residual_rms_log10", 0.0, 100.0),
            axis_deg=num("axis_deg", 0.0, 180.0), polarization=pol,
            axis_azimuth_deg=num("axis_azimuth_deg", -360.0, 360.0),
            trigger_threshold=num("trigger_threshold", 0.0, 1e300, optional=True),
            bead_file=bead_file, warnings=tuple(warnings),
        )

    @classmethod
    def load(cls, path) -> FlowCalibration:
        """Read a calibration JSON file written by :meth:`save`."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise FileFormatError(path, f"cannot be read: {exc.strerror or exc}") from None
        if len(raw) > 1_000_000:
            raise FileFormatError(path, "is too large for a calibration file (over 1 MB)")
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise FileFormatError(path, "is not UTF-8 text") from None
        except (json.JSONDecodeError, RecursionError) as exc:
            line = getattr(exc, "lineno", None)
            raise FileFormatError(path, f"is not JSON ({getattr(exc, 'msg', 'too deeply nested')})",
                                  line=line) from None
        return cls.from_dict(data, source=str(path))


def _fit_scale(log_peaks: np.ndarray, log_c: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Match beads (by predicted scatter) to peaks (ascending); log10 scale and RMS residual."""
    order = np.argsort(log_c, kind="stable")
    matched = np.empty_like(log_peaks)
    matched[order] = log_peaks  # k-th smallest prediction <-> k-th smallest peak
    log_scale = float(np.mean(matched - log_c))
    resid = matched - log_c - log_scale
    return log_scale, float(np.sqrt(np.mean(resid**2))), matched


def calibrate_scatter(beads, bead_diameters_nm, *, bead_index: float = 1.59,
                      wavelength_nm: float = 405.0, medium_index: float | None = None,
                      channel: str | int | None = None, half_angle_deg: float | None = None,
                      half_angle_bounds_deg: tuple[float, float] = (5.0, 85.0),
                      axis_deg: float = 90.0, polarization: str = "unpolarized",
                      axis_azimuth_deg: float = 90.0, min_scatter: float | None = None,
                      ) -> FlowCalibration:
    """Calibrate a scatter channel on a mixture of beads of known size and index.

    Parameters
    ----------
    beads : path, InstrumentResult or FlowEvents
        FCS events of the bead mixture.
    bead_diameters_nm : sequence of float
        Nominal diameters of the populations in the mixture, nm (two or more, distinct).
    bead_index : float
        Bead refractive index at the wavelength (polystyrene ~1.59-1.61, silica ~1.43-1.46).
    wavelength_nm : float
        Laser vacuum wavelength, nm.
    medium_index : float, optional
        Sheath/medium index; default water at the wavelength.
    channel : str or int, optional
        Scatter channel; default the trigger channel (``$TR``) or the only SSC height.
    half_angle_deg : float, optional
        Collection half-angle, degrees. Given: held fixed. Not given: fitted when three
        or more beads allow, else 30.
    half_angle_bounds_deg : (float, float)
        Search range of the fitted half-angle, degrees.
    axis_deg, polarization, axis_azimuth_deg
        Collection geometry (see :class:`CollectionOptics`).
    min_scatter : float, optional
        Ignore events at or below this scatter (noise, debris), channel units.

    Returns
    -------
    FlowCalibration

    Raises
    ------
    InvalidInput
        Bad diameters, index, wavelength, or channel.
    InsufficientData
        The bead populations cannot be found.
    """
    diam = np.asarray(bead_diameters_nm, dtype=float).ravel()
    if diam.size < 2 or not np.all(np.isfinite(diam)) or np.any(diam <= 0) or np.any(diam > 20000):
        raise InvalidInput("bead diameters: give at least two positive diameters in nm (<= 20000)")
    if np.unique(diam).size != diam.size:
        raise InvalidInput("bead diameters must be distinct")
    diam = np.sort(diam)
    if not (math.isfinite(wavelength_nm) and 200.0 <= wavelength_nm <= 2000.0):
        raise InvalidInput(f"wavelength must lie in 200-2000 nm, got {wavelength_nm}")
    n_med = water_index(wavelength_nm) if medium_index is None else float(medium_index)
    if not (math.isfinite(n_med) and 1.0 <= n_med <= 2.0):
        raise InvalidInput(f"medium index must lie in [1, 2], got {medium_index}")
    lo_b, hi_b = (float(v) for v in half_angle_bounds_deg)
    if not (0.0 < lo_b < hi_b <= 180.0):
        raise InvalidInput(f"half-angle bounds must satisfy 0 < low < high <= 180, got {lo_b}, {hi_b}")
    model = ParticleModel(kind="homogeneous", index=bead_index)
    ev = load_events(beads, what="bead file")
    name = pick_scatter_channel(ev, channel)
    values = ev.values(name)
    if min_scatter is not None:
        values = values[values > min_scatter]
    peaks = find_bead_peaks(values, diam.size, source=ev.file)
    log_peaks = np.log10([p.median_scatter for p in peaks])
    coeffs = [model.coefficients(d, wavelength_nm=wavelength_nm, medium_index=n_med) for d in diam]

    def optics(theta: float) -> CollectionOptics:
        return CollectionOptics(half_angle_deg=theta, axis_deg=axis_deg, polarization=polarization,
                                axis_azimuth_deg=axis_azimuth_deg)

    def log_c(theta: float) -> np.ndarray:
        return np.log10(collected_cross_section_nm2(coeffs, wavelength_nm=wavelength_nm,
                                                    medium_index=n_med, optics=optics(theta)))

    def rms(theta: float) -> float:
        return _fit_scale(log_peaks, log_c(theta))[1]

    warnings = list(ev.warnings)
    fitted = False
    interval = None
    if half_angle_deg is not None:
        theta = float(half_angle_deg)
        optics(theta)  # validates
    elif diam.size < 3:
        theta = DEFAULT_HALF_ANGLE_DEG
        warnings.append(f"two beads cannot fix the collection half-angle: held at {theta:g} deg")
    else:
        grid = np.arange(lo_b, hi_b + 1e-9, 1.0)
        r = np.array([rms(t) for t in grid])
        i = int(np.argmin(r))
        a, b = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
        theta = float(minimize_scalar(rms, bounds=(a, b), method="bounded",
                                      options={"xatol": 0.01}).x)
        if i in (0, grid.size - 1):
            warnings.append(f"best half-angle {theta:.1f} deg lies on the search bound: the beads "
                            f"do not fix it; held at {DEFAULT_HALF_ANGLE_DEG:g} deg")
            theta = DEFAULT_HALF_ANGLE_DEG
        else:
            fitted = True
            interval = _half_angle_interval(grid, r, theta, rms, peaks, diam.size)
    lc = log_c(theta)
    log_scale, resid, matched = _fit_scale(log_peaks, lc)
    order = np.argsort(lc, kind="stable")
    if not np.all(order == np.arange(diam.size)):
        warnings.append("Mie oscillations reorder the beads' scatter: populations matched by the model")
    counts = np.empty(diam.size, dtype=int)
    counts[order] = [p.events for p in peaks]
    if resid > 0.1:
        warnings.append(f"beads fit the model poorly (RMS {resid:.2f} decades): check bead sizes, "
                        "index and wavelength")
    tr = ev.trigger()
    threshold = tr[1] if tr is not None and tr[0] == name else None
    return FlowCalibration(
        channel=name, wavelength_nm=float(wavelength_nm), medium_index=n_med,
        bead_index=float(bead_index), bead_diameters_nm=tuple(float(d) for d in diam),
        peak_scatter=tuple(float(10**m) for m in matched), bead_events=tuple(int(c) for c in counts),
        bead_cross_section_nm2=tuple(float(10**v) for v in lc),
        scale_au_per_nm2=float(10**log_scale), half_angle_deg=theta, half_angle_fitted=fitted,
        half_angle_interval_deg=interval, residual_rms_log10=resid, axis_deg=float(axis_deg),
        polarization=polarization, axis_azimuth_deg=float(axis_azimuth_deg),
        trigger_threshold=threshold, bead_file=ev.file, warnings=tuple(warnings),
    )


def _half_angle_interval(grid, r, theta, rms, peaks, k) -> tuple[float, float]:
    """Half-angles whose chi^2 lies within 1 of the best, the per-bead error being the
    larger of the median's standard error and the fit's residual scatter."""
    best = rms(theta)
    se = max(max(p.se_log10 for p in peaks), best * math.sqrt(k / max(k - 2, 1)), 1e-4)

    def chi2(t):
        return k * (rms(t) ** 2) / se**2

    c0 = chi2(theta)
    inside = [t for t, v in zip(grid, r, strict=True) if k * v**2 / se**2 <= c0 + 1.0]
    lo = min([*inside, theta]) - 1.0
    hi = max([*inside, theta]) + 1.0
    return (float(max(lo, grid[0])), float(min(hi, grid[-1])))
