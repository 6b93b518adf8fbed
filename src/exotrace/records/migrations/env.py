"""Alembic environment for exotrace (shipped inside the package).

Run through :func:`exotrace.records.upgrade_database` (``exotrace db
upgrade``), which passes an open connection in ``config.attributes``. Models
of other packages join ``Base.metadata`` when their module is imported: list
it in ``MODEL_MODULES`` so autogenerate sees it.
"""

from __future__ import annotations

import importlib

from alembic import context

from exotrace.records._base import Base

MODEL_MODULES = (
    "exotrace.records._models_auth",
    "exotrace.records._models_audit",
    "exotrace.records._models_source",
    "exotrace.records._models_lot",
    "exotrace.records._models_clinic",
    "exotrace.records._models_quality",
)

for _module in MODEL_MODULES:
    importlib.import_module(_module)

target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        from exotrace.records._db import make_engine

        engine = make_engine(context.config.get_main_option("sqlalchemy.url") or None)
        with engine.begin() as conn:
            _run(conn)
        return
    _run(connection)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTER via table copy
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("exotrace migrations run online only: use `exotrace db upgrade`")
run_migrations_online()
