"""Shared test configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Headless plotting everywhere in tests.
os.environ.setdefault("MPLBACKEND", "Agg")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The real instrument files in ``../shared/fixtures`` (skips when absent)."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip("shared fixtures not available")
    return SHARED_FIXTURES

from _db_fixtures import *  # noqa: F401,F403,E402
