"""Sampling completions from a causal LM for ``curate generate``: prompts rendered as ``curate train`` trains on
them (``curate.rendering``, from the tokenizer alone), the model loaded once where the sampling runs (an adapter
folded into its base), and batches of prompts sampled together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from curate.compute import Compute
from curate.errors import CurateError
from curate.rendering import Content, Rendering


@dataclass
class Prompting:
    """How prompts are given to a model, read from its tokenizer and config (no weights loaded)."""

    tokenizer: Any
    rendering: Rendering  # its chat template, or plain text
    context: int  # the model's context length


def load_prompting(resolved: Any, *, cache: Any) -> Prompting:
    from curate.scores.lm import load_tokenizer

    tokenizer, context = load_tokenizer(resolved, cache=cache)
    return Prompting(tokenizer, Rendering(tokenizer, name=resolved.name), context)


@dataclass
class Sampler:
    """The model loaded where the sampling runs (prompts come encoded, by ``Prompting``)."""

    model: Any
    tokenizer: Any
    device: str
    ends: list[int]  # every token that ends a sample (the model's own end tokens and the tokenizer's)


def load_sampler(resolved: Any, *, cache: Any, compute: Compute | None = None) -> Sampler:
    """The model ready to sample, on ``compute``'s device (the CPU unless told)."""
    from curate.scores.lm import load_causal_lm

    compute = compute or Compute()
    model, tokenizer = load_causal_lm(resolved, cache=cache, compute=compute)
    ends = model.generation_config.eos_token_id
    ends = [ends] if isinstance(ends, int) else list(ends or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ends:
        ends.append(tokenizer.eos_token_id)
    return Sampler(model, tokenizer, compute.device, ends)


def encode_prompt(prompting: Prompting, prompt: Content, *, limit: int) -> tuple[list[int], bool]:
    """The prompt's token ids as every model step renders it (``curate.rendering``), cut from the start to
    ``limit`` tokens, and whether it was cut."""
    ids = prompting.rendering.prompt_ids(prompt)
    return ids[-limit:], len(ids) > limit


def sample(sampler: Sampler, prompts: list[list[int]], *, n: int, temperature: float, top_p: float,
           max_new_tokens: int, seed: int) -> list[list[str]]:
    """``n`` sampled texts (new tokens only, special tokens dropped) for each prompt, left-padded into one batch."""
    import torch
    from transformers.utils import logging

    width = max(len(p) for p in prompts)
    pad = sampler.tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=sampler.device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=sampler.device)
    torch.manual_seed(seed)
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # the model's own generation defaults are overridden on purpose
    try:
        with torch.inference_mode():
            out = sampler.model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=temperature,
                                         top_p=top_p, top_k=0, max_new_tokens=max_new_tokens, num_return_sequences=n,
                                         pad_token_id=pad, eos_token_id=sampler.ends)
    except torch.OutOfMemoryError:
        raise CurateError(f"out of memory sampling {len(prompts)} prompts x {n}: lower --batch-size") from None
    finally:
        logging.set_verbosity(verbosity)
    texts = sampler.tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
    return [texts[i * n:(i + 1) * n] for i in range(len(prompts))]


def sample_batch(sampler: Sampler, shard: list[dict[str, Any]], **settings: Any) -> Any:
    """``sample`` for one batch given as ``[{"prompts": ..., "seed": ...}]`` (a shard of ``Compute.map_shards``):
    the texts as an array, prompts by samples."""
    import numpy as np

    (batch,) = shard
    return np.array(sample(sampler, batch["prompts"], seed=batch["seed"], **settings), dtype=object)
