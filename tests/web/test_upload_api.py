"""Uploads, NTA jobs and attaching results to lots through ``/api/v1``.

Streaming limits are tested at their boundary (a file of exactly the limit is
accepted, one byte more is refused and leaves nothing on disk), unknown content
is refused by its bytes, and an NTA job gives the same numbers as the pipeline
called directly with the same settings.
"""

from __future__ import annotations

import hashlib
import threading
import time
import tracemalloc
from pathlib import Path

import httpx
import pytest

from web.conftest import sign_in
from web.upload_helpers import (
    ACQUISITION,
    NANOSIGHT,
    hold_job,
    lot_records,
    make_lot,
    simulate_video,
    upload_media,
    wait_for_job,
)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    return upload_media(tmp_path_factory.mktemp("upload-media"))


def _app(web_db, upload_dir: Path, max_bytes: int):
    from exotrace.api import WebSettings, create_app

    return create_app(web_db, settings=WebSettings(upload_max_bytes=max_bytes,
                                                   upload_dir=upload_dir))


@pytest.fixture
def upload_dir(tmp_path) -> Path:
    return tmp_path / "uploads"


@pytest.fixture
def api(web_db, upload_dir):
    """A TestClient on an app whose uploads go to ``upload_dir`` (limit 50 MiB)."""
    from fastapi.testclient import TestClient

    application = _app(web_db, upload_dir, 50 * 1024 ** 2)
    with TestClient(application, raise_server_exceptions=False, follow_redirects=False) as c:
        yield c
    application.state.engine.dispose()


