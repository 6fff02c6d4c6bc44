"""Query strategies, one module each, all behind ``select(pool, budget, rng) -> positions``
(``curate.strategies.base``), and the wrappers that mix in a random arm, quotas and near-duplicate
exclusion. ``make_strategy(name, **options)`` builds one with validated options."""

from __future__ import annotations

import inspect
import math
import os
from typing import Any, get_type_hints

import numpy as np

from curate.strategies.bal_pm import BalPM
from curate.strategies.base import PoolView, Strategy, StrategyError
from curate.strategies.coreset import CoreSet
from curate.strategies.hybrid import Hybrid
from curate.strategies.model_change import ExpectedModelChange
from curate.strategies.pair_choice import PairChoice
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
    RewardMargin, Rules, BalPM, PairChoice)}


def options_of(name: str) -> list[str]:
    return [p for p in inspect.signature(STRATEGIES[name].__init__).parameters if p != "self"]


def make_strategy(name: str, **options: Any) -> Strategy:
    """The strategy ``name`` with ``options``; unknown names and options are errors that list the valid ones,
    and text values (from the command line) become the option's type."""
    if name not in STRATEGIES:
        raise StrategyError(f"unknown strategy '{name}' (strategies: {', '.join(STRATEGIES)})")
    valid = options_of(name)
    hints = get_type_hints(STRATEGIES[name].__init__)
    values = {}
    for key, value in options.items():
        if key not in valid:
            raise StrategyError(f"strategy '{name}' has no option '{key}' "
                                f"(options: {', '.join(valid) if valid else 'none'})")
        values[key] = _typed(name, key, value, hints[key])
    return STRATEGIES[name](**values)


def _typed(strategy: str, key: str, value: Any, kind: Any) -> Any:
    if kind is float:
        try:
            number = float(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
        except ValueError:
            number = None
        if number is None or not math.isfinite(number):
            raise StrategyError(f"option '{key}' of strategy '{strategy}' must be a number, not {value!r}")
        return number
    if kind is int:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise StrategyError(f"option '{key}' of strategy '{strategy}' must be a whole number, not {value!r}")
    if isinstance(value, (str, os.PathLike)):
        return str(value)
    raise StrategyError(f"option '{key}' of strategy '{strategy}' must be text, not {value!r}")


__all__ = ["STRATEGIES", "NoNearDuplicates", "PoolView", "Quotas", "RandomMix", "Strategy", "StrategyError",
           "make_strategy"]
