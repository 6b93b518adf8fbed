"""Read models: JSON-ready dicts of records, shared by the CLI, the API and the pages."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from . import _repositories as repo
from ._audit import redact_image
from ._base import Base
from ._models_audit import AuditEntry
from ._models_auth import User
from ._models_lot import Lot, Measurement, Vial
from ._models_source import Consent, Donor, IsolationRun

__all__ = [
    "audit_entry_view",
    "consent_view",
    "donor_view",
    "lot_summary",
    "lot_view",
    "measurement_view",
    "record_view",
    "user_view",
    "vial_view",
]


def _image(table_name: str, image: str | None) -> dict | None:
    # Entries written before secret markers existed hold the raw value: hide it here too.
    return json.loads(redact_image(table_name, image)) if image else None


def record_view(record: Base) -> dict:
    """All column values of any record (secret columns as markers)."""
    secrets = getattr(type(record), "__secret_columns__", ())
    return {c.key: ("<secret>" if c.key in secrets else getattr(record, c.key))
            for c in record.__mapper__.column_attrs}


def user_view(user: User) -> dict:
    return {"id": user.id, "username": user.username, "full_name": user.full_name,
            "role": user.role.value, "active": user.active,
            "must_change_password": user.must_change_password, "demo": user.demo,
            "locked_until": user.locked_until}


def consent_view(consent: Consent | None) -> dict | None:
    if consent is None:
        return None
    return {"id": consent.id, "scopes": sorted(consent.scope_set), "version": consent.version,
            "consented_on": consent.consented_on, "withdrawn_on": consent.withdrawn_on,
            "withdrawal_reason": consent.withdrawal_reason,
            "withdrawn": consent.withdrawn_on is not None}


def donor_view(session: Session, donor: Donor, *, detail: bool = False) -> dict:
    current = repo.latest_consent(session, donor.id)
    view = {"code": donor.code, "age_band": donor.age_band, "sex": donor.sex.value,
            "consent": consent_view(current)}
    if detail:
        view.update(exposures=donor.exposures, disease_history=donor.disease_history,
                    consents=[consent_view(c) for c in donor.consents])
    return view


def lot_summary(session: Session, lot: Lot) -> dict:
    run = session.get(IsolationRun, lot.isolation_run_id) if lot.isolation_run_id else None
    return {"number": lot.number, "status": lot.status.value,
            "intended_use": lot.intended_use.value, "manufactured_on": lot.manufactured_on,
            "expires_on": lot.expires_on, "volume_ml": lot.volume_ml,
            "isolation_run": run.code if run else None,
            "parents": [p.number for _, p in repo.lot_parents(session, lot.id)]}


def measurement_view(m: Measurement, users: dict[int, str] | None = None) -> dict:
    return {"id": m.id, "attribute": m.attribute, "value": m.value, "unit": m.unit,
            "method": m.method, "instrument": m.instrument, "source_file": m.source_file_name,
            "source_sha256": m.source_sha256, "measured_at": m.measured_at,
            "entered_by": (users or {}).get(m.entered_by_id, m.entered_by_id)}


def lot_view(session: Session, lot: Lot | str) -> dict:
    """JSON-ready view of a lot (a row or a lot number; ``exotrace lot show --json``)."""
    if isinstance(lot, str):
        lot = repo.get_by(session, Lot, number=lot)
    users = {u.id: u.username for u in repo.list_all(session, User)}
    view = lot_summary(session, lot)
    view.update(
        description=lot.description, created_by=users.get(lot.created_by_id),
        children=[{"number": c.number, "kind": link.kind.value, "quantity_ml": link.quantity_ml}
                  for link, c in repo.lot_children(session, lot.id)],
        measurements=[measurement_view(m, users) for m in repo.lot_measurements(session, lot.id)],
        vials=repo.count_vials(session, lot.id),
    )
    return view


def vial_view(vial: Vial, lot_number: str | None = None) -> dict:
    return {"identifier": vial.identifier, "lot": lot_number, "status": vial.status.value,
            "fill_volume_ml": vial.fill_volume_ml}


def audit_entry_view(e: AuditEntry) -> dict:
    return {"seq": e.seq, "at": e.at, "actor": e.actor_name, "action": e.action.value,
            "table": e.table_name, "record": e.record_pk, "reason": e.reason,
            "before": _image(e.table_name, e.before_json),
            "after": _image(e.table_name, e.after_json),
            "entry_hash": e.entry_hash}
