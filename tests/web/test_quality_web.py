"""Quality pages: the I-MR trend with Nelson signals across lots (and its SVG/PNG chart),
comparability of two lot groups, and the shelf life of an uploaded stability file."""

from __future__ import annotations

import re
from datetime import date, timedelta

import numpy as np
import pytest

from web.conftest import sign_in
from web.release_data import build_lot

#: size_d50 (nm) of nine lots in manufacture order; the last is far outside the limits
#: computed from the first eight (mean 120.125 nm).
D50_NM = [120.0, 121.0, 119.0, 120.0, 122.0, 118.0, 121.0, 120.0, 160.0]


@pytest.fixture
def trend_lots(web_db):
    numbers = []
    for i, d50 in enumerate(D50_NM):
        number = f"EV-T-{i + 1:02d}"
        build_lot(web_db, number, results=False, d50_nm=d50,
                  manufactured_on=date(2026, 1, 5) + timedelta(days=7 * i))
        numbers.append(number)
    return numbers


def test_imr_page_shows_limits_and_the_nelson_signal(client, trend_lots):
    sign_in(client, "viewer1")
    form = client.get("/quality")
    assert form.status_code == 200 and '<option value="size_d50">' in form.text
    page = client.get("/quality", params={"attribute": "size_d50", "baseline": "8"})
    assert page.status_code == 200
    assert re.search(r'data-testid="mean">120\.1<', page.text)
    signals = re.findall(r'<tr data-testid="signal"><td>(\d+)</td><td>[^<]*</td>'
                         r'<td class="num">(\d+)</td><td><a [^>]*>([^<]*)</a>', page.text)
    assert ("1", "8", "EV-T-09") in signals
    assert all(lot == "EV-T-09" for _, _, lot in signals)
    assert 'src="/quality/imr.svg?attribute=size_d50&amp;product=&amp;baseline=8"' in page.text


def test_imr_chart_routes_serve_svg_and_png(client, trend_lots):
    sign_in(client, "viewer1")
    svg = client.get("/quality/imr.svg", params={"attribute": "size_d50"})
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in svg.content[:500] and b"<script" not in svg.content
    png = client.get("/quality/imr.png", params={"attribute": "size_d50"})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_imr_refusals_are_messages_not_crashes(client, trend_lots):
    sign_in(client, "viewer1")
    page = client.get("/quality", params={"attribute": "<script>alert(1)</script>"})
    assert page.status_code == 422
    assert "0 lot(s) with a value" in page.text
    assert "<script>alert(1)</script>" not in page.text
    bad = client.get("/quality", params={"attribute": "size_d50", "baseline": "eight"})
    assert bad.status_code == 422 and "baseline: &#39;eight&#39; is not an integer" in bad.text
    chart = client.get("/quality/imr.svg", params={"attribute": "nothing_measured"})
    assert chart.status_code == 422


def test_comparability_table(client, trend_lots):
    sign_in(client, "viewer1")
    page = client.get("/quality/compare", params={
        "group_a": "EV-T-01, EV-T-02 EV-T-03,EV-T-04", "group_b": "EV-T-05 EV-T-06 EV-T-07 EV-T-08",
        "margins": "size_d50=10"})
    assert page.status_code == 200, page.text[-2000:]
    row = re.search(r'<tr data-testid="comparison"><td>size_d50</td>(.*?)</tr>', page.text, re.S)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    # n A, n B, B - A (120.25 - 120.0), margin, unit
    assert cells[1:6] == ["4", "4", "0.25", "10", "nm"]
    assert "equivalent" in cells[0]
    overlap = client.get("/quality/compare", params={"group_a": "EV-T-01", "group_b": "EV-T-01",
                                                     "margins": "size_d50=10"})
    assert overlap.status_code == 422 and "are in both groups" in overlap.text
    control = client.get("/quality/compare", params={"group_a": "EV-T-01\x00",
                                                     "group_b": "EV-T-02", "margins": "x=1"})
    assert control.status_code == 422 and "contains a control character" in control.text
    no_margin = client.get("/quality/compare", params={"group_a": "EV-T-01",
                                                       "group_b": "EV-T-02", "margins": ""})
    assert no_margin.status_code == 422 and "equivalence margin" in no_margin.text


STABILITY_CSV = """batch,time_months,particles_e11_per_ml
A,0,2.05
A,3,1.96
A,6,1.86
A,9,1.78
A,12,1.68
A,18,1.49
B,0,1.98
B,3,1.90
B,6,1.82
B,9,1.73
B,12,1.65
B,18,1.48
"""


def _stability(client, csrf, text, **fields):
    data = {"csrf_token": csrf, "time_column": "time_months",
            "value_column": "particles_e11_per_ml", "batch_column": "batch",
            "lower_limit": "1.2", **fields}
    raw = text if isinstance(text, bytes) else text.encode()
    return client.post("/quality/stability", data=data,
                       files={"file": ("study.csv", raw, "text/csv")})


def test_stability_shelf_life_from_an_uploaded_file(client, web_db):
    from exotrace.quality import shelf_life

    csrf = sign_in(client, "viewer1")
    assert client.get("/quality/stability").status_code == 200
    page = _stability(client, csrf, STABILITY_CSV)
    assert page.status_code == 200, page.text[-1500:]
    rows = [line.split(",") for line in STABILITY_CSV.split()[1:]]
    expected = shelf_life(np.array([float(r[1]) for r in rows]),
                          np.array([float(r[2]) for r in rows]), [r[0] for r in rows],
                          lower_limit=1.2)
    shown = re.search(r'data-testid="shelf-life">([^<]+)<', page.text).group(1)
    assert float(shown) == pytest.approx(expected.shelf_life, rel=5e-3)
    assert 18 < expected.shelf_life < 36
    assert 'src="data:image/svg+xml;base64,' in page.text
    assert "12 rows" in page.text


def test_stability_refusals(client, web_db):
    csrf = sign_in(client, "viewer1")
    missing = _stability(client, csrf, STABILITY_CSV, value_column="potency")
    assert missing.status_code == 422 and "potency" in missing.text
    no_limit = _stability(client, csrf, STABILITY_CSV, lower_limit="")
    assert no_limit.status_code == 422 and "give a lower limit, an upper limit or both" \
        in no_limit.text
    huge = _stability(client, csrf, "t,v\n" + "1,2\n" * 300_000)
    assert huge.status_code == 422 and "larger than 1048576 bytes" in huge.text
    binary = _stability(client, csrf, b"\x89PNG\r\n\x1a\n\xff\xfe" * 20)
    assert binary.status_code == 422 and "cannot read the file as UTF-8 text" in binary.text
    no_csrf = client.post("/quality/stability", data={"time_column": "t", "value_column": "v"},
                          files={"file": ("s.csv", b"t,v\n1,2\n", "text/csv")})
    assert no_csrf.status_code == 403
