"""NanoSight per-particle exports: ``ParticleData`` and ``AllTracks`` CSV.

``ParticleData`` has one row per tracked particle: ``Particle ID``, ``Size/nm``,
``Diffusion coefficient/nm^2 s^-1``, ``Ln(Adjusted intensity)/AU``, ``Start frame``,
``Tracklength``, ``Included in distribution?``. ``AllTracks`` has one row per
particle per frame and adds ``Frame``, ``X/pixels``, ``Y/pixels`` (no start frame
or track length). Columns are found by name, not position.

The size statistics returned here are plain per-track statistics of the included
particles (each track counts once); they are *not* NanoSight's FTLA-processed
distribution, which only the summary export carries. The tracks themselves can
be re-sized by :mod:`exotrace.nta` through :func:`read_nanosight_tracks`.
"""

from __future__ import annotations

import io
import math

import numpy as np

from ..errors import FileFormatError
from ..nta._types import Tracks
from ._distribution import compact_distribution, observed_range_nm
from ._record import InstrumentResult
from ._text import decode_text, read_bytes

__all__ = ["read_nanosight_particles", "read_nanosight_tracks", "track_size_statistics"]

NM2_PER_S_TO_M2_PER_S = 1e-18

# canonical name -> test on the lower-cased header cell
_COLUMNS = {
    "particle_id": lambda h: h.startswith("particle id"),
    "size_nm": lambda h: h.startswith("size"),
    "diffusion": lambda h: h.startswith("diffusion coefficient"),
    "ln_intensity": lambda h: h.startswith("ln(adjusted intensity)") or h.startswith("ln(intensity)"),
    "start_frame": lambda h: h.startswith("start frame"),
    "track_length": lambda h: h.startswith("tracklength") or h.startswith("track length"),
    "included": lambda h: h.startswith("included in distribution"),
    "frame": lambda h: h == "frame" or h.startswith("frame "),
    "x_px": lambda h: h.startswith("x/pixel") or h == "x",
    "y_px": lambda h: h.startswith("y/pixel") or h == "y",
}
PARTICLE_REQUIRED = ("particle_id", "size_nm", "diffusion", "included")
TRACK_REQUIRED = ("particle_id", "frame", "x_px", "y_px", "ln_intensity")
_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n"}


def header_columns(first_line: str) -> dict[str, int]:
    """Map canonical column names to their index in a ParticleData/AllTracks header."""
    cells = [c.strip().strip('"').lower() for c in first_line.split(",")]
    found: dict[str, int] = {}
    for idx, cell in enumerate(cells):
        for name, test in _COLUMNS.items():
            if name not in found and cell and test(cell):
                found[name] = idx
                break
    return found


def _table(path, data: bytes | None, required: tuple[str, ...], kind: str):
    import pandas as pd

    raw = read_bytes(path) if data is None else data
    text = decode_text(raw, path)
    first, _, _ = text.partition("\n")
    cols = header_columns(first.rstrip("\r"))
    missing = [c for c in required if c not in cols]
    if missing:
        raise FileFormatError(path, f"{kind} header lacks column(s) {', '.join(missing)}", line=1)
    header_cells = [c.strip() for c in first.rstrip("\r").split(",")]
    try:
        frame = pd.read_csv(io.StringIO(text), header=None, skiprows=1, dtype=str,
                            usecols=sorted(cols.values()), names=range(max(len(header_cells), 1 + max(cols.values()))),
                            engine="c", skip_blank_lines=True, keep_default_na=False,
                            index_col=False)
    except (ValueError, pd.errors.ParserError) as exc:
        msg = " ".join(str(exc).split())[:120]
        raise FileFormatError(path, f"malformed CSV ({msg})") from None
    out: dict[str, np.ndarray] = {}
    for name, idx in cols.items():
        series = frame[idx].str.strip()
        if name == "included":
            low = series.str.lower()
            bad = ~(low.isin(_TRUE) | low.isin(_FALSE))
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise FileFormatError(path, f"expected True/False, found {series.iloc[row][:20]!r}",
                                      line=row + 2, field=header_cells[idx])
            out[name] = low.isin(_TRUE).to_numpy()
            continue
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise FileFormatError(path, f"expected a finite number, found {series.iloc[row][:20]!r}",
                                  line=row + 2, field=header_cells[idx])
        out[name] = values
    n = len(frame)
    if n == 0:
        raise FileFormatError(path, f"{kind} has a header but no rows", line=2)
    for name in ("particle_id", "start_frame", "track_length", "frame"):
        if name in out:
            v = out[name]
            if np.any(v < 0) or np.any(v != np.floor(v)) or np.any(v > 2**53):
                row = int(np.flatnonzero((v < 0) | (v != np.floor(v)) | (v > 2**53))[0])
                raise FileFormatError(path, "expected a non-negative whole number", line=row + 2,
                                      field=header_cells[cols[name]])
    for name in ("size_nm", "diffusion"):
        if name in out and np.any(out[name] < 0):
            row = int(np.flatnonzero(out[name] < 0)[0])
            raise FileFormatError(path, "must not be negative", line=row + 2,
                                  field=header_cells[cols[name]])
    if "diffusion" in out:
        unit = header_cells[cols["diffusion"]].lower()
        if "nm" not in unit:
            raise FileFormatError(path, "diffusion coefficient unit is not nm^2/s", line=1,
                                  field=header_cells[cols["diffusion"]])
        out["diffusion_m2_per_s"] = out.pop("diffusion") * NM2_PER_S_TO_M2_PER_S
    return out


