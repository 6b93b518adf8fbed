"""Services for lots (create, pool, split, status), storage, measurements, products, vials."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from ..errors import (
    ConfigurationError,
    Conflict,
    ConsentError,
    FileFormatError,
    InvalidInput,
    RuleViolation,
)
from ..quality import InvestigationConclusion
from . import _repositories as repo
from . import _repositories_quality as qrepo
from ._audit import audited_bulk_insert
from ._auth import Permission, check_segregation, require_permission
from ._base import utcnow
from ._context import acting_as, change_reason
from ._enums import ConsentScope, LinkKind, LotStatus, ProductForm, VialStatus
from ._iso7064 import append_check_character
from ._models_auth import User
from ._models_lot import Lot, LotLink, Measurement, Product, ResultFile, Storage, Vial
from ._models_source import IsolationRun, ReagentBatch, ReagentUse
from ._services_source import _code, _enum, _positive, _unique, check_consent
from ._trace import lot_sources

__all__ = [
    "ALLOWED_TRANSITIONS",
    "add_measurement",
    "add_product",
    "add_storage",
    "check_lineage",
    "check_lot_consent",
    "check_releasable",
    "create_lot",
    "create_vials",
    "import_measurement_file",
    "measurements_from_result",
    "pool_lots",
    "set_lot_status",
    "split_lot",
]

#: Lot status state machine (21 CFR 11.10(f): enforced step order).
ALLOWED_TRANSITIONS: dict[LotStatus, frozenset[LotStatus]] = {
    LotStatus.IN_PROCESS: frozenset({LotStatus.AWAITING_RELEASE, LotStatus.QUARANTINED,
                                     LotStatus.REJECTED}),
    LotStatus.AWAITING_RELEASE: frozenset({LotStatus.RELEASED, LotStatus.REJECTED,
                                           LotStatus.QUARANTINED, LotStatus.IN_PROCESS}),
    LotStatus.QUARANTINED: frozenset({LotStatus.IN_PROCESS, LotStatus.AWAITING_RELEASE,
                                      LotStatus.REJECTED}),
    LotStatus.RELEASED: frozenset({LotStatus.QUARANTINED}),  # recall / investigation
    LotStatus.REJECTED: frozenset(),
}
_ATTRIBUTE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MAX_VIALS_PER_CALL = 200_000


def check_lot_consent(session: Session, lot: Lot, *, purpose: str,
                      use: ConsentScope | None = None) -> None:
    """Every donor behind ``lot`` (through pools) must consent to ``use`` (default: the lot's)."""
    use = ConsentScope(use or lot.intended_use)
    for _, code, consent in lot_sources(session, lot.id):
        if consent is None:
            raise ConsentError(f"donor {code} has no recorded consent; cannot {purpose}")
        if consent["withdrawn"]:
            raise ConsentError(
                f"donor {code}: consent {consent['id']} (version {consent['version']}) was "
                f"withdrawn on {consent['withdrawn_on']}; cannot {purpose}")
        if use.value not in consent["scopes"]:
            raise ConsentError(
                f"donor {code}: consent {consent['id']} (version {consent['version']}) covers "
                f"{', '.join(consent['scopes'])}, not {use.value}; cannot {purpose}")


#: Investigation conclusions that stop a lot and everything made from it.
_BLOCKING_OOS = (InvestigationConclusion.OPEN, InvestigationConclusion.CONFIRMED_OOS)
#: Lot states that stop everything made from the lot.
_BLOCKING_STATUS = (LotStatus.REJECTED, LotStatus.QUARANTINED)


def check_lineage(session: Session, lots: Iterable[Lot], *, action: str,
                  check_own: bool = True) -> None:
    """Refuse ``action`` while ``lots`` or any lot they were pooled or split from is
    rejected, quarantined or has an open or confirmed OOS investigation.

    Parameters
    ----------
    lots : iterable of Lot
        The lots acted on (the parents of a pool or split; the lot to release).
    check_own : bool
        Also refuse on the status and investigations of ``lots`` themselves
        (pool, split); a lot being released has its own state and results
        judged by the release workflow, so only its ancestors are checked.

    Raises
    ------
    RuleViolation
        Names the lot at fault, its relation and the reason.
    """
    own = list(lots)
    ancestors = repo.lot_ancestors(session, [x.id for x in own])
    checked = (own if check_own else []) + ancestors
    for lot in checked:
        if lot.status in _BLOCKING_STATUS:
            relation = "" if lot in own else " (an ancestor)"
            raise RuleViolation(f"lot {lot.number}{relation} is {lot.status.value}; cannot "
                                f"{action}")
    by_id = {x.id: x for x in checked}
    for inv in qrepo.investigations_of_lots(session, list(by_id)):
        if inv.conclusion in _BLOCKING_OOS:
            lot = by_id[inv.lot_id]
            relation = "" if lot in own else " (an ancestor)"
            raise RuleViolation(
                f"lot {lot.number}{relation} has {InvestigationConclusion(inv.conclusion).value}"
                f" OOS investigation OOS-{inv.id} ({inv.test}); cannot {action}")


def _expiry_bound(session: Session, parents: Iterable[Lot]) -> date | None:
    """The earliest expiry among ``parents`` and their ancestors (None when none has one)."""
    parents = list(parents)
    days = [x.expires_on for x in parents + repo.lot_ancestors(session, [p.id for p in parents])
            if x.expires_on is not None]
    return min(days) if days else None


def _child_expiry(session: Session, number: str, parents: Iterable[Lot],
                  expires_on: date | None) -> date | None:
    """A pool's or split's expiry: at most its earliest parent's (that date by default)."""
    bound = _expiry_bound(session, parents)
    if expires_on is None:
        return bound
    if bound is not None and expires_on > bound:
        raise RuleViolation(f"lot {number}: expiry {expires_on.isoformat()} is after its "
                            f"earliest parent's ({bound.isoformat()}); a lot made from other "
                            "lots expires with them at the latest")
    return expires_on


def check_releasable(session: Session, lot: Lot, *, today: date | None = None) -> None:
    """A lot may be released only with an expiry date not yet passed and a clean lineage.

    Raises
    ------
    RuleViolation
        No expiry date; expired (``today`` > expiry, the expiry day itself is
        still usable); an ancestor rejected or quarantined, or an open or
        confirmed OOS investigation on the lot or an ancestor.
    """
    today = today or utcnow().date()
    if lot.expires_on is None:
        raise RuleViolation(f"lot {lot.number} has no expiry date; a lot is released only with "
                            "one")
    if lot.expires_on < today:
        raise RuleViolation(f"lot {lot.number} expired on {lot.expires_on.isoformat()}; "
                            "an expired lot cannot be released")
    check_lineage(session, [lot], action=f"release lot {lot.number}", check_own=False)


def _new_lot(session: Session, user: User, number: str, *, intended_use, manufactured_on: date,
             expires_on: date | None, volume_ml: float | None, description: str | None,
             isolation_run_id: int | None) -> Lot:
    _code(number, "lot number")
    if expires_on is not None and expires_on <= manufactured_on:
        raise InvalidInput(f"lot {number}: expiry {expires_on} is not after manufacture "
                           f"{manufactured_on}")
    _unique(session, Lot, "lot", number=number)
    return Lot(number=number, isolation_run_id=isolation_run_id,
               intended_use=_enum(ConsentScope, intended_use, "intended use"),
               status=LotStatus.IN_PROCESS, manufactured_on=manufactured_on,
               expires_on=expires_on, volume_ml=_positive(volume_ml, "volume-ml", allow_none=True),
               description=description, created_by_id=user.id)


def create_lot(session: Session, user: User, number: str, *, isolation_code: str,
               intended_use: ConsentScope | str, manufactured_on: date,
               expires_on: date | None = None, volume_ml: float | None = None,
               description: str | None = None, reagent_codes: Iterable[str] = ()) -> Lot:
    """Create a lot from an isolation run (donor consent must cover ``intended_use``)."""
    require_permission(user, Permission.RECORD_MANUFACTURING, action="create lots")
    run = repo.get_by(session, IsolationRun, code=isolation_code)
    lot = _new_lot(session, user, number, intended_use=intended_use,
                   manufactured_on=manufactured_on, expires_on=expires_on, volume_ml=volume_ml,
                   description=description, isolation_run_id=run.id)
    reagents = [repo.get_by(session, ReagentBatch, code=c) for c in reagent_codes]
    # Checked before anything is written, so a refusal leaves no partial lot behind.
    bank = run.collection.cell_bank
    check_consent(session, bank.donor, lot.intended_use, purpose=f"create lot {number}")
    with acting_as(session, user):
        session.add(lot)
        session.flush()
        for r in reagents:
            session.add(ReagentUse(reagent_batch_id=r.id, lot_id=lot.id))
        session.flush()
    return lot


def pool_lots(session: Session, user: User, number: str, *, parents: Mapping[str, float | None],
              manufactured_on: date, intended_use: ConsentScope | str | None = None,
              expires_on: date | None = None, description: str | None = None) -> Lot:
    """Pool several parent lots (number -> mL used) into a new lot.

    No parent (nor any lot it came from) may be rejected, quarantined or
    under an open or confirmed OOS investigation; every donor behind every
    parent must consent to the pool's use (default: the parents' common use).
    The pool expires at the latest with its earliest-expiring parent
    (``expires_on`` defaults to that day).
    """
    require_permission(user, Permission.RECORD_MANUFACTURING, action="pool lots")
    if len(parents) < 2:
        raise InvalidInput("a pool needs at least two parent lots")
    parent_lots = [(repo.get_by(session, Lot, number=n), q) for n, q in parents.items()]
    check_lineage(session, [p for p, _ in parent_lots], action=f"pool it into lot {number}")
    expires_on = _child_expiry(session, number, [p for p, _ in parent_lots], expires_on)
    uses = {p.intended_use for p, _ in parent_lots}
    if intended_use is None:
        if len(uses) != 1:
            raise InvalidInput("parent lots have different intended uses; give --intended-use")
        intended_use = uses.pop()
    volume = sum(q for _, q in parent_lots if q is not None) or None
    lot = _new_lot(session, user, number, intended_use=intended_use,
                   manufactured_on=manufactured_on, expires_on=expires_on, volume_ml=volume,
                   description=description, isolation_run_id=None)
    for p, _ in parent_lots:
        check_lot_consent(session, p, use=lot.intended_use, purpose=f"create pooled lot {number}")
    with acting_as(session, user):
        session.add(lot)
        session.flush()
        for p, q in parent_lots:
            session.add(LotLink(parent_lot_id=p.id, child_lot_id=lot.id, kind=LinkKind.POOL,
                                quantity_ml=_positive(q, "quantity-ml", allow_none=True)))
        session.flush()
    return lot


def split_lot(session: Session, user: User, parent_number: str, *,
              children: Mapping[str, float | None], manufactured_on: date,
              expires_on: date | None = None) -> list[Lot]:
    """Split a lot into child lots (number -> mL); children inherit its intended use.

    Refused like :func:`pool_lots` for a parent with a bad lineage; the
    children expire at the latest with the parent (``expires_on`` defaults
    to the parent's expiry).
    """
    require_permission(user, Permission.RECORD_MANUFACTURING, action="split lots")
    parent = repo.get_by(session, Lot, number=parent_number)
    check_lineage(session, [parent], action="split it")
    if not children:
        raise InvalidInput("a split needs at least one child lot")
    total = sum(q for q in children.values() if q is not None)
    if parent.volume_ml is not None and total > parent.volume_ml * (1 + 1e-9):
        raise RuleViolation(f"split of lot {parent.number}: children take {total:g} mL, "
                            f"the lot has {parent.volume_ml:g} mL")
    check_lot_consent(session, parent, purpose=f"split lot {parent.number}")
    expires_on = _child_expiry(session, f"split of {parent.number}", [parent], expires_on)
    made = []
    with acting_as(session, user):
        for number, q in children.items():
            lot = _new_lot(session, user, number, intended_use=parent.intended_use,
                           manufactured_on=manufactured_on,
                           expires_on=expires_on, volume_ml=q,
                           description=f"split from {parent.number}", isolation_run_id=None)
            session.add(lot)
            session.flush()
            session.add(LotLink(parent_lot_id=parent.id, child_lot_id=lot.id,
                                kind=LinkKind.SPLIT, quantity_ml=q))
            session.flush()
            made.append(lot)
    return made


def set_lot_status(session: Session, user: User, number: str, status: LotStatus | str, *,
                   reason: str, release_workflow: bool = False) -> Lot:
    """Move a lot through its state machine (:data:`ALLOWED_TRANSITIONS`).

    Releasing needs the approve permission (QA) and passes the
    segregation-of-duties check; other moves need change_lot_status.

    A lot becomes ``released`` only through the release workflow
    (:func:`exotrace.records.release_lot`: evaluation against the specification
    in force, verification by a second person, QA signature), which passes
    ``release_workflow=True``; a bare status change to ``released`` is refused
    so that no lot is released without its evidence.
    """
    status = _enum(LotStatus, status, "lot status")
    lot = repo.get_by(session, Lot, number=number)
    if status is LotStatus.RELEASED and not release_workflow:
        raise RuleViolation(
            f"lot {number} can be released only through the release workflow: "
            f"exotrace lot evaluate/verify/release {number} (specification, second-person "
            "verification and QA signature)")
    if status is LotStatus.RELEASED:
        require_permission(user, Permission.APPROVE, action="release lots")
        check_segregation(session, user, lot, action="release")
        check_releasable(session, lot)
        check_lot_consent(session, lot, purpose=f"release lot {number}")
    else:
        require_permission(user, Permission.CHANGE_LOT_STATUS, action="change lot status")
    if status not in ALLOWED_TRANSITIONS[lot.status]:
        raise RuleViolation(f"lot {number} is {lot.status.value}; it cannot become {status.value}"
                            f" (allowed: {', '.join(sorted(s.value for s in ALLOWED_TRANSITIONS[lot.status])) or 'none'})")
    if not reason or not reason.strip():
        raise InvalidInput(f"changing the status of lot {number} needs a reason")
    with acting_as(session, user), change_reason(session, reason):
        lot.status = status
        if status is LotStatus.RELEASED:
            lot.released_at = utcnow()
    return lot


def add_storage(session: Session, user: User, lot_number: str, *, buffer: str,
                temperature_c: float, container: str, location: str,
                freeze_thaw_count: int = 0, stored_on: date | None = None) -> Storage:
    """Record where and how a lot is stored."""
    require_permission(user, Permission.RECORD_MANUFACTURING, action="record storage")
    lot = repo.get_by(session, Lot, number=lot_number)
    t = float(temperature_c)
    if not math.isfinite(t) or not -273.15 < t < 60:
        raise InvalidInput(f"storage temperature {temperature_c} C is not plausible (-273..60 C)")
    if not isinstance(freeze_thaw_count, int) or freeze_thaw_count < 0:
        raise InvalidInput(f"freeze-thaw count must be a non-negative integer, got {freeze_thaw_count!r}")
    storage = Storage(lot_id=lot.id, buffer=buffer, temperature_c=t, container=container,
                      location=location, freeze_thaw_count=freeze_thaw_count, stored_on=stored_on)
    with acting_as(session, user):
        session.add(storage)
        session.flush()
    return storage


def _check_writable_lot(lot: Lot) -> None:
    if lot.status in (LotStatus.RELEASED, LotStatus.REJECTED):
        raise RuleViolation(f"lot {lot.number} is {lot.status.value}; results can no longer be added"
                            " (quarantine it first to investigate)")


def add_measurement(session: Session, user: User, lot_number: str, *, attribute: str,
                    value: float, unit: str, method: str, instrument: str | None = None,
                    measured_at: datetime | None = None, source_file_name: str | None = None,
                    source_sha256: str | None = None, result_file: ResultFile | None = None
                    ) -> Measurement:
    """Enter one result for a lot (the entering user is recorded for four-eyes checks)."""
    require_permission(user, Permission.ENTER_RESULTS, action="enter results")
    lot = repo.get_by(session, Lot, number=lot_number)
    _check_writable_lot(lot)
    if not _ATTRIBUTE.fullmatch(attribute or ""):
        raise InvalidInput(f"attribute {attribute!r}: use a snake_case name such as "
                           "particle_concentration")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{attribute}: value must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise InvalidInput(f"{attribute}: value must be finite, got {value!r}")
    if not unit or not method:
        raise InvalidInput(f"{attribute}: unit and method are required")
    if measured_at is not None and measured_at.tzinfo is None:
        raise InvalidInput(f"{attribute}: measured-at {measured_at} has no time zone")
    m = Measurement(lot_id=lot.id, attribute=attribute, value=v, unit=unit, method=method,
                    instrument=instrument, source_file_name=source_file_name,
                    source_sha256=source_sha256,
                    result_file_id=result_file.id if result_file is not None else None,
                    entered_by_id=user.id, measured_at=measured_at or utcnow())
    with acting_as(session, user):
        session.add(m)
        session.flush()
    return m


#: InstrumentResult.to_dict() keys -> (attribute, unit, method)
_RESULT_FIELDS = {
    "particles_per_ml": ("particle_concentration", "particles/mL", "NTA"),
    "mode_nm": ("size_mode", "nm", "NTA"),
    "mean_nm": ("size_mean", "nm", "NTA"),
    "d10_nm": ("size_d10", "nm", "NTA"),
    "d50_nm": ("size_d50", "nm", "NTA"),
    "d90_nm": ("size_d90", "nm", "NTA"),
    "sd_nm": ("size_sd", "nm", "NTA"),
}


def measurements_from_result(result: Mapping) -> list[dict]:
    """Measurement values in an instrument result dict (``InstrumentResult.to_dict()``).

    Takes the sample-level concentration and size statistics, the zeta
    potential of a ZetaView profile run (mV at 25 C), and protein
    concentration of a single-sample plate. Returns dicts with attribute,
    value, unit, method, instrument.
    """
    fmt = str(result.get("format") or "")
    instrument = result.get("instrument")
    method = "BCA" if fmt == "bca-plate" else ("flow cytometry" if fmt == "fcs" else "NTA")
    out = []
    videos = [v for v in (result.get("videos") or []) if isinstance(v, Mapping)]
    # A run in which nothing was tracked (ZetaView "Number of Traces: 0") reports
    # a concentration of 0: that is "nothing seen", not a measured value of the lot.
    nothing_measured = bool(videos) and not any(v.get("has_results", True) for v in videos)
    for key, (attribute, unit, _) in _RESULT_FIELDS.items():
        if nothing_measured:
            break
        value = result.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            out.append({"attribute": attribute, "value": float(value), "unit": unit,
                        "method": method, "instrument": instrument})
    extra = result.get("extra")
    zeta = extra.get("zeta_potential_mv") if isinstance(extra, Mapping) else None
    if isinstance(zeta, (int, float)) and math.isfinite(zeta):  # ZetaView profile run, at 25 C
        out.append({"attribute": "zeta_potential", "value": float(zeta), "unit": "mV",
                    "method": "electrophoretic NTA", "instrument": instrument})
    samples = [s for s in (result.get("protein_samples") or [])
               if isinstance(s, Mapping) and s.get("protein_ug_per_ml") is not None]
    if len(samples) == 1:
        out.append({"attribute": "protein_concentration",
                    "value": float(samples[0]["protein_ug_per_ml"]), "unit": "ug/mL",
                    "method": "BCA", "instrument": instrument})
    return out


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise FileFormatError(path, f"cannot be read: {exc.strerror or exc}") from None
    return digest.hexdigest()


def _read_instrument_file(path: Path) -> dict:
    try:
        from ..instruments import read_file  # written by the instruments part
    except ImportError:
        raise ConfigurationError("exotrace.instruments.read_file is not available in this "
                                 "installation; enter values with `exotrace measurement add`") from None
    result = read_file(path)
    try:
        data = result.to_dict(full=False)
    except TypeError:
        data = result.to_dict()
    return json.loads(json.dumps(data, default=str))


def import_measurement_file(session: Session, lot: Lot | str, path: str | Path, user: User,
                            *, reader=None) -> tuple[ResultFile, list[Measurement], bool]:
    """Import an instrument file for a lot, once per (lot, file SHA-256).

    Parameters
    ----------
    reader : callable, optional
        ``reader(path) -> dict`` replacing ``exotrace.instruments.read_file``
        (tests, other formats).

    Returns
    -------
    (ResultFile, list of Measurement, created)
        ``created`` is False when the same file was already imported for the
        lot: nothing is written a second time (a retried import is safe).
    """
    require_permission(user, Permission.ENTER_RESULTS, action="import results")
    if isinstance(lot, str):
        lot = repo.get_by(session, Lot, number=lot)
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(path, "file not found")
    sha = _sha256_file(path)
    existing = repo.find_result_file(session, lot.id, sha)
    if existing is not None:
        return existing, [m for m in repo.lot_measurements(session, lot.id)
                          if m.result_file_id == existing.id], False
    _check_writable_lot(lot)
    data = (reader or _read_instrument_file)(path)
    values = measurements_from_result(data)
    if not values:
        raise FileFormatError(path, "holds no concentration, size or protein value to import")
    measured_at = None
    if data.get("measured_at"):
        try:
            measured_at = datetime.fromisoformat(str(data["measured_at"]))
        except ValueError:
            measured_at = None
        if measured_at is not None and measured_at.tzinfo is None:
            measured_at = None
    rf = ResultFile(lot_id=lot.id, file_name=path.name, sha256=sha,
                    result_json=json.dumps(data, sort_keys=True), imported_by_id=user.id)
    with acting_as(session, user):
        session.add(rf)
        session.flush()
    made = [add_measurement(session, user, lot.number, measured_at=measured_at,
                            source_file_name=path.name, source_sha256=sha, result_file=rf, **v)
            for v in values]
    return rf, made, True


def add_product(session: Session, user: User, code: str, *, lot_number: str,
                form: ProductForm | str, excipients: Iterable[str] = (),
                target_particles_per_ml: float | None = None,
                fill_volume_ml: float | None = None) -> Product:
    """Record a formulation of a lot (topical, injectable, IV, inhaled)."""
    require_permission(user, Permission.RECORD_MANUFACTURING, action="record products")
    _code(code, "product code")
    lot = repo.get_by(session, Lot, number=lot_number)
    if lot.status is LotStatus.REJECTED:
        raise RuleViolation(f"lot {lot.number} is rejected; it cannot be formulated")
    check_lot_consent(session, lot, purpose=f"formulate product {code} from lot {lot.number}")
    _unique(session, Product, "product", code=code)
    product = Product(code=code, lot_id=lot.id, form=_enum(ProductForm, form, "product form"),
                      excipients=", ".join(e.strip() for e in excipients if e.strip()) or None,
                      target_particles_per_ml=_positive(target_particles_per_ml,
                                                        "target-particles-per-ml", allow_none=True),
                      fill_volume_ml=_positive(fill_volume_ml, "fill-volume-ml", allow_none=True))
    with acting_as(session, user):
        session.add(product)
        session.flush()
    return product


def _vial_payload_prefix(lot: Lot) -> str:
    prefix = "".join(c for c in lot.number.upper() if c.isascii() and c.isalnum())
    if not prefix:
        prefix = f"L{lot.id}"
    return prefix[:40]


def create_vials(session: Session, user: User, lot_number: str, count: int, *,
                 product_code: str | None = None,
                 fill_volume_ml: float | None = None) -> list[str]:
    """Fill ``count`` vials from a lot; returns their identifiers.

    Identifiers are ``<lot number letters/digits><5-digit serial><check>``
    with an ISO 7064 MOD 37-2 check character. Uses the audited bulk path,
    so 100k vials take seconds while each still gets its audit entry.
    """
    require_permission(user, Permission.RECORD_MANUFACTURING, action="fill vials")
    if not isinstance(count, int) or not 1 <= count <= _MAX_VIALS_PER_CALL:
        raise InvalidInput(f"vial count must be 1-{_MAX_VIALS_PER_CALL}, got {count!r}")
    lot = repo.get_by(session, Lot, number=lot_number)
    if lot.status in (LotStatus.REJECTED, LotStatus.QUARANTINED):
        raise RuleViolation(f"lot {lot.number} is {lot.status.value}; vials cannot be filled")
    check_lot_consent(session, lot, purpose=f"fill vials from lot {lot.number}")
    product_id = None
    if product_code is not None:
        product = repo.get_by(session, Product, code=product_code)
        if product.lot_id != lot.id:
            raise RuleViolation(f"product {product_code} is not made from lot {lot.number}")
        product_id = product.id
        fill_volume_ml = fill_volume_ml if fill_volume_ml is not None else product.fill_volume_ml
    fill = _positive(fill_volume_ml, "fill-volume-ml", allow_none=True)
    start = repo.count_vials(session, lot.id) + 1
    if start + count - 1 > 99_999:
        raise RuleViolation(f"lot {lot.number} would exceed 99999 vials")
    prefix = _vial_payload_prefix(lot)
    now = utcnow()
    rows = [{"identifier": append_check_character(f"{prefix}{serial:05d}"), "lot_id": lot.id,
             "product_id": product_id, "fill_volume_ml": fill, "status": VialStatus.AVAILABLE,
             "created_at": now}
            for serial in range(start, start + count)]
    taken = repo.existing_vial_identifiers(session, [r["identifier"] for r in rows])
    if taken:
        raise Conflict(f"vial identifier {sorted(taken)[0]} already exists")
    with acting_as(session, user):
        audited_bulk_insert(session, Vial, rows)
    return [r["identifier"] for r in rows]
