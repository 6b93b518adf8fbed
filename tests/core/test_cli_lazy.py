"""The root command lists every command from its table and imports a command's
modules only when that command runs; the table matches what the modules register."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from exotrace.cli.main import COMMAND_MODULES, COMMANDS

# Each case runs in a fresh interpreter: the command modules keep their typer
# groups at module level, and what is imported is the point of the test.
_PRELUDE = textwrap.dedent("""
    import contextlib, importlib, inspect, io, json, sys
    import typer, typer.main

    def run(app_or_main, args):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                code = app_or_main(args)
            except SystemExit as exc:
                code = exc.code
        return code, out.getvalue()
""")

_LAZY = _PRELUDE + textwrap.dedent("""
    from exotrace.cli.main import main
    code, out = run(main, sys.argv[1:])
    print(json.dumps({"code": code, "out": out, "modules": sorted(sys.modules)}))
""")

_EAGER = _PRELUDE + textwrap.dedent("""
    from exotrace.cli import main as cli_main

    def tree(cmd):
        if hasattr(cmd, "commands"):
            return {n: tree(c) for n, c in cmd.commands.items()} | {"": cmd.help}
        return [cmd.help, [p.name for p in cmd.params]]

    # every module registered in order, eagerly, as before the table existed;
    # a module adds to a command when the command's tree changes with it
    app = typer.Typer(**cli_main._ROOT_SETTINGS)
    app.callback()(cli_main._root)
    adds, before = {}, {}
    for name in cli_main.COMMAND_MODULES:
        importlib.import_module(f"exotrace.cli.{name}").register(app)
        now = {n: tree(c) for n, c in typer.main.get_command(app).commands.items()}
        for n in now:
            if before.get(n) != now[n]:
                adds.setdefault(n, []).append(name)
        before = now
    group = typer.main.get_command(app)
    table = {n: [adds[n], inspect.cleandoc(c.help or "").split("\\n\\n")[0].strip()]
             for n, c in group.commands.items()}
    helps = {}
    for args in json.loads(sys.argv[1]):
        code, out = run(lambda a: app(args=a, prog_name="exotrace", standalone_mode=False), args)
        helps[" ".join(args)] = out
    print(json.dumps({"table": table, "helps": helps}))
""")

_HELP_CASES = [["--help"], ["nta", "--help"], ["lot", "--help"], ["spec", "--help"],
               ["protocol", "--help"], ["nta", "analyze", "--help"]]


def _python(script: str, *args: str) -> dict:
    env = dict(os.environ, COLUMNS="100", TERM="dumb", NO_COLOR="1")
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def eager() -> dict:
    return _python(_EAGER, json.dumps(_HELP_CASES))


def test_table_lists_every_command_its_modules_and_help_in_order(eager):
    expected = {name: [list(modules), help_text]
                for name, (modules, help_text) in COMMANDS.items()}
    assert list(eager["table"]) == list(expected)  # same commands, listed in the same order
    for name, entry in eager["table"].items():
        assert entry == expected[name], name
    listed = {m for modules, _ in COMMANDS.values() for m in modules}
    assert listed == set(COMMAND_MODULES)


@pytest.mark.parametrize("args", _HELP_CASES, ids=" ".join)
def test_lazy_help_is_the_eager_help(eager, args):
    lazy = _python(_LAZY, *args)
    assert lazy["code"] == 0
    assert lazy["out"] == eager["helps"][" ".join(args)]


def test_root_help_imports_no_command_module_science_or_database():
    loaded = set(_python(_LAZY, "--help")["modules"])
    assert not {f"exotrace.cli.{m}" for m in COMMAND_MODULES} & loaded
    assert not {"numpy", "scipy", "sqlalchemy", "numba", "pandas"} & loaded


def test_nta_help_imports_the_nta_commands_alone():
    loaded = set(_python(_LAZY, "nta", "analyze", "--help")["modules"])
    assert "exotrace.cli.nta" in loaded
    assert not {f"exotrace.cli.{m}" for m in COMMAND_MODULES if m != "nta"} & loaded
    assert not {"numpy", "scipy", "sqlalchemy", "numba", "exotrace.records"} & loaded


def test_unknown_command_is_one_line_with_a_suggestion(capsys):
    from exotrace.cli.main import main

    assert main(["lots"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No such command 'lots'" in err and "'lot'" in err


def test_a_command_missing_from_the_table_still_runs(monkeypatch, capsys):
    # a module that gained a top-level command without its table entry:
    # the command is found by importing every module (slower, still right)
    import exotrace.cli.main as cli_main

    monkeypatch.setattr(cli_main, "COMMANDS",
                        {k: v for k, v in cli_main.COMMANDS.items() if k != "purity"})
    assert cli_main.main(["purity", "--help"]) == 0
    assert "purity band" in capsys.readouterr().out


def test_an_nta_analysis_imports_no_scipy_special_spatial_or_ndimage(tmp_path):
    # ~0.1 s of every analysis' start-up went to importing them for five
    # small functions (exotrace.nta._numeric); numba itself still loads a
    # little of scipy (its BLAS bindings), which is not checked here
    from exotrace.nta.simulate import simulate

    video = tmp_path / "v.avi"
    simulate(video, diameters_nm=(100.0,), particles_per_ml=4e9, n_frames=40, width_px=192,
             height_px=160, drift_px_per_frame=(2.0, -1.0), seed=1)
    result = _python(_LAZY, "nta", "analyze", str(video), "--pixel-size-nm", "140", "--fps",
                     "25", "--temperature-c", "22", "--exposure-ms", "30", "--json")
    assert result["code"] in (0, None)
    assert json.loads(result["out"])["n_tracks"] > 20  # the analysis did run to the end
    loaded = set(result["modules"])
    heavy = sorted(m for m in loaded
                   if m.split(".")[:2] in (["scipy", "special"], ["scipy", "spatial"],
                                           ["scipy", "ndimage"], ["scipy", "stats"]))
    assert heavy == []
