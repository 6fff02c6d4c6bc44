"""Token entropy of a causal LM over each completion, conditioned on its prompt.

For every completion token (and the end-of-turn token after it, so an empty completion still has
one) the entropy of the model's next-token distribution and the log-probability of the actual token
are taken; a completion's scores are their mean, max and sum, the mean log-probability and the
number of tokens. The prompt is wrapped in the model's chat template where it has one.

A prompt is run once for all its completions (both sides of a pair share it): the batch's prompts
go through the model left-padded, keeping only the last position's logits, and its completions
then run against copies of their prompt's key/value cache. Examples are sorted by length, and
budgets on completions x positions and prompts x tokens bound memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from curate.errors import CurateError
from curate.models import ResolvedModel
from curate.progress import Progress, no_progress
from curate.project import Project
from curate.scores.lm import load_causal_lm, model_paths, resolve_scorer

STATS = ("entropy_mean", "entropy_max", "entropy_sum", "logprob_mean", "tokens", "truncated")
LOGIT_BUDGET = 2048  # completions x positions whose vocabulary-wide logits one batch may hold
PROMPT_BUDGET = 2048  # prompts x prompt tokens one batch may run
SLACK = 1.25  # padded / real positions a batch may reach (padding is computed like any token)
ROWS = 256  # completions one batch may hold (its cache is copied for each chunk of them)


@dataclass
class Encoded:
    prompt: list[int]
    completion: list[int]
    truncated: bool


def encode(tokenizer: Any, prompt: str, completion: str, *, max_length: int) -> Encoded:
    """Token ids of the prompt (chat template where there is one) and of the completion + end token.

    Too long an example keeps its completion (cut at the end only if it alone is too long) and
    loses the start of its prompt."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                             tokenize=False)
        prompt_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    else:
        prompt_ids = tokenizer(prompt)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        completion_ids = [*completion_ids, tokenizer.eos_token_id]
    if not prompt_ids:  # an empty prompt without template or BOS: the first token needs a position before it
        prompt_ids = [tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id]
    truncated = len(prompt_ids) + len(completion_ids) > max_length
    if truncated:
        completion_ids = completion_ids[:max_length - 1]
        prompt_ids = prompt_ids[-(max_length - len(completion_ids)):]
    return Encoded(prompt_ids, completion_ids, truncated)


