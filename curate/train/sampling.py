"""Sampling completions from a causal LM for ``curate generate``: prompts rendered as ``curate train`` trains on
them (``curate.rendering``, from the tokenizer alone), the model loaded once where the sampling runs (an adapter
folded into its base), and batches of prompts sampled together.

Two backends sample: transformers (``generate``, a batch of prompts under one seed) and vLLM where it is
installed (``pip install 'curate-toolkit[vllm]'``; continuous batching, every prompt under its own seed, so its
samples do not depend on which prompts share a call). ``auto`` takes vLLM on a CUDA GPU where it is installed.
The two backends draw different samples from the same settings: a run records which one sampled.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.compute import BACKENDS, Compute
from curate.errors import CurateError, reason
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


@dataclass
class VllmSampler:
    """A vLLM engine holding the model (an adapter merged into its base, ``vllm_folder``)."""

    llm: Any
    ends: list[int]


def choose_backend(backend: str, compute: Compute) -> str:
    """``transformers`` or ``vllm``: ``auto`` is vLLM where it is installed and the work runs on a CUDA GPU."""
    if backend not in BACKENDS:
        raise CurateError(f"the generation backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    installed = importlib.util.find_spec("vllm") is not None
    if backend == "auto":
        return "vllm" if installed and compute.device.startswith("cuda") else "transformers"
    if backend == "vllm" and not installed:
        raise CurateError("the vllm backend needs vLLM, which is not installed here: pip install "
                          "'curate-toolkit[vllm]' (on a machine with a CUDA GPU), or use --backend transformers")
    if backend == "vllm" and compute.device not in ("cpu", "cuda", "cuda:0"):
        raise CurateError(f"vLLM cannot be given the device {compute.device}: it samples on the first GPU that "
                          "CUDA_VISIBLE_DEVICES names (set CUDA_VISIBLE_DEVICES=N and use --device cuda), or on the "
                          "CPU with a CPU build of vLLM")
    return backend


def load_sampler(resolved: Any, *, cache: Any, compute: Compute | None = None) -> Sampler:
    """The model ready to sample with transformers, on ``compute``'s device (the CPU unless told)."""
    from curate.scores.lm import load_causal_lm

    compute = compute or Compute()
    model, tokenizer = load_causal_lm(resolved, cache=cache, compute=compute)
    return Sampler(model, tokenizer, compute.device, _ends(model.generation_config, tokenizer))


def _ends(generation_config: Any, tokenizer: Any) -> list[int]:
    """Every token that ends a sample: the model's own end tokens and the tokenizer's."""
    ends = generation_config.eos_token_id
    ends = [ends] if isinstance(ends, int) else list(ends or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ends:
        ends.append(tokenizer.eos_token_id)
    return ends


def vllm_folder(resolved: Any, *, cache: Path, compute: Compute) -> Path:
    """A folder vLLM loads ``resolved`` from: a whole model's own, or for a LoRA adapter its base with the adapter
    merged in (in float32) and saved once in ``compute``'s dtype under ``cache/merged`` (named by the fingerprint
    of adapter and base, and the dtype; published whole, ``curate.files.staged_folder``)."""
    import torch

    from curate.files import staged_folder
    from curate.scores.lm import causal_adapter_config, load_causal_lm

    if causal_adapter_config(resolved) is None:
        return Path(resolved.path)
    dtype = compute.dtype_name()
    folder = Path(cache) / "merged" / f"{resolved.short}-{dtype}"
    if (folder / "config.json").is_file():
        return folder
    model, tokenizer = load_causal_lm(resolved, cache=cache, compute=Compute("cpu", "float32"))
    try:
        with staged_folder(folder, keep_existing=True) as stage:
            model.to(getattr(torch, dtype)).save_pretrained(stage, safe_serialization=True)
            tokenizer.save_pretrained(stage)
    except OSError as err:
        raise CurateError(f"could not write the merged model for vLLM to {folder}: {reason(err)}") from None
    return folder


def load_vllm_sampler(folder: Path, *, compute: Compute, seed: int) -> VllmSampler:
    """A vLLM engine for the model in ``folder`` (``vllm_folder``), in ``compute``'s dtype."""
    from transformers import AutoTokenizer, GenerationConfig

    try:
        from vllm import LLM

        llm = LLM(model=str(folder), tokenizer=str(folder), dtype=compute.dtype_name(), seed=seed)
    except Exception as err:  # vLLM raises many kinds (no GPU, unsupported architecture, out of memory)
        raise CurateError(f"vLLM could not load '{folder}': {reason(err)}") from None
    try:
        generation_config = GenerationConfig.from_pretrained(folder, local_files_only=True)
    except OSError:  # the folder has no generation_config.json: the tokenizer's end token alone ends a sample
        generation_config = GenerationConfig()
    return VllmSampler(llm, _ends(generation_config, AutoTokenizer.from_pretrained(folder, local_files_only=True)))


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


def sample_vllm(sampler: VllmSampler, prompts: list[list[int]], *, n: int, temperature: float, top_p: float,
                max_new_tokens: int, seeds: list[int]) -> list[list[str]]:
    """``n`` sampled texts for each prompt from vLLM, each prompt under its own seed (as ``sample`` otherwise)."""
    from vllm import SamplingParams

    settings = [SamplingParams(n=n, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens, seed=seed,
                               stop_token_ids=sampler.ends, skip_special_tokens=True) for seed in seeds]
    try:
        outputs = sampler.llm.generate([{"prompt_token_ids": ids} for ids in prompts], settings, use_tqdm=False)
    except (ValueError, RuntimeError) as err:  # a prompt past the engine's context, out of memory
        raise CurateError(f"vLLM could not sample {len(prompts)} prompts x {n}: {reason(err)}") from None
    return [[sample.text for sample in output.outputs] for output in outputs]


def sample_batch(sampler: Sampler | VllmSampler, shard: list[dict[str, Any]], **settings: Any) -> Any:
    """One batch given as ``[{"prompts": ..., "seed": ..., "seeds": ...}]`` (a shard of ``Compute.map_shards``)
    sampled by either backend: the texts as an array, prompts by samples."""
    import numpy as np

    (batch,) = shard
    if isinstance(sampler, VllmSampler):
        texts = sample_vllm(sampler, batch["prompts"], seeds=batch["seeds"], **settings)
    else:
        texts = sample(sampler, batch["prompts"], seed=batch["seed"], **settings)
    return np.array(texts, dtype=object)
