"""A pretrained reward model's margin for a cold start: the pairs it finds hardest to tell apart
(the smallest |z(A) − z(B)| of ``curate score reward-models``)."""

from __future__ import annotations

import numpy as np

from curate.strategies.base import PoolView, Strategy, top


class RewardMargin(Strategy):
    name = "reward-margin"
    criterion = "smallest reward-model margin between A and B"

    def rank(self, pool: PoolView, budget: int, rng: np.random.Generator) -> np.ndarray:
        margin = pool.score("reward-models.margin_mean", strategy=self.name,
                            command="curate score reward-models --model RM")
        return top(-np.abs(margin), pool.available, budget, rng)
