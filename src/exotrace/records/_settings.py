"""Settings of the records layer, read from the environment (``EXOTRACE_*``)."""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_data_dir
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["RecordsSettings", "default_database_url", "get_settings"]


def default_database_url() -> str:
    """SQLite file ``exotrace.db`` in the user's data directory (platformdirs)."""
    return f"sqlite:///{Path(user_data_dir('exotrace', appauthor=False)) / 'exotrace.db'}"


class RecordsSettings(BaseSettings):
    """``EXOTRACE_DATABASE_URL``: SQLAlchemy URL, e.g. ``postgresql+psycopg://user@host/db``.

    Unset means the SQLite default (:func:`default_database_url`).

    ``EXOTRACE_ALLOW_VERIFIER_RELEASE`` (default false): whether the QA user
    who verified a lot's results may also release it. Off, verification and
    release are two people's signatures.
    """

    model_config = SettingsConfigDict(env_prefix="EXOTRACE_", extra="ignore")

    database_url: str | None = None
    allow_verifier_release: bool = False

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or default_database_url()


def get_settings() -> RecordsSettings:
    """Fresh settings from the current environment (no caching: tests change it)."""
    return RecordsSettings()
