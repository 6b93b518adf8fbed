"""Fixtures for the clinic core: the two shipped protocols and a mutable copy for bad-input tests."""

from __future__ import annotations

import copy

import pytest
import yaml

from exotrace.clinic import example_protocol_path, load_protocol, parse_protocol


@pytest.fixture(scope="session")
def cardio():
    return load_protocol(example_protocol_path("cardiomyopathy"))


@pytest.fixture(scope="session")
def skin():
    return load_protocol(example_protocol_path("skin_rejuvenation"))


@pytest.fixture(scope="session")
def _cardio_raw() -> dict:
    return yaml.safe_load(example_protocol_path("cardiomyopathy").read_text(encoding="utf-8"))


@pytest.fixture
def cardio_raw(_cardio_raw) -> dict:
    """A fresh, mutable copy of the cardiomyopathy protocol as parsed YAML."""
    return copy.deepcopy(_cardio_raw)


@pytest.fixture(scope="session")
def protein_protocol(_cardio_raw):
    """The cardiomyopathy protocol with an extra intramyocardial arm dosed in ug protein."""
    raw = copy.deepcopy(_cardio_raw)
    raw["arms"].append({
        "code": "IM", "name": "Intramyocardial injection", "route": "intramyocardial",
        "product_types": ["msc-ev"], "dose_unit": "ug protein",
        "dose_levels": [50, 100, 200], "starting_level": 1, "maximum_dose": 200,
    })
    return parse_protocol(raw, source="test")
