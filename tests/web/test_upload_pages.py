"""The upload pages: what an analyst sees and does, in the TestClient and in chromium."""

from __future__ import annotations

import re

import pytest

from web.conftest import browser_sign_in, sign_in
from web.upload_helpers import (
    NANOSIGHT,
    hold_job,
    lot_records,
    make_lot,
    upload_media,
    wait_for_job,
)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    return upload_media(tmp_path_factory.mktemp("upload-pages"))


def _upload(client, csrf, path, name=None):
    response = client.put("/api/v1/uploads", params={"filename": name or path.name},
                          content=path.read_bytes(), headers={"X-CSRF-Token": csrf})
    assert response.status_code == 201, response.text
    return response.json()


def test_upload_page_is_for_analysts_only(client):
    csrf = sign_in(client, "analyst1")
    page = client.get("/upload")
    assert page.status_code == 200
    assert 'id="upload-file"' in page.text and "/static/upload.js" in page.text
    assert 'data-max-bytes="52428800"' in page.text  # the app's configured limit
    client.post("/logout", data={"csrf_token": csrf})
    for username in ("viewer1", "clinician1"):
        sign_in(client, username)
        refused = client.get("/upload")
        assert refused.status_code == 403
        assert "enter_results" in refused.text
        assert 'id="upload-file"' not in refused.text


def test_vendor_file_page_shows_what_was_read_and_attaches(client, web_db):
    lot = make_lot(web_db)
    csrf = sign_in(client, "analyst1")
    up = _upload(client, csrf, NANOSIGHT)
    page = client.get(up["page"])
    assert page.status_code == 200
    assert "nanosight-summary" in page.text and "1.760e+11 particles/mL" in page.text
    assert "particle_concentration" in page.text  # what a lot would receive

    no_csrf = client.post(f"/upload/{up['id']}/attach", data={"lot": lot})
    assert no_csrf.status_code == 403
    assert lot_records(web_db, lot)["count"] == 0

    hostile = client.post(f"/upload/{up['id']}/attach",
                          data={"lot": "<script>alert(1)</script>", "csrf_token": csrf})
    assert hostile.status_code == 404
    assert "<script>alert(1)</script>" not in hostile.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile.text

    done = client.post(f"/upload/{up['id']}/attach", data={"lot": lot, "csrf_token": csrf})
    assert done.status_code == 200
    assert f"Attached to lot {lot}: 7 measurement(s) and the size distribution" in done.text
    assert lot_records(web_db, lot)["actors"]["measurement"] == {"analyst1"}


def test_analysis_form_refuses_missing_settings_inline(client, media):
    csrf = sign_in(client, "analyst1")
    up = _upload(client, csrf, media["video"])
    page = client.get(up["page"])
    assert 'value="25.0"' in page.text  # the container's frame rate, offered
    missing = client.post(f"/upload/{up['id']}/analyse",
                          data={"pixel_size_nm": "140", "csrf_token": csrf})
    assert missing.status_code == 422
    assert "Temperature (°C) is required" in missing.text
    assert 'value="140"' in missing.text  # what was typed is kept
    nan = client.post(f"/upload/{up['id']}/analyse",
                      data={"pixel_size_nm": "nan", "temperature_c": "22", "csrf_token": csrf})
    assert nan.status_code == 422 and "not a finite number" in nan.text
    assert client.get("/api/v1/nta/jobs").json() == []  # no job was started


