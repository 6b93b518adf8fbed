"""A certificate of analysis is refused when its release signature no longer matches."""

from __future__ import annotations

import pytest

from _db_fixtures import TEST_PASSWORD
from exotrace.errors import IntegrityFailure
from exotrace.records import (
    DispositionAction,
    Lot,
    acting_as,
    build_certificate,
    change_reason,
    release_lot,
    submit_for_release,
    verify_lot,
)
from exotrace.records import quality_repositories as qrepo
from exotrace.records import repositories as repo


def test_certificate_refused_after_the_signed_release_record_changed(session, record_users,
                                                                      qlot):
    submit_for_release(session, record_users["analyst"], qlot)
    verify_lot(session, record_users["reviewer"], TEST_PASSWORD, qlot)
    release_lot(session, record_users["qa"], TEST_PASSWORD, qlot)
    coa = build_certificate(session, qlot, manufacturer="ExoLab GmbH")
    assert coa.signature.printed_name == "Qa One (qa1)"
    lot = repo.get_by(session, Lot, number=qlot)
    disposition = qrepo.latest_disposition(session, lot.id, (DispositionAction.RELEASE,))
    # an edit after signing (audited, with a reason) still breaks the signature's binding
    with acting_as(session, record_users["qa2"]), change_reason(session, "wording"):
        disposition.reason = "complies (reworded after signing)"
        session.flush()
    with pytest.raises(IntegrityFailure, match=r"lot QL-1: the release signature \d+ of Qa One "
                                               r"\(qa1\) no longer matches disposition record "
                                               rf"{disposition.id}"):
        build_certificate(session, qlot, manufacturer="ExoLab GmbH")
