"""The release workflow on the records: evaluation, OOS, verification, QA disposition, refusals.

Runs on SQLite and PostgreSQL (shared fixtures). Every lot is built through
the services, so the audit trail is the application's own.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from _db_fixtures import TEST_PASSWORD
from exotrace.errors import AuthError, PermissionDenied, RuleViolation
from exotrace.quality import LotState
from exotrace.records import (
    AuditEntry,
    Lot,
    LotStatus,
    QualityResult,
    Signature,
    add_quality_result,
    close_investigation,
    evaluate_lot,
    import_specification,
    quarantine_lot,
    reject_lot,
    release_lot,
    release_state,
    submit_for_release,
    verify_audit_trail,
    verify_lot,
)
from exotrace.records import repositories as repo

from .conftest import build_source, enter_release_results, make_lot


def _lot(session, number):
    return repo.get_by(session, Lot, number=number)


def _audit_tables(session, since_seq):
    rows = session.execute(sa.select(AuditEntry.table_name, AuditEntry.action,
                                     AuditEntry.actor_name, AuditEntry.reason)
                           .where(AuditEntry.seq > since_seq).order_by(AuditEntry.seq)).all()
    return [(t, a.value, who, why) for t, a, who, why in rows]


def _head(session):
    return session.scalar(sa.select(sa.func.max(AuditEntry.seq))) or 0


def test_evaluation_numbers_against_the_example_spec(session, record_users, qlot):
    view = evaluate_lot(session, qlot)
    assert view["conclusion"] == "complies"
    assert view["specification"] == {"name": "MSC-sEV lot release specification",
                                     "version": "1.0", "status": "effective"}
    tests = {t["test"]: t for t in view["tests"]}
    # 1.0e11 measured against a 1.05e11 label claim: (1.0 - 1.05) / 1.05 = -4.76 %.
    assert tests["particle_concentration"]["outcome"] == "pass"
    assert "-4.8 %" in tests["particle_concentration"]["result"]
    # The measurement particle_protein_ratio counts as the purity_ratio test (>= 2e9).
    assert tests["purity_ratio"]["outcome"] == "pass"
    assert tests["purity_ratio"]["result_id"].startswith("M")
    assert tests["size_d50"]["value"] == pytest.approx(121.0)
    assert tests["protein_concentration"]["outcome"] == "report_only"
    assert tests["calnexin"]["result"] == "absent" and tests["sterility"]["outcome"] == "pass"
    assert view["oos_result_ids"] == [] and view["release_state"] == "results_entered"


def test_happy_path_is_signed_and_audited_at_each_step(session, record_users, qlot):
    analyst, reviewer, qa = (record_users[k] for k in ("analyst", "reviewer", "qa"))
    lot = _lot(session, qlot)
    start = _head(session)
    submit_for_release(session, analyst, qlot)
    assert lot.status is LotStatus.AWAITING_RELEASE
    assert _audit_tables(session, start)[-1][:3] == ("lot", "update", "analyst1")

    step = _head(session)
    ver = verify_lot(session, reviewer, TEST_PASSWORD, qlot)
    assert ver["signature"]["meaning"] == "review"
    assert ver["signature"]["printed_name"] == "Reviewer One (reviewer1)"
    assert release_state(session, lot) is LotState.VERIFIED
    assert [t for t, *_ in _audit_tables(session, step)] == ["lot_verification", "signature"]

    step = _head(session)
    rel = release_lot(session, qa, TEST_PASSWORD, qlot)
    assert lot.status is LotStatus.RELEASED and rel["status"] == "released"
    assert rel["signature"]["meaning"] == "approval"
    entries = _audit_tables(session, step)
    assert [t for t, *_ in entries] == ["lot", "lot_disposition", "signature"]
    lot_entry = entries[0]
    assert lot_entry[1:3] == ("update", "qa1") and "complies with MSC-sEV" in lot_entry[3]
    sigs = session.scalars(sa.select(Signature).where(Signature.table_name.in_(
        ["lot_verification", "lot_disposition"]))).all()
    assert sorted(s.meaning.value for s in sigs) == ["approval", "review"]
    assert verify_audit_trail(session).ok
    # No result can be added to a released lot.
    with pytest.raises(RuleViolation, match="released; results can no longer be added"):
        add_quality_result(session, analyst, qlot, test="potency", value=99.0, unit="%")


def test_oos_blocks_release_until_closed_and_the_original_is_kept(session, record_users,
                                                                  spec_record):
    analyst, reviewer, qa = (record_users[k] for k in ("analyst", "reviewer", "qa"))
    iso = build_source(session, analyst)
    make_lot(session, analyst, "QL-OOS", iso)
    opened = enter_release_results(session, analyst, "QL-OOS", endotoxin=0.7)
    assert [o.test for o in opened] == ["endotoxin"]  # opened when the result was entered
    inv = opened[0]
    view = evaluate_lot(session, "QL-OOS")
    assert view["conclusion"] == "does not comply"
    assert view["oos_result_ids"] == [inv.original_result]
    assert view["open_investigations"] == [f"OOS-{inv.id}"]
    submit_for_release(session, analyst, "QL-OOS")
    verify_lot(session, reviewer, TEST_PASSWORD, "QL-OOS")
    with pytest.raises(RuleViolation, match=f"open OOS investigation.*OOS-{inv.id}"):
        release_lot(session, qa, TEST_PASSWORD, "QL-OOS")
    with pytest.raises(RuleViolation, match="lab error conclusion needs the retest"):
        close_investigation(session, qa, inv.id, conclusion="lab_error", phase="phase_I",
                            summary="pipetting error")
    retest, none = add_quality_result(session, analyst, "QL-OOS", test="endotoxin", value=0.09,
                                      unit="EU/mL", retest_of=inv.original_result)
    assert none is None and inv.retest_result == f"R{retest.id}"
    close_investigation(session, qa, f"OOS-{inv.id}", conclusion="lab_error", phase="phase_I",
                        summary="sample diluted in non-pyrogen-free tube")
    trail = [(e.action.value, e.actor_name, e.reason) for e in repo.audit_entries(
        session, table_name="oos_investigation", record_pk=str(inv.id))]
    assert trail == [("create", "analyst1", None), ("update", "analyst1",
                                                    f"retest R{retest.id} entered"),
                     ("update", "qa1", "OOS investigation closed: lab_error")]
    view = evaluate_lot(session, "QL-OOS")
    endo = next(t for t in view["tests"] if t["test"] == "endotoxin")
    assert view["conclusion"] == "complies"
    assert endo["result_id"] == f"R{retest.id}"
    assert endo["superseded_result_id"] == inv.original_result
    original = session.get(QualityResult, int(inv.original_result[1:]))
    assert original.value == 0.7  # never overwritten
    # The retest made the verification stale: verify again before release.
    with pytest.raises(RuleViolation, match="cannot release a lot in state results_entered"):
        release_lot(session, qa, TEST_PASSWORD, "QL-OOS")
    verify_lot(session, reviewer, TEST_PASSWORD, "QL-OOS")
    assert release_lot(session, qa, TEST_PASSWORD, "QL-OOS")["status"] == "released"


def test_release_before_verification_is_refused(session, record_users, qlot):
    submit_for_release(session, record_users["analyst"], qlot)
    with pytest.raises(RuleViolation, match="cannot release a lot in state results_entered"):
        release_lot(session, record_users["qa"], TEST_PASSWORD, qlot)
    assert _lot(session, qlot).status is LotStatus.AWAITING_RELEASE


def test_release_of_a_lot_not_submitted_is_refused(session, record_users, qlot):
    verify_lot(session, record_users["reviewer"], TEST_PASSWORD, qlot)
    with pytest.raises(RuleViolation, match="in_process; the analyst submits it"):
        release_lot(session, record_users["qa"], TEST_PASSWORD, qlot)


def test_self_verification_and_wrong_roles_are_refused(session, record_users, qlot):
    analyst, reviewer, qa, viewer = (record_users[k] for k in
                                     ("analyst", "reviewer", "qa", "viewer"))
    with pytest.raises(PermissionDenied, match="analyst1 .* may not verify results"):
        verify_lot(session, analyst, TEST_PASSWORD, qlot)
    with pytest.raises(PermissionDenied, match="viewer1"):
        verify_lot(session, viewer, TEST_PASSWORD, qlot)
    # qa1 quarantines the lot, so qa1 has changed the lot's records ...
    quarantine_lot(session, qa, TEST_PASSWORD, qlot, reason="NTA drift under investigation")
    assert release_state(session, _lot(session, qlot)) is LotState.QUARANTINED
    submit_for_release(session, analyst, qlot, reason="drift explained, back to release")
    # ... and may not verify it (segregation of duties, from the audit trail).
    with pytest.raises(PermissionDenied, match="qa1 changed lot QL-1; the same person may not "
                                               "verify it"):
        verify_lot(session, qa, TEST_PASSWORD, qlot)
    with pytest.raises(PermissionDenied, match="reviewer1 .* may not release lots"):
        release_lot(session, reviewer, TEST_PASSWORD, qlot)
    verify_lot(session, reviewer, TEST_PASSWORD, qlot)
    # The quarantining QA may not approve either; a second QA may.
    with pytest.raises(PermissionDenied, match="qa1 changed lot QL-1"):
        release_lot(session, qa, TEST_PASSWORD, qlot)
    assert release_lot(session, record_users["qa2"], TEST_PASSWORD, qlot)["status"] == "released"


def test_wrong_password_is_refused_before_anything_is_written(session, record_users, qlot):
    submit_for_release(session, record_users["analyst"], qlot)
    head = _head(session)
    with pytest.raises(AuthError, match="reviewer1: unknown user or wrong password"):
        verify_lot(session, record_users["reviewer"], "not-the-password", qlot)
    verify_lot(session, record_users["reviewer"], TEST_PASSWORD, qlot)
    head = _head(session)
    with pytest.raises(AuthError, match="qa1: unknown user or wrong password"):
        release_lot(session, record_users["qa"], "wrong-password-1", qlot)
    assert _head(session) == head
    assert _lot(session, qlot).status is LotStatus.AWAITING_RELEASE


def test_release_against_a_superseded_specification_is_refused(session, record_users, qlot,
                                                              tmp_path, spec_record):
    submit_for_release(session, record_users["analyst"], qlot)
    verify_lot(session, record_users["reviewer"], TEST_PASSWORD, qlot)
    v11 = tmp_path / "spec-1.1.yaml"
    v11.write_text(spec_record.yaml_text.replace('version: "1.0"', 'version: "1.1"'),
                   encoding="utf-8")
    new, created = import_specification(session, record_users["qa"], v11)
    assert created and spec_record.status.value == "superseded"
    with pytest.raises(RuleViolation, match="1.0 is superseded"):
        release_lot(session, record_users["qa"], TEST_PASSWORD, qlot)
    # The lot needs a new verification against 1.1, the version in force; then it can go.
    assert evaluate_lot(session, qlot)["specification"]["version"] == "1.1"
    assert release_state(session, _lot(session, qlot)) is LotState.RESULTS_ENTERED
    verify_lot(session, record_users["reviewer"], TEST_PASSWORD, qlot)
    out = release_lot(session, record_users["qa"], TEST_PASSWORD, qlot)
    assert out["specification"] == {"name": "MSC-sEV lot release specification",
                                    "version": "1.1"}


def test_reject_after_confirmed_oos(session, record_users, spec_record):
    analyst, reviewer, qa = (record_users[k] for k in ("analyst", "reviewer", "qa"))
    iso = build_source(session, analyst)
    make_lot(session, analyst, "QL-REJ", iso)
    inv = enter_release_results(session, analyst, "QL-REJ", endotoxin=0.92)[0]
    with pytest.raises(RuleViolation, match="cannot reject a lot in state results_entered"):
        reject_lot(session, qa, TEST_PASSWORD, "QL-REJ", reason="endotoxin")
    close_investigation(session, qa, inv.id, conclusion="confirmed_oos", phase="phase_II",
                        summary="process cause: depyrogenation incomplete")
    submit_for_release(session, analyst, "QL-REJ")
    verify_lot(session, reviewer, TEST_PASSWORD, "QL-REJ")
    with pytest.raises(RuleViolation, match="does not comply"):
        release_lot(session, qa, TEST_PASSWORD, "QL-REJ")
    with pytest.raises(Exception, match="reject needs a reason"):
        reject_lot(session, qa, TEST_PASSWORD, "QL-REJ", reason=" ")
    out = reject_lot(session, qa, TEST_PASSWORD, "QL-REJ", reason="endotoxin OOS confirmed")
    assert out["status"] == "rejected" and out["conclusion"] == "does not comply"
    assert _lot(session, "QL-REJ").status is LotStatus.REJECTED


def test_an_expired_lot_cannot_be_released(session, record_users, qlot):
    from datetime import date

    submit_for_release(session, record_users["analyst"], qlot)
    verify_lot(session, record_users["reviewer"], TEST_PASSWORD, qlot)
    lot = _lot(session, qlot)
    # Expiry moved into the past behind the workflow's back (as if time passed):
    # the raw update is not what is tested, the release guard is.
    session.execute(sa.update(Lot).where(Lot.id == lot.id).values(expires_on=date(2020, 1, 1)))
    session.expire(lot)
    with pytest.raises(RuleViolation, match="expired on 2020-01-01"):
        release_lot(session, record_users["qa"], TEST_PASSWORD, qlot)
    assert _lot(session, qlot).status is LotStatus.AWAITING_RELEASE
