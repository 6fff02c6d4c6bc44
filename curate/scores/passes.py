"""The batched forward passes that token entropy and LM states share: each prompt runs once for all
its completions (both sides of a pair share it).

A batch's distinct prompts go through the model left-padded, keeping only the last position's
logits; its completions, sorted by length, then run right-padded in chunks, each against a copy of
its prompts' key/value cache. Budgets on completions x positions and prompts x tokens bound memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from curate.compute import pack
from curate.progress import Progress, no_progress
from curate.rendering import Conversation, Encoded, Rendering

LOGIT_BUDGET = 2048  # completions x positions whose vocabulary-wide logits one batch may hold
PROMPT_BUDGET = 2048  # prompts x prompt tokens one batch may run
SLACK = 1.25  # padded / real positions a batch may reach (padding is computed like any token)
ROWS = 256  # completions one batch may hold (its cache is copied for each chunk of them)
GPU_SCALE = 16  # at most this many times the budgets above on a GPU, as its free memory allows (gpu_scale)
LOGIT_BYTES = 10  # per logit held at once: the model's (bfloat16) and two float32 copies


@dataclass
class Chunk:
    """One chunk of completions: their positions in the input, token ids, the next-token logits at every
    completion token (``rows x longest x vocab``; None unless asked for) and the hidden states of the
    asked-for layer at every completion position (``rows x longest x hidden``; None unless asked for)."""

    rows: list[int]
    ids: list[list[int]]
    logits: Any
    hidden: Any


def encode_all(model: Any, tokenizer: Any, conversations: Sequence[Conversation], *,
               max_length: int) -> list[Encoded]:
    """Every conversation as the model sees it (``curate.rendering``), within the model's own context length as
    well as ``max_length``."""
    limit = min(max_length, getattr(model.config, "max_position_embeddings", max_length) or max_length)
    rendering = Rendering(tokenizer, name=getattr(model, "name_or_path", None) or "the model")
    return [rendering.encode(c, max_length=limit) for c in conversations]


def gpu_scale(model: Any) -> int:
    """How many times the CPU's budgets a batch may hold on the model's device: 1 on a CPU; on a CUDA GPU as many
    as half its free memory holds logits for (up to GPU_SCALE); 4 on Apple's MPS."""
    import torch

    if model.device.type == "cpu":
        return 1
    if model.device.type != "cuda":
        return 4
    free, _ = torch.cuda.mem_get_info(model.device)
    vocab = getattr(model.config, "vocab_size", None) or 50_000
    return max(1, min(GPU_SCALE, int(free / 2 // (LOGIT_BUDGET * vocab * LOGIT_BYTES))))


def _batches(examples: Sequence[Encoded], scale: int = 1) -> list[list[list[int]]]:
    """Examples grouped by prompt (a prompt runs once for all its completions), the groups sorted by
    prompt length and packed within PROMPT_BUDGET prompt tokens and ROWS completions per batch (times ``scale``)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, e in enumerate(examples):
        groups.setdefault(tuple(e.prompt), []).append(i)
    ordered = sorted(groups.values(), key=lambda g: len(examples[g[0]].prompt))
    return pack(ordered, lambda run: _within(len(run) * len(examples[run[-1][0]].prompt), PROMPT_BUDGET * scale,
                                              sum(len(examples[g[0]].prompt) for g in run))
                 and sum(len(g) for g in run) <= ROWS * scale)


def _within(padded: int, budget: int, real: int) -> bool:
    """A batch of ``padded`` positions (``real`` of them not padding) is within budget and wastes little."""
    return padded <= budget and padded <= SLACK * real + 64


def completion_passes(model: Any, tokenizer: Any, examples: Sequence[Encoded], *, logits: bool = True,
                      layer: int | None = None, label: str = "forward",
                      progress: Progress | None = None) -> Iterator[Chunk]:
    """Run every example, a prompt once for all its completions, and yield its completions chunk by chunk.

    ``logits``: the next-token logits at each completion token (the prompt's last position predicts the
    first); ``layer``: the hidden states after that many decoder layers (0: the embeddings) at each
    completion position. Without ``logits`` the language-model head runs on one position only."""
    import copy
    from functools import partial

    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    scale = gpu_scale(model)
    batches = _batches(examples, scale)
    model.eval()
    tensor = partial(torch.tensor, device=model.device)  # every input where the model is (a GPU, or the CPU)
    with torch.inference_mode():
        for batch in (progress or no_progress)(batches, label, len(batches)):
            heads = [examples[g[0]].prompt for g in batch]
            width = max(len(x) for x in heads)
            prompt_mask = tensor([[0] * (width - len(x)) + [1] * len(x) for x in heads])
            first = model(input_ids=tensor([[pad] * (width - len(x)) + x for x in heads]),
                          attention_mask=prompt_mask, position_ids=(prompt_mask.cumsum(-1) - 1).clamp(min=0),
                          use_cache=True, logits_to_keep=1)
            owner_of = {i: n for n, g in enumerate(batch) for i in g}
            rows = sorted(owner_of, key=lambda i: len(examples[i].completion))
            for chunk in pack(rows, lambda run: _within(len(run) * len(examples[run[-1]].completion),
                                                         LOGIT_BUDGET * scale,
                                                         sum(len(examples[i].completion) for i in run))):
                owner = tensor([owner_of[i] for i in chunk])
                cache = copy.deepcopy(first.cache)
                cache.reorder_cache(owner)
                ids = [examples[i].completion for i in chunk]
                k = len(ids[-1])
                result = model(input_ids=tensor([x + [pad] * (k - len(x)) for x in ids]),
                               attention_mask=torch.cat([prompt_mask[owner], tensor(
                                   [[1] * len(x) + [0] * (k - len(x)) for x in ids])], dim=1),
                               position_ids=tensor([len(heads[n]) for n in owner.tolist()])[:, None]
                               + torch.arange(k, device=model.device), cache=cache, logits_to_keep=k if logits else 1,
                               output_hidden_states=layer is not None)
                # token j of a completion is predicted at the position before it: the prompt's last for j = 0
                scores = torch.cat([first.logits[owner, -1:].float(), result.logits[:, :-1].float()], dim=1) \
                    if logits else None
                hidden = result.hidden_states[layer].float() if layer is not None else None
                yield Chunk(rows=chunk, ids=ids, logits=scores, hidden=hidden)
