"""Services for donors, consents, cell banks, collections, reagents and isolation runs.

Services hold the rules (permissions, consent, validation), use repositories
for SQL, attribute writes to the acting user, and never commit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import date

from sqlalchemy.orm import Session

from .._text import check_identifier
from ..errors import Conflict, ConsentError, InvalidInput, RuleViolation
from . import _repositories as repo
from ._auth import Permission, require_permission
from ._context import acting_as, change_reason
from ._enums import ConsentScope, IsolationMethod, SerumCondition, Sex, Tissue
from ._models_auth import User
from ._models_source import (
    CellBank,
    Collection,
    Consent,
    Donor,
    IsolationRun,
    ReagentBatch,
    ReagentUse,
)

__all__ = [
    "IDENTITY_MARKERS",
    "add_cell_bank",
    "add_collection",
    "add_consent",
    "add_donor",
    "add_isolation_run",
    "add_reagent_batch",
    "check_consent",
    "withdraw_consent",
]

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,63}$")
_AGE_BAND = re.compile(r"^(\d{1,3})-(\d{1,3})$|^(\d{1,3})\+$")
#: Identity markers of a cell bank, percent positive (MSC criteria in DOMAIN.md s1).
IDENTITY_MARKERS = ("cd73_pct", "cd90_pct", "cd105_pct", "cd45_pct", "cd34_pct", "cd11b_pct",
                    "hla_dr_pct")


def _code(value: str, what: str) -> str:
    return check_identifier(value, what, _CODE, "use 1-64 letters, digits and _ . - / "
                                                "(starting with a letter or digit)")


def _enum(enum_cls, value, what: str):
    try:
        return enum_cls(value)
    except ValueError:
        raise InvalidInput(f"{what} {value!r} unknown; choose one of "
                           f"{', '.join(m.value for m in enum_cls)}") from None


def _positive(value, what: str, *, allow_none: bool = False, allow_zero: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        raise InvalidInput(f"{what} must be a {'non-negative' if allow_zero else 'positive'} "
                           f"finite number, got {value!r}")
    return number


def _unique(session: Session, model, what: str, **key) -> None:
    """Refuse a code that exists already, also in another letter case (``demo-d01`` is
    ``DEMO-D01``: two records that print alike are one mistake away from a mix-up)."""
    ((column, value),) = key.items()
    found = repo.find_by_casefold(session, model, column, value)
    if found is not None:
        existing = getattr(found, column)
        same = "" if existing == value else f" as {existing} (codes are compared ignoring case)"
        raise Conflict(f"{what} {value} already exists{same}")


def add_donor(session: Session, user: User, code: str, *, age_band: str, sex: Sex | str,
              exposures: str | None = None, disease_history: str | None = None) -> Donor:
    """Record a pseudonymous donor.

    Parameters
    ----------
    code : str
        Pseudonymous code (never a name).
    age_band : str
        ``"30-39"`` style band or ``"80+"``; exact ages are not stored.
    sex : Sex or str
    exposures, disease_history : str, optional
        Relevant exposures (smoking, medication) and disease history, free text.
    """
    require_permission(user, Permission.RECORD_DONORS, action="record donors")
    _code(code, "donor code")
    m = _AGE_BAND.fullmatch(age_band or "")
    if not m or (m.group(1) and int(m.group(1)) > int(m.group(2))):
        raise InvalidInput(f"age band {age_band!r}: write it as '30-39' or '80+'")
    sex = _enum(Sex, sex, "sex")
    _unique(session, Donor, "donor", code=code)
    donor = Donor(code=code, age_band=age_band, sex=sex, exposures=exposures,
                  disease_history=disease_history)
    with acting_as(session, user):
        session.add(donor)
        session.flush()
    return donor


def _scopes(scopes: Iterable[ConsentScope | str]) -> str:
    values = sorted({_enum(ConsentScope, s, "consent scope").value for s in scopes})
    if not values:
        raise InvalidInput("a consent needs at least one scope of use")
    return ",".join(values)


def add_consent(session: Session, user: User, donor_code: str, *,
                scopes: Iterable[ConsentScope | str], version: str,
                consented_on: date) -> Consent:
    """Record a donor's consent (it becomes the donor's current consent)."""
    require_permission(user, Permission.RECORD_DONORS, action="record consents")
    donor = repo.donor_by_code(session, donor_code)
    if not version or len(version) > 32:
        raise InvalidInput("consent version must be 1-32 characters (the form's version)")
    if consented_on > date.today():
        raise InvalidInput(f"consent date {consented_on} is in the future")
    consent = Consent(donor_id=donor.id, scopes=_scopes(scopes), version=version,
                      consented_on=consented_on)
    with acting_as(session, user):
        session.add(consent)
        session.flush()
    return consent


def withdraw_consent(session: Session, user: User, donor_code: str, *, withdrawn_on: date,
                     reason: str) -> Consent:
    """Withdraw the donor's current consent; every later use of the material is blocked."""
    require_permission(user, Permission.RECORD_DONORS, action="record consent withdrawal")
    donor = repo.donor_by_code(session, donor_code)
    consent = repo.latest_consent(session, donor.id)
    if consent is None:
        raise RuleViolation(f"donor {donor_code} has no consent to withdraw")
    if consent.withdrawn_on is not None:
        raise Conflict(f"consent {consent.id} of donor {donor_code} was already withdrawn "
                       f"on {consent.withdrawn_on}")
    if not reason or not reason.strip():
        raise InvalidInput("a withdrawal needs a reason")
    if withdrawn_on < consent.consented_on:
        raise InvalidInput(f"withdrawal date {withdrawn_on} is before the consent date "
                           f"{consent.consented_on}")
    with acting_as(session, user), change_reason(session, f"consent withdrawn: {reason}"):
        consent.withdrawn_on = withdrawn_on
        consent.withdrawal_reason = reason.strip()
    return consent


