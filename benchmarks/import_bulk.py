"""Bulk import: 1,000 NanoSight ExperimentSummary exports (target < 10 s on one core).

Copies the three real exports in ../shared/fixtures/nanosight (beads.csv: 12 videos,
beads2.csv: 5 videos, nanotest.csv: 36 videos) round-robin into a temporary folder
under fresh names, then times

* ``read_file`` on every file (full parse: per-video values, every weighting, the
  1-nm Graph Data, percentiles), and
* ``exotrace import --json``'s work (``import_files``: read plus the JSON-ready dict).

Usage::

    .venv/bin/python benchmarks/import_bulk.py [--n 1000]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures" / "nanosight"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="number of exports to import")
    args = parser.parse_args()
    sources = [FIXTURES / n for n in ("beads.csv", "beads2.csv", "nanotest.csv")]
    if not all(p.is_file() for p in sources):
        print(f"fixtures not found in {FIXTURES}", file=sys.stderr)
        return 2

    from exotrace.cli.importing import import_files
    from exotrace.instruments import read_file

    with tempfile.TemporaryDirectory(prefix="exotrace-bulk-") as tmp:
        files = []
        for i in range(args.n):
            dst = Path(tmp) / f"run{i:04d}_ExperimentSummary.csv"
            shutil.copyfile(sources[i % len(sources)], dst)
            files.append(dst)
        read_file(files[0])  # warm-up: imports (pandas, scipy) are not part of the figure

        t0, c0 = time.perf_counter(), time.process_time()
        results = [read_file(f) for f in files]
        t_read, c_read = time.perf_counter() - t0, time.process_time() - c0

        t0, c0 = time.perf_counter(), time.process_time()
        rows = import_files(files)
        t_import, c_import = time.perf_counter() - t0, time.process_time() - c0

    assert all(r.format == "nanosight-summary" for r in results)
    assert not any("error" in r for r in rows)
    videos = sum(len(r.videos) for r in results)
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    print(f"files: {args.n} NanoSight exports ({videos} videos)")
    # CPU time is printed beside wall time: on a shared machine the wall clock also
    # counts other people's work.
    print(f"read_file:            {t_read:6.2f} s wall, {c_read:6.2f} s CPU  ({args.n / t_read:5.0f} files/s)")
    print(f"import_files (JSON):  {t_import:6.2f} s wall, {c_import:6.2f} s CPU  ({args.n / t_import:5.0f} files/s)")
    print(f"target < 10 s: {'met' if max(t_read, t_import) < 10 else 'NOT met'} (wall)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
