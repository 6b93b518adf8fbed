"""Many NTA videos on many machines: one Dask task per video, resumable results.

* :func:`collect_jobs` / :func:`read_manifest`: videos, folders and CSV
  manifests (per-sample acquisition settings, groups, lots) -> :class:`VideoJob` s;
* :func:`run_batch`: analyse them on a Dask ``LocalCluster`` or an existing
  cluster, one JSON result per video and ``summary.csv``, written atomically;
  results for the same video bytes and settings are reused;
* :class:`LotStore` / :func:`store_result`: results as measurements on lots,
  idempotently.

See ``docs/batch.md``.
"""

from ._files import atomic_write_text, sha256_file
from ._inputs import MANIFEST_COLUMNS, VIDEO_SUFFIXES, collect_jobs, read_manifest
from ._jobs import AnalysisSettings, VideoJob, result_file_name, settings_sha256
from ._lots import LotStore, batch_key, instrument_record, store_result
from ._run import RESULT_SCHEMA, BatchReport, load_result, run_batch
from ._summary import SUMMARY_COLUMNS, SUMMARY_NAME, summary_rows, write_summary
from ._task import analyze_video

__all__ = [
    "MANIFEST_COLUMNS",
    "RESULT_SCHEMA",
    "SUMMARY_COLUMNS",
    "SUMMARY_NAME",
    "VIDEO_SUFFIXES",
    "AnalysisSettings",
    "BatchReport",
    "LotStore",
    "VideoJob",
    "analyze_video",
    "atomic_write_text",
    "batch_key",
    "collect_jobs",
    "instrument_record",
    "load_result",
    "read_manifest",
    "result_file_name",
    "run_batch",
    "settings_sha256",
    "sha256_file",
    "store_result",
    "summary_rows",
    "write_summary",
]
