"""Token entropy: the pairs whose completions the policy model is least sure how to write (rewrite candidates)."""

from __future__ import annotations

import numpy as np

from curate.strategies.base import PoolView, Strategy, top

SCORE = "entropy.entropy_mean"  # per pair: the higher of its two completions' mean token entropy


class TokenEntropy(Strategy):
    name = "token-entropy"
    criterion = "the policy's mean token entropy over the completion"

    def rank(self, pool: PoolView, budget: int, rng: np.random.Generator) -> np.ndarray:
        entropy = pool.score(SCORE, strategy=self.name, command="curate score entropy")
        return top(entropy, pool.available, budget, rng)
