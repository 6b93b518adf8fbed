"""Controlled vocabularies of the records layer (stored as their values)."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AuditAction",
    "ConsentScope",
    "IsolationMethod",
    "LinkKind",
    "LotStatus",
    "ProductForm",
    "Role",
    "SerumCondition",
    "Sex",
    "SignatureMeaning",
    "Tissue",
    "VialStatus",
]


class Role(StrEnum):
    ADMIN = "admin"
    ANALYST = "analyst"
    REVIEWER = "reviewer"
    QA = "qa"
    CLINICIAN = "clinician"
    VIEWER = "viewer"


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class ConsentScope(StrEnum):
    """What a donor allowed their material to be used for."""

    RESEARCH = "research"
    CLINICAL_MANUFACTURING = "clinical_manufacturing"
    COSMETIC = "cosmetic"
    COMMERCIAL = "commercial"


class Tissue(StrEnum):
    BONE_MARROW = "bone_marrow"
    ADIPOSE = "adipose"
    UMBILICAL_CORD = "umbilical_cord"
    OTHER = "other"


class SerumCondition(StrEnum):
    SERUM_FREE = "serum_free"
    EV_DEPLETED_SERUM = "ev_depleted_serum"


class IsolationMethod(StrEnum):
    DIFFERENTIAL_ULTRACENTRIFUGATION = "differential_ultracentrifugation"
    DENSITY_GRADIENT = "density_gradient"
    SIZE_EXCLUSION_CHROMATOGRAPHY = "size_exclusion_chromatography"
    TANGENTIAL_FLOW_FILTRATION = "tangential_flow_filtration"
    ULTRAFILTRATION = "ultrafiltration"
    PRECIPITATION = "precipitation"
    IMMUNOAFFINITY = "immunoaffinity"


class LotStatus(StrEnum):
    IN_PROCESS = "in_process"
    AWAITING_RELEASE = "awaiting_release"
    RELEASED = "released"
    REJECTED = "rejected"
    QUARANTINED = "quarantined"


class LinkKind(StrEnum):
    """How a child lot came from a parent: several parents pooled, or one split."""

    POOL = "pool"
    SPLIT = "split"


class ProductForm(StrEnum):
    TOPICAL_SERUM = "topical_serum"
    TOPICAL_CREAM = "topical_cream"
    TOPICAL_MASK = "topical_mask"
    TOPICAL_GEL = "topical_gel"
    INJECTABLE = "injectable"
    INTRAVENOUS = "intravenous"
    INHALED = "inhaled"


class VialStatus(StrEnum):
    AVAILABLE = "available"
    QUARANTINED = "quarantined"
    ADMINISTERED = "administered"
    DESTROYED = "destroyed"


class SignatureMeaning(StrEnum):
    """21 CFR 11.50(a)(3): the meaning of an electronic signature."""

    AUTHORSHIP = "authorship"
    REVIEW = "review"
    APPROVAL = "approval"
    RESPONSIBILITY = "responsibility"


class AuditAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
