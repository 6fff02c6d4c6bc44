"""Pair choice: for prompts with several completions (generated rounds, rank-N data, UKPConvArg1's arguments of
one topic), which two to compare. ActiveUltraFeedback (2026) and Dwaracherla et al. (2024) found that choosing the
pair pays where choosing among fixed pairs mostly does not: compare completions whose rewards may lie far apart.

Each pair's reward margin r(A) − r(B) has a mean and an epistemic spread under the committee (its members, or the
Laplace posterior; the reward-model committee's z-scored margins). ``rule`` scores a pair by its gap:

- ``delta-ucb``: the optimistic gap |mean| + beta * spread (DeltaUCB's upper bound on how far apart the two lie);
- ``thompson``: the gap under one draw from the margin's posterior, |mean + spread * e|, e ~ N(0, 1), each pair
  drawn once per batch (Thompson sampling of the gap, where double Thompson sampling draws each completion's reward).

Which prompts are asked stays random (seeded): the prompts (the ``record`` grouping: one per prompt) take turns in
a random order, each giving its best remaining pair, so the strategy changes which pair of a prompt is compared and
nothing else; set against random, it measures pair choice alone. A pool whose prompts have one pair each has no pair
to choose, and is refused."""

from __future__ import annotations

import numpy as np

from curate.strategies.base import PoolView, Strategy, StrategyError
from curate.strategies.qbc import COMMITTEES
from curate.strategies.uncertainty import SOURCES, check_choice

RULES = ("delta-ucb", "thompson")


class PairChoice(Strategy):
    name = "pair-choice"

    def __init__(self, *, rule: str = "delta-ucb", beta: float = 1.0, source: str = "committee") -> None:
        check_choice(rule, RULES, "rule")
        check_choice(source, COMMITTEES, "source")
        if not beta >= 0:
            raise StrategyError(f"option 'beta' of strategy 'pair-choice' must be 0 or more, not {beta}")
        self.rule, self.beta, self.source = rule, beta, source

    @property
    def criterion(self) -> str:  # type: ignore[override]
        return f"prompts at random; of each prompt, the pair with the largest {self.rule} gap under the {self.source}"

    def rank(self, pool: PoolView, budget: int, rng: np.random.Generator) -> np.ndarray:
        command = SOURCES[self.source][1]
        mean = pool.score(f"{self.source}.margin_mean", strategy=self.name, command=command)
        spread = pool.score(f"{self.source}.margin_std", strategy=self.name, command=command)
        record = pool.group("record", strategy=self.name)
        candidates = pool.available
        prompts, counts = np.unique(record[candidates], return_counts=True)
        if counts.max() < 2:
            raise StrategyError("pair-choice chooses which pair of a prompt to compare, and every prompt here has one "
                                "pair left: use another strategy (or generate several completions per prompt)")
        if self.rule == "delta-ucb":
            gap = np.abs(mean[candidates]) + self.beta * spread[candidates]
        else:
            gap = np.abs(mean[candidates] + spread[candidates] * rng.standard_normal(len(candidates)))
        turn = rng.permutation(len(prompts))[np.searchsorted(prompts, record[candidates])]  # each prompt's place
        # within a prompt the largest gap first (ties to chance); prompts take turns: every prompt's best pair,
        # then every prompt's second best, ...
        order = np.lexsort((rng.random(len(candidates)), -gap, turn))
        rank_in_prompt = np.empty(len(candidates), dtype=np.int64)
        starts = np.r_[0, np.flatnonzero(np.diff(turn[order])) + 1]
        sizes = np.diff(np.r_[starts, len(order)])
        rank_in_prompt[order] = np.arange(len(order)) - np.repeat(starts, sizes)
        picks = np.lexsort((turn, rank_in_prompt))[:budget]
        return candidates[picks]
