"""Query by committee: the pairs the committee's members disagree on (vote entropy, variance, or BALD)."""

from __future__ import annotations

import numpy as np

from curate.strategies.base import PoolView, Strategy, StrategyError
from curate.strategies.uncertainty import SOURCES, check_choice

MEASURES = {"vote-entropy": "vote_entropy", "variance": "p_var", "bald": "bald"}
COMMITTEES = ("committee", "reward-models")


class QueryByCommittee(Strategy):
    name = "qbc"

    def __init__(self, *, measure: str = "vote-entropy", source: str = "committee") -> None:
        check_choice(measure, list(MEASURES), "measure")
        check_choice(source, COMMITTEES, "source")
        self.measure, self.source = measure, source

    @property
    def criterion(self) -> str:  # type: ignore[override]
        return f"{self.measure} of the {self.source}"

    def rank(self, pool: PoolView, budget: int, rng: np.random.Generator) -> np.ndarray:
        command = SOURCES[self.source][1]
        primary = pool.score(f"{self.source}.{MEASURES[self.measure]}", strategy=self.name, command=command)
        variance = pool.score(f"{self.source}.p_var", strategy=self.name, command=command)
        candidates = pool.available
        if not variance[candidates].any():
            raise StrategyError(f"the {self.source} never disagrees (one member?): qbc needs a committee; score "
                                "with several reward models, or use uncertainty")
        # vote entropy takes few values: ties go to the larger variance, then to chance
        order = np.lexsort((rng.random(len(candidates)), -variance[candidates], -primary[candidates]))
        return candidates[order[:budget]]
