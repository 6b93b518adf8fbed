"""``nta batch --database``: results stored on lots once, audited, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date

import pytest
import sqlalchemy as sa

from _db_fixtures import TEST_PASSWORD, settle_first_passwords
from exotrace.batch import batch_key, sha256_file
from exotrace.cli.main import main

from .conftest import CLI_SETTINGS

# Values an uncalibrated NTA result gives each lot: mode, mean, SD, D10, D50, D90.
_SIZE_VALUES = 6


@pytest.fixture
def lots_db(fresh_db_url, test_password_hash, monkeypatch):
    """Committed users (admin1, analyst1, viewer1) and lots L-1, L-2 (made by analyst1)."""
    from exotrace.records import (
        Role,
        add_cell_bank,
        add_collection,
        add_consent,
        add_donor,
        add_isolation_run,
        add_user,
        create_lot,
        make_engine,
        unit_of_work,
    )

    engine = make_engine(fresh_db_url)
    with unit_of_work(engine) as s:
        admin = add_user(s, "admin1", Role.ADMIN, password_hash=test_password_hash)
        ana = add_user(s, "analyst1", Role.ANALYST, password_hash=test_password_hash,
                       acting=admin)
        viewer = add_user(s, "viewer1", Role.VIEWER, password_hash=test_password_hash,
                          acting=admin)
        settle_first_passwords(s, (ana, viewer))
        add_donor(s, ana, "D-1", age_band="30-39", sex="female")
        add_consent(s, ana, "D-1", scopes=["research"], version="v1",
                    consented_on=date(2025, 1, 10))
        add_cell_bank(s, ana, "CB-1", donor_code="D-1", tissue="umbilical_cord", passage=4,
                      intended_use="research")
        add_collection(s, ana, "COL-1", cell_bank_code="CB-1", medium="MEM alpha",
                       serum_condition="serum_free", volume_ml=100.0, culture_days=2)
        add_isolation_run(s, ana, "ISO-1", collection_code="COL-1",
                          method="size_exclusion_chromatography", input_volume_ml=100,
                          output_volume_ml=2.0)
        for number in ("L-1", "L-2"):
            create_lot(s, ana, number, isolation_code="ISO-1", intended_use="research",
                       manufactured_on=date(2025, 3, 1))
    engine.dispose()
    monkeypatch.setenv("EXOTRACE_PASSWORD", TEST_PASSWORD)
    monkeypatch.delenv("EXOTRACE_DATABASE_URL", raising=False)
    monkeypatch.delenv("EXOTRACE_USER", raising=False)
    return fresh_db_url


def _rows(url, sql):
    eng = sa.create_engine(url)
    try:
        with eng.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        eng.dispose()


def _counts(url):
    return _rows(url, "SELECT l.number, (SELECT count(*) FROM result_file r WHERE r.lot_id = l.id),"
                      " (SELECT count(*) FROM measurement m WHERE m.lot_id = l.id)"
                      " FROM lot l ORDER BY l.number")


def _batch(capsys, *args):
    capsys.readouterr()
    code = main(["nta", "batch", *map(str, args), "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out else None), err


def test_results_are_stored_once_per_video_and_settings(lots_db, videos, tmp_path, capsys,
                                                        scheduler_address, monkeypatch):
    manifest = tmp_path / "plate.csv"
    manifest.write_text("video,lot\nvideos/plate1/v1.avi,L-1\nvideos/plate1/v2.avi,L-1\n"
                        "videos/plate1/v3.avi,L-2\n")
    out = tmp_path / "out"
    common = [manifest, "--out", out, "--scheduler", scheduler_address, *CLI_SETTINGS,
              "--user", "analyst1"]
    code, data, err = _batch(capsys, *common, "--database", lots_db)
    assert code == 0, err
    assert data["database"] == {"stored": 3, "already_stored": 0, "failed": 0, "errors": [],
                                "checkpoints": []}
    assert _counts(lots_db) == [("L-1", 2, 2 * _SIZE_VALUES), ("L-2", 1, _SIZE_VALUES)]

    # what was stored: the result's D50, the video's own hash as source, the batch key
    record = json.loads((out / data["results"][2]["result_file"]).read_text())
    stored = _rows(lots_db, "SELECT m.value, m.source_sha256, m.source_file_name, r.sha256, "
                            "r.result_json FROM measurement m JOIN result_file r ON "
                            "r.id = m.result_file_id JOIN lot l ON l.id = m.lot_id "
                            "WHERE l.number = 'L-2' AND m.attribute = 'size_d50'")
    value, source_sha, source_name, key, result_json = stored[0]
    assert value == record["result"]["d50_nm"]
    assert source_sha == sha256_file(videos / "v3.avi") and source_name == "v3.avi"
    assert key == batch_key(record["video_sha256"], record["settings_sha256"])
    extra = json.loads(result_json)["extra"]
    assert extra["number_distribution"]["diameter_nm"] == record["result"]["distribution"][
        "diameter_nm"]
    assert extra["detection_range_nm"] is None and extra["method"] == "NTA"

    # through the audited services: every row has its entry, by the acting user
    actors = _rows(lots_db, "SELECT table_name, actor_name, count(*) FROM audit_entry WHERE "
                            "table_name IN ('result_file', 'measurement') "
                            "GROUP BY table_name, actor_name ORDER BY table_name")
    assert actors == [("measurement", "analyst1", 3 * _SIZE_VALUES),
                      ("result_file", "analyst1", 3)]
    from exotrace.records import make_engine, unit_of_work, verify_audit_trail

    eng = make_engine(lots_db)
    with unit_of_work(eng) as s:
        assert verify_audit_trail(s).ok
    eng.dispose()

    # rerun (database from the environment this time): nothing analysed, nothing duplicated
    monkeypatch.setenv("EXOTRACE_DATABASE_URL", lots_db)
    code, data, _ = _batch(capsys, *common)
    assert code == 0 and data["skipped"] == 3
    assert data["database"]["already_stored"] == 3 and data["database"]["stored"] == 0
    # a result file lost: analysed again, still stored once (keyed on video + settings)
    (out / data["results"][0]["result_file"]).unlink()
    code, data, _ = _batch(capsys, *common)
    assert code == 0 and data["analysed"] == 1
    assert data["database"]["already_stored"] == 3
    assert _counts(lots_db) == [("L-1", 2, 2 * _SIZE_VALUES), ("L-2", 1, _SIZE_VALUES)]

    # other settings are another measurement
    code, data, _ = _batch(capsys, manifest, "--out", out, "--scheduler", scheduler_address,
                           "--pixel-size-nm", "140", "--fps", "25", "--temperature-c", "22",
                           "--exposure-ms", "20", "--user", "analyst1")
    assert code == 0 and data["database"]["stored"] == 3
    assert _counts(lots_db) == [("L-1", 4, 4 * _SIZE_VALUES), ("L-2", 2, 2 * _SIZE_VALUES)]


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--lot", "L-9", "--user", "analyst1"], 5, "L-9"),
    (["--lot", "L-1", "--user", "viewer1"], 8, "store batch results"),
    (["--lot", "L-1"], 7, "needs an acting user"),
])
def test_lots_and_user_are_checked_before_any_analysis(lots_db, videos, tmp_path, capsys, args,
                                                       code, message):
    got, _, err = _batch(capsys, videos, "--out", tmp_path / "out", *CLI_SETTINGS,
                         "--database", lots_db, *args)
    assert got == code and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
    assert _counts(lots_db) == [("L-1", 0, 0), ("L-2", 0, 0)]


def test_a_lot_released_meanwhile_fails_its_video_alone(lots_db, videos, tmp_path, capsys,
                                                        scheduler_address, monkeypatch):
    """A lot that stops taking results during the run: its store fails with a one-line
    error, the other lot's results are stored, the exit code says something failed."""
    from exotrace.batch import LotStore

    real_store = LotStore.store

    def store_after_reject(self, record):
        if record["lot"] == "L-2":
            eng = sa.create_engine(lots_db)
            with eng.begin() as conn:  # behind the services' back, as another client might
                conn.execute(sa.text("UPDATE lot SET status = 'rejected' WHERE number = 'L-2'"))
            eng.dispose()
        return real_store(self, record)

    monkeypatch.setattr(LotStore, "store", store_after_reject)
    manifest = tmp_path / "plate.csv"
    manifest.write_text("video,lot\nvideos/plate1/v1.avi,L-1\nvideos/plate1/v3.avi,L-2\n")
    code, data, err = _batch(capsys, manifest, "--out", tmp_path / "out", "--scheduler",
                             scheduler_address, *CLI_SETTINGS, "--user", "analyst1",
                             "--database", lots_db)
    assert code == 1 and "1 result(s) not stored on lots" in err
    assert data["database"]["stored"] == 1 and data["database"]["failed"] == 1
    assert "lot L-2 is rejected" in data["database"]["errors"][0]["error"]
    assert _counts(lots_db) == [("L-1", 1, _SIZE_VALUES), ("L-2", 0, 0)]