def test_job_pages_show_progress_then_result_and_plot(client, media):
    csrf = sign_in(client, "analyst1")
    # "$...$" is math text to matplotlib: the plot's title must take it as plain text.
    up = _upload(client, csrf, media["video"], name="run_$x^$.avi")
    started = client.post(f"/upload/{up['id']}/analyse", data={
        "temperature_c": "22", "pixel_size_nm": "140", "fps": "", "exposure_ms": "30",
        "csrf_token": csrf})
    assert started.status_code == 303
    job_path = started.headers["location"]
    job_id = job_path.rsplit("/", 1)[1]
    job = wait_for_job(lambda i: client.get(f"/api/v1/nta/jobs/{i}").json(), job_id)
    assert job["state"] == "done", job["error"]
    fragment = client.get(f"{job_path}/progress", headers={"HX-Request": "true"})
    assert "hx-trigger" not in fragment.text  # finished: polling stops
    assert "not computed (no calibration)" in fragment.text
    d50 = f"{job['result']['d50_nm']:.1f}"
    assert d50 in fragment.text
    plot = client.get(f"{job_path}/plot.svg")
    assert plot.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in plot.content[:2000]


def test_nta_upload_followed_to_its_result_and_attached_in_the_browser(page, live_server,
                                                                        web_db, media):
    from playwright.sync_api import expect

    lot = make_lot(web_db)
    browser_sign_in(page, live_server, "analyst1")
    page.get_by_role("link", name="Upload").click()
    page.get_by_label("Files to upload").set_input_files(str(media["video"]))
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_url(re.compile(r"/upload/[A-Za-z0-9_-]+$"))
    expect(page.get_by_role("heading", name="ev-sample.avi")).to_be_visible()

    page.get_by_label("Temperature (°C)").fill("22")
    page.get_by_label("Pixel size (nm)").fill("140")
    page.get_by_label("Exposure (ms)").fill("30")
    expect(page.get_by_label("Frame rate (frames/s)")).to_have_value("25.0")
    page.get_by_role("button", name="Start analysis").click()
    page.wait_for_url(re.compile(r"/upload/jobs/[A-Za-z0-9_-]+$"))
    expect(page.get_by_role("heading", name="Result")).to_be_visible(timeout=900_000)  # a hung job, not a timing check
    expect(page.get_by_role("img", name="Number size distribution of ev-sample.avi")) \
        .to_be_visible()
    assert page.locator("img.plot").evaluate("img => img.naturalWidth") > 100
    expect(page.locator("#concentration")).to_have_text("not computed (no calibration)")

    page.get_by_label("Lot number").fill(lot)
    page.get_by_role("button", name="Attach to lot").click()
    expect(page.get_by_role("status").filter(has_text=f"Attached to lot {lot}")).to_be_visible()
    held = lot_records(web_db, lot)
    assert {"size_d50", "size_mean", "size_mode"} <= set(held["measurements"])
    assert "particle_concentration" not in held["measurements"]  # no calibration given
    assert held["measurements"]["size_d50"][2] == "ev-sample.avi"
    assert held["actors"] == {"measurement": {"analyst1"}, "lot_size_distribution": {"analyst1"}}
    assert page.console_errors == []


def test_a_refused_upload_is_shown_in_the_page(page, live_server, tmp_path):
    from playwright.sync_api import expect

    junk = tmp_path / "notes.txt"
    junk.write_text("nothing an instrument wrote\n" * 20)
    browser_sign_in(page, live_server, "analyst1")
    page.goto(f"{live_server}/upload")
    page.get_by_label("Files to upload").set_input_files(str(junk))
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("notes.txt:")
    assert "/upload" == page.url.removeprefix(live_server)