def _pack(items: Sequence[Any], cost: Any) -> list[list[Any]]:
    """Consecutive runs of ``items`` whose ``cost(run)`` stays within budget (one item always fits)."""
    runs: list[list[Any]] = []
    for item in items:
        if runs and cost([*runs[-1], item]):
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def _batches(examples: Sequence[Encoded]) -> list[list[list[int]]]:
    """Examples grouped by prompt (a prompt runs once for all its completions), the groups sorted by
    prompt length and packed within PROMPT_BUDGET prompt tokens and ROWS completions per batch."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, e in enumerate(examples):
        groups.setdefault(tuple(e.prompt), []).append(i)
    ordered = sorted(groups.values(), key=lambda g: len(examples[g[0]].prompt))
    return _pack(ordered, lambda run: _within(len(run) * len(examples[run[-1][0]].prompt), PROMPT_BUDGET,
                                              sum(len(examples[g[0]].prompt) for g in run))
                 and sum(len(g) for g in run) <= ROWS)


def _within(padded: int, budget: int, real: int) -> bool:
    """A batch of ``padded`` positions (``real`` of them not padding) is within budget and wastes little."""
    return padded <= budget and padded <= SLACK * real + 64


def token_entropy(model: Any, tokenizer: Any, prompts: Sequence[str], completions: Sequence[str], *,
                  max_length: int = 1024, progress: Progress | None = None) -> np.ndarray:
    """Scores (n x len(STATS), float64) of every completion; ``truncated`` is 1 where the example was cut.

    Each batch runs its distinct prompts once (left-padded, keeping only the last position's logits);
    its completions, sorted by length, then run in chunks within LOGIT_BUDGET (right-padded), each
    chunk against a copy of its prompts' key/value cache."""
    import copy

    import torch

    limit = min(max_length, getattr(model.config, "max_position_embeddings", max_length) or max_length)
    examples = [encode(tokenizer, p, c, max_length=limit) for p, c in zip(prompts, completions, strict=True)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    batches = _batches(examples)
    out = np.zeros((len(examples), len(STATS)), dtype=np.float64)
    model.eval()
    with torch.inference_mode():
        for batch in (progress or no_progress)(batches, "token entropy", len(batches)):
            heads = [examples[g[0]].prompt for g in batch]
            width = max(len(x) for x in heads)
            prompt_mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in heads])
            first = model(input_ids=torch.tensor([[pad] * (width - len(x)) + x for x in heads]),
                          attention_mask=prompt_mask, position_ids=(prompt_mask.cumsum(-1) - 1).clamp(min=0),
                          use_cache=True, logits_to_keep=1)
            owner_of = {i: n for n, g in enumerate(batch) for i in g}
            rows = sorted(owner_of, key=lambda i: len(examples[i].completion))
            for chunk in _pack(rows, lambda run: _within(len(run) * len(examples[run[-1]].completion), LOGIT_BUDGET,
                                                         sum(len(examples[i].completion) for i in run))):
                owner = torch.tensor([owner_of[i] for i in chunk])
                cache = copy.deepcopy(first.cache)
                cache.reorder_cache(owner)
                ids = [examples[i].completion for i in chunk]
                k = len(ids[-1])
                logits = model(input_ids=torch.tensor([x + [pad] * (k - len(x)) for x in ids]),
                               attention_mask=torch.cat([prompt_mask[owner], torch.tensor(
                                   [[1] * len(x) + [0] * (k - len(x)) for x in ids])], dim=1),
                               position_ids=torch.tensor([len(heads[n]) for n in owner.tolist()])[:, None]
                               + torch.arange(k), cache=cache, logits_to_keep=k).logits.float()
                # token j of a completion is predicted at the position before it: the prompt's last for j = 0
                logits = torch.cat([first.logits[owner, -1:].float(), logits[:, :-1]], dim=1)
                for row, i in enumerate(chunk):
                    out[i] = _stats(logits[row, :len(ids[row])], ids[row], examples[i].truncated)
    return out


def _stats(logits: Any, completion: list[int], truncated: bool) -> list[float]:
    import torch

    logp = torch.log_softmax(logits, dim=-1)
    entropy = torch.special.entr(logp.exp()).sum(-1)  # 0 log 0 = 0 where a logit is -inf
    actual = logp.gather(-1, torch.tensor(completion)[:, None]).squeeze(-1)
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


def completion_stats(project: Project, model: ResolvedModel, rows: Sequence[tuple[str, str, str]], *,
                     max_length: int, progress: Progress | None = None) -> tuple[np.ndarray, int]:
    """STATS of every (id, prompt, completion) row under ``model`` (cached), and how many were computed."""
    from curate.scores.runs import cached_completion_scores

    return cached_completion_scores(project, model, rows, kind="entropy", load=load_causal_lm, score=token_entropy,
                                    max_length=max_length, shard=SHARD, progress=progress)


def score_entropy(project: Project, *, model: str | None = None, max_length: int = 1024,
                  progress: Progress | None = None) -> EntropyResult:
    """Token entropy of every completion in the project (cached per model and text), stored as a run."""
    from curate.pool import completion_rows
    from curate.scores.runs import save_run
    from curate.store.models import register_model

    with project.store.read() as conn:
        rows = completion_rows(conn)
    if not rows:
        raise CurateError("the pool has no completions to score: ingest data first")
    resolved = resolve_scorer(model or project.config.models.policy, cache=project.root / "cache")
    values, computed = completion_stats(project, resolved, rows, max_length=max_length, progress=progress)
    truncated = int(values[:, STATS.index("truncated")].sum())
    with project.store.write() as conn:
        register_model(conn, resolved, kind="policy")
    run_id = save_run(project, kind="entropy", unit="completion", model=resolved, ids=[r[0] for r in rows],
                      names=STATS, values=values, config={"max_length": max_length, "truncated": truncated,
                                                          **model_paths(resolved)})
    return EntropyResult(run_id=run_id, model=resolved.name, completions=len(rows), computed=computed,
                         cached=len(rows) - computed, truncated=truncated)
