"""Wrappers around any strategy: a random arm mixed in, quotas per group, no two near-duplicates."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from curate.ids import member_mask
from curate.strategies.base import PoolView, Strategy, StrategyError
from curate.strategies.random_sampling import Random


def without(pool: PoolView, positions: np.ndarray | list[int]) -> PoolView:
    """The pool with ``positions`` excluded too."""
    excluded = pool.excluded.copy()
    excluded[np.asarray(positions, dtype=np.int64)] = True
    return replace(pool, excluded=excluded)


def having_chosen(pool: PoolView, positions: np.ndarray | list[int]) -> PoolView:
    """The pool with ``positions`` counted as labelled: out of reach, and what coverage and
    near-duplicate exclusion measure against."""
    labelled = pool.labelled.copy()
    labelled[np.asarray(positions, dtype=np.int64)] = True
    return replace(pool, labelled=labelled)


class RandomMix(Strategy):
    """``frac`` of every batch drawn at random (the random arm, the honest baseline), the rest by ``inner``.
    The random arm is drawn by ``random`` (e.g. ``NoNearDuplicates(Random())``) with the strategy's picks
    counted as labelled."""

    def __init__(self, inner: Strategy, *, frac: float = 0.1, random: Strategy | None = None) -> None:
        if not 0 <= frac <= 1:
            raise StrategyError(f"the random fraction must be between 0 and 1, not {frac}")
        self.inner, self.frac, self.random = inner, frac, random or Random()
        self.name = inner.name  # type: ignore[misc]
        self.criterion = inner.criterion  # type: ignore[misc]

    def random_count(self, budget: int) -> int:
        return int(np.floor(self.frac * budget + 0.5))

    def select_with_arms(self, pool: PoolView, budget: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
        """Positions and each one's arm ("strategy" or "random"): the strategy's picks first."""
        chosen = self.select(pool, budget, rng)
        n_random = self.random_count(budget)
        return chosen, ["strategy"] * (budget - n_random) + ["random"] * n_random

    def rank(self, pool: PoolView, budget: int, rng: np.random.Generator) -> np.ndarray:
        n_random = self.random_count(budget)
        picked = self.inner.select(pool, budget - n_random, rng) if budget > n_random else np.array([], np.int64)
        drawn = self.random.select(having_chosen(pool, picked), n_random, rng) if n_random else \
            np.array([], np.int64)
        return np.r_[picked, drawn]


class Quotas(Strategy):
    """Each group (of ``pool.groups[by]``) gets at least ``min_share`` and at most ``max_share`` of the batch."""

    def __init__(self, inner: Strategy, *, by: str = "cluster", min_share: float = 0.0, max_share: float = 1.0) -> None:
        if not 0 <= min_share <= max_share <= 1:
            raise StrategyError(f"quotas need 0 <= min share <= max share <= 1, not {min_share} and {max_share}")
        self.inner, self.by, self.min_share, self.max_share = inner, by, min_share, max_share
        self.name = inner.name  # type: ignore[misc]
        self.criterion = f"{inner.criterion} (quotas per {by})"  # type: ignore[misc]

    def rank(self, pool: PoolView, budget: int, rng: np.random.Generator) -> np.ndarray:
        groups = pool.group(self.by, strategy=self.name)
        names = np.unique(groups[pool.available])
        sizes = np.array([self.inner.capacity(without(pool, np.flatnonzero(groups != name))) for name in names])
        low = np.minimum(int(np.ceil(self.min_share * budget)), sizes)  # a group short of its minimum gives all it has
        high = np.maximum(int(np.floor(self.max_share * budget)), low)
        if low.sum() > budget:
            raise StrategyError(f"a minimum share of {self.min_share} for each of {len(names)} {self.by}s needs "
                                f"{low.sum()} units, more than the budget of {budget}")
        if np.minimum(high, sizes).sum() < budget:
            raise StrategyError(f"a maximum share of {self.max_share} per {self.by} cannot fill a budget of {budget} "
                                f"from {len(names)} {self.by}s")
        chosen: list[int] = []
        for name, k in zip(names, low, strict=True):  # each group's minimum, by the strategy run on it alone
            if k:
                view = without(having_chosen(pool, chosen), np.flatnonzero(groups != name))
                chosen += self.inner.select(view, int(k), rng).tolist()
        count = dict.fromkeys(names.tolist(), 0)
        for position in chosen:
            count[groups[position]] += 1
        cap = dict(zip(names.tolist(), high.tolist(), strict=True))
        while len(chosen) < budget:  # the rest in the strategy's order, skipping groups at their maximum
            full = [g for g in names.tolist() if count[g] >= cap[g]]
            view = without(having_chosen(pool, chosen), np.flatnonzero(member_mask(groups.tolist(), full)))
            for position in self.inner.select(view, budget - len(chosen), rng).tolist():
                if count[groups[position]] < cap[groups[position]]:
                    chosen.append(position)
                    count[groups[position]] += 1
        return np.array(chosen, dtype=np.int64)


class NoNearDuplicates(Strategy):
    """At most one unit per near-duplicate group across what is labelled and what is chosen."""

    def __init__(self, inner: Strategy) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]
        self.criterion = inner.criterion  # type: ignore[misc]

    def capacity(self, pool: PoolView) -> int:
        """Available units, a near-duplicate group counting once (none if a member is labelled)."""
        if pool.duplicates is None:
            return len(pool.available)
        groups = pool.duplicates
        taken = set(groups[pool.labelled & (groups >= 0)].tolist())
        free = groups[pool.available]
        return int((free < 0).sum()) + len(set(free[free >= 0].tolist()) - taken)

    def rank(self, pool: PoolView, budget: int, rng: np.random.Generator) -> np.ndarray:
        if pool.duplicates is None:
            return self.inner.select(pool, budget, rng)
        if budget > self.capacity(pool):
            raise StrategyError(f"only {self.capacity(pool)} units remain once near-duplicates of labelled or chosen "
                                f"units are left out, fewer than the budget of {budget}")
        groups = pool.duplicates
        taken = set(groups[pool.labelled & (groups >= 0)].tolist())
        view = without(pool, np.flatnonzero(np.isin(groups, list(taken)))) if taken else pool
        chosen: list[int] = []
        while len(chosen) < budget:
            clashes = []
            for position in self.inner.select(view, budget - len(chosen), rng).tolist():
                group = groups[position]
                if group >= 0 and group in taken:
                    clashes.append(position)
                    continue
                chosen.append(position)
                if group >= 0:
                    taken.add(group)
                    clashes += np.flatnonzero(groups == group).tolist()
            view = without(having_chosen(view, chosen), clashes)
        return np.array(chosen, dtype=np.int64)
