"""Compiled kernels: NaN handling does not depend on which kernel was compiled first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from exotrace.nta import _kernels

pytestmark = pytest.mark.skipif(not _kernels.HAVE_NUMBA, reason="numba not installed")

# Compiles the fast-math kernel first (it used to compile the shared row
# sampler with its flags, and the non-fast-math caller then reused that
# version), then the plain one; prints what each sampled from a frame with
# NaN pixels and what numpy counts.
_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from exotrace.nta import _kernels

    rng = np.random.default_rng(4)
    img = rng.standard_normal((64, 80)).astype(np.float32)
    img[rng.random(img.shape) < 0.2] = np.nan
    img[3, ::3] = np.inf
    step = 3
    binned = np.empty((32, 40), np.float32)
    sample = np.empty(binned.size, np.float32)
    order = sys.argv[1].split(",")
    out = {}
    for name in order:
        if name == "bin2":
            n = _kernels.bin2_nb(img, binned, step, sample)
            ref = binned[::step, ::step]
            out[name] = [int(n), int(np.isfinite(ref).sum()),
                         bool(np.array_equal(sample[:n], ref[np.isfinite(ref)]))]
        else:
            got = _kernels._strided_finite(img, step)
            ref = img[::step, ::step]
            out[name] = [int(got.size), int(np.isfinite(ref).sum()),
                         bool(np.array_equal(got, ref[np.isfinite(ref)]))]
    print(json.dumps(out))
""")


def _run(order: str, cache_dir) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, order], env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_finite_samples_skip_nan_whatever_compiled_first(tmp_path):
    # a fresh kernel cache: compiled in this order in the first process, then
    # loaded from the on-disk cache in the other order in a second one
    first = _run("bin2,strided", tmp_path)
    second = _run("strided,bin2", tmp_path)
    for result in (first, second):
        for name, (n_sampled, n_finite, same_values) in result.items():
            # 20 % NaN and a row of infinities: exactly the finite pixels, in order
            assert n_sampled == n_finite, (name, result)
            assert same_values, (name, result)
    # the plain sample has NaNs to skip (else the test would prove nothing)
    assert first["strided"][1] < 27 * 22


def test_every_kernel_sets_fastmath_explicitly_without_nan_assumptions():
    # a helper without an explicit setting inherits its first caller's flags;
    # 'nnan' / 'ninf' (or 'fast', which implies both) let LLVM drop NaN tests
    dispatchers = {name: obj for name, obj in vars(_kernels).items()
                   if hasattr(obj, "targetoptions") and hasattr(obj, "py_func")}
    assert len(dispatchers) >= 40  # every compiled function of the module is looked at
    for name, disp in dispatchers.items():
        assert "fastmath" in disp.targetoptions, name
        flags = disp.targetoptions["fastmath"]
        flags = {False: set(), True: {"fast"}}.get(flags) if isinstance(flags, bool) else set(flags)
        assert not flags & {"fast", "nnan", "ninf"}, (name, flags)
        assert disp.targetoptions.get("nogil") is True, name


def test_kernels_cached_only_when_every_pipeline_kernel_is_on_disk(tmp_path):
    # (decides the one-line "compiling once" notice of the first analysis)
    script = textwrap.dedent("""
        import numpy as np
        from exotrace.nta import _kernels
        before = _kernels.kernels_cached()
        img = np.zeros((8, 8), np.float32)
        _kernels.bin2_nb(img, np.empty((4, 4), np.float32), 1, np.empty(16, np.float32))
        print(before, _kernels.kernels_cached())
    """)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # a fresh cache: not cached; one kernel of five compiled: still not
    assert proc.stdout.split() == ["False", "False"]
