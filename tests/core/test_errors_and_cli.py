"""The error tree maps once to exit codes; the CLI never prints a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from exotrace import errors
from exotrace.cli.main import main


def test_every_error_is_an_exotrace_error_with_distinct_codes():
    classes = [getattr(errors, n) for n in errors.__all__ if n[0].isupper()]
    for cls in classes:
        assert issubclass(cls, errors.ExotraceError)
    assert issubclass(errors.InvalidInput, ValueError)
    assert issubclass(errors.NotFound, LookupError)
    assert issubclass(errors.PermissionDenied, PermissionError)
    assert errors.exit_code_for(errors.NotFound("x")) == 5
    assert errors.exit_code_for(RuntimeError("x")) == 1
    assert errors.http_status_for(errors.PermissionDenied("x")) == 403


def test_file_format_error_names_file_line_and_field():
    err = errors.FileFormatError("a.csv", "not a number: 'abc'", line=12, field="Size/nm")
    assert str(err) == "a.csv, line 12, field 'Size/nm': not a number: 'abc'"
    assert "\n" not in str(errors.InvalidInput("two\nlines"))


def test_version_and_unknown_command(capsys):
    assert main(["--version"]) == 0
    assert "exotrace" in capsys.readouterr().out
    code = main(["no-such-command"])
    err = capsys.readouterr().err
    assert code == 2 and "no-such-command" in err and "Traceback" not in err


def test_console_script_runs():
    proc = subprocess.run([sys.executable, "-m", "exotrace.cli.main", "--help"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "Usage" in proc.stdout


@pytest.mark.parametrize("error", [errors.InvalidInput("bad value"), errors.NotFound("no lot")])
def test_main_maps_errors_to_one_line_and_exit_code(error, capsys, monkeypatch):
    import exotrace.cli.main as cli_main

    def boom(*args, **kwargs):
        raise error

    monkeypatch.setattr(cli_main, "app", boom)
    assert main([]) == error.exit_code
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(error) in err


def test_typer_exit_code_is_returned(monkeypatch):
    import typer

    import exotrace.cli.main as cli_main

    probe = typer.Typer()

    @probe.command()
    def fail() -> None:
        raise typer.Exit(code=4)

    monkeypatch.setattr(cli_main, "app", probe)
    assert main([]) == 4
