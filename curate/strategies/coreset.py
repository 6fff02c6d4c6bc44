"""Core-set selection: k-center greedy, each pick the unit farthest from everything labelled or picked,
so the batch covers the pool's embedding space (Sener & Savarese, 2018)."""

from __future__ import annotations

import numpy as np

from curate.progress import Progress, no_progress
from curate.strategies.base import PoolView, Strategy


def k_center_greedy(x: np.ndarray, budget: int, *, centers: np.ndarray, candidates: np.ndarray,
                    rng: np.random.Generator, progress: Progress | None = None) -> np.ndarray:
    """``budget`` rows of ``x`` from ``candidates``, each the farthest (Euclidean) from ``centers`` and the
    rows picked before it; without centers the first pick is a random candidate.

    Keeps one squared distance per row to its nearest center and updates it with one matrix-vector
    product per pick (float32, no n x k matrix): O(n·d) memory and time per pick. Distances to an
    initial set of centers come from a faiss exact search."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.einsum("ij,ij->i", x, x)
    nearest = np.full(len(x), -np.inf, dtype=np.float32)  # only candidates can ever be the farthest
    if len(centers):
        import faiss

        index = faiss.IndexFlatL2(x.shape[1])
        index.add(x[centers])
        nearest[candidates] = index.search(x[candidates], 1)[0][:, 0]
        picks = []
    else:
        first = int(rng.choice(candidates))
        nearest[candidates] = np.inf
        picks = [first]
        _update(x, norms, nearest, first)
    distance = np.empty(len(x), dtype=np.float32)
    for _ in (progress or no_progress)(range(budget - len(picks)), "k-center greedy", budget - len(picks)):
        pick = int(np.argmax(nearest))
        picks.append(pick)
        _update(x, norms, nearest, pick, out=distance)
    return np.array(picks, dtype=np.int64)


def _update(x: np.ndarray, norms: np.ndarray, nearest: np.ndarray, pick: int, out: np.ndarray | None = None) -> None:
    """nearest = min(nearest, |x − x[pick]|²), and the pick itself out of the running."""
    center = x[pick]
    distance = np.matmul(x, center, out=out)
    distance *= -2
    distance += norms
    distance += norms[pick]
    np.minimum(nearest, distance, out=nearest)
    nearest[pick] = -np.inf


class CoreSet(Strategy):
    name = "coreset"
    criterion = "farthest in embedding space from everything labelled or chosen before it"

    def rank(self, pool: PoolView, budget: int, rng: np.random.Generator) -> np.ndarray:
        return k_center_greedy(pool.require_vectors(strategy=self.name), budget, centers=np.flatnonzero(pool.labelled),
                               candidates=pool.available, rng=rng)
