"""``curate generate``: fresh completions for the pool's prompts from a trained model, the next round's
on-policy pairs. Every completion is stored with the generation run and model version that sampled it.

Prompts are shown to the model as ``curate train`` trains it and the scorers read them (``curate.rendering``):
through its chat template where it has one (with a conversation's own turns), as plain text otherwise. A prompt held out
whole in the frozen test or calibration slice is never sampled. Each prompt gets ``n`` samples; its
distinct non-empty ones are stored (``origin = generated``) and paired with each other. Work is written a
batch at a time, and a prompt already sampled by the same model version with the same settings is skipped,
so a killed run picks up where it stopped.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from curate.compute import Compute
from curate.errors import CurateError
from curate.ids import content_id, normalise_text
from curate.progress import Progress, no_progress
from curate.project import Project
from curate.store import Connection, audit, generation, model_versions, pool, rounds

MAX_SAMPLES = 8  # a ranking shows at most 8 completions of a prompt
VLLM_PROMPTS = 256  # prompts handed to vLLM per call (it batches them itself), each call written as it finishes
CAUSAL_KINDS = ("policy", "adapter-sft", "adapter-dpo", "adapter-kto")


@dataclass
class GenerateResult:
    run_id: int | None  # None when every prompt had been sampled before (nothing ran)
    model: str  # the model version that sampled
    prompts: int  # prompts sampled in this run
    skipped: int  # prompts this model version had already sampled with the same settings
    held_out: int  # prompts whose every pair is in the frozen test or calibration slice (never sampled)
    completions: int  # new completions stored
    pairs: int  # new pairs stored
    empty: int  # samples with no text once stripped (not stored)
    repeated: int  # samples equal to another sample of the prompt or to a completion already in the pool
    truncated: int  # prompts cut from the start to fit max_prompt_length

    def summary(self) -> str:
        """One line on the run: prompts sampled and skipped, completions and pairs added."""
        skipped = ", ".join(f"{n} {why}" for n, why in ((self.skipped, "sampled before with these settings"),
                                                        (self.held_out, "held out in the test/calibration slices"))
                            if n)
        skipped = f" ({skipped}: skipped)" if skipped else ""
        dropped = ", ".join(f"{v} {k}" for k, v in (("empty", self.empty), ("repeated", self.repeated),
                                                    ("prompts cut", self.truncated)) if v)
        return (f"generated with {self.model}: {self.prompts} prompts{skipped} -> {self.completions} "
                f"new completions, {self.pairs} new pairs" + (f" ({dropped})" if dropped else "")
                + (f"; run {self.run_id}" if self.run_id else ""))


def generate(project: Project, *, model: str, n: int = 2, max_new_tokens: int = 256, temperature: float = 0.8,
             top_p: float = 0.95, seed: int = 0, limit: int | None = None, max_prompt_length: int = 1024,
             batch_size: int = 8, device: str | None = None, engine: str | None = None, backend: str | None = None,
             progress: Progress = no_progress) -> GenerateResult:
    """Sample ``n`` completions for every prompt of the pool (or ``limit`` of them, drawn with ``seed``) from
    ``model``: a model version of the project (``curate train`` names them, e.g. ``dpo-lora-r1``) or any causal
    LM or adapter folder / hub id in the local cache. The same settings on the same pool give the same samples.
    It samples on ``device`` and ``engine`` with ``backend`` (default: [compute]; on Ray, each actor loads the
    model once and the batches are spread over them; ``curate.train.sampling`` on the backends)."""
    from curate.rendering import Content, transcript_turns
    from curate.train.sampling import (
        choose_backend,
        encode_prompt,
        load_prompting,
        load_sampler,
        load_vllm_sampler,
        vllm_folder,
    )

    params = _check(n=n, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed,
                    limit=limit, max_prompt_length=max_prompt_length, batch_size=batch_size)
    # an absent device or backend is refused before anything is written
    compute = project.config.compute.resolve_engine(device, engine=engine)
    params["backend"] = choose_backend(backend or project.config.compute.generation, compute)
    if params["backend"] == "vllm":  # every prompt under its own seed: the batch size does not change a sample
        del params["batch_size"]
    version_id, version, resolved = _model_version(project, model)
    with project.store.read() as conn:
        records = pool.records(conn)
        done = generation.sampled_records(conn, model_version_id=version_id, params=params)
        held_out = rounds.held_out_records(conn)  # new pairs of theirs would put a held-out prompt into training
    if not records:
        raise CurateError("the pool has no prompts to generate for: ingest data first")
    records = [r for r in records if r[0] not in held_out]
    # a prompt the source gave as messages gets its completions as messages too (an hh transcript's turns are
    # read from its text, and its completions are text, as imported ones are)
    conversations = {r[0] for r in records if r[2] is not None and r[2] != transcript_turns(r[1])}
    if not records:
        raise CurateError("every prompt is held out in the test or calibration slice: nothing to generate for")
    if limit is not None and limit < len(records):
        picked = np.random.default_rng(seed).choice(len(records), size=limit, replace=False)
        records = [records[i] for i in sorted(picked)]
    todo = [r for r in records if r[0] not in done]
    result = GenerateResult(run_id=None, model=version, prompts=len(todo), skipped=len(records) - len(todo),
                            held_out=len(held_out), completions=0, pairs=0, empty=0, repeated=0, truncated=0)
    if not todo:  # everything was sampled before with these settings: nothing to record
        return result
    prompting = load_prompting(resolved, cache=project.root / "cache")
    room = min(max_prompt_length, prompting.context - max_new_tokens)
    if room < 1:
        raise CurateError(f"--max-new-tokens {max_new_tokens} leaves no room for a prompt in the "
                          f"{prompting.context}-token context of '{version}'")
    encoded = [encode_prompt(prompting, Content(prompt, messages), limit=room) for _, prompt, messages in todo]
    if params["backend"] == "vllm":  # an adapter is merged into its base here, once, for every actor to load
        load = partial(load_vllm_sampler, vllm_folder(resolved, cache=project.root / "cache", compute=compute),
                       compute=compute, seed=seed)
    else:
        load = partial(load_sampler, resolved, cache=project.root / "cache", compute=compute)
    if compute.engine == "local":  # a model that cannot be loaded is refused before the run is recorded
        sampler = load()
        load = partial(_loaded, sampler)
    result.truncated = sum(cut for _, cut in encoded)
    with project.store.write() as conn:
        result.run_id = generation.add_run(conn, model_version_id=version_id, params=params)
    status = "interrupted"
    try:
        _sample_all(project, load, compute, todo, [ids for ids, _ in encoded], params=params, batch_size=batch_size,
                    conversations=conversations, result=result, progress=progress)
        status = "done"
    finally:  # an interrupted run keeps what it wrote, and says so
        counts = _counts(result)
        with project.store.write() as conn:
            generation.finish_run(conn, run_id=result.run_id, status=status, counts=counts)
            audit(conn, "generate", entity="generation_run", entity_id=str(result.run_id),
                  details={"model": version, "params": params, "status": status, **counts})
    return result


def _counts(result: GenerateResult) -> dict[str, int]:
    return {k: v for k, v in vars(result).items() if k not in ("run_id", "model")}


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
    return dict(params)  # the batch size is among them: prompts sampled together share a seed (not with vLLM)


def _model_version(project: Project, name: str) -> tuple[int, str, Any]:
    """The model version's id and name, and the resolved model (a model not registered yet is registered)."""
    from curate.scores.lm import resolve_scorer

    cache = project.root / "cache"
    with project.store.read() as conn:
        found = model_versions.version_kind(conn, name)
    if found is not None:
        version_id, kind = found
        if kind not in CAUSAL_KINDS:
            what = "reward" if "reward" in kind else kind
            raise CurateError(f"model version '{name}' is a {what} model ({kind}) and cannot write text: generate "
                              "with a policy or an sft, dpo or kto adapter (curate status lists them)")
        return version_id, name, resolve_scorer(name, cache=cache, project=project)
    resolved = resolve_scorer(name, cache=cache)
    with project.store.write() as conn:
        registered = model_versions.register_model(conn, resolved, kind="policy")
        return model_versions.version_id(conn, registered), registered, resolved


