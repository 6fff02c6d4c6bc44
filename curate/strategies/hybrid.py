"""Hybrid: uncertainty first, then diversity — the ``factor`` x budget most uncertain pairs, and among
them the budget that k-center greedy spreads farthest apart (and from what is labelled)."""

from __future__ import annotations

import numpy as np

from curate.strategies.base import PoolView, Strategy, StrategyError, top
from curate.strategies.coreset import k_center_greedy
from curate.strategies.uncertainty import SOURCES, check_choice, probability, uncertainty


class Hybrid(Strategy):
    name = "hybrid"

    def __init__(self, *, factor: float = 4.0, source: str = "committee") -> None:
        if not factor >= 1:
            raise StrategyError(f"hybrid factor must be at least 1, not {factor}")
        check_choice(source, list(SOURCES), "source")
        self.factor, self.source = factor, source

    @property
    def criterion(self) -> str:  # type: ignore[override]
        return f"diverse among the {self.factor:g}x budget most uncertain by the {self.source}"

    def rank(self, pool: PoolView, budget: int, rng: np.random.Generator) -> np.ndarray:
        vectors = pool.require_vectors(strategy=self.name)
        p = probability(pool, self.source, self.name)
        shortlist = top(uncertainty(p, "least-confidence"), pool.available, int(np.ceil(self.factor * budget)), rng)
        labelled = np.flatnonzero(pool.labelled)
        x = vectors[np.r_[labelled, shortlist]]
        picks = k_center_greedy(x, budget, centers=np.arange(len(labelled)),
                                candidates=np.arange(len(labelled), len(x)), rng=rng)
        return shortlist[picks - len(labelled)]
