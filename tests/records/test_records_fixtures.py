"""The database fixtures themselves: CI must fail, not skip, without its PostgreSQL."""

from __future__ import annotations

import pytest

import _db_fixtures


def test_unreachable_postgres_fails_when_ci_asked_for_it(monkeypatch):
    monkeypatch.setenv("EXOTRACE_TEST_POSTGRES_URL",
                       "postgresql+psycopg://postgres@127.0.0.1:1/test")
    with pytest.raises(pytest.fail.Exception, match="is set but PostgreSQL is not usable"):
        _db_fixtures._unusable_postgres("connection refused")


def test_unreachable_postgres_skips_when_nobody_asked(monkeypatch):
    monkeypatch.delenv("EXOTRACE_TEST_POSTGRES_URL", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no PostgreSQL server"):
        _db_fixtures._unusable_postgres("nothing answers")


def test_bad_server_in_the_ci_variable_fails_database_creation(monkeypatch, tmp_path_factory):
    """End to end: the URL points at a closed port; creating the test database fails."""
    monkeypatch.setenv("EXOTRACE_TEST_POSTGRES_URL",
                       "postgresql+psycopg://postgres@127.0.0.1:1/test")
    with pytest.raises(pytest.fail.Exception, match="not usable"):
        _db_fixtures._create_database("postgresql", tmp_path_factory)
