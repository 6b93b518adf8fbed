"""Dose computation: protocol dose level + lot measurements -> particles and volume to draw.

A dose written in particles/kg is multiplied by body weight; a dose written
in ug protein goes through the lot's own particle:protein ratio (particles per
ug protein, measured at release), never a generic constant. The volume to
draw is particles divided by the lot's particle concentration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InvalidInput, RuleViolation, UnitError
from ._protocol import DoseLevel, DoseUnit

__all__ = ["DoseComputation", "compute_dose"]

MAX_BODY_WEIGHT_KG = 500.0  # above any recorded human weight: a typo (grams?) not a person


@dataclass(frozen=True)
class DoseComputation:
    """A computed dose.

    Attributes
    ----------
    arm_code : str
        Arm the level belongs to.
    level : int or None
        1-based dose level; ``None`` for a custom dose.
    dose_amount : float
        Dose as prescribed, in ``dose_unit``.
    dose_unit : DoseUnit
        particles, particles/kg or ug protein.
    particles : float
        Total particles to administer.
    volume_ml : float
        Volume of product to draw, mL.
    protein_ug : float or None
        Protein content of that volume, ug (when the lot's ratio is known).
    body_weight_kg : float or None
        Weight used (particles/kg doses), kg.
    lot_particles_per_ml : float
        Lot concentration used, particles/mL.
    lot_particles_per_ug_protein : float or None
        Lot particle:protein ratio used, particles/ug.
    maximum_dose : float
        Protocol maximum in ``dose_unit``.
    fraction_of_maximum : float
        ``dose_amount / maximum_dose`` (<= 1 for an allowed dose).
    """

    arm_code: str
    level: int | None
    dose_amount: float
    dose_unit: DoseUnit
    particles: float
    volume_ml: float
    protein_ug: float | None
    body_weight_kg: float | None
    lot_particles_per_ml: float
    lot_particles_per_ug_protein: float | None
    maximum_dose: float
    fraction_of_maximum: float


def _positive(value: float | None, name: str, unit: str) -> float:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise InvalidInput(f"{name} must be a positive number of {unit}, got {value!r}")
    return float(value)


def compute_dose(
    level: DoseLevel,
    *,
    body_weight_kg: float | None = None,
    lot_particles_per_ml: float,
    lot_particles_per_ug_protein: float | None = None,
) -> DoseComputation:
    """Turn a protocol dose level into particles and a volume to draw.

    Parameters
    ----------
    level : DoseLevel
        From :meth:`Arm.level` (or :meth:`Arm.custom_dose` for an override).
    body_weight_kg : float, optional
        Subject's body weight in kg; required for particles/kg doses.
    lot_particles_per_ml : float
        Particle concentration of the lot (as filled), particles/mL.
    lot_particles_per_ug_protein : float, optional
        The lot's particle:protein ratio, particles per ug protein; required
        for ug-protein doses, used otherwise to report the protein given.

    Returns
    -------
    DoseComputation

    Raises
    ------
    RuleViolation
        The dose exceeds the protocol maximum.
    UnitError
        particles/kg without a body weight, ug protein without the lot's ratio.
    InvalidInput
        Non-positive or non-finite numbers, or an implausible weight.

    Notes
    -----
    particles = amount (particles), amount * weight (particles/kg) or
    amount * ratio (ug protein); volume_ml = particles / concentration.
    """
    concentration = _positive(lot_particles_per_ml, "lot concentration", "particles/mL")
    ratio = None
    if lot_particles_per_ug_protein is not None:
        ratio = _positive(lot_particles_per_ug_protein, "lot particle:protein ratio",
                          "particles per ug protein")
    amount = _positive(level.amount, f"arm {level.arm_code} dose", str(level.unit))
    label = f"arm {level.arm_code} " + (f"level {level.level}" if level.level else "custom dose")
    if amount > level.maximum_dose * (1 + 1e-12):
        raise RuleViolation(f"{label}: dose {amount:.4g} {level.unit.value} exceeds the protocol "
                            f"maximum {level.maximum_dose:.4g} {level.unit.value}")
    weight = None
    if level.unit is DoseUnit.PARTICLES_PER_KG:
        if body_weight_kg is None:
            raise UnitError(f"{label}: dose is in particles/kg; give the subject's body weight in kg")
        weight = _positive(body_weight_kg, "body weight", "kg")
        if weight > MAX_BODY_WEIGHT_KG:
            raise InvalidInput(f"body weight {weight:g} kg is implausible (> {MAX_BODY_WEIGHT_KG:g} "
                               "kg); give the weight in kg")
        particles = amount * weight
    elif level.unit is DoseUnit.UG_PROTEIN:
        if ratio is None:
            raise UnitError(f"{label}: dose is in ug protein; give the lot's particle:protein "
                            "ratio (particles per ug protein) to convert it")
        particles = amount * ratio
    else:
        particles = amount
    protein = particles / ratio if ratio is not None else None
    volume_ml = particles / concentration
    if not (math.isfinite(particles) and math.isfinite(volume_ml)
            and (protein is None or math.isfinite(protein))):
        # e.g. 1e-300 particles/mL: an infinite volume is a typo, not a dose
        raise InvalidInput(f"{label}: {particles:.4g} particles at {concentration:.4g} "
                           f"particles/mL gives no finite volume to draw; check the lot values")
    return DoseComputation(
        arm_code=level.arm_code,
        level=level.level,
        dose_amount=amount,
        dose_unit=level.unit,
        particles=particles,
        volume_ml=volume_ml,
        protein_ug=protein,
        body_weight_kg=weight,
        lot_particles_per_ml=concentration,
        lot_particles_per_ug_protein=ratio,
        maximum_dose=level.maximum_dose,
        fraction_of_maximum=amount / level.maximum_dose,
    )
