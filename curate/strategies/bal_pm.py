"""BAL-PM (Melo et al., NeurIPS 2024): epistemic uncertainty plus the entropy of what has been acquired in
feature space, so a batch does not spend its labels on one region the model happens to doubt.

Each pick maximises ``z(BALD) + beta * z(log d_k)``, where BALD is the committee's mutual information (what a
label could still teach) and ``d_k`` the distance from the candidate to its k-th nearest neighbour among the
labelled units and the picks before it: the Kozachenko-Leonenko estimate of how much the acquired set's entropy
grows with it. Both terms are standardised over the candidates once, at the start of the batch. Where fewer than
``k`` units are acquired, the farthest of them counts (none at all: the first pick is the most uncertain).
The paper measures entropy on prompt features; here it is the pool's unit vectors (a pair's vector is its
prompt's and completions', see ``curate.pool.units``)."""

from __future__ import annotations

import numpy as np

from curate.strategies.base import PoolView, Strategy, StrategyError
from curate.strategies.qbc import COMMITTEES
from curate.strategies.uncertainty import SOURCES, check_choice


class BalPM(Strategy):
    name = "bal-pm"
    criterion = "what the committee could still learn (BALD), plus how much it widens the labelled set's spread"

    def __init__(self, *, beta: float = 1.0, k: int = 5, source: str = "committee") -> None:
        if not beta >= 0:
            raise StrategyError(f"option 'beta' of strategy 'bal-pm' must be 0 or more, not {beta}")
        if k < 1:
            raise StrategyError(f"option 'k' of strategy 'bal-pm' must be 1 or more, not {k}")
        check_choice(source, COMMITTEES, "source")
        self.beta, self.k, self.source = beta, k, source

    def rank(self, pool: PoolView, budget: int, rng: np.random.Generator) -> np.ndarray:
        x = np.ascontiguousarray(pool.require_vectors(strategy=self.name), dtype=np.float32)
        epistemic = pool.score(f"{self.source}.bald", strategy=self.name, command=SOURCES[self.source][1])
        candidates = pool.available
        value = _standardised(epistemic[candidates]) + 1e-9 * rng.random(len(candidates))  # ties go to chance
        nearest = _nearest(x, np.flatnonzero(pool.labelled), candidates, self.k)  # squared, ascending, inf-padded
        spread = None
        taken = np.zeros(len(candidates), dtype=bool)
        picks = []
        for _ in range(budget):
            score = value.copy()
            if np.isfinite(nearest[:, 0]).any():
                log_distance = _log_kth(nearest)
                if spread is None:  # the entropy term's scale, fixed at the batch's first use
                    spread = (log_distance.mean(), log_distance.std() or 1.0)
                score += self.beta * (log_distance - spread[0]) / spread[1]
            score[taken] = -np.inf
            best = int(np.argmax(score))
            taken[best] = True
            picks.append(candidates[best])
            distance = ((x[candidates] - x[candidates[best]]) ** 2).sum(1)
            nearest = np.sort(np.column_stack([nearest, distance]), axis=1)[:, :self.k]
        return np.array(picks, dtype=np.int64)


def _standardised(values: np.ndarray) -> np.ndarray:
    spread = values.std()
    return (values - values.mean()) / (spread if spread > 0 else 1.0)


def _nearest(x: np.ndarray, acquired: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """Each candidate's ``k`` smallest squared distances to ``acquired`` (ascending; inf where fewer exist)."""
    nearest = np.full((len(candidates), k), np.inf, dtype=np.float64)
    if len(acquired):
        import faiss

        index = faiss.IndexFlatL2(x.shape[1])
        index.add(x[acquired])
        found = min(k, len(acquired))
        nearest[:, :found] = np.maximum(index.search(x[candidates], found)[0], 0)
    return nearest


def _log_kth(nearest: np.ndarray) -> np.ndarray:
    """log of the distance to the k-th nearest acquired unit, or to the farthest where fewer than k are."""
    finite = np.where(np.isfinite(nearest), nearest, -np.inf).max(1)
    return 0.5 * np.log(finite + 1e-12)
