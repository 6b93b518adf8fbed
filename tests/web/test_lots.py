"""Lot pages and the lot/trace API: filters, sort, pagination, escaping, the CLI's JSON,
the certificate refusal."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from web._lots_data import HOSTILE, N_LOTS, build_lots
from web.conftest import sign_in


@pytest.fixture
def lots(web_db):
    return build_lots(web_db)


@pytest.fixture
def viewer(client, lots):
    sign_in(client, "viewer1")
    return client


def _numbers(html: str) -> list[str]:
    return re.findall(r'<td><a href="/lots/[^"]+">([^<]+)</a></td>', html)


def _cli_json(monkeypatch, capsys, url: str, *args: str):
    from exotrace.cli.main import main

    monkeypatch.setenv("EXOTRACE_DATABASE_URL", url)
    capsys.readouterr()
    code = main([*args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


# --------------------------------------------------------------------------- list

def test_list_pages_of_fifty_then_the_rest(viewer):
    first = viewer.get("/lots")
    assert first.status_code == 200
    assert f"{N_LOTS} lots, page 1 of 2" in first.text
    numbers = _numbers(first.text)
    assert len(numbers) == 50
    assert numbers[:4] == ["A1", "A2", "A3", "B00"]   # sorted by number
    second = viewer.get("/lots?page=2")
    rest = _numbers(second.text)
    assert len(rest) == N_LOTS - 50
    assert rest[-3:] == ["P1", "P1-A", "P1-B"]
    assert not set(numbers) & set(rest)
    assert 'rel="next"' in first.text and 'rel="next"' not in second.text


def test_list_page_past_the_end_is_empty(viewer):
    page = viewer.get("/lots?page=3")
    assert page.status_code == 200
    assert _numbers(page.text) == []
    assert "No lot matches these filters." in page.text


def test_api_pagination_boundaries(client, bearer, lots):
    auth = bearer("viewer1")
    exact = client.get("/api/v1/lots?per_page=29&page=2", headers=auth).json()
    assert (exact["total"], exact["pages"], len(exact["items"])) == (N_LOTS, 2, 29)
    one_more = client.get("/api/v1/lots?per_page=57&page=2", headers=auth).json()
    assert (one_more["pages"], [i["number"] for i in one_more["items"]]) == (2, ["P1-B"])
    assert client.get("/api/v1/lots?per_page=58", headers=auth).json()["pages"] == 1
    assert client.get("/api/v1/lots?per_page=200", headers=auth).status_code == 200
    for bad in ("per_page=201", "per_page=0", "page=0", "sort=price", "status=sold",
                "order=up"):
        answer = client.get(f"/api/v1/lots?{bad}", headers=auth)
        assert answer.status_code == 422, bad
        assert answer.headers["content-type"].startswith("application/problem+json")


def test_filter_by_status(client, bearer, lots):
    auth = bearer("viewer1")
    body = client.get("/api/v1/lots?status=quarantined", headers=auth).json()
    assert [i["number"] for i in body["items"]] == lots["quarantined"]
    assert body["total"] == len(lots["quarantined"]) == 5
    released = client.get("/api/v1/lots?status=released", headers=auth).json()
    assert [i["number"] for i in released["items"]] == ["A3"]
    pooled = client.get("/api/v1/lots?number=P1-", headers=auth).json()
    assert [(i["number"], i["parents"]) for i in pooled["items"]] == [
        ("P1-A", ["P1"]), ("P1-B", ["P1"])]
    # LIKE wildcards typed by the user are literal characters.
    assert client.get("/api/v1/lots?number=%25", headers=auth).json()["total"] == 0


def test_filter_by_product(client, bearer, web_db, lots, tmp_path):
    """The product is the lot's specification in force: the only effective one applies
    to every lot; once a second specification is effective, only the lot assigned to
    the first keeps it (as :func:`specification_in_force` decides)."""
    from exotrace.quality import example_specification_path
    from exotrace.records import User, import_specification, make_engine, repositories, unit_of_work

    auth = bearer("viewer1")
    product = "MSC-derived small EVs"
    every = client.get("/api/v1/lots", params={"product": product}, headers=auth).json()
    assert every["total"] == N_LOTS
    by_name = client.get("/api/v1/lots", params={"product": "MSC-sEV lot release specification"},
                         headers=auth).json()
    assert by_name["total"] == N_LOTS
    assert client.get("/api/v1/lots?product=no-such-product",
                      headers=auth).json()["total"] == 0
    page = client.get("/lots", params={"product": product}, headers=auth)
    assert f'<option value="{product}" selected>' in page.text

    other = tmp_path / "other.yaml"
    other.write_text(example_specification_path().read_text(encoding="utf-8")
                     .replace("name: MSC-sEV lot release specification", "name: Other spec")
                     .replace("product_type: MSC-derived small EVs", "product_type: Other EVs"),
                     encoding="utf-8")
    engine = make_engine(web_db)
    with unit_of_work(engine) as s:
        import_specification(s, repositories.get_by(s, User, username="qa1"), other)
    engine.dispose()
    only_assigned = client.get("/api/v1/lots", params={"product": product}, headers=auth).json()
    assert [i["number"] for i in only_assigned["items"]] == ["A3"]
    assert client.get("/api/v1/lots?product=Other%20EVs", headers=auth).json()["total"] == 0
    assert "Other EVs" in client.get("/lots", headers=auth).text  # offered in the filter


def test_sort_by_expiry_and_created(client, bearer, lots):
    auth = bearer("viewer1")
    items = client.get("/api/v1/lots?sort=expiry&per_page=200", headers=auth).json()["items"]
    dated = [i["expires_on"] for i in items if i["expires_on"] is not None]
    assert dated == sorted(dated)
    assert items[-1]["expires_on"] is None    # no expiry last
    down = client.get("/api/v1/lots?sort=expiry&order=desc&per_page=200",
                      headers=auth).json()["items"]
    assert [i["expires_on"] for i in down if i["expires_on"]] == sorted(dated, reverse=True)
    assert down[-1]["expires_on"] is None
    created = client.get("/api/v1/lots?sort=created&order=desc&per_page=3",
                         headers=auth).json()["items"]
    assert [i["number"] for i in created] == ["B51", "B50", "B49"]
    by_status = client.get("/api/v1/lots?sort=status&per_page=200",
                           headers=auth).json()["items"]
    statuses = [i["status"] for i in by_status]
    assert statuses == sorted(statuses)
    # Ties broken by number.
    in_process = [i["number"] for i in by_status if i["status"] == "in_process"]
    assert in_process == sorted(in_process)
    assert date.fromisoformat(dated[0]) >= date.today() + timedelta(days=300)


def test_list_refuses_bad_input_on_the_page(viewer):
    page = viewer.get("/lots?sort=%3Cscript%3E")
    assert page.status_code == 422
    assert "<script>" not in page.text
    assert "&lt;script&gt;" in page.text


# --------------------------------------------------------------------------- one lot

def test_lot_page_shows_genealogy_signatures_and_history(viewer):
    page = viewer.get("/lots/A3")
    assert page.status_code == 200
    text = page.text
    svg = re.search(r"<svg[^>]*class=\"genealogy\".*?</svg>", text, re.S).group(0)
    for node in ("D1", "CB1", "C1", "I1", "A3"):
        assert f">{node}</text>" in svg
    # Signatures: printed name, meaning, UTC time, still matching.
    rows = re.search(r'<table class="signatures">.*?</table>', text, re.S).group(0)
    assert "Reviewer One (reviewer1)" in rows and "Qa One (qa1)" in rows
    assert rows.count("UTC") >= 2 and "review" in rows and "approval" in rows
    assert rows.count("status ok") == 2
    assert "Certificate of analysis (PDF)" in text
    assert "/lots/A3/sizes.svg" in text
    assert "complies" in text
    # History: the lot row, its measurements, results, verification, release, signatures.
    history = text[text.index('id="h-history"'):]
    for table in ("lot ", "measurement ", "quality_result ", "lot_verification ",
                  "lot_disposition ", "signature "):
        assert f"<td>{table}" in history, table
    assert "status: awaiting_release -&gt; released" in history


def test_genealogy_counts_vials_per_lot_and_follows_pools_and_splits(viewer):
    svg = re.search(r"<svg.*?</svg>", viewer.get("/lots/A1").text, re.S).group(0)
    for node in ("A1", "P1", "P1-A", "P1-B"):
        assert f">{node}</text>" in svg
    assert ">3 vials</text>" in svg and ">2 vials</text>" in svg
    assert ">A2</text>" not in svg  # a sibling parent of the pool is not A1's family
    pooled = re.search(r"<svg.*?</svg>", viewer.get("/lots/P1-A").text, re.S).group(0)
    for node in ("D1", "A1", "A2", "P1", "P1-A"):
        assert f">{node}</text>" in pooled
    assert ">P1-B</text>" not in pooled
    assert 'href="/lots/P1"' in pooled


def test_unknown_lot_is_404(viewer, client, bearer):
    assert viewer.get("/lots/NOPE").status_code == 404
    for path in ("/lots/NOPE/coa.pdf", "/lots/NOPE/sizes.svg"):
        assert viewer.get(path).status_code == 404
    answer = client.get("/api/v1/lots/NOPE", headers=bearer("viewer1"))
    assert answer.status_code == 404
    assert answer.json()["detail"].count("NOPE") == 1


def test_hostile_text_is_escaped(viewer):
    page = viewer.get("/lots/A1").text
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    measured = viewer.get("/lots/A3").text
    assert HOSTILE not in measured
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in measured


def test_size_chart_is_an_svg(viewer):
    chart = viewer.get("/lots/A3/sizes.svg")
    assert chart.status_code == 200
    assert chart.headers["content-type"] == "image/svg+xml"
    assert chart.content.lstrip().startswith(b"<?xml") and b"<svg" in chart.content
    assert viewer.get("/lots/A1/sizes.svg").status_code == 404  # no distribution


# --------------------------------------------------------------------------- CoA

def test_certificate_for_a_released_lot(viewer):
    pdf = viewer.get("/lots/A3/coa.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")


def test_certificate_refused_for_unreleased_lot(viewer, client, lots):
    answer = viewer.get("/lots/A1/coa.pdf")
    assert answer.status_code == 409
    assert "in_process" in answer.text and "%PDF" not in answer.text
    assert "Certificate of analysis" not in viewer.get("/lots/A1").text


def test_certificate_refused_when_release_record_changed(viewer, web_db):
    from _db_fixtures import owner_url

    engine = sa.create_engine(owner_url(web_db))
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE lot_disposition SET reason = 'changed after signing' "
                             "WHERE action = 'release'"))
    engine.dispose()
    answer = viewer.get("/lots/A3/coa.pdf")
    assert answer.status_code == 409
    assert "no longer matches" in answer.text
    page = viewer.get("/lots/A3").text
    assert "no: the record changed after signing" in page


# --------------------------------------------------------------------------- API = CLI

def test_lot_json_equals_the_cli(client, bearer, web_db, lots, monkeypatch, capsys):
    api = client.get("/api/v1/lots/P1-A", headers=bearer("viewer1")).json()
    assert api == _cli_json(monkeypatch, capsys, web_db, "lot", "show", "P1-A")
    assert api["parents"] == ["P1"] and api["vials"] == 2


def test_trace_json_equals_the_cli(client, bearer, web_db, lots, monkeypatch, capsys):
    from exotrace.records import Vial, make_engine, unit_of_work

    auth = bearer("viewer1")
    engine = make_engine(web_db)
    with unit_of_work(engine) as s:
        vial = s.scalars(sa.select(Vial.identifier).order_by(Vial.id.desc())).first()
    engine.dispose()
    back = client.get("/api/v1/trace/back", params={"vial": vial}, headers=auth)
    assert back.status_code == 200
    cli_back = _cli_json(monkeypatch, capsys, web_db, "trace", "back", "--vial", vial)
    assert back.json() == cli_back
    assert [lot["number"] for lot in cli_back["lots"]] == ["A1", "A2", "P1", "P1-A"]
    forward = client.get("/api/v1/trace/forward?donor=D1", headers=auth).json()
    assert forward == _cli_json(monkeypatch, capsys, web_db, "trace", "forward", "--donor", "D1")
    assert len(forward["vials"]) == 5 and len(forward["lots"]) == N_LOTS
    for option, value in (("lot", "A1"), ("cell_bank", "CB1")):
        api = client.get(f"/api/v1/trace/forward?{option}={value}", headers=auth).json()
        assert api == _cli_json(monkeypatch, capsys, web_db, "trace", "forward",
                                f"--{option.replace('_', '-')}", value)
    assert [x["number"] for x in client.get("/api/v1/trace/forward?lot=A1",
                                            headers=auth).json()["lots"]] == \
        ["A1", "P1", "P1-A", "P1-B"]


def test_trace_refusals(client, bearer, lots):
    auth = bearer("viewer1")
    assert client.get("/api/v1/trace/back?vial=NOPE", headers=auth).status_code == 404
    assert client.get("/api/v1/trace/back", headers=auth).status_code == 422
    both = client.get("/api/v1/trace/forward?donor=D1&lot=A1", headers=auth)
    assert both.status_code == 422 and "exactly one" in both.json()["detail"]
    assert client.get("/api/v1/trace/forward", headers=auth).status_code == 422
    assert client.get("/api/v1/trace/forward?donor=NOPE", headers=auth).status_code == 404
    assert client.get("/api/v1/trace/forward?donor=" + "x" * 65,
                      headers=auth).status_code == 422
    assert client.get("/api/v1/trace/forward?donor=D1").status_code == 401