def _files(folder: Path) -> list[Path]:
    """The uploaded files under ``folder`` (each upload's ``upload.json`` description aside)."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "upload.json")


def _put(client, name: str, body, headers: dict):
    return client.put("/api/v1/uploads", params={"filename": name}, content=body,
                      headers=headers)


# ----------------------------------------------------------------------------- vendor files

def test_vendor_file_is_read_on_upload_and_attached_once_as_the_analyst(api, web_db, bearer):
    from exotrace.instruments import read_file

    lot = make_lot(web_db)
    headers = bearer("analyst1")
    response = _put(api, NANOSIGHT.name, NANOSIGHT.read_bytes(), headers)
    assert response.status_code == 201, response.text
    up = response.json()
    expected = read_file(NANOSIGHT).to_dict()
    assert (up["kind"], up["format"]) == ("vendor", "nanosight-summary")
    assert up["size_bytes"] == NANOSIGHT.stat().st_size
    assert up["read"]["particles_per_ml"] == expected["particles_per_ml"] == 1.76e11
    assert up["read"]["d50_nm"] == expected["d50_nm"]
    assert up["read"]["file"] == NANOSIGHT.name  # never the server's path

    attach = api.post("/api/v1/measurements", json={"lot": lot, "upload": up["id"]},
                      headers=headers)
    assert attach.status_code == 201, attach.text
    body = attach.json()
    assert body["created"] is True and body["source"] == NANOSIGHT.name
    assert body["size_distribution"] is True
    held = lot_records(web_db, lot)
    assert held["count"] == 7
    assert held["measurements"]["particle_concentration"] == (1.76e11, "particles/mL",
                                                              NANOSIGHT.name)
    assert held["measurements"]["size_d50"][0] == pytest.approx(112.4)
    assert held["actors"] == {"measurement": {"analyst1"}, "lot_size_distribution": {"analyst1"}}

    again = api.post("/api/v1/measurements", json={"lot": lot, "upload": up["id"]},
                     headers=headers)
    assert again.status_code == 201 and again.json()["created"] is False
    assert lot_records(web_db, lot)["count"] == 7  # nothing written twice


def test_attach_to_a_missing_lot_is_404_and_writes_nothing(api, web_db, bearer):
    headers = bearer("analyst1")
    up = _put(api, NANOSIGHT.name, NANOSIGHT.read_bytes(), headers).json()
    response = api.post("/api/v1/measurements", json={"lot": "L-NOPE", "upload": up["id"]},
                        headers=headers)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "L-NOPE" in response.json()["detail"]


def test_attach_needs_exactly_one_source(api, bearer):
    headers = bearer("analyst1")
    for body in ({"lot": "L-1"}, {"lot": "L-1", "upload": "a", "job": "b"}):
        response = api.post("/api/v1/measurements", json=body, headers=headers)
        assert response.status_code == 422, body


def test_a_malformed_vendor_file_is_422_naming_it_and_leaves_nothing(api, bearer, upload_dir):
    # A NanoSight summary header with the results cut away.
    head = b"\r\n".join(NANOSIGHT.read_bytes().splitlines()[:6])
    response = _put(api, "cut.csv", head, bearer("analyst1"))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("cut.csv") and "\n" not in detail
    assert str(upload_dir) not in detail
    assert _files(upload_dir) == []


# ----------------------------------------------------------------------------- refusals

@pytest.mark.parametrize(("name", "body", "needle"), [
    ("capture.avi", b"\x7fELF\x02\x01\x01" + bytes(40_000), "capture.avi"),
    ("notes.txt", b"hello, this is not an instrument file\n" * 10, "notes.txt"),
    ("capture.txt", b"RIFF\x00\x00\x00\x00AVI LIST" + bytes(100), "name it .avi"),
    ("stack.avi", b"II*\x00" + bytes(30_000), "TIFF video"),
    ("empty.csv", b"", "empty"),
    ("cal.json", b"[1, 2, 3]", "calibration"),
])
def test_unknown_content_is_415_with_one_line_and_nothing_kept(api, bearer, upload_dir,
                                                                name, body, needle):
    response = _put(api, name, body, bearer("analyst1"))
    assert response.status_code == 415, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    detail = response.json()["detail"]
    assert detail.startswith(name) and needle in detail and "\n" not in detail
    assert _files(upload_dir) == []


def _stream(total: int, head: bytes, chunk: int = 64 * 1024):
    """``total`` bytes starting with ``head``, as an iterator (no Content-Length)."""
    sent = 0
    first = head
    while sent < total:
        n = min(chunk, total - sent)
        block = (first + bytes(n))[:n]
        first = first[n:]
        sent += n
        yield block


def test_size_limit_at_its_boundary_streamed_and_declared(web_db, tmp_path, media, bearer):
    from fastapi.testclient import TestClient

    video = media["video"].read_bytes()
    for limit, expected in ((len(video), 201), (len(video) - 1, 413)):
        folder = tmp_path / f"limit-{limit}"
        application = _app(web_db, folder, limit)
        with TestClient(application, raise_server_exceptions=False) as client:
            headers = bearer("analyst1")
            declared = _put(client, "capture.avi", video, headers)
            streamed = _put(client, "capture.avi", iter([video[i:i + 4096] for i in
                                                        range(0, len(video), 4096)]), headers)
        application.state.engine.dispose()
        assert (declared.status_code, streamed.status_code) == (expected, expected), (
            limit, declared.text, streamed.text)
        if expected == 413:
            assert "upload limit" in declared.json()["detail"]
            assert _files(folder) == []  # the partial file is gone
        else:
            assert len(_files(folder)) == 2  # the two accepted copies, nothing else
            assert all(p.read_bytes() == video for p in _files(folder))


def test_a_large_stream_over_the_limit_is_413_and_leaves_nothing(web_db, tmp_path, bearer):
    from fastapi.testclient import TestClient

    folder = tmp_path / "big"
    application = _app(web_db, folder, 2 * 1024 ** 2)
    with TestClient(application, raise_server_exceptions=False) as client:
        response = _put(client, "long.avi",
                        _stream(3 * 1024 ** 2, b"RIFF\x00\x00\x00\x00AVI LIST"),
                        bearer("analyst1"))
    application.state.engine.dispose()
    assert response.status_code == 413
    assert "2097152 bytes" in response.json()["detail"]
    assert _files(folder) == [] and list(folder.iterdir()) == []


@pytest.mark.parametrize("username", ["viewer1", "clinician1", "reviewer1", "qa1", "admin1"])
def test_roles_without_enter_results_cannot_upload(api, bearer, upload_dir, username):
    response = _put(api, NANOSIGHT.name, NANOSIGHT.read_bytes(), bearer(username))
    assert response.status_code == 403
    assert "enter_results" in response.json()["detail"]
    assert _files(upload_dir) == []
    assert api.post("/api/v1/nta/jobs", json={"upload": "x", **ACQUISITION},
                    headers=bearer(username)).status_code == 403


def test_a_browser_upload_without_the_csrf_header_is_refused(api, upload_dir):
    csrf = sign_in(api, "analyst1")
    refused = _put(api, NANOSIGHT.name, NANOSIGHT.read_bytes(), {})
    assert refused.status_code == 403 and _files(upload_dir) == []
    accepted = _put(api, NANOSIGHT.name, NANOSIGHT.read_bytes(), {"X-CSRF-Token": csrf})
    assert accepted.status_code == 201


def test_uploads_and_jobs_of_another_analyst_are_not_found(api, bearer, media):
    mine = _put(api, media["video"].name, media["video"].read_bytes(), bearer("analyst1"))
    up = mine.json()
    job = api.post("/api/v1/nta/jobs", json={"upload": up["id"], **ACQUISITION},
                   headers=bearer("analyst1")).json()
    other = bearer("analyst2")
    assert api.get(f"/api/v1/uploads/{up['id']}", headers=other).status_code == 404
    assert api.get(f"/api/v1/nta/jobs/{job['id']}", headers=other).status_code == 404
    assert api.get("/api/v1/uploads", headers=other).json() == []
    assert api.post("/api/v1/nta/jobs", json={"upload": up["id"], **ACQUISITION},
                    headers=other).status_code == 404
    assert api.post("/api/v1/measurements", json={"lot": "L-1", "job": job["id"]},
                    headers=other).status_code == 404
    assert [u["id"] for u in api.get("/api/v1/uploads", headers=bearer("analyst1")).json()] \
        == [up["id"]]


def test_hostile_file_names_are_reduced_to_a_safe_name(api, bearer, upload_dir):
    response = _put(api, "../../<img src=x onerror=alert(1)>.csv", NANOSIGHT.read_bytes(),
                    bearer("analyst1"))
    assert response.status_code == 201
    name = response.json()["filename"]
    assert "<" not in name and ">" not in name and "/" not in name
    assert all(p.is_relative_to(upload_dir) for p in _files(upload_dir))
    page = api.get(response.json()["page"], headers=bearer("analyst1"))
    assert page.status_code == 200 and "<img src=x" not in page.text


# ----------------------------------------------------------------------------- NTA jobs

def test_nta_job_gives_the_pipeline_result_and_attaches_it(api, web_db, bearer, media):
    from exotrace.nta import Acquisition, analyze_videos
    from exotrace.nta.concentration import Calibration

    lot = make_lot(web_db)
    headers = bearer("analyst1")
    video = _put(api, "ev-sample.avi", media["video"].read_bytes(), headers).json()
    assert (video["kind"], video["format"]) == ("video", "avi")
    assert video["read"] == {"frames": 40, "width_px": 192, "height_px": 160, "fps": 25.0,
                             "container": "avi"}
    cal = _put(api, "beads.json", media["calibration"].read_bytes(), headers).json()
    assert cal["kind"] == "calibration"
    assert cal["read"]["effective_volume_ml"] == 1.5e-9

    # No fps given: the container's 25 frames/s is used.
    started = api.post("/api/v1/nta/jobs", headers=headers, json={
        "upload": video["id"], "calibration_upload": cal["id"], "dilution": 10, **ACQUISITION})
    assert started.status_code == 202, started.text
    assert started.json()["frames_total"] == 40
    job = wait_for_job(lambda i: api.get(f"/api/v1/nta/jobs/{i}", headers=headers).json(),
                       started.json()["id"])
    assert job["state"] == "done", job["error"]
    assert (job["frames_done"], job["progress"]) == (40, 1.0)

    direct = analyze_videos([media["video"]], Acquisition(fps=25.0, **ACQUISITION),
                            calibration=Calibration.from_json(media["calibration"]),
                            dilution=10.0)
    result = job["result"]
    assert result["n_tracks"] == direct.n_tracks
    assert result["d50_nm"] == pytest.approx(direct.d50_nm, rel=1e-9)
    assert result["particles_per_ml"] == pytest.approx(direct.particles_per_ml, rel=1e-9)
    assert result["acquisition"]["fps"] == 25.0
    assert all(str(media["video"].parent) not in w for w in result["warnings"])

    attach = api.post("/api/v1/measurements", json={"lot": lot, "job": job["id"]},
                      headers=headers)
    assert attach.status_code == 201, attach.text
    held = lot_records(web_db, lot)
    assert held["measurements"]["particle_concentration"][0] == pytest.approx(
        direct.particles_per_ml, rel=1e-9)
    assert held["measurements"]["size_d50"][0] == pytest.approx(direct.d50_nm, rel=1e-9)
    assert held["measurements"]["size_d50"][2] == "ev-sample.avi"
    assert held["distributions"] == [("NTA ev-sample.avi", len(result["distribution"][
        "diameter_nm"]))]
    assert held["actors"]["measurement"] == {"analyst1"}
    again = api.post("/api/v1/measurements", json={"lot": lot, "job": job["id"]},
                     headers=headers)
    assert again.json()["created"] is False
    assert lot_records(web_db, lot)["count"] == held["count"]


def test_job_refusals(api, bearer, media):
    headers = bearer("analyst1")
    vendor = _put(api, NANOSIGHT.name, NANOSIGHT.read_bytes(), headers).json()
    video = _put(api, "ev-sample.avi", media["video"].read_bytes(), headers).json()
    not_video = api.post("/api/v1/nta/jobs", json={"upload": vendor["id"], **ACQUISITION},
                         headers=headers)
    assert not_video.status_code == 409 and "not a video" in not_video.json()["detail"]
    bad_cal = api.post("/api/v1/nta/jobs", headers=headers, json={
        "upload": video["id"], "calibration_upload": vendor["id"], **ACQUISITION})
    assert bad_cal.status_code == 422 and "calibration" in bad_cal.json()["detail"]
    for wrong in ({"pixel_size_nm": -1}, {"temperature_c": "hot"}, {"binning": 3},
                  {"fps": 0}, {"unknown": 1}):
        response = api.post("/api/v1/nta/jobs", headers=headers,
                            json={"upload": video["id"], **ACQUISITION, **wrong})
        assert response.status_code == 422, wrong
    cold = api.post("/api/v1/nta/jobs", headers=headers,
                    json={"upload": video["id"], **{**ACQUISITION, "temperature_c": -40}})
    assert cold.status_code == 422 and "temperature" in cold.json()["detail"]
    video_attach = api.post("/api/v1/measurements", json={"lot": "L-1", "upload": video["id"]},
                            headers=headers)
    assert video_attach.status_code == 409


# ----------------------------------------------------------------------------- memory

def _serve(application):
    import uvicorn

    from web.conftest import _free_port

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


def test_memory_stays_flat_while_300_mb_stream_to_disk(web_db, tmp_path, bearer, media):
    """tracemalloc's peak over the whole process (server and client threads) while a
    300 MB upload streams through uvicorn: it must not grow with the upload."""
    folder = tmp_path / "big"
    application = _app(web_db, folder, 400 * 1024 ** 2)
    server, thread, base = _serve(application)
    total = 300 * 1024 ** 2
    # A real AVI followed by zeros: the container's header is read, the tail is ignored.
    head = media["video"].read_bytes()
    digest = hashlib.sha256()

    def body():
        for block in _stream(total, head):
            digest.update(block)
            yield block

    try:
        headers = bearer("analyst1")
        with httpx.Client(base_url=base, timeout=300) as client:
            tracemalloc.start()
            try:
                response = client.put("/api/v1/uploads", params={"filename": "long.avi"},
                                      headers=headers, content=body())
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        assert response.status_code == 201, response.text
        up = response.json()
        assert (up["size_bytes"], up["sha256"]) == (total, digest.hexdigest())
        assert [p.stat().st_size for p in _files(folder)] == [total]
        assert peak < 50 * 1024 ** 2, f"peak traced memory {peak / 1024 ** 2:.1f} MiB"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        application.state.engine.dispose()


def test_delete_removes_the_file_but_not_while_it_is_analysed(api, bearer, upload_dir, media):
    headers = bearer("analyst1")
    up = _put(api, "ev-sample.avi", media["video"].read_bytes(), headers).json()
    assert len(_files(upload_dir)) == 1
    assert (upload_dir / up["id"] / "upload.json").is_file()  # its description, beside it
    assert api.delete(f"/api/v1/uploads/{up['id']}", headers=bearer("analyst2")).status_code \
        == 404
    # An analysis held in the running state (in the queue's table, no worker).
    job = hold_job(api.app, up["id"], "held-2", state="running")
    busy = api.delete(f"/api/v1/uploads/{up['id']}", headers=headers)
    assert busy.status_code == 409 and "being analysed" in busy.json()["detail"]
    assert len(_files(upload_dir)) == 1

    job.state = "done"
    assert api.delete(f"/api/v1/uploads/{up['id']}", headers=headers).status_code == 204
    assert _files(upload_dir) == [] and list(upload_dir.iterdir()) == []
    assert api.get(f"/api/v1/uploads/{up['id']}", headers=headers).status_code == 404
    assert api.delete(f"/api/v1/uploads/{up['id']}", headers=headers).status_code == 404


def test_a_form_body_is_refused_not_parsed_as_the_file(api, upload_dir):
    csrf = sign_in(api, "analyst1")
    response = api.put("/api/v1/uploads", params={"filename": NANOSIGHT.name},
                       data={"csrf_token": csrf}, files={"file": NANOSIGHT.read_bytes()})
    assert response.status_code == 415
    assert "not a form" in response.json()["detail"]
    assert _files(upload_dir) == []


def test_an_unwritable_upload_folder_is_503_not_500(web_db, tmp_path, bearer):
    from fastapi.testclient import TestClient

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    application = _app(web_db, blocker / "uploads", 1024 ** 2)
    with TestClient(application, raise_server_exceptions=False) as client:
        response = _put(client, NANOSIGHT.name, NANOSIGHT.read_bytes(), bearer("analyst1"))
    application.state.engine.dispose()
    assert response.status_code == 503
    assert "EXOTRACE_UPLOAD_DIR" in response.json()["detail"]


def test_captures_of_one_sample_are_pooled_as_the_cli_pools_them(api, web_db, bearer, media,
                                                                 tmp_path):
    import hashlib as _hashlib

    from exotrace.nta import Acquisition, analyze_videos

    second = simulate_video(tmp_path, "ev-sample-2.avi", seed=12)
    lot = make_lot(web_db)
    headers = bearer("analyst1")
    a = _put(api, "ev-sample.avi", media["video"].read_bytes(), headers).json()
    b = _put(api, "ev-sample-2.avi", second.read_bytes(), headers).json()
    vendor = _put(api, NANOSIGHT.name, NANOSIGHT.read_bytes(), headers).json()
    mixed = api.post("/api/v1/nta/jobs", headers=headers,
                     json={"upload": a["id"], "pooled_with": [vendor["id"]], **ACQUISITION})
    assert mixed.status_code == 409 and NANOSIGHT.name in mixed.json()["detail"]
    too_many = api.post("/api/v1/nta/jobs", headers=headers,
                        json={"upload": a["id"], "pooled_with": [b["id"]] * 10, **ACQUISITION})
    assert too_many.status_code == 422

    started = api.post("/api/v1/nta/jobs", headers=headers,
                       json={"upload": a["id"], "pooled_with": [b["id"]], **ACQUISITION})
    assert started.status_code == 202, started.text
    assert started.json()["uploads"] == [a["id"], b["id"]]
    assert started.json()["frames_total"] == 80
    job = wait_for_job(lambda i: api.get(f"/api/v1/nta/jobs/{i}", headers=headers).json(),
                       started.json()["id"])
    assert job["state"] == "done", job["error"]
    assert job["frames_done"] == 80
    direct = analyze_videos([media["video"], second], Acquisition(fps=25.0, **ACQUISITION))
    assert job["result"]["n_tracks"] == direct.n_tracks
    assert job["result"]["d50_nm"] == pytest.approx(direct.d50_nm, rel=1e-9)
    assert [v["source"] for v in job["result"]["videos"]] == ["ev-sample.avi", "ev-sample-2.avi"]

    attach = api.post("/api/v1/measurements", json={"lot": lot, "job": job["id"]},
                      headers=headers)
    assert attach.status_code == 201, attach.text
    d50 = next(m for m in attach.json()["measurements"] if m["attribute"] == "size_d50")
    assert d50["source_file"] == "ev-sample.avi + ev-sample-2.avi"
    assert d50["source_sha256"] == _hashlib.sha256(
        f"{a['sha256']}\0{b['sha256']}".encode()).hexdigest()
    assert api.delete(f"/api/v1/uploads/{b['id']}", headers=headers).status_code == 204


# ------------------------------------------------------------------ several server processes

def test_two_servers_on_one_upload_folder_share_uploads_jobs_and_attachments(
        api, web_db, upload_dir, bearer, media):
    """Two apps on one EXOTRACE_UPLOAD_DIR stand for two server processes (or one before
    and after a restart): each sees what the other received, ran and attached."""
    from fastapi.testclient import TestClient

    lot = make_lot(web_db)
    headers = bearer("analyst1")
    video = _put(api, "ev-sample.avi", media["video"].read_bytes(), headers).json()
    other_app = _app(web_db, upload_dir, 50 * 1024 ** 2)
    with TestClient(other_app, raise_server_exceptions=False) as other:
        assert other.get(f"/api/v1/uploads/{video['id']}", headers=headers).json()["sha256"] \
            == video["sha256"]
        assert [u["id"] for u in other.get("/api/v1/uploads", headers=headers).json()] \
            == [video["id"]]
        # another analyst sees it on neither
        assert other.get(f"/api/v1/uploads/{video['id']}",
                         headers=bearer("analyst2")).status_code == 404
        started = api.post("/api/v1/nta/jobs", headers=headers,
                           json={"upload": video["id"], **ACQUISITION})
        assert started.status_code == 202, started.text
        job = wait_for_job(lambda i: other.get(f"/api/v1/nta/jobs/{i}", headers=headers).json(),
                           started.json()["id"])
        assert job["state"] == "done", job["error"]
        assert job["frames_done"] == 40 and job["result"]["n_tracks"] > 0
        # attached through the other server: the first one lists the attachment too
        attach = other.post("/api/v1/measurements", json={"lot": lot, "job": job["id"]},
                            headers=headers)
        assert attach.status_code == 201, attach.text
    other_app.state.engine.dispose()
    seen = api.get(f"/api/v1/nta/jobs/{job['id']}", headers=headers).json()
    assert [a["lot"] for a in seen["attached"]] == [lot]
    assert seen["result"] == job["result"]


def test_a_job_whose_server_stopped_reads_as_failed(api, upload_dir, bearer, media):
    import json
    import subprocess
    import sys

    headers = bearer("analyst1")
    video = _put(api, "ev-sample.avi", media["video"].read_bytes(), headers).json()
    started = api.post("/api/v1/nta/jobs", headers=headers,
                       json={"upload": video["id"], **ACQUISITION}).json()
    job = wait_for_job(lambda i: api.get(f"/api/v1/nta/jobs/{i}", headers=headers).json(),
                       started["id"])
    path = upload_dir / "jobs" / job["id"] / "job.json"
    stored = json.loads(path.read_text())
    assert stored["state"] == "done"
    # the same job as a server that has since exited left it: running, its process gone
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    path.write_text(json.dumps({**stored, "state": "running", "pid": int(gone)}))
    seen = api.get(f"/api/v1/nta/jobs/{job['id']}", headers=headers).json()
    assert seen["state"] == "failed"
    assert "the server stopped before this analysis finished" in seen["error"]
    # its pid now names another process (a restarted container's server, same pid)
    path.write_text(json.dumps({**stored, "state": "running", "process_started": "1"}))
    assert api.get(f"/api/v1/nta/jobs/{job['id']}", headers=headers).json()["state"] \
        == "failed"
    # while its process runs, it is still running
    path.write_text(json.dumps({**stored, "state": "running"}))
    assert api.get(f"/api/v1/nta/jobs/{job['id']}", headers=headers).json()["state"] \
        == "running"


def test_a_damaged_description_leaves_that_upload_out_and_nothing_else(api, upload_dir,
                                                                       bearer, media):
    headers = bearer("analyst1")
    first = _put(api, "ev-sample.avi", media["video"].read_bytes(), headers).json()
    second = _put(api, NANOSIGHT.name, NANOSIGHT.read_bytes(), headers).json()
    (upload_dir / first["id"] / "upload.json").write_text('{"id": "half-writ')
    listed = api.get("/api/v1/uploads", headers=headers)
    assert listed.status_code == 200 and [u["id"] for u in listed.json()] == [second["id"]]
    assert api.get(f"/api/v1/uploads/{first['id']}", headers=headers).status_code == 404
    # ids name folders: nothing else is ever read
    (upload_dir / "jobs").mkdir(exist_ok=True)
    for hostile in ("jobs", "x" * 16, "%2E%2E%2Fjobs", "%2E%2E"):
        assert api.get(f"/api/v1/uploads/{hostile}", headers=headers).status_code == 404
