"""The one contract every query strategy honours, and the pool view it reads.

``select(pool, budget, rng) -> positions``: ``budget`` distinct positions into the pool, none of
them labelled or excluded, the most wanted first; the same pool, budget and seed give the same
positions. A strategy's options are keyword-only constructor arguments, validated when it is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from curate.errors import CurateError


class StrategyError(CurateError):
    """A strategy that cannot run on this pool or with these options."""


@dataclass
class PoolView:
    """What strategies see of the pool: one row per unit (pair, or record without pairs).

    ``labelled``: already judged in this project or chosen in an earlier round; ``excluded``: never
    to be chosen (frozen test and calibration slices, near-duplicates already covered).
    ``scores`` maps ``"<run kind>.<name>"`` (e.g. ``committee.p_mean``, ``entropy.entropy_mean``)
    to one value per unit; ``groups`` maps a grouping (``cluster``, ...) to one integer per unit
    (-1: none); ``duplicates`` is each unit's near-duplicate group (-1: none)."""

    ids: np.ndarray
    labelled: np.ndarray
    excluded: np.ndarray
    vectors: np.ndarray | None = None  # unit embeddings (pair vectors for pairs), unit length
    differences: np.ndarray | None = None  # f(A) − f(B) for pairs: the reward head's features
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    duplicates: np.ndarray | None = None
    texts: list[str] | None = None  # prompt and completions of each unit, for text rules

    def __post_init__(self) -> None:
        n = len(self.ids)
        arrays = {"labelled": self.labelled, "excluded": self.excluded, "vectors": self.vectors,
                  "differences": self.differences, "duplicates": self.duplicates, "texts": self.texts,
                  **{f"score {k}": v for k, v in self.scores.items()},
                  **{f"group {k}": v for k, v in self.groups.items()}}
        for name, array in arrays.items():
            if array is not None and len(array) != n:
                raise StrategyError(f"pool view: {name} has {len(array)} rows for {n} units")
        for name, array in self.scores.items():
            if not np.isfinite(array).all():
                raise StrategyError(f"pool view: score {name} has missing or non-finite values")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def available(self) -> np.ndarray:
        """Positions a strategy may choose: neither labelled nor excluded."""
        return np.flatnonzero(~self.labelled & ~self.excluded)

    def score(self, name: str, *, strategy: str, command: str) -> np.ndarray:
        """Score ``name``, or an error saying which command computes it."""
        if name not in self.scores:
            raise StrategyError(f"strategy '{strategy}' needs the score {name}: run `{command}` first")
        return self.scores[name]

    def group(self, name: str, *, strategy: str) -> np.ndarray:
        if name not in self.groups:
            hint = "run `curate cluster` first" if name == "cluster" else f"groupings: {', '.join(self.groups)}"
            raise StrategyError(f"strategy '{strategy}' needs the grouping '{name}': {hint}")
        return self.groups[name]

    def require_vectors(self, *, strategy: str) -> np.ndarray:
        if self.vectors is None:
            raise StrategyError(f"strategy '{strategy}' needs embeddings: run `curate embed` first")
        return self.vectors


class Strategy:
    """Base of all strategies: ``select`` validates, ``rank`` (each strategy's own) chooses."""

    name: ClassVar[str]
    criterion: ClassVar[str]  # what "most wanted" means, for the round manifest's "why chosen"

    def select(self, pool: PoolView, budget: int, rng: np.random.Generator) -> np.ndarray:
        """``budget`` positions into ``pool``, the most wanted first."""
        check_budget(pool, budget, self.name)
        chosen = np.asarray(self.rank(pool, budget, rng), dtype=np.int64)
        if len(chosen) != budget or len(np.unique(chosen)) != budget:  # a bug in a strategy, not user error
            raise AssertionError(f"strategy {self.name} returned {len(chosen)} positions for a budget of {budget}")
        return chosen

    def rank(self, pool: PoolView, budget: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def capacity(self, pool: PoolView) -> int:
        """The most units this strategy can choose from ``pool``."""
        return len(pool.available)


def check_budget(pool: PoolView, budget: int, name: str) -> None:
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise StrategyError(f"the budget must be a positive whole number, not {budget!r}")
    free = len(pool.available)
    if budget > free:
        raise StrategyError(f"a budget of {budget} is more than the {free} units that are neither labelled nor "
                            f"excluded (strategy '{name}')")


def top(values: np.ndarray, positions: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """The ``k`` positions with the highest ``values[positions]``, ties broken at random (seeded)."""
    tiebreak = rng.random(len(positions))
    order = np.lexsort((tiebreak, -values[positions]))
    return positions[order[:k]]
