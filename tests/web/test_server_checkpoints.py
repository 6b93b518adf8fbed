"""The server writes signed audit checkpoints while it runs (EXOTRACE_CHECKPOINT_*)."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from web.conftest import sign_in


def test_running_server_leaves_checkpoints_that_verify(app, web_db, tmp_path, monkeypatch):
    from exotrace.records import (
        generate_checkpoint_keys,
        make_engine,
        unit_of_work,
        verify_checkpoints,
    )

    key, public = generate_checkpoint_keys(tmp_path / "checkpoint.key")
    directory = tmp_path / "checkpoints"
    monkeypatch.setenv("EXOTRACE_CHECKPOINT_KEY", str(key))
    monkeypatch.setenv("EXOTRACE_CHECKPOINT_DIR", str(directory))
    monkeypatch.setenv("EXOTRACE_CHECKPOINT_INTERVAL_S", "1")
    with TestClient(app, follow_redirects=False) as client:  # runs the app's lifespan
        sign_in(client, "viewer1")
        deadline = time.monotonic() + 30
        while len(list(directory.glob("*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    files = sorted(directory.glob("*"))
    assert len(files) >= 2  # one per interval while the server runs, not one in total
    engine = make_engine(web_db)
    try:
        with unit_of_work(engine) as session:
            checked, findings = verify_checkpoints(session, directory, public)
    finally:
        engine.dispose()
    assert checked == len(files) and findings == []
