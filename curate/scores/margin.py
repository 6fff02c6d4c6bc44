"""The DPO margin: how strongly a trained policy prefers A to B, relative to its reference.

A completion's implicit reward is β·(log πθ(c | p) − log πref(c | p)), the log-probabilities summed
over its tokens and end token (as DPO trains them); a pair's margin is r(A) − r(B), and σ(margin) is
the policy's implied P(A ≻ B). Both models run in float32 on any device: a LoRA folded into bfloat16
weights loses most of its change, and the margin is a difference of nearly equal sums. The policy is
usually a LoRA adapter and the reference its base model (the adapter disabled, as TRL's DPO trainer uses
it); a whole model needs its reference named. Log-probabilities come from the same cached pass as token
entropy, so a base model scored for entropy in float32 is not run again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.errors import CurateError
from curate.progress import Progress
from curate.project import Project
from curate.scores.entropy import STATS

PAIR_NAMES = ("margin", "p_policy")
COMPLETION_NAMES = ("implicit_reward",)


def logprob_sums(stats: np.ndarray) -> np.ndarray:
    """Summed log-probability of each completion from its entropy-pass STATS."""
    return stats[:, STATS.index("logprob_mean")] * stats[:, STATS.index("tokens")]


def implicit_rewards(policy: np.ndarray, reference: np.ndarray, *, beta: float) -> np.ndarray:
    """β·(log πθ − log πref) per completion, from the two models' STATS."""
    return beta * (logprob_sums(policy) - logprob_sums(reference))


@dataclass
class MarginResult:
    policy: str
    reference: str
    beta: float
    completions: int
    pairs: int
    computed: int
    truncated: int
    run_id: int | None  # the pairs' run (none when the pool has no pairs)
    completion_run_id: int


def score_margin(project: Project, *, policy: str, reference: str | None = None, beta: float = 0.1,
                 max_length: int = 1024, device: str | None = None, progress: Progress | None = None) -> MarginResult:
    """Implicit rewards of every completion and DPO margins of every pair under ``policy``, on ``device``
    (default: [compute] device)."""
    from scipy.special import expit

    from curate.scores.entropy import completion_stats
    from curate.scores.lm import adapter_config, model_paths, resolve_scorer
    from curate.scores.runs import save_run
    from curate.store import pool
    from curate.store.model_versions import register_model

    if not beta > 0:
        raise CurateError(f"beta must be positive, not {beta}")
    compute = project.config.compute.resolve(device).exact()  # float32 on any device (see the module's text)
    root = project.root / "cache"
    trained = resolve_scorer(policy, cache=root, project=project)
    if reference is None:
        adapter = adapter_config(trained.path)
        if adapter is None:
            raise CurateError(f"'{policy}' is a whole model, not an adapter: name its reference model with --ref")
        reference = adapter["base_model_name_or_path"]
    base = resolve_scorer(reference, cache=root, project=project)
    if base.fingerprint == trained.fingerprint:
        raise CurateError(f"the policy and the reference are the same model ({policy}); every margin would be 0")
    with project.store.read() as conn:
        rows, pairs = pool.completion_rows(conn), [(p, a, b) for p, _, a, b in pool.pairs(conn)]
    if not rows:
        raise CurateError("the pool has no completions to score: ingest data first")
    stats_policy, computed = completion_stats(project, trained, rows, max_length=max_length, compute=compute,
                                              progress=progress)
    stats_reference, computed_reference = completion_stats(project, base, rows, max_length=max_length,
                                                           compute=compute, progress=progress)
    rewards = implicit_rewards(stats_policy, stats_reference, beta=beta)
    truncated = int(stats_policy[:, STATS.index("truncated")].sum())
    config = {"beta": beta, "max_length": max_length, "truncated": truncated, "reference": base.name,
              **compute.describe(), **model_paths(trained, base)}
    with project.store.write() as conn:
        register_model(conn, trained, kind="policy")
        register_model(conn, base, kind="policy")
    completion_run = save_run(project, kind="implicit-reward", unit="completion", model=trained,
                              ids=[r[0] for r in rows], names=COMPLETION_NAMES, values=rewards[:, None], config=config)
    run_id = None
    if pairs:
        row_of = {r[0]: i for i, r in enumerate(rows)}
        margin = rewards[[row_of[p[1]] for p in pairs]] - rewards[[row_of[p[2]] for p in pairs]]
        run_id = save_run(project, kind="margin", unit="pair", model=trained, ids=[p[0] for p in pairs],
                          names=PAIR_NAMES, values=np.column_stack([margin, expit(margin)]), config=config)
    return MarginResult(policy=trained.name, reference=base.name, beta=beta, completions=len(rows), pairs=len(pairs),
                        computed=computed + computed_reference, truncated=truncated, run_id=run_id,
                        completion_run_id=completion_run)
