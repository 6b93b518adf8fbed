"""Generated uploads and request bodies: every answer is a 2xx or a 4xx problem, never a
500, and a refused upload leaves nothing on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from web.upload_helpers import ACQUISITION, NANOSIGHT

_HEADS = [b"RIFF\x00\x00\x00\x00AVI LIST", b"II*\x00", b"MM\x00*", b"\x00\x00\x00\x18ftypmp42",
          b"\x1aE\xdf\xa3", b"FCS3.1    ", b"NTA Experiment Summary File,\r\n",
          b"ZetaView Version 8\r\nNumber of Traces: 10\r\n", b"particle_id,size_nm\n",
          b"[FileNames]\n", b'{"effective_volume_ml": 1e-9}', b""]
_NAMES = ["capture.avi", "stack.tif", "run.mp4", "run.mkv", "export.csv", "export.txt",
          "data.fcs", "cal.json", "noext", ".hidden", "a/b/../c.avi", "?.csv", "é€.txt"]

bodies = st.tuples(st.sampled_from(_HEADS), st.binary(max_size=3000)).map(lambda t: t[0] + t[1])
names = st.one_of(st.sampled_from(_NAMES), st.text(min_size=1, max_size=120))


@pytest.fixture
def fuzz_app(web_db, tmp_path, bearer):
    """One app for all examples of a test (hypothesis reuses function-scoped fixtures);
    a 2000-byte limit so that generated bodies also cross it."""
    from fastapi.testclient import TestClient

    from exotrace.api import WebSettings, create_app

    folder = tmp_path / "uploads"
    application = create_app(web_db, settings=WebSettings(upload_max_bytes=2000,
                                                          upload_dir=folder))
    with TestClient(application, raise_server_exceptions=False) as client:
        yield client, bearer("analyst1"), folder
    application.state.engine.dispose()


@pytest.fixture
def vendor_upload(web_db, tmp_path, bearer):
    """An app holding one vendor upload (its id), for bodies that name it."""
    from fastapi.testclient import TestClient

    from exotrace.api import WebSettings, create_app

    application = create_app(web_db, settings=WebSettings(upload_dir=tmp_path / "up"))
    headers = bearer("analyst1")
    with TestClient(application, raise_server_exceptions=False) as client:
        up = client.put("/api/v1/uploads", params={"filename": NANOSIGHT.name},
                        content=NANOSIGHT.read_bytes(), headers=headers)
        assert up.status_code == 201
        yield client, headers, up.json()["id"]
    application.state.engine.dispose()


def _kept(folder: Path) -> int:
    """Uploaded files kept (each upload's ``upload.json`` description aside)."""
    return sum(1 for p in folder.rglob("*") if p.is_file() and p.name != "upload.json")


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names, body=bodies)
def test_generated_uploads_never_answer_500(fuzz_app, name, body):
    client, headers, folder = fuzz_app
    before = _kept(folder)
    response = client.put("/api/v1/uploads", params={"filename": name}, content=body,
                          headers=headers)
    assert response.status_code in (201, 400, 413, 415, 422), (name, body[:40], response.text)
    if response.status_code == 201:
        assert _kept(folder) == before + 1
    else:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "\n" not in response.json()["detail"]
        assert _kept(folder) == before


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=3), max_leaves=8)


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(
    ["upload", "temperature_c", "pixel_size_nm", "fps", "viscosity_cp", "exposure_ms",
     "dilution", "calibration_upload", "method", "binning", "radius_px", "lot", "job"]),
    json_values, max_size=4))
def test_generated_job_and_attach_bodies_never_answer_500(vendor_upload, changes):
    client, headers, upload_id = vendor_upload
    job_body = {"upload": upload_id, **ACQUISITION, **changes}
    attach_body = {"lot": "L-1", "upload": upload_id, **changes}
    for path, body in (("/api/v1/nta/jobs", job_body), ("/api/v1/measurements", attach_body)):
        response = client.post(path, json=body, headers=headers)
        # No lot exists and the upload is no video: nothing generated can succeed.
        assert response.status_code in (404, 409, 422), (path, body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
