"""Settings of the records layer, read from the environment (``EXOTRACE_*``)."""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_config_dir, user_data_dir
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["RecordsSettings", "default_database_url", "default_signing_key_file",
           "get_settings"]


def default_database_url() -> str:
    """SQLite file ``exotrace.db`` in the user's data directory (platformdirs)."""
    return f"sqlite:///{Path(user_data_dir('exotrace', appauthor=False)) / 'exotrace.db'}"


def default_signing_key_file() -> Path:
    """``signing.key`` in the user's configuration directory (platformdirs), not the database's."""
    return Path(user_config_dir("exotrace", appauthor=False)) / "signing.key"


class RecordsSettings(BaseSettings):
    """Records settings from the environment.

    ``EXOTRACE_DATABASE_URL``
        SQLAlchemy URL, e.g. ``postgresql+psycopg://user@host/db``; unset means
        the SQLite default (:func:`default_database_url`).
    ``EXOTRACE_SIGNING_KEY_FILE``
        The server-held key of the keyed signature hashes (created, mode 0600,
        at the first signature when missing); default
        :func:`default_signing_key_file`. Keep it off the database server.
    ``EXOTRACE_CHECKPOINT_KEY``, ``EXOTRACE_CHECKPOINT_DIR``
        Ed25519 private key file and directory of audit checkpoints; when both
        are set, write commands, the server and batch jobs leave a checkpoint
        at most every ``EXOTRACE_CHECKPOINT_INTERVAL_S`` seconds (default 3600).
    ``EXOTRACE_ALLOW_VERIFIER_RELEASE`` (default false)
        Whether the QA user who verified a lot's results may also release it. Off, verification
        and release are two people's signatures.
    """

    model_config = SettingsConfigDict(env_prefix="EXOTRACE_", extra="ignore")

    database_url: str | None = None
    signing_key_file: Path | None = None
    checkpoint_key: Path | None = None
    checkpoint_dir: Path | None = None
    checkpoint_interval_s: float = 3600.0
    allow_verifier_release: bool = False

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or default_database_url()

    @property
    def resolved_signing_key_file(self) -> Path:
        return (self.signing_key_file or default_signing_key_file()).expanduser()


def get_settings() -> RecordsSettings:
    """Fresh settings from the current environment (no caching: tests change it)."""
    return RecordsSettings()
