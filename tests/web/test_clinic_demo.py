"""Every clinic page on the demo database (12 subjects with withdrawn consent, holds, stops,
overrides and a serious adverse event): no page fails on real-looking data, and the recall
CSV has one row per administration the JSON lists."""

from __future__ import annotations

import csv
import io
import re

import pytest

from web.conftest import sign_in


@pytest.fixture
def demo_client(fresh_db_url):
    from fastapi.testclient import TestClient

    from exotrace.api import create_app
    from exotrace.cli.demo_records import load_all_demos
    from exotrace.records import make_engine

    engine = make_engine(fresh_db_url)
    try:
        load_all_demos(engine)
    finally:
        engine.dispose()
    app = create_app(fresh_db_url)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client
    app.state.engine.dispose()


def test_clinic_pages_on_the_demo(demo_client):
    client = demo_client
    sign_in(client, "clinician1", "demo")
    subjects = client.get("/api/v1/subjects").json()
    assert len(subjects) == 12
    listing = client.get("/clinic").text
    for s in subjects:
        assert f'<a href="/clinic/subjects/{s["code"]}">{s["code"]}</a>' in listing
        page = client.get(f"/clinic/subjects/{s['code']}")
        assert page.status_code == 200, s["code"]
        detail = client.get(f"/api/v1/subjects/{s['code']}").json()
        rows = re.findall(r'<tr class="event (\w+)">', page.text)
        assert len(rows) == sum(len(detail[k]) for k in (
            "administrations", "observations", "adverse_events", "dose_decisions"))
    withdrawn = [s["code"] for s in subjects if (s["consent"] or {}).get("withdrawn")]
    assert withdrawn and "withdrawn" in client.get(f"/clinic/subjects/{withdrawn[0]}").text
    assert client.get("/clinic/followup", params={"horizon_days": 365}).status_code == 200
    recall = client.get("/api/v1/recall", params={"donor": "DEMO-D01"}).json()
    assert recall["administrations"]
    page = client.get("/clinic/recall", params={"kind": "donor", "key": "DEMO-D01"})
    assert f"{len(recall['subjects'])} subjects, {len(recall['administrations'])} " \
           "administrations." in page.text
    download = client.get("/clinic/recall.csv", params={"kind": "donor", "key": "DEMO-D01"})
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [r["vial"] for r in rows] == [a["vial"] for a in recall["administrations"]]
    # a check on the demo: a subject whose consent is withdrawn is refused at that check
    vial = recall["administrations"][0]["vial"]  # already given: refused as not available
    check = client.get("/clinic/administer", params={"subject": withdrawn[0], "vial": vial})
    assert check.status_code == 200
    verdicts = dict(re.findall(r'data-check="([^"]+)">\s*<span class="verdict">([^<]+)</span>',
                               check.text))
    assert verdicts["subject consent"] == "Failed" and verdicts["vial status"] == "Failed"
    assert "Confirm administration" not in check.text


def test_subjects_are_paged_in_sql(demo_client, monkeypatch):
    import exotrace.web.clinic as pages

    client = demo_client
    sign_in(client, "clinician1", "demo")
    every = client.get("/api/v1/subjects").json()
    codes = [s["code"] for s in every]
    assert codes == sorted(codes) and len(codes) == 12
    assert client.get("/api/v1/subjects", params={"offset": 5, "limit": 5}).json() == every[5:10]
    assert client.get("/api/v1/subjects", params={"offset": 12}).json() == []
    assert client.get("/api/v1/subjects", params={"limit": 0}).status_code == 422
    monkeypatch.setattr(pages, "SUBJECTS_PER_PAGE", 5)
    third = client.get("/clinic", params={"page": 3}).text
    assert "12 subjects, page 3 of 3" in third
    assert re.findall(r'<a href="/clinic/subjects/([^"]+)">', third) == codes[10:]
    assert 'href="/clinic?page=2" rel="prev"' in third and 'rel="next"' not in third
    first = client.get("/clinic").text
    assert re.findall(r'<a href="/clinic/subjects/([^"]+)">', first) == codes[:5]
    assert "No subjects on page 9 (of 3)." in client.get("/clinic", params={"page": 9}).text
    assert client.get("/clinic", params={"page": 0}).status_code == 422
