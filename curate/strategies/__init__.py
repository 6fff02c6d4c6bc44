"""Query strategies, one module each, all behind ``select(pool, budget, rng) -> positions``
(``curate.strategies.base``), and the wrappers that mix in a random arm, quotas and near-duplicate
exclusion. ``make_strategy(name, **options)`` builds one with validated options."""

from __future__ import annotations

import inspect
from typing import Any

from curate.strategies.base import PoolView, Strategy, StrategyError
from curate.strategies.coreset import CoreSet
from curate.strategies.hybrid import Hybrid
from curate.strategies.model_change import ExpectedModelChange
from curate.strategies.qbc import QueryByCommittee
from curate.strategies.random_sampling import Random
from curate.strategies.reward_margin import RewardMargin
from curate.strategies.rules import Rules
from curate.strategies.stratified import ClusterStratified
from curate.strategies.token_entropy import TokenEntropy
from curate.strategies.uncertainty import Uncertainty
from curate.strategies.wrappers import NoNearDuplicates, Quotas, RandomMix

STRATEGIES: dict[str, type[Strategy]] = {cls.name: cls for cls in (
    Random, Uncertainty, QueryByCommittee, CoreSet, ClusterStratified, Hybrid, ExpectedModelChange, TokenEntropy,
    RewardMargin, Rules)}


def options_of(name: str) -> list[str]:
    return [p for p in inspect.signature(STRATEGIES[name].__init__).parameters if p != "self"]


def make_strategy(name: str, **options: Any) -> Strategy:
    """The strategy ``name`` with ``options``; unknown names and options are errors that list the valid ones."""
    if name not in STRATEGIES:
        raise StrategyError(f"unknown strategy '{name}' (strategies: {', '.join(STRATEGIES)})")
    valid = options_of(name)
    for key in options:
        if key not in valid:
            raise StrategyError(f"strategy '{name}' has no option '{key}' "
                                f"(options: {', '.join(valid) if valid else 'none'})")
    return STRATEGIES[name](**options)


__all__ = ["STRATEGIES", "NoNearDuplicates", "PoolView", "Quotas", "RandomMix", "Strategy", "StrategyError",
           "make_strategy"]
