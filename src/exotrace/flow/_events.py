"""FCS events as the flow analyses need them: one channel's values, volume, time, trigger.

The file is read through :func:`exotrace.instruments.read_fcs` (which corrects
or refuses broken files and lists what it corrected in ``warnings``); this
module only picks channels and the acquisition keywords.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FileFormatError, InvalidInput
from ..instruments._fcs import read_fcs
from ..instruments._record import InstrumentResult

__all__ = ["FlowEvents", "channel_list", "load_events"]

# Vendor keywords for the sample flow rate (uL/min); FCS has no standard one.
_FLOW_RATE_KEYS = ("flowrate", "flow rate", "flow_rate", "#flowrate", "sample flow rate")


def _positive(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        v = float(str(text).strip())
    except ValueError:
        return None
    return v if math.isfinite(v) and v > 0 else None


def _clock_s(text: str | None) -> float | None:
    m = re.match(r"\s*(\d{1,2}):(\d{2}):(\d{2})(?:[.:](\d+))?", str(text or ""))
    if not m:
        return None
    frac = m.group(4)
    # FCS 3.1 writes hundredths after '.', FCS 3.0 sixtieths after ':'
    sub = 0.0 if frac is None else (int(frac) / 10 ** len(frac) if "." in str(text) else int(frac) / 60)
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3)) + sub


def channel_list(names, limit: int = 12) -> str:
    """Comma-separated channel names for an error message, cut after ``limit``."""
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} channels)" if len(names) > limit else "")


@dataclass(frozen=True)
class FlowEvents:
    """The events of one FCS file and the keywords the flow analyses use.

    Attributes
    ----------
    file : str
    names, labels : tuple of str
        ``$PnN`` and ``$PnS`` of each channel (label "" where none).
    data : ndarray of float, shape (events, channels)
    keywords : dict
        TEXT segment, keys lower-case without ``$`` (as FlowIO gives them).
    ranges : tuple of float or None
        ``$PnR`` of each channel (the detector's full scale).
    warnings : tuple of str
        What the reader corrected, and what is doubtful here.
    """

    file: str
    names: tuple[str, ...]
    labels: tuple[str, ...]
    data: np.ndarray = field(repr=False)
    keywords: dict = field(default_factory=dict, repr=False)
    ranges: tuple[float | None, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def n_events(self) -> int:
        return int(self.data.shape[0])

    def channel_index(self, channel: str | int) -> int:
        """0-based column of a channel given by ``$PnN``, ``$PnS`` or 1-based index."""
        if isinstance(channel, (int, np.integer)) and not isinstance(channel, bool):
            if 1 <= channel <= len(self.names):
                return int(channel) - 1
            raise InvalidInput(f"{self.file}: no channel with index {channel} "
                               f"(the file has {len(self.names)})")
        text = str(channel)
        hits = [j for j, (n, lab) in enumerate(zip(self.names, self.labels, strict=True))
                if text in (n, lab)]
        if not hits and text.isdigit():
            return self.channel_index(int(text))
        if not hits:
            raise InvalidInput(f"{self.file}: no channel {text[:60]!r} (channels: {channel_list(self.names)})")
        if len(hits) > 1:
            raise InvalidInput(f"{self.file}: channel name {text!r} is not unique; give its index")
        return hits[0]

    def values(self, channel: str | int) -> np.ndarray:
        """Finite values of one channel, shape (events,) (non-finite events dropped)."""
        v = self.data[:, self.channel_index(channel)]
        return v[np.isfinite(v)]

    def channel_range(self, channel: str | int) -> float | None:
        j = self.channel_index(channel)
        return self.ranges[j] if j < len(self.ranges) else None

    @property
    def volume_nl(self) -> float | None:
        """``$VOL``, the analysed volume in nanolitres (FCS 3.1), if valid."""
        return _positive(self.keywords.get("vol"))

    @property
    def duration_s(self) -> float | None:
        """Acquisition time, s: ``$DURTIM``, else ``$ETIM - $BTIM``."""
        d = _positive(self.keywords.get("durtim"))
        if d is not None:
            return d
        b, e = _clock_s(self.keywords.get("btim")), _clock_s(self.keywords.get("etim"))
        if b is None or e is None:
            return None
        if e < b:  # acquisition ran past midnight
            e += 86400.0
        return e - b if e > b else None

    @property
    def flow_rate_ul_per_min(self) -> float | None:
        """Sample flow rate from a vendor keyword, uL/min, if written."""
        for key in _FLOW_RATE_KEYS:
            v = _positive(self.keywords.get(key))
            if v is not None:
                return v
        return None

    def trigger(self) -> tuple[str, float] | None:
        """``$TR`` = "channel,threshold" (channel name and threshold in channel units)."""
        tr = str(self.keywords.get("tr", "")).strip()
        if "," not in tr:
            return None
        name, _, value = tr.rpartition(",")
        v = _positive(value)
        return (name.strip(), v) if v is not None and name.strip() else None


def load_events(source, *, what: str = "file", allow_empty: bool = False) -> FlowEvents:
    """Events of an FCS file (path), an FCS :class:`InstrumentResult`, or :class:`FlowEvents`.

    ``allow_empty``: a file without events is valid (a clean buffer-only blank).

    Raises
    ------
    FileFormatError
        Not an FCS file, or one without events (unless ``allow_empty``).
    """
    if isinstance(source, FlowEvents):
        if source.n_events == 0 and not allow_empty:
            raise FileFormatError(source.file, f"{what} holds no events")
        return source
    if isinstance(source, (str, Path)):
        source = read_fcs(source)
    if not isinstance(source, InstrumentResult):
        raise InvalidInput(f"{what}: expected an FCS file, got {type(source).__name__}")
    if source.format != "fcs" or not isinstance(source.extra.get("event_data"), np.ndarray):
        raise FileFormatError(source.file, f"{what} is not an FCS result with events")
    data = np.asarray(source.extra["event_data"], dtype=float)
    if data.ndim != 2 or (data.shape[0] == 0 and not allow_empty):
        raise FileFormatError(source.file, f"{what} holds no events")
    chans = source.channels or ()
    return FlowEvents(
        file=source.file,
        names=tuple(c.name for c in chans),
        labels=tuple(c.label or "" for c in chans),
        data=data,
        keywords={str(k).lower().lstrip("$"): str(v) for k, v in
                  (source.extra.get("keywords") or {}).items()},
        ranges=tuple(c.range for c in chans),
        warnings=tuple(source.warnings),
    )
