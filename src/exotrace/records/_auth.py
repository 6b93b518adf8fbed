"""Users, roles and permissions, password checks, electronic signatures, segregation of duties.

Authority checks live here (services), never in interfaces: the CLI, the API
and the web pages call the same functions.
"""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.orm import Session

from ..errors import AuthError, Conflict, IntegrityFailure, InvalidInput, PermissionDenied
from . import _repositories as repo
from ._accounts import (
    MIN_PASSWORD_LENGTH,
    SignInFailed,
    check_demo_allowed,
    check_not_locked,
    check_password_policy,
    database_identity,
    reset_failed_sign_ins,
)
from ._audit import check_matches_trail, record_image
from ._base import Base, utcnow
from ._context import BOOTSTRAP_ACTOR, acting_as
from ._enums import Role, SignatureMeaning
from ._models_auth import Signature, User
from ._models_lot import Lot, Measurement
from ._signing import key_id, keyed_signature_hash, load_signing_key, signature_problems

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "Permission",
    "ROLE_PERMISSIONS",
    "add_user",
    "authenticate",
    "change_password",
    "check_not_author",
    "check_segregation",
    "data_producers",
    "has_permission",
    "hash_password",
    "lot_data_producers",
    "require_permission",
    "require_signature",
    "set_user_active",
    "sign",
    "signature_is_current",
]

_USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{1,63}$")
_hasher = PasswordHasher()  # argon2id with the library's current defaults


class Permission(StrEnum):
    """Actions a role may take; services check them."""

    MANAGE_USERS = "manage_users"
    RECORD_DONORS = "record_donors"              # donors, consents
    RECORD_MANUFACTURING = "record_manufacturing"  # cell banks .. lots, vials, products
    ENTER_RESULTS = "enter_results"              # measurements, imports
    REVIEW = "review"                            # verify results (second person)
    APPROVE = "approve"                          # QA release, approval signatures
    CHANGE_LOT_STATUS = "change_lot_status"      # quarantine, reject, send to release
    RECORD_CLINICAL = "record_clinical"          # subjects, administrations, AEs (clinic)
    VIEW = "view"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset({Permission.MANAGE_USERS, Permission.RECORD_DONORS,
                           Permission.RECORD_MANUFACTURING, Permission.VIEW}),
    Role.ANALYST: frozenset({Permission.RECORD_DONORS, Permission.RECORD_MANUFACTURING,
                             Permission.ENTER_RESULTS, Permission.CHANGE_LOT_STATUS,
                             Permission.VIEW}),
    Role.REVIEWER: frozenset({Permission.REVIEW, Permission.VIEW}),
    Role.QA: frozenset({Permission.REVIEW, Permission.APPROVE, Permission.CHANGE_LOT_STATUS,
                        Permission.VIEW}),
    Role.CLINICIAN: frozenset({Permission.RECORD_DONORS, Permission.RECORD_CLINICAL,
                               Permission.VIEW}),
    Role.VIEWER: frozenset({Permission.VIEW}),
}

#: Which permission each signature meaning needs (authorship: anyone who may write).
_MEANING_PERMISSION = {
    SignatureMeaning.REVIEW: Permission.REVIEW,
    SignatureMeaning.APPROVAL: Permission.APPROVE,
    SignatureMeaning.RESPONSIBILITY: Permission.APPROVE,
}


def has_permission(user: User, permission: Permission) -> bool:
    return user.active and permission in ROLE_PERMISSIONS[Role(user.role)]


