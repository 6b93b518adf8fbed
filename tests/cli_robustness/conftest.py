"""Files for the CLI robustness tests: good inputs with known answers, and hostile ones.

Everything is written once per session into a temporary folder; tests get a
``Files`` object whose attributes are paths (``files.spc``, ``files.garbage``...).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from exotrace.cli.main import main
from exotrace.clinic import example_protocol_path
from exotrace.quality._spec import example_specification_path

CARDIO = example_protocol_path("cardiomyopathy")
SKIN = example_protocol_path("skin_rejuvenation")
SPEC = example_specification_path()


def run_cli(capsys, args: list[str]) -> tuple[int, str, str]:
    """Run ``exotrace ARGS`` in-process; return (exit code, stdout, stderr)."""
    capsys.readouterr()  # drop anything printed before
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _four_pl(x: float, a: float, b: float, c: float, d: float) -> float:
    return d + (a - d) / (1.0 + (x / c) ** b)


def _write_good(root: Path) -> dict[str, Path]:
    p: dict[str, Path] = {}
    # I-MR: alternating 10/12 gives MRbar = 2 exactly, mean 11; then one point at 25.
    p["spc"] = root / "spc.csv"
    vals = [10, 12] * 4 + [25]
    p["spc"].write_text("lot,size_nm\n" + "".join(f"L{i},{v}\n" for i, v in enumerate(vals)))

    # Stability: three identical batches on y = 10 - 0.1 t with a fixed +-0.05 wiggle.
    p["stab"] = root / "stab.csv"
    rows = ["batch,month,conc_e11"]
    for b in ("B1", "B2", "B3"):
        for i, t in enumerate((0, 3, 6, 9, 12, 18, 24)):
            rows.append(f"{b},{t},{10 - 0.1 * t + (0.05 if (i % 2) else -0.05):.4f}")
    p["stab"].write_text("\n".join(rows) + "\n")

    # Freeze-thaw: size grows 2 nm per cycle from 110 nm; limit 120 nm is reached at 5 cycles.
    p["ft"] = root / "ft.csv"
    rows = ["batch,cycles,size_nm"]
    for b in ("A", "B"):
        for i, c in enumerate((0, 1, 2, 3, 4, 5)):
            rows.append(f"{b},{c},{110 + 2 * c + (0.3 if (i + (b == 'B')) % 2 else -0.3):.2f}")
    p["ft"].write_text("\n".join(rows) + "\n")

    # Potency: LOT7 has twice the reference EC50 (relative potency 0.5), tiny fixed wiggle.
    p["pot"] = root / "pot.csv"
    rows = ["sample,dose_particles,inhibition_pct"]
    doses = (1e7, 3e7, 1e8, 3e8, 1e9, 3e9, 1e10)
    for s, ec50 in (("REF", 3e8), ("LOT7", 6e8)):
        for rep in (0, 1):
            for i, d in enumerate(doses):
                wiggle = 0.2 if (i + rep) % 2 else -0.2
                rows.append(f"{s},{d:g},{_four_pl(d, 5, 1.2, ec50, 95) + wiggle:.4f}")
    p["pot"].write_text("\n".join(rows) + "\n")

    # Comparability: B = A + 1 nm exactly; purity has no margin (reported as not compared).
    a = (100.0, 102.0, 98.0, 101.0, 99.0, 100.5)
    p["ga"] = root / "ga.csv"
    p["gb"] = root / "gb.csv"
    p["ga"].write_text("lot,size_nm,purity\n" + "".join(
        f"A{i},{v},{3e10 + i * 1e9:g}\n" for i, v in enumerate(a)))
    p["gb"].write_text("lot,size_nm,purity\n" + "".join(
        f"B{i},{v + 1},{3e10 - i * 1e9:g}\n" for i, v in enumerate(a)))
    return p


def _write_hostile(root: Path) -> dict[str, Path]:
    p: dict[str, Path] = {}

    def w(name: str, data: str | bytes) -> None:
        path = root / name
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
        p[name.split(".")[0]] = path

    (root / "adir").mkdir()
    p["adir"] = root / "adir"
    p["missing"] = root / "missing.csv"
    w("empty.csv", "")
    # fixed pseudo-random bytes with NULs and invalid UTF-8
    w("garbage.bin", bytes((i * 131 + 7) % 256 for i in range(4096)))
    w("utf16.csv", "lot,size_nm\nA,100\nB,101\nC,99\n".encode("utf-16"))
    w("latin1.csv", "lot,size_nm,note\nA,100,café\nB,101,x\n".encode("latin-1"))
    w("header_only.csv", "lot,size_nm,conc_e11,month,batch\n")
    w("long_field.csv", "lot,size_nm\nA," + "1" * 300_000 + "\nB,101\n")
    w("text.csv", "lot,size_nm\nA,100\nB,abc\nC,101\n")
    w("nan.csv", "lot,size_nm\nA,100\nB,nan\nC,101\n")
    w("inf.csv", "lot,size_nm\nA,100\nB,inf\nC,101\n")
    w("underscore.csv", "lot,size_nm\nA,1_000\nB,101\nC,99\n")
    w("decimal_comma.csv", "lot,size_nm\nA,100,5\nB,101,2\nC,99,1\n")
    w("semicolon_comma.csv", "lot;size_nm\nA;100,5\nB;101,2\nC;99,1\n")
    w("dupcol.csv", "lot,size_nm,size_nm\nA,100,1\nB,101,2\nC,102,3\n")
    w("nocol.csv", "lot,other\nA,100\nB,101\nC,102\n")
    w("huge.csv", "lot,size_nm\nA,1e308\nB,-1e308\nC,1e308\nD,-1e308\n")
    w("st_huge.csv", "month,v\n0,1e300\n3,-1e300\n6,1e300\n9,1e300\n")
    w("ft_frac.csv", "cycles,v\n0,10\n1.5,9\n3,8\n4,7.5\n")
    # LOT7's doses span 616 decades: its free 4PL fit diverges
    w("pot_wild.csv", "sample,dose,resp\n" + "".join(
        f"REF,{d:g},{95 - 90 / (1 + (d / 3e8) ** 1.2) + (0.2 if (i + r) % 2 else -0.2):.3f}\n"
        for r in (0, 1) for i, d in enumerate((1e7, 3e7, 1e8, 3e8, 1e9, 3e9, 1e10)))
      + "LOT7,1e308,50\nLOT7,1e-308,40\nLOT7,1e8,30\nLOT7,1e9,60\nLOT7,1e10,70\n")
    # YAML
    w("list.yaml", "- a\n- b\n")
    w("bad.yaml", "title: [unclosed\n")
    w("pytag.yaml", 'x: !!python/object/apply:os.system ["true"]\n')
    w("deep.yaml", "title: " + "[" * 5_000 + "]" * 5_000 + "\n")
    w("long.yaml", "title: " + "x" * 2_000_000 + "\n")
    w("bad_date.yaml", "id: 2026-02-30\nversion: 2026-02-30\n")
    return p


def _variant(root: Path, src: Path, name: str, old: str, new: str) -> Path:
    text = src.read_text(encoding="utf-8")
    assert old in text, (src, old)
    out = root / name
    out.write_text(text.replace(old, new, 1), encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def files(tmp_path_factory) -> SimpleNamespace:
    """All input files of the robustness tests (see the module docstring)."""
    root = tmp_path_factory.mktemp("cli_robustness")
    p = {**_write_good(root), **_write_hostile(root)}
    # Shipped files with one thing broken.
    p["proto_dupkey"] = _variant(root, CARDIO, "proto_dupkey.yaml", 'version: "1.0"',
                                 'version: "1.0"\nid: OTHER')
    p["proto_maxinf"] = _variant(root, CARDIO, "proto_maxinf.yaml", "maximum_dose: 2.0e+10",
                                 "maximum_dose: .inf")
    p["proto_nan"] = _variant(root, CARDIO, "proto_nan.yaml", "[5.0e+9,", "[.nan,")
    p["spec_dupkey"] = _variant(root, SPEC, "spec_dupkey.yaml",
                                "{kind: range, upper: 200,", "{kind: range, upper: 200, upper: 2000,")
    p["spec_nan"] = _variant(root, SPEC, "spec_nan.yaml", "upper: 200,", "upper: .nan,")
    p["spec_inf"] = _variant(root, SPEC, "spec_inf.yaml", "lower: 2.0e+9,", "lower: .inf,")
    p["spec_date"] = _variant(root, SPEC, "spec_date.yaml", "effective_date: 2026-01-01",
                              "effective_date: 2026-02-30")
    p["spec_wrong_side"] = _variant(root, SPEC, "spec_wrong_side.yaml",
                                    "{kind: range, upper: 200,", "{kind: range, lower: 300, upper: 200,")
    study = root / "study.yaml"
    code = main(["misev", "example", "-o", str(study)])
    assert code == 0
    p["study"] = study
    p["study_nan"] = _variant(root, study, "study_nan.yaml", "volume_ml: 500", "volume_ml: .nan")
    p["root"] = root
    return SimpleNamespace(**p)
