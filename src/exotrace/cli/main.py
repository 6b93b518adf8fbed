"""The ``exotrace`` command.

Each command group lives in its own module that exposes ``register(app)``;
this module assembles them and maps the error tree to exit codes once.

Command modules are imported only when one of their commands runs: the
listing of ``exotrace --help`` comes from :data:`COMMANDS`, and ``exotrace nta
analyze`` imports the NTA command module alone, not the database, quality or
clinic ones (their science and database packages took seconds to import).
"""

from __future__ import annotations

import importlib
import os
import sys

import typer
from typer.core import TyperCommand, TyperGroup
from typer.exceptions import TyperException

from .. import __version__
from ..errors import ExotraceError, exit_code_for

__all__ = ["COMMANDS", "COMMAND_MODULES", "app", "main"]

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
    "serve",
)

# Every top-level command, in the order of the listing: the modules that add to
# it (registered in COMMAND_MODULES order) and the first paragraph of its help.
# tests/core/test_cli_lazy.py checks it against what the modules register; a
# module of COMMAND_MODULES missing here still works, imported for every command.
COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "purity": (("characterization",),
        "Particle:protein ratio and its Webber & Clayton purity band."),
    "import": (("importing",),
        "Read NanoSight, ZetaView, FCS and BCA plate files; print one record per file."),
    "potency": (("quality",),
        "Relative potency (parallel 4PL) of each sample against the reference standard."),
    "administer": (("clinic_records",),
        "Give a vial to a subject after every check (vial, lot, consent, product, dose)."),
    "observe": (("clinic_records",),
        "Record an outcome value at a visit (unit and window checked); propose the next "
        "dose."),
    "recall": (("clinic_records",),
        "Every subject and administration affected by a donor, cell bank, lot or reagent "
        "batch."),
    "compare": (("quality", "release"),
        "Comparability (ICH Q5E): TOST per attribute of group B against group A, plus the\n"
        "size-distribution comparison where distributions are stored."),
    "sign": (("signatures",),
        "Sign a record electronically (the password is asked again at every signing)."),
    "signatures": (("signatures",),
        "List a record's signatures: whether each keyed hash checks out under the server's\n"
        "key and whether the record still has the signed content."),
    "serve": (("serve",), "Serve the web application and the JSON API."),
    "misev": (("characterization",), "MISEV2023 reporting checklist."),
    "protocol": (("clinic", "clinic_records"),
        "Clinical protocols (YAML): validate, show, compute doses."),
    "db": (("db",), "Database schema (SQLite by default; EXOTRACE_DATABASE_URL)."),
    "user": (("users",), "User accounts and roles."),
    "donor": (("donors",), "Pseudonymous donors."),
    "consent": (("donors",), "Donor consent and its withdrawal."),
    "cellbank": (("manufacturing",), "Cell banks (source cells of a donor)."),
    "collection": (("manufacturing",), "Conditioned-medium collections."),
    "reagent": (("manufacturing",), "Reagent batches."),
    "isolation": (("manufacturing",), "EV isolation (separation) runs."),
    "lot": (("lots", "release"), "EV lots: create, pool, split, status."),
    "vial": (("lots",), "Vials (units) filled from lots."),
    "storage": (("lots",), "Lot storage."),
    "product": (("lots",), "Product formulations."),
    "measurement": (("lots",), "Lot measurements (entered or imported)."),
    "trace": (("trace",), "Traceability, forward and back."),
    "audit": (("audit",), "The audit trail (hash chain)."),
    "nta": (("nta",), "Nanoparticle tracking analysis: simulate, analyze, calibrate."),
    "demo": (("demo",), "Demonstrations on generated data."),
    "spec": (("quality", "release"), "Specifications: show (validate) a YAML specification."),
    "spc": (("quality", "release"), "Statistical process control: I-MR charts and Nelson rules."),
    "stability": (("quality",), "Stability (ICH Q1E): shelf life and freeze-thaw limits."),
    "subject": (("clinic_records",), "Study subjects: enrolment, study consent."),
    "ae": (("clinic_records",), "Adverse events (CTCAE v5 grade, ICH E2A seriousness)."),
    "dose": (("clinic_records",), "Accept or override the rule engine's dose proposal."),
    "followup": (("clinic_records",), "Follow-up visits."),
    "fhir": (("clinic_records",), "HL7 FHIR R5 export."),
    "sdtm": (("clinic_records",), "CDISC SDTM-shaped CSV export (DM, EX, AE)."),
    "clinic": (("clinic_records",), "Clinical analytics on the recorded follow-up."),
    "oos": (("release",), "Out-of-specification (OOS) investigations."),
    "token": (("tokens",), "Personal API tokens (act with your role; cannot sign)."),
    "flow": (("flow",),
        "EV flow cytometry: simulate, calibrate, size, concentration, percent positive, report."),
}

