"""Build FCS data sets byte by byte for reader tests (layouts FlowIO's writer cannot make).

``data_set`` lays out HEADER, TEXT and DATA with consistent offsets (the offset
keywords change the TEXT length, so the layout is iterated until it settles);
``end_shift`` moves ``$ENDDATA`` and the HEADER's DATA end by whole bytes to
imitate instruments that write the end offset exclusive.
"""

from __future__ import annotations

import numpy as np

TEXT_START = 58


def _text(keywords: dict[str, str]) -> bytes:
    out = "/" + "".join(f"{k}/{str(v).replace('/', '//')}/" for k, v in keywords.items())
    return out.encode("latin-1")


def data_set(keywords: dict[str, str], data: bytes, *, version: str = "FCS3.0",
             end_shift: int = 0, offset_keywords: bool = True) -> bytes:
    """One FCS data set: HEADER + TEXT + DATA with the offsets filled in."""
    kw = dict(keywords)
    begin = end = 0
    for _ in range(5):
        if offset_keywords:
            kw.update({"$BEGINANALYSIS": "0", "$ENDANALYSIS": "0", "$BEGINSTEXT": "0",
                       "$ENDSTEXT": "0", "$BEGINDATA": str(begin), "$ENDDATA": str(end)})
        text = _text(kw)
        text_end = TEXT_START + len(text) - 1
        begin = text_end + 1 if data else 0
        end = (begin + len(data) - 1 + end_shift) if data else 0
    header = (version.encode("ascii") + b" " * 4 + f"{TEXT_START:>8}{text_end:>8}{begin:>8}{end:>8}"
              .encode("ascii") + f"{0:>8}{0:>8}".encode("ascii"))
    assert len(header) == TEXT_START
    return header + text + data


def channels(names, *, width: int = 32, ranges=None, labels=None) -> dict[str, str]:
    out: dict[str, str] = {"$PAR": str(len(names))}
    for i, name in enumerate(names, start=1):
        out[f"$P{i}N"] = name
        out[f"$P{i}B"] = str(width if isinstance(width, int) else width[i - 1])
        out[f"$P{i}E"] = "0,0"
        out[f"$P{i}R"] = str(ranges[i - 1] if ranges else 262144)
        if labels and labels[i - 1]:
            out[f"$P{i}S"] = labels[i - 1]
    return out


def float_events(events: np.ndarray, *, big_endian: bool = False, double: bool = False) -> bytes:
    dtype = (">" if big_endian else "<") + ("f8" if double else "f4")
    return np.asarray(events, dtype=dtype).tobytes()


def common(tot: int, *, datatype: str = "F", byteord: str = "1,2,3,4") -> dict[str, str]:
    return {"$BYTEORD": byteord, "$DATATYPE": datatype, "$MODE": "L", "$NEXTDATA": "0",
            "$TOT": str(tot)}


def canto_like(events: np.ndarray) -> bytes:
    """BD FACSCanto II / FACSDiva 8 export: FCS 3.0, big-endian floats, Diva keywords, SPILL."""
    names = ["FSC-A", "FSC-H", "FSC-W", "SSC-A", "SSC-H", "SSC-W", "FITC-A", "PE-A", "APC-A", "Time"]
    labels = ["", "", "", "", "", "", "CD63", "CD81", "CD9", ""]
    kw = common(events.shape[0], byteord="4,3,2,1") | channels(names, labels=labels) | {
        "$CYT": "FACSCanto II", "CREATOR": "BD FACSDiva Software Version 8.0.1",
        "$DATE": "12-MAR-2024", "$BTIM": "14:02:11", "$ETIM": "14:03:40", "$SRC": "EV lot 7",
        "$FIL": "EVlot7_CD63.fcs", "TUBE NAME": "CD63-CD81-CD9", "EXPERIMENT NAME": "EV markers",
        "$TIMESTEP": "0.01", "WINDOW EXTENSION": "10", "FSC ASF": "0.78", "THRESHOLD": "FSC,5000",
        "CST SETUP STATUS": "SUCCESS", "SPILL": "3,FITC-A,PE-A,APC-A,1,0.2,0,0.01,1,0.02,0,0.05,1",
        "$P10R": "262144", "$P10G": "0.01",
    }
    for i in range(1, 10):
        kw[f"$P{i}V"] = "450"
    return data_set(kw, float_events(events, big_endian=True), version="FCS3.0")


def cytek_like(events: np.ndarray) -> bytes:
    """Cytek Aurora / SpectroFlo 3 export: FCS 3.1, little-endian floats, 4194304 ranges, $VOL."""
    names = ["Time", "SSC-H", "SSC-A", "FSC-H", "FSC-A", "SSC-B-H", "SSC-B-A", "V3-A", "B2-A", "R1-A"]
    kw = common(events.shape[0]) | channels(names, ranges=[272140] + [4194304] * 9) | {
        "$CYT": "Aurora", "$CYTSN": "V0123", "CREATOR": "SpectroFlo 3.0.3",
        "$DATE": "05-Feb-2025", "$BTIM": "10:15:00.00", "$ETIM": "10:17:00.00",
        "$FIL": "EV lot 7_Unmixed.fcs", "TUBE NAME": "EV lot 7", "$TIMESTEP": "0.0001",
        "$VOL": "30000", "$SPILLOVER": "", "CHARACTERISTICS": "Aurora 5L",
    }
    return data_set(kw, float_events(events), version="FCS3.1")


def beckman_lmd(events: np.ndarray) -> bytes:
    """Beckman ``.lmd``: an FCS 2.0 set (10-bit ints in 16-bit words) then an FCS 3.0 float set."""
    names = ["FS", "SS", "FL1", "FL2"]
    ints = np.clip(np.round(events / events.max() * 1023), 0, 1023).astype("<u2")
    first_kw = common(events.shape[0], datatype="I") | channels(names, width=16, ranges=[1024] * 4) | {
        "$CYT": "Cytomics FC 500", "$NEXTDATA": "0" * 10}
    first = data_set(first_kw, ints.tobytes(), version="FCS2.0", offset_keywords=False)
    first_kw["$NEXTDATA"] = f"{len(first):010d}"
    first = data_set(first_kw, ints.tobytes(), version="FCS2.0", offset_keywords=False)
    second = data_set(common(events.shape[0]) | channels(names, ranges=[1048576] * 4)
                      | {"$CYT": "Cytomics FC 500", "CREATOR": "CXP 2.2"},
                      float_events(events), version="FCS3.0")
    return first + second