def track_size_statistics(size_nm: np.ndarray) -> dict[str, float | None]:
    """Number statistics of per-track sizes (each track once), nm.

    Mean and population SD; D10/D50/D90 by linear interpolation between order
    statistics (numpy's default); mode as the centre of the fullest 1-nm bin.
    """
    s = np.asarray(size_nm, dtype=float)
    s = s[np.isfinite(s) & (s > 0)]
    if s.size == 0:
        return dict.fromkeys(("mean_nm", "mode_nm", "sd_nm", "d10_nm", "d50_nm", "d90_nm"))
    counts = np.bincount(np.floor(s).astype(np.int64))
    d10, d50, d90 = np.percentile(s, [10, 50, 90])
    return {"mean_nm": float(s.mean()), "mode_nm": float(np.argmax(counts) + 0.5),
            "sd_nm": float(s.std()), "d10_nm": float(d10), "d50_nm": float(d50),
            "d90_nm": float(d90)}


def _size_extras(sizes_nm: np.ndarray) -> dict:
    """``number_distribution`` (1-nm classes, merged to <= 400) and the observed size range."""
    sizes = sizes_nm[np.isfinite(sizes_nm) & (sizes_nm > 0)]
    if sizes.size == 0:
        return {"number_distribution": None, "detection_range_nm": None}
    edges = np.arange(np.floor(sizes.min()), np.ceil(sizes.max()) + 2.5, 1.0)  # >= 2 classes
    counts, _ = np.histogram(sizes, bins=edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    return {"number_distribution": compact_distribution(centres, counts),
            "detection_range_nm": observed_range_nm(centres, counts),
            "detection_range_source": "observed: smallest and largest included track (1-nm classes)"}


def read_nanosight_particles(path, *, data: bytes | None = None) -> InstrumentResult:
    """Read a NanoSight ``ParticleData`` or ``AllTracks`` CSV.

    Parameters
    ----------
    path : str or os.PathLike
    data : bytes, optional
        The file's bytes when already read.

    Returns
    -------
    InstrumentResult
        ``format="nanosight-particledata"`` or ``"nanosight-alltracks"``. Size
        statistics are per-track statistics of the particles marked "Included in
        distribution" (see :func:`track_size_statistics`), not FTLA. ``extra``:
        ``particles`` (one entry per particle: ``particle_id``, ``size_nm``,
        ``diffusion_m2_per_s``, ``ln_intensity``, ``start_frame``, ``track_length``,
        ``included``), ``n_particles``, ``n_included`` and, for AllTracks, ``n_rows``.
    """
    raw = read_bytes(path) if data is None else data
    first = decode_text(raw[:4096], path).partition("\n")[0]
    cols = header_columns(first.rstrip("\r"))
    alltracks = "x_px" in cols and "y_px" in cols and "frame" in cols
    kind = "AllTracks" if alltracks else "ParticleData"
    t = _table(path, raw, TRACK_REQUIRED + ("size_nm", "diffusion", "included") if alltracks
               else PARTICLE_REQUIRED, kind)
    warnings: list[str] = []
    if alltracks:
        order = np.lexsort((t["frame"], t["particle_id"]))
        pid = t["particle_id"][order]
        frames = t["frame"][order]
        same = pid[1:] == pid[:-1]
        if np.any(same & (frames[1:] == frames[:-1])):
            raise FileFormatError(path, "a particle has two rows for the same frame",
                                  field="Frame")
        ids, first_idx, counts = np.unique(pid, return_index=True, return_counts=True)
        rows = order[first_idx]
        particles = {
            "particle_id": ids.astype(np.int64),
            "size_nm": t["size_nm"][rows],
            "diffusion_m2_per_s": t["diffusion_m2_per_s"][rows],
            "ln_intensity": np.add.reduceat(t["ln_intensity"][order], first_idx) / counts,
            "start_frame": frames[first_idx].astype(np.int64),
            "track_length": counts.astype(np.int64),
            "included": t["included"][rows],
        }
    else:
        ids = t["particle_id"]
        if np.unique(ids).size != ids.size:
            warnings.append("duplicate Particle IDs")
        particles = {
            "particle_id": ids.astype(np.int64),
            "size_nm": t["size_nm"],
            "diffusion_m2_per_s": t["diffusion_m2_per_s"],
            "included": t["included"],
        }
        for name in ("ln_intensity", "start_frame", "track_length"):
            if name in t:
                particles[name] = (t[name].astype(np.int64) if name != "ln_intensity" else t[name])
    included = particles["included"]
    stats = track_size_statistics(particles["size_nm"][included])
    if not included.any():
        warnings.append("no particle is marked 'Included in distribution'")
    warnings.append("sizes are per-track statistics, not NanoSight's FTLA distribution")
    extra = {"particles": particles, "n_particles": int(ids.size), "n_included": int(included.sum()),
             "method": "NTA", **_size_extras(particles["size_nm"][included])}
    if alltracks:
        extra["n_rows"] = int(t["frame"].size)
    return InstrumentResult(
        file=str(path), format="nanosight-alltracks" if alltracks else "nanosight-particledata",
        instrument="NanoSight", warnings=tuple(warnings), extra=extra, **stats,
    )


def read_nanosight_tracks(path, *, data: bytes | None = None) -> Tracks:
    """Tracks of a NanoSight ``AllTracks`` export, for re-sizing by :mod:`exotrace.nta`.

    Parameters
    ----------
    path : str or os.PathLike
        ``AllTracks`` CSV (one row per particle per frame).
    data : bytes, optional
        The file's bytes when already read.

    Returns
    -------
    Tracks
        Sorted by (track_id, frame). ``x_px``/``y_px`` are the exported pixel
        coordinates (the export does not say that drift was removed, so
        ``drift_corrected=False``); ``intensity`` is ``exp(Ln(Adjusted intensity))``
        (arbitrary units); ``n_frames`` is the last frame + 1; ``frame_shape`` is the
        bounding box of the coordinates (the export does not record the field of view).
        ``metadata`` holds the vendor's per-track ``track_ids``, ``vendor_size_nm``,
        ``vendor_diffusion_m2_per_s`` and ``included``.

    Raises
    ------
    FileFormatError
        When the file is not an AllTracks export or is malformed.
    """
    raw = read_bytes(path) if data is None else data
    first = decode_text(raw[:4096], path).partition("\n")[0]
    cols = header_columns(first.rstrip("\r"))
    if not all(c in cols for c in TRACK_REQUIRED):
        raise FileFormatError(path, "not a NanoSight AllTracks export (needs Particle ID, Frame, "
                                    "X/pixels, Y/pixels, Ln(Adjusted intensity) columns)", line=1)
    t = _table(path, raw, TRACK_REQUIRED, "AllTracks")
    order = np.lexsort((t["frame"], t["particle_id"]))
    track_id = t["particle_id"][order].astype(np.int64)
    frame = t["frame"][order].astype(np.int64)
    if np.any((track_id[1:] == track_id[:-1]) & (frame[1:] == frame[:-1])):
        raise FileFormatError(path, "a particle has two rows for the same frame", field="Frame")
    x = t["x_px"][order]
    y = t["y_px"][order]
    if np.any(x < -1) or np.any(y < -1):
        raise FileFormatError(path, "negative pixel coordinates", field="X/pixels")
    ln_i = t["ln_intensity"][order]
    if np.any(ln_i > 700):  # exp overflows float64 beyond ~709
        raise FileFormatError(path, "Ln(Adjusted intensity) too large", field="Ln(Adjusted intensity)")
    ids, first_idx = np.unique(track_id, return_index=True)
    meta = {"format": "nanosight-alltracks", "track_ids": ids,
            "coordinates": "as exported by NanoSight; drift not removed"}
    if "size_nm" in t:
        meta["vendor_size_nm"] = t["size_nm"][order][first_idx]
    if "diffusion_m2_per_s" in t:
        meta["vendor_diffusion_m2_per_s"] = t["diffusion_m2_per_s"][order][first_idx]
    if "included" in t:
        meta["included"] = t["included"][order][first_idx]
    return Tracks(
        track_id=track_id, frame=frame, x_px=x.astype(np.float64), y_px=y.astype(np.float64),
        intensity=np.exp(ln_i), n_frames=int(frame.max()) + 1,
        frame_shape=(int(math.ceil(float(y.max()))) + 1, int(math.ceil(float(x.max()))) + 1),
        drift_corrected=False, source=str(path), metadata=meta,
    )
