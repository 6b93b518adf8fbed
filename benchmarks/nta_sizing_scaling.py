"""How sizing time grows with the number of tracks (1k, 10k, 100k tracks).

Tracks come from the track-level simulator (100 nm EVs under a Gaussian
light sheet on a 1280 x 1024 field, 30 ms shutter at 25 fps); the video
length is chosen for each target count. Timed, best of ``--repeat``: per-track
diffusion (CVE) and the EM size distribution, as ``exotrace nta analyze``
runs them. Printed: positions (track rows), wall and process (CPU) seconds,
microseconds of CPU per track, and the growth exponent of the CPU time
between successive sizes (1.0 = linear in the number of tracks). On a shared
machine the CPU time is the figure to read: the wall time follows the load.

Run: ``.venv/bin/python benchmarks/nta_sizing_scaling.py [--sizes 1000 10000 100000]``.
"""

from __future__ import annotations

import argparse
import math
import platform
import time

from exotrace.nta._sizing_sim import simulate_sample
from exotrace.nta._types import Acquisition
from exotrace.nta.diffusion import track_diffusion
from exotrace.nta.sizing import size_distribution

ACQ = Acquisition(pixel_size_nm=140.0, fps=25.0, temperature_c=22.0, exposure_ms=30.0)
FIELD = (1024, 1280)


def sample_with(n_tracks: int, seed: int):
    """Simulated tracks, about ``n_tracks`` of them."""
    pilot = simulate_sample(ACQ, n_frames=200, frame_shape=FIELD, seed=seed)
    per_frame = pilot.tracks.n_tracks / 200
    frames = max(20, int(math.ceil(n_tracks / per_frame)))
    return simulate_sample(ACQ, n_frames=frames, frame_shape=FIELD, seed=seed).tracks


def time_sizing(tracks, repeat: int) -> tuple[float, float]:
    """Best wall and best process time, s."""
    wall = cpu = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        c0 = time.process_time()
        diff = track_diffusion(tracks, ACQ)
        size_distribution(diff, ACQ)
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{platform.node()} {platform.processor() or platform.machine()}, "
          f"{time.strftime('%Y-%m-%d')}")
    time_sizing(sample_with(300, seed=1), 1)  # compile / load the kernels first
    prev = None
    print(f"{'tracks':>8} {'positions':>10} {'wall s':>8} {'CPU s':>8} {'CPU us/track':>13} "
          f"{'exponent':>9}")
    for target in args.sizes:
        tracks = sample_with(target, seed=2)
        n = tracks.n_tracks
        wall, cpu = time_sizing(tracks, args.repeat)
        growth = ("" if prev is None
                  else f"{math.log(cpu / prev[1]) / math.log(n / prev[0]):9.2f}")
        print(f"{n:8d} {len(tracks):10d} {wall:8.2f} {cpu:8.2f} {1e6 * cpu / n:13.1f} {growth}")
        prev = (n, cpu)


if __name__ == "__main__":
    main()
