"""Settings of the web server, read from the environment (``EXOTRACE_*``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["WebSettings"]


class WebSettings(BaseSettings):
    """Web server settings.

    ``EXOTRACE_SESSION_IDLE_MINUTES`` (default 15)
        A browser session unused for longer than this is ended.
    ``EXOTRACE_UPLOAD_MAX_BYTES`` (default 4 GiB)
        Largest upload accepted; larger ones are refused while they stream.
    ``EXOTRACE_UPLOAD_DIR``
        Where uploads are streamed to (default: a temporary directory per server).
    ``EXOTRACE_COOKIE_SECURE``
        Force the ``Secure`` cookie flag on or off; unset, it is set when the
        request came over HTTPS (behind a proxy: run uvicorn with proxy headers).
    """

    model_config = SettingsConfigDict(env_prefix="EXOTRACE_", extra="ignore")

    session_idle_minutes: float = 15.0
    upload_max_bytes: int = 4 * 1024 ** 3
    upload_dir: Path | None = None
    cookie_secure: bool | None = None

    @property
    def session_idle(self) -> timedelta:
        return timedelta(minutes=self.session_idle_minutes)
