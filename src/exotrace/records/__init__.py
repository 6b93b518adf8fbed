"""exotrace.records: persistence, audit trail, users and signatures, traceability."""

from . import _repositories as repositories  # noqa: E402 - public name for the SQL layer
from . import _text_guard  # noqa: F401  (registers the text check on every flush)
from ._accounts import (
    FAILURE_WINDOW,
    LOCK_DURATION,
    MAX_FAILED_SIGN_INS,
    SignInFailed,
    check_password_policy,
    database_identity,
    note_failed_sign_in,
)
from ._audit import (
    AuditFinding,
    AuditReport,
    audited_bulk_insert,
    audited_tables,
    canonical_json,
    record_image,
    verify_audit_trail,
)
from ._auth import (
    MIN_PASSWORD_LENGTH,
    ROLE_PERMISSIONS,
    Permission,
    add_user,
    authenticate,
    change_password,
    check_not_author,
    check_segregation,
    data_producers,
    has_permission,
    hash_password,
    lot_data_producers,
    require_permission,
    require_signature,
    set_user_active,
    sign,
    signature_is_current,
)
from ._base import NAMING_CONVENTION, Base, UTCDateTime, clock_set_to, enum_column_type, utcnow
from ._context import BOOTSTRAP_ACTOR, Actor, acting_as, change_reason, current_actor, set_actor
from ._db import (
    MIGRATIONS_DIR,
    current_revision,
    head_revision,
    make_engine,
    open_session,
    require_schema,
    transaction,
    unit_of_work,
    upgrade_database,
)
from ._enums import (
    AuditAction,
    ConsentScope,
    IsolationMethod,
    LinkKind,
    LotStatus,
    ProductForm,
    Role,
    SerumCondition,
    Sex,
    SignatureMeaning,
    Tissue,
    VialStatus,
)
from ._iso7064 import append_check_character, check_character, is_valid_identifier
from ._models_audit import GENESIS_HASH, AuditEntry
from ._models_auth import ApiToken, DatabaseIdentity, Signature, User, WebSession
from ._models_lot import Lot, LotLink, Measurement, Product, ResultFile, Storage, Vial
from ._models_source import (
    CellBank,
    Collection,
    Consent,
    Donor,
    IsolationRun,
    ReagentBatch,
    ReagentUse,
)
from ._services_lot import (
    ALLOWED_TRANSITIONS,
    add_measurement,
    add_product,
    add_storage,
    check_lineage,
    check_lot_consent,
    check_releasable,
    create_lot,
    create_vials,
    import_measurement_file,
    measurements_from_result,
    pool_lots,
    set_lot_status,
    split_lot,
)
from ._services_source import (
    IDENTITY_MARKERS,
    add_cell_bank,
    add_collection,
    add_consent,
    add_donor,
    add_isolation_run,
    add_reagent_batch,
    check_consent,
    withdraw_consent,
)
from ._settings import RecordsSettings, default_database_url, get_settings
from ._signing import load_signing_key, signature_problems
from ._tokens import authenticate_token, create_token, list_tokens, revoke_token, token_view
from ._trace import register_forward_extension, trace_back, trace_forward
from ._views import (
    audit_entry_view,
    consent_view,
    donor_view,
    lot_summary,
    lot_view,
    measurement_view,
    record_view,
    user_view,
    vial_view,
)
from ._web_sessions import close_web_session, open_web_session, resolve_web_session