def test_a_batch_anchors_the_audit_chain_with_a_checkpoint(lots_db, videos, tmp_path, capsys,
                                                          scheduler_address, monkeypatch):
    """With EXOTRACE_CHECKPOINT_KEY/DIR set, storing results leaves a signed checkpoint
    (interval 0: due after every stored video, so the last one covers the whole batch)."""
    from exotrace.records import (
        generate_checkpoint_keys,
        make_engine,
        unit_of_work,
        verify_checkpoints,
    )

    key, public = generate_checkpoint_keys(tmp_path / "keys" / "audit.key")
    monkeypatch.setenv("EXOTRACE_CHECKPOINT_KEY", str(key))
    monkeypatch.setenv("EXOTRACE_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("EXOTRACE_CHECKPOINT_INTERVAL_S", "0")
    manifest = tmp_path / "plate.csv"
    manifest.write_text("video,lot\nvideos/plate1/v1.avi,L-1\nvideos/plate1/v3.avi,L-2\n")
    code, data, err = _batch(capsys, manifest, "--out", tmp_path / "out", "--scheduler",
                             scheduler_address, *CLI_SETTINGS, "--user", "analyst1",
                             "--database", lots_db)
    assert code == 0, err
    written = data["database"]["checkpoints"]
    assert len(written) == 2 and all(p.endswith(".json") for p in written)
    eng = make_engine(lots_db)
    with unit_of_work(eng) as s:
        checked, findings = verify_checkpoints(s, tmp_path / "checkpoints", public)
        last_seq = s.execute(sa.text("SELECT max(seq) FROM audit_entry")).scalar()
    eng.dispose()
    assert checked == 2 and findings == []
    newest = max(json.loads(open(p).read())["seq"] for p in written)
    assert newest == last_seq  # the last stored video's entries are anchored
