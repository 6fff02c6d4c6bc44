"""``curate generate``: fresh completions for the pool's prompts from a trained model, the next round's
on-policy pairs. Every completion is stored with the generation run and model version that sampled it.

Prompts are shown to the model as it was trained on them (``curate export``): through its chat template in a
conversational project (one where any prompt or completion has messages), as plain text otherwise. Each prompt
gets ``n`` samples; its distinct non-empty ones are stored (``origin = generated``) and paired with each other.
Work is written a batch at a time, and a prompt already sampled by the same model version with the same
settings is skipped, so a killed run picks up where it stopped.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, select, update

from curate.errors import CurateError
from curate.ids import content_id, normalise_text
from curate.progress import Progress, no_progress
from curate.project import Project
from curate.store.engine import audit
from curate.store.schema import Completion, GenerationRun, ModelVersion, Pair, Record

MAX_SAMPLES = 8  # a ranking shows at most 8 completions of a prompt
CAUSAL_KINDS = ("policy", "adapter-sft", "adapter-dpo", "adapter-kto")


@dataclass
class GenerateResult:
    run_id: int | None  # None when every prompt had been sampled before (nothing ran)
    model: str  # the model version that sampled
    prompts: int  # prompts sampled in this run
    skipped: int  # prompts this model version had already sampled with the same settings
    completions: int  # new completions stored
    pairs: int  # new pairs stored
    empty: int  # samples with no text once stripped (not stored)
    repeated: int  # samples equal to another sample of the prompt or to a completion already in the pool
    truncated: int  # prompts cut from the start to fit max_prompt_length


def generate(project: Project, *, model: str, n: int = 2, max_new_tokens: int = 256, temperature: float = 0.8,
             top_p: float = 0.95, seed: int = 0, limit: int | None = None, max_prompt_length: int = 1024,
             batch_size: int = 8, progress: Progress = no_progress) -> GenerateResult:
    """Sample ``n`` completions for every prompt of the pool (or ``limit`` of them, drawn with ``seed``) from
    ``model``: a model version of the project (``curate train`` names them, e.g. ``dpo-lora-r1``) or any causal
    LM or adapter folder / hub id in the local cache."""
    params = _check(n=n, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed,
                    limit=limit, max_prompt_length=max_prompt_length, batch_size=batch_size)
    version_id, version, resolved = _model_version(project, model)
    with project.store.read() as conn:
        records = [tuple(r) for r in conn.execute(select(Record.id, Record.prompt, Record.messages)
                                                  .order_by(Record.id))]
        chat = _conversational(conn)
        done = _sampled(conn, version_id, params)
    if not records:
        raise CurateError("the pool has no prompts to generate for: ingest data first")
    if limit is not None and limit < len(records):
        picked = np.random.default_rng(seed).choice(len(records), size=limit, replace=False)
        records = [records[i] for i in sorted(picked)]
    todo = [r for r in records if r[0] not in done]
    result = GenerateResult(run_id=None, model=version, prompts=len(todo), skipped=len(records) - len(todo),
                            completions=0, pairs=0, empty=0, repeated=0, truncated=0)
    if not todo:  # everything was sampled before with these settings: nothing to record
        return result
    with project.store.write() as conn:
        result.run_id = conn.execute(GenerationRun.__table__.insert().values(
            model_version_id=version_id, params=params, counts={}, status="running")).inserted_primary_key[0]
    _sample_all(project, resolved, todo, chat=chat, params=params, batch_size=batch_size, result=result,
                progress=progress)
    counts = {k: v for k, v in vars(result).items() if k not in ("run_id", "model")}
    with project.store.write() as conn:
        conn.execute(update(GenerationRun).where(GenerationRun.id == result.run_id).values(
            counts=counts, status="done", finished_at=func.now()))
        audit(conn, "generate", entity="generation_run", entity_id=str(result.run_id),
              details={"model": version, "params": params, **counts})
    return result


def _check(**params: Any) -> dict[str, Any]:
    """The settings, validated; they make up the run's record (and what ``same settings`` means)."""
    problems = []
    if not 2 <= params["n"] <= MAX_SAMPLES:
        problems.append(f"--n must be 2 to {MAX_SAMPLES} (the samples of a prompt become its pairs), not {params['n']}")
    for key in ("max_new_tokens", "max_prompt_length", "batch_size"):
        if params[key] < 1:
            problems.append(f"{key} must be 1 or more, not {params[key]}")
    if not (np.isfinite(params["temperature"]) and params["temperature"] > 0):
        problems.append(f"the temperature must be above 0 (0 would sample the same completion {params['n']} "
                        f"times), not {params['temperature']}")
    if not 0 < params["top_p"] <= 1:
        problems.append(f"top_p must be above 0 and at most 1, not {params['top_p']}")
    if params["seed"] < 0:
        problems.append(f"the seed must be 0 or more, not {params['seed']}")
    if params["limit"] is not None and params["limit"] < 1:
        problems.append(f"--limit must be 1 or more, not {params['limit']}")
    if problems:
        raise CurateError("; ".join(problems))
    params = dict(params)
    del params["batch_size"]  # how the work is split, not what is sampled
    return params


