"""Expected model change: the expected length of the gradient a label would give the reward head.

For a Bradley–Terry head with P(A ≻ B) = σ(w·d), the log-loss gradient for label y is (p − y)·d, so
its expected length under the committee's own p is 2p(1 − p)·‖d‖ (d = f(A) − f(B))."""

from __future__ import annotations

import numpy as np

from curate.strategies.base import PoolView, Strategy, StrategyError, top
from curate.strategies.uncertainty import probability


def expected_gradient_length(p: np.ndarray, differences: np.ndarray) -> np.ndarray:
    return 2 * p * (1 - p) * np.linalg.norm(differences, axis=1)


class ExpectedModelChange(Strategy):
    name = "model-change"
    criterion = "expected gradient length of the reward head"

    def rank(self, pool: PoolView, budget: int, rng: np.random.Generator) -> np.ndarray:
        p = probability(pool, "committee", self.name)
        if pool.differences is None:
            raise StrategyError(f"strategy '{self.name}' needs pair embeddings: run `curate embed` first")
        return top(expected_gradient_length(p, pool.differences), pool.available, budget, rng)
