"""Token entropy of a causal LM over each completion, conditioned on its prompt.

For every completion token (and the end-of-turn token after it, so an empty completion still has
one) the entropy of the model's next-token distribution and the log-probability of the actual token
are taken; a completion's scores are their mean, max and sum, the mean log-probability and the
number of tokens. The prompt is wrapped in the model's chat template where it has one.

Batches are built from examples sorted by length and padded on the left (so every example's
completion ends at the last position and only the last ``k`` positions' logits are computed),
with a budget on batch size x completion length that bounds memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from curate.errors import CurateError
from curate.models import ResolvedModel, resolve_model
from curate.progress import Progress, no_progress
from curate.project import Project

STATS = ("entropy_mean", "entropy_max", "entropy_sum", "logprob_mean", "tokens", "truncated")
LOGIT_BUDGET = 2048  # examples x completion positions whose vocabulary-wide logits one batch may hold


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
    truncated = len(prompt_ids) + len(completion_ids) > max_length
    if truncated:
        completion_ids = completion_ids[:max_length - 1]
        prompt_ids = prompt_ids[-(max_length - len(completion_ids)):]
    return Encoded(prompt_ids, completion_ids, truncated)


def token_entropy(model: Any, tokenizer: Any, prompts: Sequence[str], completions: Sequence[str], *,
                  max_length: int = 1024, progress: Progress | None = None) -> np.ndarray:
    """Scores (n x len(STATS), float64) of every completion; ``truncated`` is 1 where the example was cut."""
    import torch

    limit = min(max_length, getattr(model.config, "max_position_embeddings", max_length) or max_length)
    examples = [encode(tokenizer, p, c, max_length=limit) for p, c in zip(prompts, completions, strict=True)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].prompt) + len(examples[i].completion))
    batches, batch = [], []
    for i in order:
        k = max(len(examples[j].completion) for j in [*batch, i])
        if batch and (len(batch) + 1) * k > LOGIT_BUDGET:
            batches.append(batch)
            batch = []
        batch.append(i)
    if batch:
        batches.append(batch)
    out = np.zeros((len(examples), len(STATS)), dtype=np.float64)
    model.eval()
    with torch.inference_mode():
        for batch in (progress or no_progress)(batches, "token entropy", len(batches)):
            ids = [examples[i].prompt + examples[i].completion for i in batch]
            width = max(len(x) for x in ids)
            input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids])
            mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            k = max(len(examples[i].completion) for i in batch)
            logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                           logits_to_keep=k + 1).logits[:, :-1].float()  # the k predictions of the last k tokens
            for row, i in enumerate(batch):
                n = len(examples[i].completion)
                logp = torch.log_softmax(logits[row, k - n:], dim=-1)
                entropy = torch.special.entr(logp.exp()).sum(-1)  # 0 log 0 = 0 where a logit is -inf
                actual = logp.gather(-1, torch.tensor(examples[i].completion)[:, None]).squeeze(-1)
                out[i] = [entropy.mean().item(), entropy.max().item(), entropy.sum().item(), actual.mean().item(), n,
                          float(examples[i].truncated)]
    return out


@dataclass
class EntropyResult:
    run_id: int
    model: str
    completions: int
    computed: int
    cached: int
    truncated: int


SHARD = 256  # completions scored and cached together: the most a killed run loses


def load_causal_lm(model: ResolvedModel) -> tuple[Any, Any]:
    """Model and tokenizer from a local folder (float32 on the CPU); a tokenizer without a pad
    token pads with its end token (padding is masked, so the choice does not change any score)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()
    try:
        lm = AutoModelForCausalLM.from_pretrained(model.path, dtype=torch.float32, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(model.path, local_files_only=True)
    except (OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CurateError(f"model '{model.name}' cannot be loaded as a causal language model: {reason}") from None
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is None:
        raise CurateError(f"the tokenizer of '{model.name}' has neither a pad nor an end token to pad with")
    return lm, tokenizer


def score_entropy(project: Project, *, model: str | None = None, max_length: int = 1024,
                  progress: Progress | None = None) -> EntropyResult:
    """Token entropy of every completion in the project (cached per model and text), stored as a run."""
    from sqlalchemy import select

    from curate.embed import EmbeddingCache, text_key
    from curate.scores.runs import save_run
    from curate.store.models import register_model
    from curate.store.schema import Completion, Record

    with project.store.read() as conn:
        rows = conn.execute(select(Completion.id, Record.prompt, Completion.text)
                            .join(Record, Record.id == Completion.record_id).order_by(Completion.id)).all()
    if not rows:
        raise CurateError("the pool has no completions to score: ingest data first")
    resolved = resolve_model(model or project.config.models.policy, cache=project.root / "cache")
    cache = EmbeddingCache(project.root / "cache", resolved, kind="scores/entropy")
    keys = [text_key(f"{max_length}\x1f{prompt}\x1f{text}") for _, prompt, text in rows]
    todo = [i for i, key in enumerate(keys) if key not in cache]
    if todo:
        lm, tokenizer = load_causal_lm(resolved)
        shards = [todo[i:i + SHARD] for i in range(0, len(todo), SHARD)]
        for shard in (progress or no_progress)(shards, f"token entropy of {len(todo)} completions", len(shards)):
            values = token_entropy(lm, tokenizer, [rows[i][1] for i in shard], [rows[i][2] for i in shard],
                                   max_length=max_length)
            cache.add([keys[i] for i in shard], values.astype(np.float32))
        cache.compact()
    values = cache.get(keys)
    truncated = int(values[:, STATS.index("truncated")].sum())
    with project.store.write() as conn:
        register_model(conn, resolved, kind="policy")
    run_id = save_run(project, kind="entropy", unit="completion", model=resolved, ids=[r[0] for r in rows],
                      names=STATS, values=values, config={"max_length": max_length, "truncated": truncated})
    return EntropyResult(run_id=run_id, model=resolved.name, completions=len(rows), computed=len(todo),
                         cached=len(rows) - len(todo), truncated=truncated)
