"""Random sampling: the baseline every other strategy must beat, and the random arm of every round."""

from __future__ import annotations

import numpy as np

from curate.strategies.base import PoolView, Strategy


class Random(Strategy):
    name = "random"
    criterion = "drawn at random"

    def rank(self, pool: PoolView, budget: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(pool.available, size=budget, replace=False)
