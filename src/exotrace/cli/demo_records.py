"""``exotrace demo load``: the records demo dataset.

The ``demo`` command group belongs to :mod:`exotrace.cli.demo`; it calls
:func:`register_demo_load` to add ``load``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import JsonOption, emit

__all__ = ["load_all_demos", "register_demo_load"]


def load_all_demos(engine, *, seed: int = 2025, out_dir=None) -> dict:
    """Records, then release through the quality workflow, then clinic follow-up.

    One transaction per stage (the clinic needs released lots); returns the
    records summary with ``quality`` and ``clinic`` summaries added.
    """
    from ..records import load_clinic_demo, load_quality_demo, unit_of_work
    from ..records.demo import load_demo

    with unit_of_work(engine) as session:
        summary = load_demo(session, seed=seed)
    with unit_of_work(engine) as session:
        summary["quality"] = load_quality_demo(session, seed=seed, out_dir=out_dir)
    with unit_of_work(engine) as session:
        summary["clinic"] = load_clinic_demo(session, seed=seed)
    return summary


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
        from ..records import make_engine, upgrade_database

        engine = make_engine()
        try:
            if upgrade:
                upgrade_database(engine)
            summary = load_all_demos(engine, seed=seed)
        finally:
            engine.dispose()
        summary["database"] = engine.url.render_as_string(hide_password=True)
        emit(summary, as_json=as_json)
