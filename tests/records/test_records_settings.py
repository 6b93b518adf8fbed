"""Settings and the UTC timestamp type (no database needed)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from exotrace.errors import InvalidInput
from exotrace.records import UTCDateTime, default_database_url, get_settings


def test_database_url_from_environment(monkeypatch):
    monkeypatch.delenv("EXOTRACE_DATABASE_URL", raising=False)
    assert get_settings().resolved_database_url == default_database_url()
    assert default_database_url().startswith("sqlite:///") and \
        default_database_url().endswith("/exotrace.db")
    monkeypatch.setenv("EXOTRACE_DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert get_settings().resolved_database_url == "postgresql+psycopg://u@h/db"


def test_utc_datetime_normalises_and_refuses_naive():
    t = UTCDateTime()
    lite, pg = sqlite.dialect(), postgresql.dialect()
    paris = datetime(2025, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert t.process_bind_param(paris, lite) == datetime(2025, 3, 1, 12, 0)
    assert t.process_bind_param(paris, pg) == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert t.process_result_value(datetime(2025, 3, 1, 12, 0), lite) == \
        datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="naive datetime"):
        t.process_bind_param(datetime(2025, 3, 1, 12, 0), lite)
