"""Clustering (k = 1,000) and near-duplicate search on a synthetic 1,000,000 x 384 float32 pool.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/cluster_dedup_1m.py [N]

Prints seconds and peak memory for each step (goal: under 10 minutes and 8 GB on 2 cores), the
recall of the planted near-duplicates, and, on a 20,000-vector slice, exact faiss range search
against scikit-learn's radius_neighbors (the choice dedup makes) as a ratio from the same run.
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np

from curate.pool.cluster import kmeans
from curate.pool.dedup import similar_pairs

D, CENTRES, PLANTED_SHARE, THRESHOLD = 384, 1000, 0.01, 0.95


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def synthetic(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around 1,000 centres; the last 1% are noisy copies of random earlier rows."""
    centres = rng.standard_normal((CENTRES, D), dtype=np.float32)
    planted = int(n * PLANTED_SHARE)
    x = np.empty((n, D), dtype=np.float32)
    for start in range(0, n - planted, 100_000):
        stop = min(start + 100_000, n - planted)
        x[start:stop] = centres[rng.integers(0, CENTRES, stop - start)] * 0.35
        x[start:stop] += rng.standard_normal((stop - start, D), dtype=np.float32)
    originals = rng.choice(n - planted, planted, replace=False)
    x[n - planted:] = x[originals] + 0.01 * rng.standard_normal((planted, D), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, originals


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    x, originals = synthetic(n, rng)
    print(f"pool: {n:,} x {D} float32 ({x.nbytes / 1024**3:.2f} GB), made in {time.perf_counter() - start:.1f} s")

    start = time.perf_counter()
    labels, _ = kmeans(x, CENTRES, random_state=0)
    print(f"k-means, k={CENTRES}: {time.perf_counter() - start:.1f} s, {len(np.unique(labels))} clusters used, "
          f"peak memory {peak_gb():.2f} GB")

    start = time.perf_counter()
    i, j, _, method = similar_pairs(x, THRESHOLD)
    took = time.perf_counter() - start
    planted = n - len(originals)
    found = set(zip(i.tolist(), j.tolist(), strict=True))
    recall = np.mean([(int(o), planted + k) in found for k, o in enumerate(originals)])
    print(f"near-duplicates (cosine >= {THRESHOLD}, {method}): {took:.1f} s, {len(i):,} pairs, "
          f"recall of the {len(originals):,} planted copies {recall:.3f}, peak memory {peak_gb():.2f} GB")

    from sklearn.neighbors import NearestNeighbors

    part = x[:20_000]
    start = time.perf_counter()
    similar_pairs(part, THRESHOLD)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    NearestNeighbors(radius=1 - THRESHOLD, metric="cosine", algorithm="brute").fit(part).radius_neighbors(part)
    sk = time.perf_counter() - start
    print(f"exact search on 20,000 vectors: faiss {ours:.2f} s, scikit-learn {sk:.2f} s, "
          f"faiss is {sk / ours:.1f}x faster")


if __name__ == "__main__":
    main()
