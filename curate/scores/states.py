"""LM states: a causal LM's hidden state after a middle decoder layer, averaged over each completion's
tokens (as ``curate.rendering`` renders it for the model), conditioned on its prompt.

These are the richer pair features for the preference learners: on UKPConvArg1 with held-out topics,
a Bradley–Terry head on SmolLM2-135M's layer 20 (of 30) reached 0.785 pairwise accuracy in the
prototypes, against 0.691 on MiniLM embeddings (research/prototype-findings.md). States are cached
per model, layer and text, like every completion score.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from curate.compute import Compute
from curate.errors import CurateError
from curate.models import DEFAULT_POLICY
from curate.progress import Progress
from curate.rendering import Content, Conversation
from curate.scores.passes import completion_passes, encode_all

DEFAULT_LAYER = 20
SHARD = 256  # completions computed and cached together: the most a killed run loses


def lm_states(model: Any, tokenizer: Any, conversations: Sequence[Conversation], *, layer: int,
              max_length: int = 1024, progress: Progress | None = None) -> np.ndarray:
    """Mean hidden state (n x hidden size, float64) after ``layer`` decoder layers over each completion."""
    layers = model.config.num_hidden_layers
    if not 1 <= layer <= layers:
        raise CurateError(f"layer {layer} is not one of the model's decoder layers 1..{layers}")
    examples = encode_all(model, tokenizer, conversations, max_length=max_length)
    out = np.zeros((len(examples), model.config.hidden_size), dtype=np.float64)
    for chunk in completion_passes(model, tokenizer, examples, logits=False, layer=layer, label="LM states",
                                   progress=progress):
        for row, i in enumerate(chunk.rows):
            out[i] = chunk.hidden[row, :len(chunk.ids[row])].mean(0).float().cpu().numpy()  # MPS has no float64
    return out


def completion_states(rows: Sequence[tuple[str, Conversation]], *, cache: Path, model: str = DEFAULT_POLICY,
                      layer: int = DEFAULT_LAYER, max_length: int = 1024, compute: Compute | None = None,
                      progress: Progress | None = None) -> tuple[np.ndarray, int]:
    """LM states of every (id, conversation) row (cached under ``cache``), and how many were computed."""
    from curate.scores.lm import load_causal_lm, resolve_scorer
    from curate.scores.runs import cached_completion_scores

    if isinstance(layer, bool) or not isinstance(layer, int) or layer < 1:
        raise CurateError(f"the layer must be a positive whole number, not {layer!r}")
    resolved = resolve_scorer(model, cache=cache)
    return cached_completion_scores(cache, resolved, rows, kind=f"states/layer-{layer}", load=load_causal_lm,
                                    score=partial(lm_states, layer=layer), max_length=max_length, shard=SHARD,
                                    compute=compute, progress=progress)


def standardise_states(states: np.ndarray) -> np.ndarray:
    """Every dimension centred and scaled to unit variance over the given completions, then divided by
    √dim, so a completion's vector has a norm near 1 as a unit embedding does and one regularisation
    strength means much the same on either (a few dimensions of an LM's hidden states are orders of
    magnitude larger than the rest). Constant dimensions become 0."""
    spread = states.std(axis=0)
    scaled = np.divide(states - states.mean(axis=0), spread, out=np.zeros_like(states), where=spread > 1e-12)
    return scaled / np.sqrt(states.shape[1])


def pair_state_differences(prompts: Sequence[Content], a: Sequence[Content], b: Sequence[Content], *, cache: Path,
                           model: str = DEFAULT_POLICY, layer: int = DEFAULT_LAYER, compute: Compute | None = None,
                           progress: Progress | None = None) -> tuple[np.ndarray, int]:
    """z(A) − z(B) for each pair (z: standardised LM states over the pairs' distinct completions, each in
    its prompt's context), and how many states were computed rather than read from the cache."""
    position: dict[tuple[str, str], int] = {}
    rows: list[tuple[str, Conversation]] = []
    sides: list[list[int]] = [[], []]
    for prompt, *pair in zip(prompts, a, b, strict=True):
        for side, completion in zip(sides, pair, strict=True):
            key = (prompt.key(), completion.key())
            if key not in position:
                position[key] = len(rows)
                rows.append((str(len(rows)), Conversation(prompt, completion)))
            side.append(position[key])
    states, computed = completion_states(rows, cache=cache, model=model, layer=layer, compute=compute,
                                         progress=progress)
    z = standardise_states(states)
    return z[np.array(sides[0], dtype=int)] - z[np.array(sides[1], dtype=int)], computed