def _model_version(project: Project, name: str) -> tuple[int, str, Any]:
    """The model version's id and name, and the resolved model (a model not registered yet is registered)."""
    from curate.scores.lm import resolve_scorer
    from curate.store.models import register_model

    cache = project.root / "cache"
    with project.store.read() as conn:
        row = conn.execute(select(ModelVersion.id, ModelVersion.kind).where(ModelVersion.name == name)).first()
    if row is not None:
        if row.kind not in CAUSAL_KINDS:
            raise CurateError(f"model version '{name}' is a {row.kind} model and cannot write text: generate with "
                              "a policy or an sft, dpo or kto adapter (curate status lists them)")
        return row.id, name, resolve_scorer(name, cache=cache, project=project)
    resolved = resolve_scorer(name, cache=cache)
    with project.store.write() as conn:
        register_model(conn, resolved, kind="policy")
        registered = f"{resolved.name}@{resolved.short}"
        return conn.scalar(select(ModelVersion.id).where(ModelVersion.name == registered)), registered, resolved


def _conversational(conn: Connection) -> bool:
    """Whether the project's exports are conversational (as ``curate export`` decides)."""
    return any(conn.scalar(select(table.id).where(table.messages.is_not(None)).limit(1)) is not None
               for table in (Record, Completion))


def _sampled(conn: Connection, version_id: int, params: dict[str, Any]) -> set[str]:
    """Records that runs of this model version with these settings have sampled already."""
    runs = [r.id for r in conn.execute(select(GenerationRun.id, GenerationRun.params)
                                       .where(GenerationRun.model_version_id == version_id)) if r.params == params]
    if not runs:
        return set()
    return set(conn.scalars(select(Completion.record_id).where(Completion.generation_id.in_(runs)).distinct()))


def _sample_all(project: Project, resolved: Any, records: list[tuple[Any, ...]], *, chat: bool,
                params: dict[str, Any], batch_size: int, result: GenerateResult, progress: Progress) -> None:
    import torch

    from curate.scores.lm import load_causal_lm

    lm, tokenizer = load_causal_lm(resolved, cache=project.root / "cache")
    if hasattr(lm, "merge_and_unload"):  # a LoRA adapter: fold it into the weights, sampling is faster
        lm = lm.merge_and_unload()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lm.to(device)
    if chat and not getattr(tokenizer, "chat_template", None):
        raise CurateError(f"the project's prompts are conversations but '{result.model}' has no chat template")
    encoded = [_encode(tokenizer, prompt, messages, chat=chat, limit=params["max_prompt_length"])
               for _, prompt, messages in records]
    result.truncated = sum(cut for _, cut in encoded)
    order = sorted(range(len(records)), key=lambda i: (len(encoded[i][0]), records[i][0]))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    label = f"{result.model}: {len(records)} prompts x {params['n']}"
    for part in progress(batches, label, len(batches)):
        texts = _sample(lm, tokenizer, [encoded[i][0] for i in part], params=params, device=device,
                        seed=content_id("generate", str(params["seed"]), records[part[0]][0]))
        with project.store.write() as conn:
            _store(conn, [records[i][0] for i in part], texts, chat=chat, params=params, result=result)


def _encode(tokenizer: Any, prompt: str, messages: list[Any] | None, *, chat: bool,
            limit: int) -> tuple[list[int], bool]:
    """The prompt's token ids as the model was trained on it, cut from the start to ``limit`` tokens."""
    if chat:
        text = tokenizer.apply_chat_template(messages or [{"role": "user", "content": prompt}],
                                             add_generation_prompt=True, tokenize=False)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    else:
        ids = tokenizer(prompt)["input_ids"]
    return ids[-limit:], len(ids) > limit


def _sample(lm: Any, tokenizer: Any, prompts: list[list[int]], *, params: dict[str, Any], device: str,
            seed: str) -> list[list[str]]:
    """``n`` sampled texts for each prompt (left-padded into one batch)."""
    import torch
    from transformers.utils import logging

    width = max(len(p) for p in prompts)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
    torch.manual_seed(int(seed[:8], 16))
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # the model's own generation defaults are overridden on purpose
    try:
        with torch.inference_mode():
            out = lm.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=params["temperature"],
                              top_p=params["top_p"], top_k=0, max_new_tokens=params["max_new_tokens"],
                              num_return_sequences=params["n"], pad_token_id=pad,
                              eos_token_id=tokenizer.eos_token_id)
    finally:
        logging.set_verbosity(verbosity)
    texts = tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
    n = params["n"]
    return [texts[i * n:(i + 1) * n] for i in range(len(prompts))]


def _store(conn: Connection, record_ids: list[str], samples: list[list[str]], *, chat: bool, params: dict[str, Any],
           result: GenerateResult) -> None:
    """One batch's completions and the pairs among each prompt's distinct samples."""
    from curate.store.bulk import insert_new

    completions: list[dict[str, Any]] = []
    pairs: list[dict[str, Any]] = []
    for record_id, texts in zip(record_ids, samples, strict=True):
        ids: list[str] = []
        for raw in texts:
            text = normalise_text(raw)
            if not text:
                result.empty += 1
                continue
            messages = [{"role": "assistant", "content": text}] if chat else None
            completion_id = content_id("completion", record_id, messages if chat else text)
            if completion_id in ids:
                result.repeated += 1
                continue
            ids.append(completion_id)
            completions.append({"id": completion_id, "record_id": record_id, "text": text, "messages": messages,
                                "model": result.model, "origin": "generated", "generation_id": result.run_id})
        for low, high in itertools.combinations(sorted(ids), 2):
            pairs.append({"id": content_id("pair", record_id, low, high, ""), "record_id": record_id, "a_id": low,
                          "b_id": high, "source_key": None})
    new = insert_new(conn, Completion.__table__, completions)
    result.repeated += len(completions) - len(new)
    result.completions += len(new)
    result.pairs += len(insert_new(conn, Pair.__table__, pairs))