def test_progress_fragment_polls_while_a_job_runs_and_stops_when_it_ends(client, app, media):
    """A job held at a known point (put in the queue's table without a worker) renders
    its progress; a finished one stops the polling."""
    csrf = sign_in(client, "analyst1")
    up = _upload(client, csrf, media["video"])
    job = hold_job(app, up["id"], "held-1", state="running", frames_done=10)

    running = client.get("/upload/jobs/held-1/progress", headers={"HX-Request": "true"})
    assert running.status_code == 200
    assert 'hx-trigger="every 1s"' in running.text
    assert 'value="0.2500"' in running.text and "Analysing: 10 of 40 frames" in running.text
    assert client.get("/api/v1/nta/jobs/held-1").json()["progress"] == 0.25

    job.state, job.frames_done, job.frames_total = "queued", 0, None
    queued = client.get("/upload/jobs/held-1/progress").text
    assert "Waiting for a worker: 0 of ? frames" in queued
    assert re.search(r"<progress id=\"job-progress\" aria-label=\"Analysis progress\">", queued)

    job.state, job.error = "failed", "ev-sample.avi: frame 12 is truncated"
    failed = client.get("/upload/jobs/held-1/progress").text
    assert "hx-trigger" not in failed
    assert "Analysis failed: ev-sample.avi: frame 12 is truncated" in failed
    assert client.get("/upload/jobs/held-1/plot.svg").status_code == 404
    attach = client.post("/api/v1/measurements", json={"lot": "L-1", "job": "held-1"},
                         headers={"X-CSRF-Token": csrf})
    assert attach.status_code == 409 and "failed" in attach.json()["detail"]


def test_delete_button_removes_the_upload_from_the_list(client):
    csrf = sign_in(client, "analyst1")
    up = _upload(client, csrf, NANOSIGHT)
    assert up["filename"] in client.get("/upload").text
    assert client.post(f"/upload/{up['id']}/delete").status_code == 403  # no CSRF token
    done = client.post(f"/upload/{up['id']}/delete", data={"csrf_token": csrf})
    assert done.status_code == 200
    assert f"{up['filename']} deleted." in done.text
    assert f"/upload/{up['id']}" not in done.text
    assert client.get(up["page"]).status_code == 404


def test_the_progress_bar_follows_a_running_job_in_the_browser(page, live_server, app, media):
    """htmx polls the job every second: a job held at a known point (in the queue's
    table, no worker) moves on, and the page follows it until it ends."""
    from playwright.sync_api import expect

    browser_sign_in(page, live_server, "analyst1")
    page.goto(f"{live_server}/upload")
    page.get_by_label("Files to upload").set_input_files(str(media["video"]))
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_url(re.compile(r"/upload/[A-Za-z0-9_-]+$"))
    job = hold_job(app, page.url.rsplit("/", 1)[1], "held-3", state="running",
                   frames_done=10)

    page.goto(f"{live_server}/upload/jobs/held-3")
    bar = page.get_by_role("progressbar", name="Analysis progress")
    expect(bar).to_have_attribute("value", "0.2500")
    job.frames_done = 30
    expect(page.get_by_text("Analysing: 30 of 40 frames")).to_be_visible(timeout=5000)
    expect(bar).to_have_attribute("value", "0.7500")
    job.state, job.error = "failed", "ev-sample.avi: frame 31 is truncated"
    expect(page.get_by_role("alert")).to_have_text(
        "Analysis failed: ev-sample.avi: frame 31 is truncated", timeout=5000)
    expect(bar).to_have_count(0)
    assert page.console_errors == []


def test_the_analysis_form_pools_chosen_captures(client, media):
    csrf = sign_in(client, "analyst1")
    first = _upload(client, csrf, media["video"], name="capture-1.avi")
    second = _upload(client, csrf, media["video"], name="capture-2.avi")
    page = client.get(first["page"]).text
    assert "Pool with further captures of the same sample" in page
    assert f'name="pooled_with" type="checkbox" value="{second["id"]}"' in page
    assert f'value="{first["id"]}"' not in page.split("Pool with")[1]  # not itself
    started = client.post(f"/upload/{first['id']}/analyse", data={
        "temperature_c": "22", "pixel_size_nm": "140", "pooled_with": second["id"],
        "csrf_token": csrf})
    assert started.status_code == 303
    job = client.get(f"/api/v1/nta/jobs/{started.headers['location'].rsplit('/', 1)[1]}").json()
    assert job["uploads"] == [first["id"], second["id"]]
    assert job["filename"] == "capture-1.avi + capture-2.avi"
    assert "capture-1.avi + capture-2.avi" in client.get(second["page"]).text  # listed on both
