"""Quality services: comparability (ICH Q5E) of two groups of lots: equivalence margins,
TOST per attribute and the pooled size distributions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import yaml
from sqlalchemy.orm import Session

from ..errors import FileFormatError, InvalidInput
from ..quality import Margin, compare_groups
from . import _repositories_quality as qrepo
from ._models_lot import Lot
from ._quality_common import _lot_values

__all__ = ["compare_lots", "parse_margins"]


def parse_margins(items: Iterable[str] = (), path: str | Path | None = None
                  ) -> dict[str, Margin]:
    """Equivalence margins from ``ATTR=VALUE`` / ``ATTR=10%`` items and/or a YAML file.

    The YAML file maps attribute -> number (absolute), ``"10%"`` (relative to
    group A's mean) or ``{value: 0.1, kind: relative}``.
    """
    margins: dict[str, Margin] = {}

    def one(attr: str, value: object, where: str) -> None:
        if isinstance(value, Mapping):
            try:
                margins[attr] = Margin(float(value["value"]), str(value.get("kind", "absolute")))
            except (KeyError, TypeError, ValueError):
                raise InvalidInput(f"{where}: margin of {attr!r} needs a numeric value") from None
            return
        text = str(value).strip()
        try:
            if text.endswith("%"):
                margins[attr] = Margin(float(text[:-1]) / 100.0, "relative")
            else:
                margins[attr] = Margin(float(text))
        except ValueError:
            raise InvalidInput(f"{where}: margin {text!r} of {attr!r} is not a number or "
                               "a percentage") from None

    if path is not None:
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileFormatError(p, "file not found") from None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise FileFormatError(p, f"not a readable YAML file ({type(exc).__name__})") from None
        if not isinstance(data, Mapping) or not data:
            raise FileFormatError(p, "expected a mapping of attribute: margin")
        for attr, value in data.items():
            one(str(attr), value, str(p))
    for item in items:
        attr, sep, value = item.partition("=")
        if not sep or not attr.strip():
            raise InvalidInput(f"--margin {item!r}: write ATTRIBUTE=VALUE or ATTRIBUTE=10%")
        one(attr.strip(), value, f"--margin {item}")
    if not margins:
        raise InvalidInput("give at least one equivalence margin (--margin ATTR=VALUE or "
                           "--margins FILE.yaml)")
    return margins


def _pooled_distribution(session: Session, lots: Sequence[Lot]):
    """Pooled number distribution of lots (each lot weighs the same); None if none stored."""
    rows = qrepo.size_distributions_of_lots(session, [x.id for x in lots])
    latest = {}
    for r in rows:
        latest[r.lot_id] = r
    if not latest:
        return None, []
    ds, ws = [], []
    for r in latest.values():
        d = np.asarray(json.loads(r.diameters_nm_json), dtype=float)
        w = np.asarray(json.loads(r.weights_json), dtype=float)
        ds.append(d)
        ws.append(w / w.sum())
    have = [x.number for x in lots if x.id in latest]
    return (np.concatenate(ds), np.concatenate(ws)), have


def compare_lots(session: Session, group_a: Sequence[str], group_b: Sequence[str],
                 margins: Mapping[str, Margin | float], *, alpha: float = 0.05,
                 min_n: int = 3) -> dict:
    """Comparability (ICH Q5E) of lot group B against reference group A.

    TOST per attribute with a margin (values from the lots' measurements and
    results) and, where both groups have stored size distributions, the
    distribution comparison of the pooled distributions.
    """
    if not group_a or not group_b:
        raise InvalidInput("give lots for both groups (--group-a, --group-b)")
    overlap = set(group_a) & set(group_b)
    if overlap:
        raise InvalidInput(f"lot(s) {', '.join(sorted(overlap))} are in both groups")
    lots_a = qrepo.lots_by_numbers(session, list(group_a))
    lots_b = qrepo.lots_by_numbers(session, list(group_b))
    values_a: dict[str, list[float]] = {}
    values_b: dict[str, list[float]] = {}
    units: dict[str, str | None] = {}
    for attr in margins:
        va, unit = _lot_values(session, lots_a + lots_b, attr)
        units[attr] = unit
        values_a[attr] = [va[x.id] for x in lots_a if x.id in va]
        values_b[attr] = [va[x.id] for x in lots_b if x.id in va]
    dist_a, have_a = _pooled_distribution(session, lots_a)
    dist_b, have_b = _pooled_distribution(session, lots_b)
    sizes = (dist_b[0], dist_b[1], dist_a[0], dist_a[1]) if dist_a and dist_b else None
    report = compare_groups(values_a, values_b, dict(margins), alpha=alpha, min_n=min_n,
                            size_distributions=sizes)
    attrs = []
    for c in report.attributes:
        row = asdict(c)
        row["verdict"] = c.verdict.value
        row["unit"] = units.get(c.attribute)
        attrs.append(row)
    dist = None
    if report.distribution is not None:
        dist = asdict(report.distribution)
        dist["flagged"] = report.distribution.flagged
        dist["lots_a"], dist["lots_b"] = have_a, have_b
    return {"group_a": list(group_a), "group_b": list(group_b), "alpha": report.alpha,
            "min_n": report.min_n, "attributes": attrs, "distribution": dist,
            "summary": report.summary}
