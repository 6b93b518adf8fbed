"""``exotrace demo load``: the records demo dataset.

The ``demo`` command group belongs to :mod:`exotrace.cli.demo`; it calls
:func:`register_demo_load` to add ``load``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import JsonOption, emit

__all__ = ["register_demo_load"]


def register_demo_load(demo_app: typer.Typer) -> None:
    """Add the ``load`` command to the ``demo`` group."""

    @demo_app.command("load")
    def load(
        upgrade: Annotated[bool, typer.Option(
            "--upgrade/--no-upgrade", help="Create/migrate the schema first.")] = True,
        seed: Annotated[int, typer.Option(help="Random seed of the demo values.")] = 2025,
        as_json: JsonOption = False,
    ) -> None:
        """Load a realistic demo dataset (users admin1, analyst1, reviewer1, qa1, clinician1;
        password 'demo') into an empty database at EXOTRACE_DATABASE_URL.
        """
        from ..records import make_engine, unit_of_work, upgrade_database
        from ..records.demo import load_demo

        engine = make_engine()
        try:
            if upgrade:
                upgrade_database(engine)
            with unit_of_work(engine) as session:
                summary = load_demo(session, seed=seed)
        finally:
            engine.dispose()
        summary["database"] = engine.url.render_as_string(hide_password=True)
        emit(summary, as_json=as_json)
