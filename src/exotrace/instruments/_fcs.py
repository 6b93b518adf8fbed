"""Flow cytometry FCS 2.0 / 3.0 / 3.1 files, read through FlowIO.

FlowIO is the maintained FCS parser (FlowKit builds on it). Real files are often
non-compliant; the reader loads what FlowIO can load safely and says what it
corrected (warnings), and refuses the rest with a one-line
:class:`~exotrace.errors.FileFormatError`:

* DATA offset off by one byte (common in BD / Miltenyi files): loaded with
  FlowIO's correction, with a warning.
* HEADER and TEXT disagreeing on where DATA starts: TEXT's offsets are used
  (the FCS 3.1 spec makes TEXT authoritative for large files), with a warning.
* an invalid ``$TIMESTEP``: events are returned unscaled, with a warning.
* a DATA segment beyond the end of the file (truncated or header-only file),
  files shorter than the 58-byte HEADER: refused.

Gating and bead calibration for nano-flow EV data live in :mod:`._flow`.
"""

from __future__ import annotations

import io
import math
import re
import warnings as _warnings
from datetime import datetime, tzinfo

import numpy as np

from ..errors import FileFormatError
from ._record import FcsChannel, InstrumentResult
from ._text import read_bytes, with_timezone

__all__ = ["FCS_MAGIC", "read_fcs"]

FCS_MAGIC = (b"FCS2.0", b"FCS3.0", b"FCS3.1")
HEADER_BYTES = 58
_DATE_FORMATS = ("%d-%b-%Y", "%d-%b-%y", "%Y-%b-%d", "%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y")


def _one_line(text: object, limit: int = 160) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _load(path, raw: bytes, warnings: list[str]):
    import flowio
    from flowio.exceptions import DataOffsetDiscrepancyError, FCSParsingError

    attempts = [{}]
    last: Exception | None = None
    while attempts:
        kwargs = attempts.pop(0)
        caught: list = []
        try:
            with _warnings.catch_warnings(record=True) as caught:
                _warnings.simplefilter("always")
                flow = flowio.FlowData(io.BytesIO(raw), **kwargs)
            for w in caught:
                msg = _one_line(w.message)
                if "incorrect data offset" in msg:
                    msg = "DATA offset was off by one byte; FlowIO corrected it - review events"
                warnings.append(msg)
            return flow
        except DataOffsetDiscrepancyError as exc:
            last = exc
            if not kwargs:
                warnings.append("HEADER and TEXT disagree on the DATA start; TEXT offsets used")
                attempts.append({"ignore_offset_discrepancy": True})
        except FCSParsingError as exc:
            last = exc
            text = str(exc)
            if "off by 1" in text and not kwargs:
                attempts.append({"ignore_offset_error": True})
            elif "greater than file size" in text:
                raise FileFormatError(path, "DATA segment extends beyond the end of the file "
                                            "(truncated, or a header without its events)") from None
        except MemoryError:
            raise FileFormatError(path, "TEXT segment claims more events than memory holds") from None
        except Exception as exc:  # noqa: BLE001 - FlowIO raises bare ValueError/struct.error/...
            last = exc
    raise FileFormatError(path, f"not a readable FCS file ({_one_line(last)})") from None


def _events(path, flow, warnings: list[str]) -> np.ndarray:
    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            return np.asarray(flow.as_array(preprocess=True), dtype=np.float64)
    except ValueError as exc:
        if "imestep" in str(exc):
            warnings.append(f"invalid $TIMESTEP {flow.text.get('timestep')!r}: events left unscaled")
        else:
            warnings.append(f"events left unscaled ({_one_line(exc, 80)})")
    except Exception as exc:  # noqa: BLE001
        raise FileFormatError(path, f"DATA segment cannot be decoded ({_one_line(exc)})") from None
    try:
        return np.asarray(flow.as_array(preprocess=False), dtype=np.float64)
    except Exception as exc:  # noqa: BLE001
        raise FileFormatError(path, f"DATA segment cannot be decoded ({_one_line(exc)})") from None


