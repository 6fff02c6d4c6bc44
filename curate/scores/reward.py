"""The model committee: reward models (sequence classifiers, or LoRA reward adapters) score every
completion; their disagreement on a pair is the signal.

A completion is scored as the whole conversation, the completion its last assistant turn, rendered for the
model as ``curate.rendering`` renders every model step (the form curate's reward recipe trains on). Each
model's rewards are standardised over the pool (z-scores), so models on different scales can be compared; a
pair's margin under a model is z(A) − z(B), and P(A ≻ B) = σ(margin).
Per pair: the mean and spread (standard deviation) of the margins, and the committee statistics of
the fast committee (mean P, its variance, vote entropy, BALD). Per completion: the mean and spread of
its z-scored rewards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curate.compute import pack
from curate.errors import CurateError
from curate.learners.bradley_terry import margin_disagreement
from curate.progress import Progress, no_progress
from curate.project import Project
from curate.rendering import Conversation
from curate.scores.committee import NAMES as COMMITTEE_NAMES

PAIR_NAMES = COMMITTEE_NAMES  # the same pair scores as the fitted committee's: margin_mean and margin_std among them
COMPLETION_NAMES = ("reward_mean", "reward_std")
TOKEN_BUDGET = 16384  # padded tokens one batch may hold
SHARD = 512  # completions scored and cached together


def reward_scores(model: Any, tokenizer: Any, conversations: Sequence[Conversation], *, max_length: int = 1024,
                  progress: Progress | None = None) -> np.ndarray:
    """(reward, truncated) of every completion (n x 2), in batches sorted by length and right-padded."""
    import torch

    from curate.scores.passes import encode_all, gpu_scale

    encoded = [(e.ids, e.truncated) for e in encode_all(model, tokenizer, conversations, max_length=max_length)]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    budget = TOKEN_BUDGET * gpu_scale(model)
    batches = pack(order, lambda run: len(run) * len(encoded[run[-1]][0]) <= budget)
    out = np.zeros((len(encoded), 2), dtype=np.float64)
    # pad with the id the model's own pooling skips, so a completion's reward never depends on its batch
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else tokenizer.pad_token_id
    with torch.inference_mode():
        for batch in (progress or no_progress)(batches, "rewards", len(batches)):
            ids = [encoded[i][0] for i in batch]
            width = max(len(x) for x in ids)
            rewards = model(input_ids=torch.tensor([x + [pad] * (width - len(x)) for x in ids], device=model.device),
                            attention_mask=torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids],
                                                        device=model.device)).logits[:, 0].float().cpu()
            for row, i in enumerate(batch):
                out[i] = [rewards[row].item(), float(encoded[i][1])]
    return out


def standardise(rewards: np.ndarray) -> np.ndarray:
    """Each column (one model's rewards over the pool) to mean 0 and standard deviation 1."""
    spread = rewards.std(axis=0)
    if (spread < 1e-12).any():
        raise CurateError("a reward model gives every completion the same reward; it cannot rank anything")
    return (rewards - rewards.mean(axis=0)) / spread


def committee_margins(z: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Per pair (completion rows ``a`` and ``b`` of the z-scored rewards, completions x models)."""
    return margin_disagreement((z[a] - z[b]).T)  # models x pairs


@dataclass
class RewardResult:
    models: list[str]
    completions: int
    pairs: int
    computed: dict[str, int] = field(default_factory=dict)
    truncated: dict[str, int] = field(default_factory=dict)
    run_id: int | None = None  # the pairs' run (none when the pool has no pairs)
    completion_run_id: int | None = None


def score_reward_models(project: Project, *, models: Sequence[str], max_length: int = 1024,
                        device: str | None = None, engine: str | None = None,
                        progress: Progress | None = None) -> RewardResult:
    """Score every completion with each reward model (cached per model and text), then every pair; on ``device``
    (default: [compute] device)."""
    from curate.scores.lm import load_reward_model, model_paths, resolve_scorer
    from curate.scores.runs import cached_completion_scores, save_run
    from curate.store import pool
    from curate.store.model_versions import register_model

    if not models:
        raise CurateError("name at least one reward model (--model, repeated for a committee)")
    if len(set(models)) != len(models):
        raise CurateError("a reward model is named twice; a committee needs different models")
    with project.store.read() as conn:
        rows, pairs = pool.completion_rows(conn), [(p, a, b) for p, _, a, b in pool.pairs(conn)]
    if not rows:
        raise CurateError("the pool has no completions to score: ingest data first")
    root = project.root / "cache"
    compute = project.config.compute.resolve_engine(device, engine=engine)
    resolved = [resolve_scorer(name, cache=root, project=project) for name in models]
    result = RewardResult(models=list(models), completions=len(rows), pairs=len(pairs))
    columns = []
    for model in resolved:
        values, computed = cached_completion_scores(root, model, rows, kind="reward", load=load_reward_model,
                                                    score=reward_scores, max_length=max_length, shard=SHARD,
                                                    compute=compute, progress=progress)
        columns.append(values[:, 0])
        result.computed[model.name] = computed
        result.truncated[model.name] = int(values[:, 1].sum())
    z = standardise(np.column_stack(columns))
    config = {"max_length": max_length, "truncated": result.truncated, **compute.describe(), **model_paths(*resolved)}
    with project.store.write() as conn:
        for model in resolved:
            register_model(conn, model, kind="reward")
    label = _committee_model(resolved)
    result.completion_run_id = save_run(
        project, kind="reward", unit="completion", model=label, ids=[r[0] for r in rows], names=COMPLETION_NAMES,
        values=np.column_stack([z.mean(axis=1), z.std(axis=1)]), config=config)
    if pairs:
        row_of = {r[0]: i for i, r in enumerate(rows)}
        scores = committee_margins(z, np.array([row_of[p[1]] for p in pairs]), np.array([row_of[p[2]] for p in pairs]))
        result.run_id = save_run(project, kind="reward-models", unit="pair", model=label, ids=[p[0] for p in pairs],
                                 names=PAIR_NAMES, values=np.column_stack([scores[n] for n in PAIR_NAMES]),
                                 config=config)
    return result


def _committee_model(models: Sequence[Any]) -> Any:
    """One model, or the committee under one name and a fingerprint of all its members (listed in the run's config)."""
    import hashlib

    from curate.models import ResolvedModel

    if len(models) == 1:
        return models[0]
    digest = hashlib.sha256("+".join(m.fingerprint for m in models).encode()).hexdigest()
    return ResolvedModel(name=f"committee of {len(models)} reward models", path=models[0].path, fingerprint=digest)