def check_consent(session: Session, donor: Donor, use: ConsentScope | str, *, purpose: str) -> Consent:
    """The donor's current consent if it allows ``use``; ConsentError otherwise.

    ``purpose`` says what was attempted (e.g. "create lot L-7") for the message.
    """
    use = ConsentScope(use)
    consent = repo.latest_consent(session, donor.id)
    if consent is None:
        raise ConsentError(f"donor {donor.code} has no recorded consent; cannot {purpose}")
    if consent.withdrawn_on is not None:
        raise ConsentError(
            f"donor {donor.code}: consent {consent.id} (version {consent.version}) was withdrawn "
            f"on {consent.withdrawn_on}; cannot {purpose}")
    if use not in consent.scope_set:
        raise ConsentError(
            f"donor {donor.code}: consent {consent.id} (version {consent.version}) covers "
            f"{consent.scopes.replace(',', ', ')}, not {use.value}; cannot {purpose}")
    return consent


def add_cell_bank(session: Session, user: User, code: str, *, donor_code: str,
                  tissue: Tissue | str, passage: int, intended_use: ConsentScope | str,
                  parent_code: str | None = None, identity: Mapping[str, float] | None = None,
                  banked_on: date | None = None) -> CellBank:
    """Bank a donor's cells (consent must cover ``intended_use``).

    ``identity`` maps marker names of :data:`IDENTITY_MARKERS` to percent positive.
    """
    require_permission(user, Permission.RECORD_MANUFACTURING, action="create cell banks")
    _code(code, "cell bank code")
    donor = repo.donor_by_code(session, donor_code)
    tissue = _enum(Tissue, tissue, "tissue")
    intended_use = _enum(ConsentScope, intended_use, "intended use")
    if not isinstance(passage, int) or passage < 0 or passage > 100:
        raise InvalidInput(f"passage must be an integer 0-100, got {passage!r}")
    markers = {}
    for key, value in (identity or {}).items():
        if key not in IDENTITY_MARKERS:
            raise InvalidInput(f"identity marker {key!r} unknown; use {', '.join(IDENTITY_MARKERS)}")
        pct = _positive(value, key, allow_zero=True)
        if pct > 100:
            raise InvalidInput(f"{key} must be a percentage 0-100, got {value}")
        markers[key] = pct
    parent_id = None
    if parent_code is not None:
        parent = repo.get_by(session, CellBank, code=parent_code)
        if parent.donor_id != donor.id:
            raise RuleViolation(f"cell bank {parent_code} is from another donor than {donor_code}")
        parent_id = parent.id
    check_consent(session, donor, intended_use, purpose=f"create cell bank {code}")
    _unique(session, CellBank, "cell bank", code=code)
    bank = CellBank(code=code, donor_id=donor.id, parent_id=parent_id, tissue=tissue,
                    intended_use=intended_use, passage=passage, banked_on=banked_on, **markers)
    with acting_as(session, user):
        session.add(bank)
        session.flush()
    return bank


