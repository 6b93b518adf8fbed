"""The ``exotrace`` command.

Each command group lives in its own module that exposes ``register(app)``;
this module only assembles them and maps the error tree to exit codes once.
"""

from __future__ import annotations

import importlib
import os
import sys

import click
import typer
from typer.exceptions import TyperException

from .. import __version__
from ..errors import ExotraceError, exit_code_for

__all__ = ["app", "main"]

# Modules under exotrace.cli that each define ``register(app: typer.Typer)``.
COMMAND_MODULES: tuple[str, ...] = (
    "characterization",
    "importing",
    "clinic",
    "db",
    "users",
    "donors",
    "manufacturing",
    "lots",
    "trace",
    "audit",
    "nta",
    "demo",
    "quality",
    "clinic_records",
    "release",
    "signatures",
    "tokens",
    "flow",
)

app = typer.Typer(
    name="exotrace",
    help="Keep extracellular-vesicle products measured and traceable from donor to patient.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"exotrace {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """exotrace: characterize, release and follow up EV products."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"{__package__}.{_name}").register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every failure becomes one line on stderr and a non-zero exit."""
    args = sys.argv[1:] if argv is None else argv
    try:
        result = app(args=args, prog_name="exotrace", standalone_mode=False)
        # Without standalone mode, click returns the code of a ``typer.Exit(code)``.
        if isinstance(result, int) and not isinstance(result, bool):
            return result
    # typer >= 0.20 vendors click: catch its exceptions and, for modules that
    # raise plain click errors, click's too.
    except (typer.Exit, click.exceptions.Exit) as exc:
        return exc.exit_code
    except (typer.Abort, click.exceptions.Abort):
        typer.echo("exotrace: aborted", err=True)
        return 130
    except (TyperException, click.ClickException) as exc:
        msg = " ".join(exc.format_message().split())
        typer.echo(f"exotrace: {msg}", err=True)
        return exc.exit_code
    except ExotraceError as exc:
        typer.echo(f"exotrace: error: {exc}", err=True)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        typer.echo("exotrace: interrupted", err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no tracebacks for users
        if os.environ.get("EXOTRACE_DEBUG"):
            raise
        msg = " ".join(f"{type(exc).__name__}: {exc}".split())
        typer.echo(f"exotrace: internal error: {msg} (set EXOTRACE_DEBUG=1 for the traceback)",
                   err=True)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