_ROOT_SETTINGS = {
    "name": "exotrace",
    "help": "Keep extracellular-vesicle products measured and traceable from donor to patient.",
    "no_args_is_help": True,
    "add_completion": False,
    "pretty_exceptions_enable": False,
}

# Typer apps already assembled in this process, by the modules registered into
# them: modules that add commands to another module's group do so once.
_ASSEMBLED: dict[tuple[str, ...], typer.Typer] = {}


def _unlisted_modules() -> tuple[str, ...]:
    listed = {m for modules, _ in COMMANDS.values() for m in modules}
    return tuple(m for m in COMMAND_MODULES if m not in listed)


def _assembled(modules: tuple[str, ...]) -> typer.Typer:
    """A Typer app with ``modules`` registered in COMMAND_MODULES order."""
    key = tuple(m for m in COMMAND_MODULES if m in modules)
    sub = _ASSEMBLED.get(key)
    if sub is None:
        sub = typer.Typer(**_ROOT_SETTINGS)
        sub.callback()(_root)
        for name in key:
            importlib.import_module(f"{__package__}.{name}").register(sub)
        _ASSEMBLED[key] = sub
    return sub


def _commands_of(modules: tuple[str, ...]) -> dict:
    """The click commands of the app assembled from ``modules``, by name."""
    return typer.main.get_group(_assembled(modules)).commands


class _LazyGroup(TyperGroup):
    """The root group: lists :data:`COMMANDS` from the table and imports a
    command's modules only when it is resolved."""

    def __init__(self, **attrs):
        super().__init__(**attrs)
        for name, (_, help_text) in COMMANDS.items():
            # a placeholder with the listing's help; never invoked
            self.commands.setdefault(name, TyperCommand(name=name, help=help_text))
        unlisted = _unlisted_modules()
        if unlisted:
            for name, cmd in _commands_of(unlisted).items():
                self.commands.setdefault(name, cmd)

    def resolve_command(self, ctx, args):
        name = args[0] if args else None
        if name in COMMANDS:
            modules = COMMANDS[name][0] + _unlisted_modules()
            self.commands[name] = _commands_of(modules)[name]
        elif name is not None:
            # not in the table (a command added without its entry, or a typo):
            # every module, so that the command runs or the error can suggest
            for other, cmd in _commands_of(COMMAND_MODULES).items():
                if other not in COMMANDS:
                    self.commands[other] = cmd
        return super().resolve_command(ctx, args)


app = typer.Typer(cls=_LazyGroup, **_ROOT_SETTINGS)


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


def _click_errors(name: str) -> tuple[type[BaseException], ...]:
    """typer's exception class ``name`` and, where a module loaded plain click
    (typer >= 0.20 vendors its own), click's."""
    ours = {"Exit": typer.Exit, "Abort": typer.Abort, "ClickException": TyperException}[name]
    click = sys.modules.get("click")
    return (ours, getattr(click.exceptions, name)) if click is not None else (ours,)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every failure becomes one line on stderr and a non-zero exit."""
    args = sys.argv[1:] if argv is None else argv
    try:
        result = app(args=args, prog_name="exotrace", standalone_mode=False)
        # Without standalone mode, click returns the code of a ``typer.Exit(code)``.
        if isinstance(result, int) and not isinstance(result, bool):
            return result
    except KeyboardInterrupt:
        typer.echo("exotrace: interrupted", err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no tracebacks for users
        return _report(exc)
    return 0


def _report(exc: Exception) -> int:
    """The exit code of ``exc``, after its one-line message on stderr."""
    if isinstance(exc, _click_errors("Exit")):
        return exc.exit_code
    if isinstance(exc, _click_errors("Abort")):
        typer.echo("exotrace: aborted", err=True)
        return 130
    if isinstance(exc, _click_errors("ClickException")):
        msg = " ".join(exc.format_message().split())
        if msg:  # (no arguments: the help was the message)
            typer.echo(f"exotrace: {msg}", err=True)
        return exc.exit_code
    if isinstance(exc, ExotraceError):
        typer.echo(f"exotrace: error: {exc}", err=True)
        return exit_code_for(exc)
    if os.environ.get("EXOTRACE_DEBUG"):
        raise exc
    msg = " ".join(f"{type(exc).__name__}: {exc}".split())
    typer.echo(f"exotrace: internal error: {msg} (set EXOTRACE_DEBUG=1 for the traceback)",
               err=True)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