def require_permission(user: User, permission: Permission, *, action: str | None = None) -> None:
    """Raise PermissionDenied unless ``user``'s role grants ``permission``."""
    if not user.active:
        raise AuthError(f"user {user.username} is inactive")
    if permission not in ROLE_PERMISSIONS[Role(user.role)]:
        raise PermissionDenied(
            f"user {user.username} (role {Role(user.role).value}) may not "
            f"{action or permission.value.replace('_', ' ')}; needs permission {permission.value}")


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (salted; slow on purpose, ~50 ms)."""
    return _hasher.hash(password)


def add_user(session: Session, username: str, role: Role | str, *, password: str | None = None,
             full_name: str | None = None, acting: User | None = None,
             password_hash: str | None = None, demo: bool = False) -> User:
    """Create a user account.

    The first user of an empty database may be created without ``acting``
    (bootstrap) and must then be an admin; it sets its own password. Afterwards
    ``acting`` must be an admin, and the new account must change its password
    at its first sign-in. ``password_hash`` (an argon2 hash) replaces
    ``password`` for pre-hashed accounts such as the demo users; ``demo``
    marks a demo account (no forced change), accepted only in a demo database
    (:func:`exotrace.records.database_identity`).
    """
    if not _USERNAME.fullmatch(username or ""):
        raise InvalidInput(f"user name {username!r}: use 2-64 lower-case letters, digits, '_', '.', '-'"
                           ", starting with a letter")
    try:
        role = Role(role)
    except ValueError:
        raise InvalidInput(f"role {role!r} unknown; choose one of "
                           f"{', '.join(r.value for r in Role)}") from None
    if password_hash is None:
        if password is None:
            raise InvalidInput("a password is required")
        check_password_policy(password, username)
        password_hash = hash_password(password)
    database_identity(session, demo=demo)  # refuses demo accounts in a real database
    bootstrap = repo.count_users(session) == 0 and acting is None
    if bootstrap:
        if role is not Role.ADMIN:
            raise PermissionDenied("the first user of a new database must be an admin")
        actor = BOOTSTRAP_ACTOR
    else:
        if acting is None:
            raise AuthError("adding a user needs an acting admin (--user NAME)")
        require_permission(acting, Permission.MANAGE_USERS, action="add users")
        actor = acting
    if repo.find_by(session, User, username=username) is not None:
        raise Conflict(f"user {username} already exists")
    if len(full_name or "") > User.__table__.c.full_name.type.length:
        raise InvalidInput(f"full name: at most {User.__table__.c.full_name.type.length} "
                           "characters")
    user = User(username=username, full_name=full_name or username, role=role,
                password_hash=password_hash, active=True, demo=demo,
                must_change_password=not (bootstrap or demo))
    with acting_as(session, actor):
        session.add(user)
        session.flush()
    return user


def authenticate(session: Session, username: str, password: str, *,
                 allow_password_change: bool = False) -> User:
    """The active user ``username`` if ``password`` matches; AuthError otherwise.

    Refused, in this order: unknown or inactive account, locked account (even
    with the right password), demo account outside a demo database, account
    row that differs from its last audited image (IntegrityFailure), wrong
    password (:class:`SignInFailed`: the interface records it with
    :func:`exotrace.records.note_failed_sign_in`), and an account that must
    first set its own password (unless ``allow_password_change``).
    """
    user = repo.find_by(session, User, username=username)
    if user is None:
        raise AuthError(f"user {username}: unknown user or wrong password")
    if not user.active:
        raise AuthError(f"user {username} is inactive")
    check_not_locked(user)
    check_demo_allowed(session, user)
    check_matches_trail(session, user)
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise SignInFailed(f"user {username}: unknown user or wrong password", username) from None
    if user.must_change_password and not allow_password_change:
        raise AuthError(f"user {username} must set a personal password first: "
                        f"exotrace user password --user {username}")
    reset_failed_sign_ins(session, user)
    return user


def change_password(session: Session, username: str, old_password: str,
                    new_password: str) -> User:
    """A user sets their own password (old one re-entered; policy checked).

    Clears the forced change of an account an administrator created.
    """
    user = authenticate(session, username, old_password, allow_password_change=True)
    if user.demo:
        raise InvalidInput(f"user {username} is a demo account; its password stays 'demo'")
    check_password_policy(new_password, username)
    if new_password == old_password:
        raise InvalidInput("the new password must differ from the old one")
    with acting_as(session, user):
        user.password_hash = hash_password(new_password)
        user.must_change_password = False
        user.password_changed_at = utcnow()
        session.flush()
    return user


def set_user_active(session: Session, acting: User, username: str, active: bool) -> User:
    """Activate or deactivate an account (admins only); accounts are never deleted.

    An admin cannot deactivate their own account: another admin must, so the
    database always keeps an active admin who can undo it.
    """
    require_permission(acting, Permission.MANAGE_USERS, action="change user accounts")
    user = repo.get_by(session, User, username=username)
    if not active and user.id == acting.id:
        raise PermissionDenied(f"user {username}: an admin cannot deactivate their own "
                               "account; another admin must")
    with acting_as(session, acting):
        user.active = active
        session.flush()
    return user


def _content_sha256(session: Session, record: Base) -> str:
    return hashlib.sha256(record_image(session, record).encode("utf-8")).hexdigest()


def sign(session: Session, user: User, password: str, record: Base,
         meaning: SignatureMeaning | str) -> Signature:
    """Sign ``record`` electronically (21 CFR 11.50, 11.70, 11.200).

    The password is re-entered and checked at every signing (never taken from
    an API token or the environment by the interfaces). The signature stores
    the printed name, UTC time, meaning and the SHA-256 of the record's stored
    content, which binds it to that content, and an HMAC of these under the
    server's signing key (:mod:`exotrace.records._signing`), which a row
    written without the key cannot carry.

    Raises
    ------
    AuthError
        Wrong password or inactive user.
    PermissionDenied
        The role may not sign with this meaning.
    """
    meaning = SignatureMeaning(meaning)
    verified = authenticate(session, user.username, password)
    if verified.id != user.id:
        raise AuthError(f"user {user.username}: identity mismatch")
    needed = _MEANING_PERMISSION.get(meaning)
    if needed is None:
        if Role(user.role) is Role.VIEWER:
            raise PermissionDenied(f"user {user.username} (viewer) may not sign")
    else:
        require_permission(user, needed, action=f"sign for {meaning.value}")
    if not isinstance(record, Base) or getattr(type(record), "__immutable__", False):
        raise InvalidInput(f"{type(record).__name__} records cannot be signed")
    mapper = record.__mapper__
    record_id = mapper.primary_key_from_instance(record)[0]
    if record_id is None:
        session.flush()
        record_id = mapper.primary_key_from_instance(record)[0]
    key = load_signing_key(create=True)
    content = _content_sha256(session, record)
    signed_at = utcnow()
    keyed = keyed_signature_hash(key, user_id=user.id, printed_name=user.printed_name,
                                 meaning=meaning.value, signed_at=signed_at,
                                 table_name=record.__tablename__, record_id=record_id,
                                 content_sha256=content)
    signature = Signature(table_name=record.__tablename__, record_id=record_id,
                          content_sha256=content, user_id=user.id,
                          printed_name=user.printed_name, meaning=meaning, signed_at=signed_at,
                          key_id=key_id(key), keyed_hash=keyed)
    with acting_as(session, user):
        session.add(signature)
        session.flush()
    return signature


def signature_is_current(session: Session, signature: Signature, record: Base) -> bool:
    """True when ``record``'s stored content still matches what was signed and the
    signature's keyed hash checks out under the server's key."""
    if signature.table_name != record.__tablename__ or \
            signature.record_id != record.__mapper__.primary_key_from_instance(record)[0]:
        return False
    if signature_problems(signature, load_signing_key()):
        return False
    return _content_sha256(session, record) == signature.content_sha256


def require_signature(session: Session, record: Base, meaning: SignatureMeaning | str, *,
                      signer_id: int | None = None) -> Signature:
    """The newest valid signature of ``record`` with ``meaning`` (by ``signer_id`` if given).

    A state change that needs a signature calls this before trusting the
    record: a signature row without a valid keyed hash, or one whose record
    changed since, does not count.

    Raises
    ------
    IntegrityFailure
        No such signature.
    """
    meaning = SignatureMeaning(meaning)
    pk = record.__mapper__.primary_key_from_instance(record)[0]
    for sig in reversed(repo.signatures_for(session, record.__tablename__, pk)):
        if sig.meaning is meaning and (signer_id is None or sig.user_id == signer_id) \
                and signature_is_current(session, sig, record):
            return sig
    raise IntegrityFailure(f"{record.__tablename__} {pk} has no valid {meaning.value} signature "
                           "(missing, forged or the record changed since it was signed)")


def lot_data_producers(session: Session, lot: Lot) -> dict[int, str]:
    """Users who produced a lot's data, with what they did.

    Producers: who created the lot, performed its isolation run, entered or
    imported its measurements, and anyone the audit trail shows creating or
    changing the lot or its measurements.
    """
    producers: dict[int, str] = {}

    def note(uid, what):
        if uid is not None:
            producers.setdefault(uid, what)

    note(lot.created_by_id, f"created lot {lot.number}")
    for uid in repo.isolation_operator_ids(session, lot.id):
        note(uid, f"performed the isolation run of lot {lot.number}")
    measurements = repo.lot_measurements(session, lot.id)
    for m in measurements:
        note(m.entered_by_id, f"entered measurement {m.id} ({m.attribute}) of lot {lot.number}")
    for rf in repo.lot_result_files(session, lot.id):
        note(rf.imported_by_id, f"imported {rf.file_name} for lot {lot.number}")
    for uid in repo.audit_actor_ids(session, "lot", [str(lot.id)]):
        note(uid, f"changed lot {lot.number}")
    for uid in repo.audit_actor_ids(session, "measurement", [str(m.id) for m in measurements]):
        note(uid, f"changed a measurement of lot {lot.number}")
    return producers


def data_producers(session: Session, record: Base) -> set[int]:
    """Users the audit trail shows creating or changing ``record`` (any model)."""
    pk = ",".join(str(v) for v in record.__mapper__.primary_key_from_instance(record))
    return repo.audit_actor_ids(session, record.__tablename__, [pk])


def check_segregation(session: Session, user: User, lot: Lot, *, action: str) -> None:
    """Four-eyes rule: whoever produced a lot's data may not verify, approve or release it.

    Raises
    ------
    PermissionDenied
        Names the user, what they did and the action refused.
    """
    what = lot_data_producers(session, lot).get(user.id)
    if what is not None:
        raise PermissionDenied(
            f"user {user.username} {what}; the same person may not {action} it "
            "(segregation of duties)")


def check_not_author(session: Session, user: User, record: Base, *, action: str) -> None:
    """Four-eyes rule for one record (e.g. a result): its author may not verify it."""
    author_ids = data_producers(session, record)
    if isinstance(record, Measurement):
        author_ids.add(record.entered_by_id)
    if user.id in author_ids:
        pk = record.__mapper__.primary_key_from_instance(record)[0]
        raise PermissionDenied(
            f"user {user.username} wrote {record.__tablename__} {pk}; the same person may not "
            f"{action} it (segregation of duties)")
