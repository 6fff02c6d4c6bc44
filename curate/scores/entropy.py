"""Token entropy of a causal LM over each completion, conditioned on its prompt.

For every completion token (the tokens the completion adds to its prompt as ``curate.rendering`` renders it
for the model: with a chat template, its assistant turn and the template's end of turn; without one, the text
and the end token, so an empty completion still has one) the entropy of the model's next-token distribution
and the log-probability of the actual token are taken; a completion's scores are their mean, max and sum, the
mean log-probability and the number of tokens. Each prompt runs once for all its completions
(``curate.scores.passes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from curate.compute import Compute
from curate.errors import CurateError
from curate.models import ResolvedModel
from curate.progress import Progress
from curate.project import Project
from curate.rendering import Conversation
from curate.scores.lm import load_causal_lm, model_paths, resolve_scorer
from curate.scores.passes import completion_passes, encode_all

STATS = ("entropy_mean", "entropy_max", "entropy_sum", "logprob_mean", "tokens", "truncated")


def token_entropy(model: Any, tokenizer: Any, conversations: Sequence[Conversation], *, max_length: int = 1024,
                  progress: Progress | None = None) -> np.ndarray:
    """Scores (n x len(STATS), float64) of every completion in its prompt's context; ``truncated`` is 1 where the
    example was cut."""
    examples = encode_all(model, tokenizer, conversations, max_length=max_length)
    out = np.zeros((len(examples), len(STATS)), dtype=np.float64)
    for chunk in completion_passes(model, tokenizer, examples, label="token entropy", progress=progress):
        for row, i in enumerate(chunk.rows):
            out[i] = _stats(chunk.logits[row, :len(chunk.ids[row])], chunk.ids[row], examples[i].truncated)
    return out


def _stats(logits: Any, completion: list[int], truncated: bool) -> list[float]:
    import torch

    logp = torch.log_softmax(logits, dim=-1)
    entropy = torch.special.entr(logp.exp()).sum(-1)  # 0 log 0 = 0 where a logit is -inf
    actual = logp.gather(-1, torch.tensor(completion, device=logp.device)[:, None]).squeeze(-1)
    return [entropy.mean().item(), entropy.max().item(), entropy.sum().item(), actual.mean().item(), len(completion),
            float(truncated)]


@dataclass
class EntropyResult:
    run_id: int
    model: str
    completions: int
    computed: int
    cached: int
    truncated: int


SHARD = 256  # completions scored and cached together: the most a killed run loses


def completion_stats(project: Project, model: ResolvedModel, rows: Sequence[tuple[str, Conversation]], *,
                     max_length: int, compute: Compute | None = None,
                     progress: Progress | None = None) -> tuple[np.ndarray, int]:
    """STATS of every (id, conversation) row under ``model`` (cached), and how many were computed."""
    from curate.scores.runs import cached_completion_scores

    return cached_completion_scores(project.root / "cache", model, rows, kind="entropy", load=load_causal_lm,
                                    score=token_entropy, max_length=max_length, shard=SHARD, compute=compute,
                                    progress=progress)


def score_entropy(project: Project, *, model: str | None = None, max_length: int = 1024, device: str | None = None,
                  engine: str | None = None, progress: Progress | None = None) -> EntropyResult:
    """Token entropy of every completion in the project (cached per model and text), stored as a run; on
    ``device`` and ``engine`` (default: [compute])."""
    from curate.scores.runs import save_run
    from curate.store.model_versions import register_model
    from curate.store.pool import completion_rows

    with project.store.read() as conn:
        rows = completion_rows(conn)
    if not rows:
        raise CurateError("the pool has no completions to score: ingest data first")
    compute = project.config.compute.resolve_engine(device, engine=engine)
    resolved = resolve_scorer(model or project.config.models.policy, cache=project.root / "cache", project=project)
    values, computed = completion_stats(project, resolved, rows, max_length=max_length, compute=compute,
                                        progress=progress)
    truncated = int(values[:, STATS.index("truncated")].sum())
    with project.store.write() as conn:
        register_model(conn, resolved, kind="policy")
    run_id = save_run(project, kind="entropy", unit="completion", model=resolved, ids=[r[0] for r in rows],
                      names=STATS, values=values, config={"max_length": max_length, "truncated": truncated,
                                                          **compute.describe(), **model_paths(resolved)})
    return EntropyResult(run_id=run_id, model=resolved.name, completions=len(rows), computed=computed,
                         cached=len(rows) - computed, truncated=truncated)
