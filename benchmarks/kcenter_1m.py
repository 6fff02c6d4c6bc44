"""k-center greedy (the core-set strategy) choosing 1,000 of 1,000,000 x 384 float32 vectors: curate's
implementation against a straightforward one built on sklearn.metrics.pairwise_distances, in the same
run, from the same 1,000 labelled centers; seconds, peak memory and the ratio (goal >= 5x, < 4 GB).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/kcenter_1m.py [N=1000000] [BUDGET=1000] [BASELINE_PICKS=100]

The baseline's setup is timed whole and its loop on its first BASELINE_PICKS picks (every pick costs the
same), checked to choose the same units as curate's; its time for the whole budget is set-up + picks x
the time per pick.
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np

from curate.strategies.coreset import k_center_greedy

D, CENTRES, LABELLED = 384, 1000, 1000


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def synthetic(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors around 1,000 random centres, like an embedded pool."""
    centres = rng.standard_normal((CENTRES, D), dtype=np.float32)
    x = np.empty((n, D), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(start + 100_000, n)
        x[start:stop] = centres[rng.integers(0, CENTRES, stop - start)] * 0.35
        x[start:stop] += rng.standard_normal((stop - start, D), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def sklearn_k_center(x: np.ndarray, picks: int, *, centers: np.ndarray,
                     candidates: np.ndarray) -> tuple[list[int], float, float]:
    """The textbook loop: distances to the labelled set, then one pairwise_distances call per pick.
    Returns the picks, the seconds to set up and the seconds per pick."""
    from sklearn.metrics import pairwise_distances, pairwise_distances_argmin_min

    start = time.perf_counter()
    pool = x[candidates]
    _, nearest = pairwise_distances_argmin_min(pool, x[centers])
    setup = time.perf_counter() - start
    start = time.perf_counter()
    chosen = []
    for _ in range(picks):
        best = int(np.argmax(nearest))
        chosen.append(int(candidates[best]))
        nearest = np.minimum(nearest, pairwise_distances(pool, pool[best][None, :])[:, 0])
        nearest[best] = -np.inf
    return chosen, setup, (time.perf_counter() - start) / picks


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    budget = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    baseline_picks = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    x = synthetic(n, rng)
    print(f"{n:,} x {D} float32 ({x.nbytes / 1e9:.1f} GB) made in {time.perf_counter() - start:.0f} s; "
          f"{LABELLED} labelled centers, budget {budget}")
    centers = rng.choice(n, LABELLED, replace=False)
    candidates = np.setdiff1d(np.arange(n), centers)
    start = time.perf_counter()
    ours = k_center_greedy(x, budget, centers=centers, candidates=candidates, rng=rng)
    ours_s = time.perf_counter() - start
    ours_peak = peak_gb()
    print(f"curate k_center_greedy: {ours_s:7.1f} s for {budget} picks, peak memory {ours_peak:.2f} GB")
    baseline, setup, per_pick = sklearn_k_center(x, baseline_picks, centers=centers, candidates=candidates)
    assert baseline == ours[:baseline_picks].tolist(), "the two implementations chose different units"
    baseline_s = setup + per_pick * budget
    print(f"sklearn pairwise_distances loop: setup {setup:.1f} s + {per_pick:.2f} s per pick (timed on "
          f"{baseline_picks} picks, the same units as curate's) = about {baseline_s:.0f} s for {budget}; "
          f"peak memory {peak_gb():.2f} GB")
    print(f"ratio: {baseline_s / ours_s:.1f}x (goal >= 5x; curate peak {ours_peak:.2f} GB, goal < 4 GB)")


if __name__ == "__main__":
    main()
