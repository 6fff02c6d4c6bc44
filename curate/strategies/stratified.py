"""Cluster-stratified sampling: every cluster gets its share of the budget (proportional to its size
among the available units, or equal), drawn at random or by uncertainty within it."""

from __future__ import annotations

import numpy as np

from curate.strategies.base import PoolView, Strategy, top
from curate.strategies.uncertainty import check_choice, probability, uncertainty

ALLOCATIONS = ("proportional", "equal")
WITHIN = ("random", "uncertainty")


def allocate(sizes: np.ndarray, budget: int, allocation: str) -> np.ndarray:
    """Units per group: proportional (largest remainder) or equal, never more than a group has,
    what a small group cannot take going to the others."""
    share = np.zeros(len(sizes), dtype=np.int64)
    left = budget
    while left > 0:
        room = sizes - share
        open_ = room > 0
        weights = np.where(open_, sizes if allocation == "proportional" else 1, 0).astype(float)
        ideal = left * weights / weights.sum()
        add = np.minimum(np.floor(ideal).astype(np.int64), room)
        rest = left - add.sum()
        if rest > 0:  # largest remainders first, among groups with room left
            remainder = np.where(room - add > 0, ideal - np.floor(ideal), -1.0)
            for g in np.argsort(-remainder, kind="stable")[:rest]:
                if room[g] - add[g] > 0:
                    add[g] += 1
        share += add
        left = budget - share.sum()
    return share


class ClusterStratified(Strategy):
    name = "cluster"

    def __init__(self, *, allocation: str = "proportional", within: str = "random", by: str = "cluster") -> None:
        check_choice(allocation, ALLOCATIONS, "allocation")
        check_choice(within, WITHIN, "within-cluster order")
        self.allocation, self.within, self.by = allocation, within, by

    @property
    def criterion(self) -> str:  # type: ignore[override]
        return f"{self.allocation} share of its {self.by}, {self.within} within it"

    def rank(self, pool: PoolView, budget: int, rng: np.random.Generator) -> np.ndarray:
        groups = pool.group(self.by, strategy=self.name)
        available = pool.available
        names, sizes = np.unique(groups[available], return_counts=True)
        share = allocate(sizes, budget, self.allocation)
        value = (uncertainty(probability(pool, "committee", self.name), "least-confidence")
                 if self.within == "uncertainty" else np.zeros(len(pool)))
        picks = [top(value, available[groups[available] == g], k, rng) for g, k in zip(names, share, strict=True) if k]
        chosen = np.concatenate(picks)
        return chosen[np.lexsort((rng.random(len(chosen)), -value[chosen]))]  # most wanted first across clusters
