"""Flow cytometry FCS 2.0 / 3.0 / 3.1 / 3.2 files, read through FlowIO.

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
* several data sets chained by ``$NEXTDATA`` (Beckman ``.lmd``: an FCS 2.0 and
  an FCS 3.0 set of the same events): the FCS 3.x set is read, with a warning.
* ``$DATATYPE``/``$PnB``: I with 8, 16 or 32 bits (mixed widths too), F with
  32 and D (64-bit doubles) with 64 are read; 64-bit or odd-width integers,
  F/D with another width, ASCII events, histogram ``$MODE``, and byte orders
  other than little/big endian are refused naming the keyword (FlowIO would
  misread them); FCS 3.2 per-parameter ``$PnDATATYPE`` different from
  ``$DATATYPE`` is refused too.
* no events (``$TOT`` 0): a record with a warning.

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
from ._fcs_checks import check_layout, check_text
from ._record import FcsChannel, InstrumentResult
from ._text import read_bytes, with_timezone

__all__ = ["FCS_MAGIC", "read_fcs"]

FCS_MAGIC = (b"FCS2.0", b"FCS3.0", b"FCS3.1", b"FCS3.2")
HEADER_BYTES = 58
MAX_DATA_SETS = 16  # $NEXTDATA chains longer than this are not instrument files
_DATE_FORMATS = ("%d-%b-%Y", "%d-%b-%y", "%Y-%b-%d", "%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y")


def _one_line(text: object, limit: int = 160) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _flowdata(raw: bytes, offset: int, **kwargs):
    import flowio

    # nextdata_offset=0 (not None) lets FlowIO read the first of several data sets.
    return flowio.FlowData(io.BytesIO(raw), nextdata_offset=offset, **kwargs)


def _data_sets(path, raw: bytes, warnings: list[str]) -> tuple[int, str]:
    """Offset and version of the data set to read: the only one, or the FCS 3.x one of several.

    Beckman ``.lmd`` files hold an FCS 2.0 and an FCS 3.0 data set of the same
    events, chained by ``$NEXTDATA`` (bytes from the start of the current set).
    """
    sets: list[tuple[int, str]] = []
    offset = 0
    while True:
        try:
            with _warnings.catch_warnings():
                _warnings.simplefilter("ignore")
                flow = _flowdata(raw, offset, only_text=True, ignore_offset_discrepancy=True)
        except Exception as exc:  # noqa: BLE001 - FlowIO raises bare ValueError/KeyError/...
            if not sets:
                raise
            warnings.append(f"data set {len(sets) + 1} at byte {offset} cannot be read "
                            f"({_one_line(exc, 80)}); data set {len(sets)} used")
            break
        sets.append((offset, f"{flow.version}"))
        try:
            step = int(str(flow.text.get("nextdata", "0")).strip() or 0)
        except ValueError:
            warnings.append(f"$NEXTDATA {flow.text.get('nextdata')!r} is not a byte offset: "
                            "only the first data set read")
            break
        if step <= 0 or offset + step >= len(raw) or len(sets) >= MAX_DATA_SETS:
            if step < 0 or offset + step >= len(raw):
                warnings.append(f"$NEXTDATA {step} points outside the file: ignored")
            break
        offset += step
    if len(sets) == 1:
        return sets[0]
    versions = ", ".join(f"FCS{v}" for _, v in sets)
    chosen = max(range(len(sets)), key=lambda i: (sets[i][1].startswith("3"), sets[i][1], -i))
    warnings.append(f"file holds {len(sets)} data sets ({versions}): the FCS{sets[chosen][1]} "
                    f"data set {chosen + 1} was read")
    return sets[chosen]


def _load(path, raw: bytes, warnings: list[str]):
    from flowio.exceptions import DataOffsetDiscrepancyError, FCSParsingError, MultipleDataSetsError

    check_text(path, raw, 0)
    try:
        offset, version = _data_sets(path, raw, warnings)
        if offset:
            check_text(path, raw, offset)
        head = _flowdata(raw, offset, only_text=True, ignore_offset_discrepancy=True)
    except MultipleDataSetsError as exc:  # pragma: no cover - nextdata_offset avoids it
        raise FileFormatError(path, _one_line(exc)) from None
    except FCSParsingError as exc:
        if "greater than file size" in str(exc):
            raise FileFormatError(path, "DATA segment extends beyond the end of the file "
                                        "(truncated, or a header without its events)") from None
        raise FileFormatError(path, f"not a readable FCS file ({_one_line(exc)})") from None
    except MemoryError:
        raise FileFormatError(path, "TEXT segment claims more events than memory holds") from None
    except Exception as exc:  # noqa: BLE001 - FlowIO raises bare ValueError/struct.error/...
        raise FileFormatError(path, f"not a readable FCS file ({_one_line(exc)})") from None
    check_layout(path, head.text)
    if str(head.text.get("tot", "")).strip() == "0":
        return head, version  # no events: nothing in DATA to decode (its offsets are often 0, 0)
    attempts: list[dict] = [{}]
    tried: list[dict] = []
    last: Exception | None = None
    while attempts:
        kwargs = attempts.pop(0)
        tried.append(kwargs)
        caught: list = []
        try:
            with _warnings.catch_warnings(record=True) as caught:
                _warnings.simplefilter("always")
                flow = _flowdata(raw, offset, **kwargs)
            for w in caught:
                msg = _one_line(w.message)
                if "incorrect data offset" in msg:
                    msg = "DATA offset was off by one byte; FlowIO corrected it - review events"
                warnings.append(msg)
            if kwargs.get("use_header_offsets"):
                warnings.append("DATA read at the HEADER's offsets (TEXT's do not fit the data)")
            return flow, version
        except DataOffsetDiscrepancyError as exc:
            last = exc
            warnings.append("HEADER and TEXT disagree on the DATA start; TEXT offsets used")
            attempts += [{**kwargs, "ignore_offset_discrepancy": True},
                         {**kwargs, "use_header_offsets": True}]
        except FCSParsingError as exc:
            last = exc
            text = str(exc)
            if "off by 1" in text and not kwargs.get("ignore_offset_error"):
                attempts.insert(0, {**kwargs, "ignore_offset_error": True})
            elif "greater than file size" in text and not attempts:
                raise FileFormatError(path, "DATA segment extends beyond the end of the file "
                                            "(truncated, or a header without its events)") from None
        except MemoryError:
            raise FileFormatError(path, "TEXT segment claims more events than memory holds") from None
        except Exception as exc:  # noqa: BLE001 - FlowIO raises bare ValueError/struct.error/...
            last = exc
        attempts = [a for a in attempts if a not in tried]
    raise FileFormatError(path, f"not a readable FCS file ({_one_line(last)})") from None


def _events(path, flow, warnings: list[str]) -> np.ndarray:
    if flow.events is None:  # read with only_text: a file without events
        return np.empty((0, len(flow.channels)), dtype=np.float64)
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
    """Read an FCS 2.0 / 3.0 / 3.1 / 3.2 list-mode file.

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
        raise FileFormatError(path, f"starts with {raw[:6]!r}, not FCS2.0/FCS3.0/FCS3.1/FCS3.2", offset=0)
    warnings: list[str] = []
    flow, version = _load(path, raw, warnings)
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
    if n_events == 0:
        warnings.append("the file holds no events ($TOT 0): nothing was acquired")
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
