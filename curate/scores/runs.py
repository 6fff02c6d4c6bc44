"""Score runs: saving a run's values, cached completion scores, and whether the latest run of a kind is stale."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from curate.compute import Compute
from curate.models import ResolvedModel
from curate.progress import Progress, no_progress
from curate.project import Project
from curate.rendering import Conversation
from curate.store import audit, rounds, scores


def save_run(project: Project, *, kind: str, unit: str, model: ResolvedModel, ids: Sequence[str],
             names: Sequence[str], values: np.ndarray, config: dict[str, Any]) -> int:
    """Store one run: ``values[i, j]`` is score ``names[j]`` of unit ``ids[i]``."""
    with project.store.write() as conn:
        run_id = scores.add_run(conn, kind=kind, unit=unit, model=f"{model.name}@{model.short}",
                                fingerprint=model.fingerprint, units=len(ids), judgments=scores.judgment_count(conn),
                                config=config, values=[(uid, name, float(values[i, j])) for i, uid in enumerate(ids)
                                                       for j, name in enumerate(names)])
        audit(conn, "score", entity="score_run", entity_id=str(run_id),
              details={"kind": kind, "model": model.name, "units": len(ids)})
    return run_id


def cached_completion_scores(root: Path, model: ResolvedModel, rows: Sequence[tuple[str, Conversation]], *,
                             kind: str, load: Callable[..., tuple[Any, Any]], score: Callable[..., np.ndarray],
                             max_length: int, shard: int, compute: Compute | None = None,
                             progress: Progress | None = None) -> tuple[np.ndarray, int]:
    """``score(model, tokenizer, conversations, max_length=)`` of every (id, conversation) row, from
    ``root``/scores/<kind>/<model> (``root``: a cache folder) where it has them, and how many were computed.
    A score is keyed by the model's fingerprint (its files, chat template included), ``max_length`` and the
    conversation with the rendering's version, so a change to any of them recomputes, and apart by precision
    (scores in bfloat16 or float16 never serve float32 work, nor the other way round; the device does not
    matter). The model is loaded (``load(model, cache=, compute=)``, on ``compute``'s device and engine) only if
    something is missing; work is cached a shard at a time, in prompt order, as each shard finishes, so a killed
    run loses little."""
    from curate.ids import text_key
    from curate.pool.embed import EmbeddingCache

    cache = EmbeddingCache(root, model, kind=f"scores/{kind}{(compute or Compute()).cache_tag()}")
    keys = [text_key(f"{max_length}\x1f{conversation.key()}") for _, conversation in rows]
    todo = sorted((i for i, key in enumerate(keys) if key not in cache), key=lambda i: rows[i][1].prompt.key())
    if todo:
        compute = compute or Compute()
        shards = [todo[i:i + shard] for i in range(0, len(todo), shard)]
        done = compute.map_shards([[rows[i][1] for i in part] for part in shards],
                                  load=partial(load, model, cache=root, compute=compute),
                                  work=partial(_score_shard, score=score, max_length=max_length))
        for i, values in (progress or no_progress)(done, f"{model.name}: {len(todo)} completions", len(shards)):
            cache.add([keys[j] for j in shards[i]], values.astype(np.float32))
        cache.compact()
    return cache.get(keys).astype(np.float64), len(todo)


def _score_shard(loaded: tuple[Any, Any], conversations: Sequence[Conversation], *, score: Callable[..., np.ndarray],
                 max_length: int) -> np.ndarray:
    return score(*loaded, conversations, max_length=max_length)


def score_status(project: Project) -> dict[str, dict[str, Any]]:
    """The latest run of each kind, and why it is stale (units added, judgments or model files changed since)."""
    from curate.scores.lm import changed_models

    with project.store.read() as conn:
        judgments = scores.judgment_count(conn)
        latest = scores.latest_runs(conn)
        units = scores.unit_counts(conn)
        slices = rounds.slice_count(conn)
    out: dict[str, dict[str, Any]] = {}
    for kind, run in latest.items():
        reasons = []
        if units[run.unit] != run.units:
            reasons.append(f"{units[run.unit] - run.units:+d} {run.unit}s since")
        if run.config.get("uses_labels") and judgments != run.judgments:
            reasons.append(f"{judgments - run.judgments:+d} judgments since")
        if run.config.get("uses_labels") and slices != run.config.get("slices", 0):
            reasons.append("test/calibration slices reserved since (it may have fitted on them)")
        reasons += [f"model {name} changed since" for name in changed_models(run.config, cache=project.root / "cache")]
        out[kind] = {"run": run.id, "model": run.model, "units": run.units, "stale": bool(reasons),
                     "why": "; ".join(reasons), "at": run.created_at}
    return out