def _acquired(text: dict, tz: tzinfo | None) -> datetime | None:
    date = str(text.get("date", "")).strip()
    if not date:
        return None
    day = None
    for fmt in _DATE_FORMATS:
        try:
            day = datetime.strptime(date, fmt)
            break
        except ValueError:
            continue
    if day is None:
        return None
    m = re.match(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", str(text.get("btim", "")).strip())
    if m:
        day = day.replace(hour=int(m.group(1)) % 24, minute=int(m.group(2)) % 60,
                          second=int(m.group(3) or 0) % 60)
    return with_timezone(day, tz)


def read_fcs(path, *, instrument_timezone: tzinfo | None = None,
             data: bytes | None = None) -> InstrumentResult:
    """Read an FCS 2.0 / 3.0 / 3.1 list-mode file.

    Parameters
    ----------
    path : str or os.PathLike
    instrument_timezone : tzinfo, optional
        Zone of the cytometer clock (``$DATE``/``$BTIM``); UTC when not given.
    data : bytes, optional
        The file's bytes when already read.

    Returns
    -------
    InstrumentResult
        ``format="fcs"``, ``events`` (``$TOT``, or the rows decoded), ``channels``
        (``$PnN`` name, ``$PnS`` label, ``$PnR`` range), ``events_per_ul`` =
        events / (``$VOL`` / 1000) where ``$VOL`` (nanolitres, FCS 3.1) is given.
        ``extra``: ``fcs_version``, ``keywords`` (TEXT segment), ``channel_stats``
        (median, 99.5th percentile, min, max per channel), ``event_data`` (the
        events, shape (events, channels); left out of ``to_dict``).
    """
    raw = read_bytes(path) if data is None else data
    if len(raw) < HEADER_BYTES:
        raise FileFormatError(path, f"only {len(raw)} bytes: shorter than the {HEADER_BYTES}-byte "
                                    "FCS HEADER (truncated)", offset=len(raw))
    if raw[:6] not in FCS_MAGIC:
        raise FileFormatError(path, f"starts with {raw[:6]!r}, not FCS2.0/FCS3.0/FCS3.1", offset=0)
    warnings: list[str] = []
    flow = _load(path, raw, warnings)
    events = _events(path, flow, warnings)
    text = {str(k): str(v) for k, v in flow.text.items()}
    channels = []
    for idx in sorted(flow.channels):
        info = flow.channels[idx]
        name = str(info.get("pnn") or f"P{idx}")
        label = info.get("pns")
        rng = info.get("pnr")
        channels.append(FcsChannel(index=int(idx), name=name,
                                   label=str(label) if label and label != name else None,
                                   range=float(rng) if rng is not None else None))
    names = [c.name for c in channels]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        warnings.append(f"duplicate channel names {', '.join(dups)}: select these channels by index")
    if events.ndim != 2 or (events.size and events.shape[1] != len(channels)):
        raise FileFormatError(path, f"DATA holds {events.shape} values for {len(channels)} channels")
    n_events = int(events.shape[0])
    tot = text.get("tot")
    if tot is not None and tot.strip().isdigit() and int(tot) != n_events:
        warnings.append(f"$TOT says {int(tot)} events, DATA holds {n_events}")
    if not np.all(np.isfinite(events)):
        warnings.append("DATA holds non-finite values")
    events_per_ul = None
    vol = text.get("vol")
    if vol is not None:
        try:
            vol_nl = float(vol)
        except ValueError:
            vol_nl = math.nan
        if math.isfinite(vol_nl) and vol_nl > 0:
            events_per_ul = n_events / (vol_nl / 1000.0)
        else:
            warnings.append(f"$VOL {vol!r} is not a positive volume in nL")
    stats = {}
    if n_events:
        with np.errstate(all="ignore"):
            q = np.nanpercentile(events, [50.0, 99.5], axis=0)
            lo = np.nanmin(events, axis=0)
            hi = np.nanmax(events, axis=0)
        for j, ch in enumerate(channels):
            stats[f"{ch.index}:{ch.name}"] = {"median": float(q[0, j]), "p99_5": float(q[1, j]),
                                              "min": float(lo[j]), "max": float(hi[j])}
    sample = next((text[k].strip() for k in ("smno", "tube name", "fil", "src")
                   if text.get(k, "").strip()), None)
    version = raw[3:6].decode("ascii")
    return InstrumentResult(
        file=str(path), format="fcs",
        instrument=text.get("cyt", "").strip() or "flow cytometer",
        software_version=text.get("creator", "").strip() or None,  # $SYS is the OS, not the software
        sample=sample, measured_at=_acquired(text, instrument_timezone),
        events=n_events, channels=tuple(channels), events_per_ul=events_per_ul,
        warnings=tuple(warnings),
        extra={"fcs_version": version, "keywords": text, "channel_stats": stats,
               "event_data": events},
    )