__all__ = [
    "audit_entry_view", "consent_view", "donor_view", "lot_summary", "lot_view",
    "measurement_view", "record_view", "repositories", "user_view", "vial_view",
    "ALLOWED_TRANSITIONS", "IDENTITY_MARKERS", "MIN_PASSWORD_LENGTH", "Permission",
    "ROLE_PERMISSIONS", "add_cell_bank", "add_collection", "add_consent", "add_donor",
    "add_isolation_run", "add_measurement", "add_product", "add_reagent_batch", "add_storage",
    "add_user", "authenticate", "check_consent", "check_lineage", "check_lot_consent",
    "check_releasable", "check_not_author",
    "check_segregation", "create_lot", "create_vials", "data_producers", "has_permission",
    "hash_password", "import_measurement_file", "lot_data_producers", "measurements_from_result",
    "pool_lots", "register_forward_extension", "require_permission", "set_lot_status",
    "set_user_active", "sign", "signature_is_current", "split_lot", "trace_back",
    "trace_forward", "withdraw_consent",
    "FAILURE_WINDOW", "LOCK_DURATION", "MAX_FAILED_SIGN_INS", "SignInFailed", "ApiToken",
    "DatabaseIdentity", "authenticate_token", "change_password", "check_password_policy",
    "create_token", "database_identity", "list_tokens", "load_signing_key",
    "note_failed_sign_in", "require_signature", "revoke_token", "signature_problems",
    "token_view",
    "Actor", "AuditAction", "AuditEntry", "AuditFinding", "AuditReport", "BOOTSTRAP_ACTOR",
    "Base", "CellBank", "Collection", "Consent", "ConsentScope", "Donor", "GENESIS_HASH",
    "IsolationMethod", "IsolationRun", "LinkKind", "Lot", "LotLink", "LotStatus",
    "MIGRATIONS_DIR", "Measurement", "NAMING_CONVENTION", "Product", "ProductForm",
    "ReagentBatch", "ReagentUse", "RecordsSettings", "ResultFile", "Role", "SerumCondition",
    "Sex", "Signature", "SignatureMeaning", "Storage", "Tissue", "UTCDateTime", "User", "Vial",
    "VialStatus", "acting_as", "append_check_character", "audited_bulk_insert",
    "audited_tables", "canonical_json", "change_reason", "check_character", "current_actor",
    "current_revision", "default_database_url", "enum_column_type", "get_settings",
    "head_revision", "is_valid_identifier", "make_engine", "open_session", "record_image",
    "require_schema", "set_actor", "transaction", "unit_of_work", "upgrade_database", "utcnow",
    "verify_audit_trail",
    "clock_set_to",
]

# Quality records and the release workflow (issue 5); imported last: they build on the above.
from . import _repositories_quality as quality_repositories  # noqa: E402
from ._models_quality import (  # noqa: E402
    DispositionAction,
    LotDisposition,
    LotReferenceValue,
    LotSizeDistribution,
    LotSpecification,
    LotVerification,
    OOSInvestigationRecord,
    QualityResult,
    SpecificationRecord,
)
from ._quality_certificate import build_certificate  # noqa: E402
from ._quality_common import MEASUREMENT_ALIASES  # noqa: E402
from ._quality_comparability import compare_lots, parse_margins  # noqa: E402
from ._quality_demo import load_quality_demo  # noqa: E402
from ._quality_evaluation import evaluate_lot, evaluate_lot_row, release_state  # noqa: E402
from ._quality_investigations import (  # noqa: E402
    close_investigation,
    describe_investigation,
    investigation_view,
    list_investigation_views,
)
from ._quality_release import (  # noqa: E402
    quarantine_lot,
    reject_lot,
    release_lot,
    submit_for_release,
    verify_lot,
)
from ._quality_results import (  # noqa: E402
    add_quality_result,
    add_size_distribution,
    set_reference_value,
)
from ._quality_specs import (  # noqa: E402
    assign_specification,
    export_specification,
    import_specification,
    specification_in_force,
    specification_view,
)
from ._quality_trends import LotTrend, spc_lots  # noqa: E402

__all__ += [
    "DispositionAction", "LotDisposition", "LotReferenceValue", "LotSizeDistribution",
    "LotSpecification", "LotTrend", "LotVerification", "MEASUREMENT_ALIASES",
    "OOSInvestigationRecord", "QualityResult", "SpecificationRecord", "add_quality_result",
    "add_size_distribution", "assign_specification", "build_certificate", "close_investigation", "describe_investigation",
    "compare_lots", "evaluate_lot", "evaluate_lot_row", "export_specification", "import_specification",
    "investigation_view", "list_investigation_views", "load_quality_demo", "parse_margins",
    "quality_repositories", "quarantine_lot", "reject_lot", "release_lot", "release_state",
    "set_reference_value", "specification_in_force", "specification_view", "spc_lots",
    "submit_for_release", "verify_lot",
]

# Clinic records (subjects, consent, administrations, AEs, observations, dose decisions).
# Importing _clinic_recall also registers "subjects" in trace_forward.
from . import _repositories_clinic as clinic_repositories  # noqa: E402
from ._clinic_administration import administer, administration_view  # noqa: E402
from ._clinic_common import protocol_model  # noqa: E402
from ._clinic_demo import load_clinic_demo  # noqa: E402
from ._clinic_dosing import decide_dose, decision_view, lot_product_type  # noqa: E402
from ._clinic_enrolment import (  # noqa: E402
    enrol_subject,
    record_study_consent,
    withdraw_study_consent,
)
from ._clinic_events import (  # noqa: E402
    add_adverse_event,
    adverse_event_view,
    observation_view,
    record_observation,
    record_visit,
)
from ._clinic_exports import build_export_data, export_fhir, export_sdtm  # noqa: E402
from ._clinic_protocols import get_protocol, import_protocol, protocol_record_view  # noqa: E402
from ._clinic_recall import recall  # noqa: E402
from ._clinic_report import clinic_report  # noqa: E402
from ._clinic_views import followup_due, list_subjects, subject_view  # noqa: E402
from ._models_clinic import (  # noqa: E402
    Administration,
    ClinicalAdverseEvent,
    ClinicalProtocol,
    DecisionStatus,
    DecisionTrigger,
    DoseDecision,
    Enrolment,
    Observation,
    StudyConsent,
    Subject,
)

