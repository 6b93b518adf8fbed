"""The application: one FastAPI app serving the JSON API (``/api/v1``) and the pages.

:func:`create_app` is the factory (tests and ``exotrace serve`` call it).
Routers are listed in :data:`ROUTER_MODULES`; each module exposes ``router``.
"""

from __future__ import annotations

import importlib
import logging
import threading
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ._errors import install_error_handlers
from ._security import LimitFormBodies, RefuseControlCharacters, SecurityHeaders
from ._settings import WebSettings

__all__ = ["ROUTER_MODULES", "create_app"]

_log = logging.getLogger("exotrace.api")

#: Every module that contributes routes (each has a ``router``), in mounting order.
ROUTER_MODULES = [
    "exotrace.web.auth_pages",
    "exotrace.web.home",
    "exotrace.web.audit",
    "exotrace.web.admin_users",
    "exotrace.api.v1_me",
    "exotrace.api.v1_audit",
    "exotrace.web.release",
    "exotrace.web.quality",
    "exotrace.api.v1_release",
    "exotrace.web.clinic",
    "exotrace.api.v1_clinic",
    "exotrace.web.upload",
    "exotrace.api.v1_uploads",
    "exotrace.web.lots",
    "exotrace.api.v1_lots",
]


def _checkpoint_loop(engine, stop: threading.Event, period_s: float) -> None:
    """Write an audit checkpoint whenever one is due, while the server runs."""
    from ..errors import ExotraceError
    from ..records import unit_of_work, write_checkpoint_if_due

    while not stop.wait(period_s):
        try:
            with unit_of_work(engine, check_schema=False) as session:
                path = write_checkpoint_if_due(session)
            if path is not None:
                _log.info("audit checkpoint written: %s", path)
        except ExotraceError as exc:
            _log.warning("audit checkpoint not written: %s", exc)


def create_app(database_url: str | None = None, *, settings: WebSettings | None = None,
               check_schema: bool = True) -> FastAPI:
    """The exotrace web application on ``database_url`` (default: ``EXOTRACE_DATABASE_URL``).

    Raises ConfigurationError when the database schema is not at head (the
    server refuses to start rather than fail at the first request).
    """
    from ..records import get_settings, make_engine, require_schema

    settings = settings or WebSettings()
    engine = make_engine(database_url)
    if check_schema:
        try:
            require_schema(engine)
        except Exception:
            engine.dispose()
            raise

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        stop = threading.Event()
        records = get_settings()
        worker = None
        if records.checkpoint_key and records.checkpoint_dir:
            period = max(1.0, min(60.0, records.checkpoint_interval_s / 4))
            worker = threading.Thread(target=_checkpoint_loop, args=(engine, stop, period),
                                      name="exotrace-checkpoints", daemon=True)
            worker.start()
        try:
            yield
        finally:
            stop.set()
            if worker is not None:
                worker.join(timeout=5)
            engine.dispose()

    app = FastAPI(title="exotrace", version=_version(), lifespan=lifespan,
                  openapi_url="/api/openapi.json", docs_url=None, redoc_url=None,
                  description="Extracellular-vesicle products measured and traceable from donor "
                              "to patient. Authenticate with `Authorization: Bearer TOKEN` "
                              "(`exotrace token create`). Errors are RFC 9457 problem documents.")
    app.state.engine = engine
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(LimitFormBodies)
    app.add_middleware(RefuseControlCharacters)
    app.add_middleware(SecurityHeaders)  # outermost: the refusal above gets the headers too
    static = resources.files("exotrace.web").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    for name in ROUTER_MODULES:
        app.include_router(importlib.import_module(name).router)
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("exotrace")
    except PackageNotFoundError:
        return "0"
