"""Uncertainty sampling on a committee's P(A ≻ B): the pairs whose winner the model is least sure of.

For a two-way choice least confidence (1 − max(p, 1 − p)), margin (−|2p − 1|) and entropy H(p) all
order pairs the same way; the measures are kept so the manifest says which was asked for.
"""

from __future__ import annotations

import numpy as np

from curate.learners.base import binary_entropy
from curate.strategies.base import PoolView, Strategy, StrategyError, top

# where a P(A ≻ B) comes from: score run kind -> (score name, command that computes it)
SOURCES = {"committee": ("p_mean", "curate score committee"),
           "reward-models": ("p_mean", "curate score reward-models --model RM ..."),
           "margin": ("p_policy", "curate score margin --policy ADAPTER")}
MEASURES = ("least-confidence", "margin", "entropy")


def probability(pool: PoolView, source: str, strategy: str) -> np.ndarray:
    name, command = SOURCES[source]
    return pool.score(f"{source}.{name}", strategy=strategy, command=command)


def uncertainty(p: np.ndarray, measure: str) -> np.ndarray:
    """Higher = less certain, for each of MEASURES."""
    if measure == "least-confidence":
        return 1 - np.maximum(p, 1 - p)
    if measure == "margin":
        return -np.abs(2 * p - 1)
    return binary_entropy(p)


def check_choice(value: str, valid: tuple[str, ...] | list[str], what: str) -> None:
    if value not in valid:
        raise StrategyError(f"unknown {what} '{value}' ({what}s: {', '.join(valid)})")


class Uncertainty(Strategy):
    name = "uncertainty"

    def __init__(self, *, measure: str = "least-confidence", source: str = "committee") -> None:
        check_choice(measure, MEASURES, "measure")
        check_choice(source, list(SOURCES), "source")
        self.measure, self.source = measure, source

    @property
    def criterion(self) -> str:  # type: ignore[override]
        return f"{self.measure} of the {self.source}'s P(A ≻ B)"

    def rank(self, pool: PoolView, budget: int, rng: np.random.Generator) -> np.ndarray:
        return top(uncertainty(probability(pool, self.source, self.name), self.measure), pool.available, budget, rng)
