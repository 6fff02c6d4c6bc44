"""Routing: whether a selected pair is worth an expert's ranking or a rewrite (see ``RouteSection``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from curate.config import RouteSection
from curate.strategies import PoolView
from curate.vocabulary import ItemKind, RouteMode

P_SOURCES = ("committee.p_mean", "reward-models.p_mean")
ROUTE_MODES = tuple(RouteMode)
MAX_RANKED = 8  # completions in one ranking item


@dataclass(frozen=True)
class Route:
    kind: ItemKind
    side: str | None  # for a rewrite: the completion to start from (a | b)
    reason: str


def route_pairs(pool: PoolView, positions: np.ndarray, rule: RouteSection, *, mode: str | None = None,
                completions: np.ndarray | None = None, records: Sequence[str] | None = None) -> list[Route]:
    """The route of each selected position, by ``rule`` (or every one ``mode`` where it is rank/rewrite).
    ``ranking`` orders all completions of the pair's prompt (``records``: per pool position) where it has 3
    to ``MAX_RANKED`` of them (``completions``: the count per position), once per prompt; the other pairs
    are ranked as pairs."""
    mode = mode or rule.mode
    if mode not in ROUTE_MODES:
        raise ValueError(f"unknown route mode {mode}")
    if mode == "ranking":
        if completions is None or records is None:
            raise ValueError("the ranking route needs each pair's prompt and its number of completions")
        return _rankings(positions, completions, records)
    reward_a, reward_b = pool.scores.get("reward.reward_mean.a"), pool.scores.get("reward.reward_mean.b")
    p = next((pool.scores[name] for name in P_SOURCES if name in pool.scores), None)
    entropy = pool.scores.get("entropy.entropy_mean")
    entropy_cut = float(np.quantile(entropy, rule.rewrite_entropy_quantile)) if entropy is not None else None
    routes = []
    for i in positions.tolist():
        side = _better_side(i, reward_a, reward_b, p)
        if mode != "auto":
            routes.append(Route(mode, side if mode == "rewrite" else None, f"--route {mode}"))
        elif reward_a is not None and max(reward_a[i], reward_b[i]) < rule.rewrite_reward_below:
            routes.append(Route(ItemKind.REWRITE, side, f"both completions weak: the better one's z-reward "
                                                 f"{max(reward_a[i], reward_b[i]):.2f} < {rule.rewrite_reward_below}"))
        elif p is not None and abs(p[i] - 0.5) <= rule.rank_uncertainty:
            routes.append(Route(ItemKind.RANK, None, f"contested: P(A ≻ B) = {p[i]:.2f}"))
        elif entropy is not None and entropy[i] > entropy_cut:
            routes.append(Route(ItemKind.REWRITE, side, f"the policy is unsure how to write it: token entropy "
                                                 f"{entropy[i]:.2f} above the pool's {rule.rewrite_entropy_quantile:g} "
                                                 f"quantile {entropy_cut:.2f}"))
        else:
            routes.append(Route(ItemKind.RANK, None, "default: rank"))
    return routes


def _better_side(i: int, reward_a: np.ndarray | None, reward_b: np.ndarray | None, p: np.ndarray | None) -> str:
    """The completion a rewrite starts from: the better by reward, else by the committee, else A."""
    if reward_a is not None and reward_b is not None:
        return "a" if reward_a[i] >= reward_b[i] else "b"
    if p is not None:
        return "a" if p[i] >= 0.5 else "b"
    return "a"


def _rankings(positions: np.ndarray, completions: np.ndarray, records: Sequence[str]) -> list[Route]:
    routes, ranked = [], set()
    for i in positions.tolist():
        n = int(completions[i])
        if not 3 <= n <= MAX_RANKED:
            routes.append(Route(ItemKind.RANK, None, f"the prompt has {n} completions: rank the pair"))
        elif records[i] in ranked:
            routes.append(Route(ItemKind.RANK, None, "the prompt's completions are already one ranking: rank the pair"))
        else:
            ranked.add(records[i])
            routes.append(Route(ItemKind.RANKING, None, f"order all {n} completions of the prompt"))
    return routes