__all__ += [
    "Administration", "ClinicalAdverseEvent", "ClinicalProtocol", "DecisionStatus",
    "DecisionTrigger", "DoseDecision", "Enrolment", "Observation", "StudyConsent", "Subject",
    "add_adverse_event", "administer", "administration_view", "adverse_event_view",
    "build_export_data", "clinic_report", "clinic_repositories", "decide_dose", "decision_view",
    "enrol_subject", "export_fhir", "export_sdtm", "followup_due", "get_protocol",
    "import_protocol", "list_subjects", "load_clinic_demo", "lot_product_type",
    "observation_view", "protocol_model", "protocol_record_view", "recall",
    "record_observation", "record_study_consent", "record_visit", "subject_view",
    "withdraw_study_consent",
]

# One lot measured by several sizing methods (compare-methods).
from ._services_methods import (  # noqa: E402
    load_result_json,
    lot_method_comparison,
    lot_method_distributions,
)

__all__ += ["load_result_json", "lot_method_comparison", "lot_method_distributions"]

# Integrity beyond the chain: checkpoints, database roles, signature requirements.
from ._checkpoint import (  # noqa: E402
    checkpoint_now,
    generate_checkpoint_keys,
    logbook_line,
    verify_checkpoints,
    write_checkpoint_if_due,
)
from ._db_roles import grant_roles, protection_findings, role_statements  # noqa: E402
from ._integrity import require_release_signature, signature_findings, verify_records  # noqa: E402

__all__ += [
    "checkpoint_now", "generate_checkpoint_keys", "grant_roles", "logbook_line",
    "protection_findings", "require_release_signature", "role_statements", "signature_findings",
    "verify_checkpoints", "verify_records", "write_checkpoint_if_due",
]

__all__ += ["WebSession", "close_web_session", "open_web_session", "resolve_web_session"]

# Web branches add their service exports below, one block per branch.

# The home page's attention lists; audit trail browsing; account administration.
from ._dashboard import attention_lists  # noqa: E402

__all__ += ["attention_lists"]
from ._accounts_admin import list_user_views, reset_user_password, unlock_user  # noqa: E402
from ._audit_browse import MAX_AUDIT_PAGE, audit_page  # noqa: E402

__all__ += ["MAX_AUDIT_PAGE", "audit_page", "list_user_views", "reset_user_password",
            "unlock_user"]
# web-release: read models of the release-workflow and quality pages.
from ._web_release import (  # noqa: E402
    SIGNING_STATEMENTS,
    close_lot_investigation,
    lot_release_overview,
    quality_choices,
    signing_statement,
)

__all__ += ["SIGNING_STATEMENTS", "close_lot_investigation", "lot_release_overview", "quality_choices",
            "signing_statement"]
# Web clinic: every administration check at once (nothing written), form choices.
from ._web_clinic import (  # noqa: E402
    ADMINISTRATION_CHECKS,
    administration_check,
    enrolled_subject_codes,
    subject_form_choices,
    subjects_page,
)

__all__ += ["ADMINISTRATION_CHECKS", "administration_check", "enrolled_subject_codes",
            "subject_form_choices", "subjects_page"]
# web-upload: attach an uploaded vendor file or NTA result to a lot.
from ._web_upload import attach_instrument_file, attach_nta_result  # noqa: E402

__all__ += ["attach_instrument_file", "attach_nta_result"]
# Lot pages and the lot API (web-lots).
from ._web_lots import (  # noqa: E402
    LOT_LIST_MAX_PER_PAGE,
    LOT_LIST_SORTS,
    LotListQuery,
    lot_certificate,
    lot_genealogy,
    lot_history,
    lot_list,
    lot_page,
    lot_product_types,
    lot_signatures,
    lot_size_distributions,
)

__all__ += ["LOT_LIST_MAX_PER_PAGE", "LOT_LIST_SORTS", "LotListQuery", "lot_certificate",
            "lot_genealogy", "lot_history", "lot_list", "lot_page", "lot_product_types",
            "lot_signatures",
            "lot_size_distributions"]