def _loaded(sampler: Any) -> Any:
    return sampler


def _sample_all(project: Project, load: Callable[[], Any], compute: Compute, records: list[tuple[Any, ...]],
                prompts: list[list[int]], *, params: dict[str, Any], batch_size: int, conversations: set[str],
                result: GenerateResult, progress: Progress) -> None:
    """Sample the prompts in batches of similar length on ``compute``'s engine, each batch under the seed of its
    first prompt (vLLM: each prompt under its own); each batch is written as it finishes (with the prompts it
    sampled and the run's counts so far) in one transaction."""
    from curate.train.sampling import sample_batch

    order = sorted(range(len(records)), key=lambda i: (len(prompts[i]), records[i][0]))
    size = max(batch_size, VLLM_PROMPTS) if params["backend"] == "vllm" else batch_size
    batches = [order[i:i + size] for i in range(0, len(order), size)]
    seeds = [int(content_id("generate", str(params["seed"]), record[0])[:8], 16) for record in records]
    shards = [[{"prompts": [prompts[i] for i in part], "seed": seeds[part[0]], "seeds": [seeds[i] for i in part]}]
              for part in batches]
    done = compute.map_shards(shards, load=load,
                              work=partial(sample_batch, n=params["n"], temperature=params["temperature"],
                                           top_p=params["top_p"], max_new_tokens=params["max_new_tokens"]))
    for i, texts in progress(done, f"{result.model}: {len(records)} prompts x {params['n']}", len(batches)):
        record_ids = [records[j][0] for j in batches[i]]
        with project.store.write() as conn:
            _store(conn, record_ids, [list(row) for row in texts], conversations=conversations, result=result)
            generation.add_sampled(conn, run_id=result.run_id, record_ids=record_ids, counts=_counts(result))


def _store(conn: Connection, record_ids: list[str], samples: list[list[str]], *, conversations: set[str],
           result: GenerateResult) -> None:
    """One batch's completions (as assistant messages for the prompts in ``conversations``) and the pairs among
    each prompt's distinct samples."""
    completions: list[dict[str, Any]] = []
    pairs: list[dict[str, Any]] = []
    for record_id, texts in zip(record_ids, samples, strict=True):
        conversational = record_id in conversations
        ids: list[str] = []
        for raw in texts:
            text = normalise_text(raw)
            if not text:
                result.empty += 1
                continue
            messages = [{"role": "assistant", "content": text}] if conversational else None
            completion_id = content_id("completion", record_id, messages if conversational else text)
            if completion_id in ids:
                result.repeated += 1
                continue
            ids.append(completion_id)
            completions.append({"id": completion_id, "record_id": record_id, "text": text, "messages": messages,
                                "model": result.model, "origin": "generated", "generation_id": result.run_id})
        for low, high in itertools.combinations(sorted(ids), 2):
            pairs.append({"id": content_id("pair", record_id, low, high, ""), "record_id": record_id, "a_id": low,
                          "b_id": high, "source_key": None})
    new = pool.add_completions(conn, completions)
    result.repeated += len(completions) - new
    result.completions += new
    result.pairs += pool.add_pairs(conn, pairs)

