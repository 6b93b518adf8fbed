"""The genealogy graph of a lot as an SVG string, built server-side.

Columns left to right: donors, cell banks, collections, isolation runs, lots
(one column per generation of pools and splits), vials (one node per lot:
the count), subjects. Every text is escaped before it enters the markup, so
the result may be inlined in a page as :class:`markupsafe.Markup`.
"""

from __future__ import annotations

from markupsafe import Markup, escape

__all__ = ["genealogy_svg"]

_COLUMN_W_PX = 160
_NODE_W_PX = 136
_NODE_H_PX = 42
_ROW_H_PX = 54
_MARGIN_PX = 12
_SOURCE_KINDS = ("donor", "cell_bank", "collection", "isolation_run")
_KIND_LABEL = {"donor": "donor", "cell_bank": "cell bank", "collection": "collection",
               "isolation_run": "isolation", "lot": "lot", "vials": "vials",
               "subject": "subject"}


def _lot_levels(graph: dict) -> dict[str, int]:
    """Generation of each lot: 0 for lots with no parent lot in the graph, else 1 + max parent."""
    parents: dict[str, list[str]] = {d["number"]: [] for d in graph["lots"]}
    for src_kind, src, dst_kind, dst, _ in graph["edges"]:
        if src_kind == "lot" and dst_kind == "lot" and dst in parents:
            parents[dst].append(src)
    levels: dict[str, int] = {}

    def level(number: str, seen: frozenset = frozenset()) -> int:
        if number not in levels:
            if number in seen:  # a cycle cannot be stored; guard anyway
                return 0
            ps = [p for p in parents.get(number, []) if p in parents]
            levels[number] = 1 + max((level(p, seen | {number}) for p in ps), default=-1)
        return levels[number]

    for number in parents:
        level(number)
    return levels


def _nodes(graph: dict) -> list[tuple[int, str, str, str, str]]:
    """(column, kind, key, title, subtitle) of every node."""
    nodes = []
    for d in graph["donors"]:
        consent = d.get("consent")
        note = ("no consent" if consent is None else
                "consent withdrawn" if consent.get("withdrawn") else "consent on file")
        nodes.append((0, "donor", d["code"], d["code"], note))
    for code in graph["cell_banks"]:
        nodes.append((1, "cell_bank", code, code, ""))
    for code in graph["collections"]:
        nodes.append((2, "collection", code, code, ""))
    for code in graph["isolation_runs"]:
        nodes.append((3, "isolation_run", code, code, ""))
    levels = _lot_levels(graph)
    last_lot_col = 4 + max(levels.values(), default=0)
    for d in graph["lots"]:
        nodes.append((4 + levels[d["number"]], "lot", d["number"], d["number"],
                      d["status"].replace("_", " ")))
    for d in graph["lots"]:
        if d["vials"]:
            by_status = ", ".join(f"{n} {s}" for s, n in d["vials_by_status"].items())
            nodes.append((last_lot_col + 1, "vials", d["number"], f"{d['vials']} vials",
                          by_status))
    for s in graph["subjects"]:
        nodes.append((last_lot_col + 2, "subject", s["code"], s["code"],
                      f"{s['administrations']} administration(s)"))
    return nodes


def _text(x: float, y: float, text: str, cls: str) -> str:
    return f'<text x="{x:.0f}" y="{y:.0f}" class="{cls}">{escape(text)}</text>'


def _clip(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def genealogy_svg(graph: dict) -> Markup:
    """SVG markup of :func:`exotrace.records.lot_genealogy`'s answer (escaped, inlinable)."""
    nodes = _nodes(graph)
    rows: dict[int, int] = {}
    where: dict[tuple[str, str], tuple[float, float]] = {}
    parts: list[str] = []
    for column, kind, key, title, subtitle in nodes:
        row = rows.get(column, 0)
        rows[column] = row + 1
        x = _MARGIN_PX + column * _COLUMN_W_PX
        y = _MARGIN_PX + 18 + row * _ROW_H_PX
        where[(kind, key)] = (x, y)
        classes = f"node {kind}"
        if kind == "lot":
            role = next((d["role"] for d in graph["lots"] if d["number"] == key), "")
            classes += f" {role}"
        box = (f'<g class="{classes}"><title>{escape(_KIND_LABEL[kind])} {escape(key)}'
               f'{escape(": " + subtitle) if subtitle else ""}</title>'
               f'<rect x="{x}" y="{y}" width="{_NODE_W_PX}" height="{_NODE_H_PX}" rx="5"/>'
               + _text(x + 8, y + 17, _clip(title), "title")
               + _text(x + 8, y + 33, _clip(subtitle, 26), "sub") + "</g>")
        if kind == "lot" and key != graph["lot"]:
            box = f'<a href="/lots/{escape(key)}" aria-label="lot {escape(key)}">{box}</a>'
        parts.append(box)
    edges = []
    for src_kind, src, dst_kind, dst, label in graph["edges"]:
        a, b = where.get((src_kind, src)), where.get((dst_kind, dst))
        if a is None or b is None:
            continue
        x1, y1 = a[0] + _NODE_W_PX, a[1] + _NODE_H_PX / 2
        x2, y2 = b[0], b[1] + _NODE_H_PX / 2
        mid = (x1 + x2) / 2
        # The gap between columns is too narrow for text: a link's kind and volume
        # are its tooltip.
        title = f"<title>{escape(src)} to {escape(dst)}: {escape(label)}</title>" if label else ""
        edges.append(f'<path class="edge" d="M{x1:.0f},{y1:.0f} C{mid:.0f},{y1:.0f} '
                     f'{mid:.0f},{y2:.0f} {x2:.0f},{y2:.0f}">{title}</path>')
    columns = max((c for c, *_ in nodes), default=0) + 1
    width = 2 * _MARGIN_PX + (columns - 1) * _COLUMN_W_PX + _NODE_W_PX
    height = 2 * _MARGIN_PX + 18 + max(rows.values(), default=1) * _ROW_H_PX
    headers = []
    seen_cols: set[int] = set()
    for column, kind, *_ in nodes:
        if column not in seen_cols:
            seen_cols.add(column)
            name = "lots" if kind == "lot" else _KIND_LABEL[kind] + ("s" if kind != "vials" else "")
            headers.append(_text(_MARGIN_PX + column * _COLUMN_W_PX, _MARGIN_PX + 8, name,
                                 "column"))
    more = graph.get("more_subjects", 0)
    if more:
        x = _MARGIN_PX + (columns - 1) * _COLUMN_W_PX
        headers.append(_text(x, height - 4, f"and {more} more subjects", "sub"))
        height += 10
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" class="genealogy" role="img" '
           f'aria-label="Genealogy of lot {escape(graph["lot"])}" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}">'
           + "".join(headers) + "".join(edges) + "".join(parts) + "</svg>")
    return Markup(svg)