def add_collection(session: Session, user: User, code: str, *, cell_bank_code: str, medium: str,
                   serum_condition: SerumCondition | str, volume_ml: float, culture_days: float,
                   cell_count: float | None = None, collected_on: date | None = None) -> Collection:
    """Record conditioned medium collected from a cell bank's culture."""
    require_permission(user, Permission.RECORD_MANUFACTURING, action="record collections")
    _code(code, "collection code")
    bank = repo.get_by(session, CellBank, code=cell_bank_code)
    check_consent(session, bank.donor, bank.intended_use, purpose=f"record collection {code}")
    if not medium:
        raise InvalidInput("medium must be named")
    collection = Collection(
        code=code, cell_bank_id=bank.id, medium=medium,
        serum_condition=_enum(SerumCondition, serum_condition, "serum condition"),
        volume_ml=_positive(volume_ml, "volume-ml"),
        culture_days=_positive(culture_days, "culture-days"),
        cell_count=_positive(cell_count, "cell-count", allow_none=True),
        collected_on=collected_on)
    _unique(session, Collection, "collection", code=code)
    with acting_as(session, user):
        session.add(collection)
        session.flush()
    return collection


def add_reagent_batch(session: Session, user: User, code: str, *, name: str, batch_number: str,
                      supplier: str | None = None, expires_on: date | None = None) -> ReagentBatch:
    """Record a reagent or consumable batch."""
    require_permission(user, Permission.RECORD_MANUFACTURING, action="record reagent batches")
    _code(code, "reagent batch code")
    if not name or not batch_number:
        raise InvalidInput("a reagent batch needs a name and the supplier's batch number")
    _unique(session, ReagentBatch, "reagent batch", code=code)
    batch = ReagentBatch(code=code, name=name, batch_number=batch_number, supplier=supplier,
                         expires_on=expires_on)
    with acting_as(session, user):
        session.add(batch)
        session.flush()
    return batch


def add_isolation_run(session: Session, user: User, code: str, *, collection_code: str,
                      method: IsolationMethod | str, input_volume_ml: float,
                      output_volume_ml: float, g_force: float | None = None,
                      duration_min: float | None = None, rotor: str | None = None,
                      k_factor: float | None = None, performed_on: date | None = None,
                      operator: User | None = None,
                      reagent_codes: Iterable[str] = ()) -> IsolationRun:
    """Record an EV separation run on a collection; ``operator`` defaults to ``user``.

    ``g_force`` is the relative centrifugal force (x g), ``duration_min`` in
    minutes, ``k_factor`` the rotor's pelleting efficiency at that speed.
    """
    require_permission(user, Permission.RECORD_MANUFACTURING, action="record isolation runs")
    _code(code, "isolation run code")
    collection = repo.get_by(session, Collection, code=collection_code)
    bank = collection.cell_bank
    check_consent(session, bank.donor, bank.intended_use, purpose=f"record isolation run {code}")
    method = _enum(IsolationMethod, method, "isolation method")
    if method in (IsolationMethod.DIFFERENTIAL_ULTRACENTRIFUGATION,
                  IsolationMethod.DENSITY_GRADIENT) and g_force is None:
        raise InvalidInput(f"{method.value} needs the g-force (x g)")
    inp = _positive(input_volume_ml, "input-volume-ml")
    out = _positive(output_volume_ml, "output-volume-ml")
    _unique(session, IsolationRun, "isolation run", code=code)
    run = IsolationRun(code=code, collection_id=collection.id, method=method,
                       g_force=_positive(g_force, "g-force", allow_none=True),
                       duration_min=_positive(duration_min, "duration-min", allow_none=True),
                       rotor=rotor, k_factor=_positive(k_factor, "k-factor", allow_none=True),
                       input_volume_ml=inp, output_volume_ml=out,
                       operator_id=(operator or user).id, performed_on=performed_on)
    reagents = [repo.get_by(session, ReagentBatch, code=c) for c in reagent_codes]
    with acting_as(session, user):
        session.add(run)
        session.flush()
        for r in reagents:
            session.add(ReagentUse(reagent_batch_id=r.id, isolation_run_id=run.id))
        session.flush()
    return run
