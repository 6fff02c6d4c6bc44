"""Score runs in the store: writing a run's values, reading the latest, and whether it is stale."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, select

from curate.models import ResolvedModel
from curate.progress import Progress, no_progress
from curate.project import Project
from curate.store import audit
from curate.store.bulk import bulk_insert
from curate.store.schema import Completion, Judgment, Pair, Record, Score, ScoreRun, Slice

UNIT_TABLES = {"completion": Completion, "pair": Pair, "record": Record}


def save_run(project: Project, *, kind: str, unit: str, model: ResolvedModel, ids: Sequence[str],
             names: Sequence[str], values: np.ndarray, config: dict[str, Any]) -> int:
    """Store one run: ``values[i, j]`` is score ``names[j]`` of unit ``ids[i]``."""
    with project.store.write() as conn:
        run_id = conn.execute(ScoreRun.__table__.insert().values(
            kind=kind, unit=unit, model=f"{model.name}@{model.short}", fingerprint=model.fingerprint,
            units=len(ids), judgments=_judgments(conn), config=config)).inserted_primary_key[0]
        bulk_insert(conn, Score.__table__, [
            {"run_id": run_id, "unit_id": uid, "name": name, "value": float(values[i, j])}
            for i, uid in enumerate(ids) for j, name in enumerate(names)])
        audit(conn, "score", entity="score_run", entity_id=str(run_id),
              details={"kind": kind, "model": model.name, "units": len(ids)})
    return run_id


def cached_completion_scores(root: Path, model: ResolvedModel, rows: Sequence[tuple[str, str, str]], *,
                             kind: str, load: Callable[..., tuple[Any, Any]], score: Callable[..., np.ndarray],
                             max_length: int, shard: int, progress: Progress | None = None) -> tuple[np.ndarray, int]:
    """``score(model, tokenizer, prompts, completions, max_length=)`` of every (id, prompt, completion) row,
    from ``root``/scores/<kind>/<model> (``root``: a cache folder) where it has them, and how many were
    computed. The model is loaded (``load(model, cache=)``) only if something is missing; work is cached a
    shard at a time, in prompt order, so a killed run loses little."""
    from curate.pool.embed import EmbeddingCache, text_key

    cache = EmbeddingCache(root, model, kind=f"scores/{kind}")
    keys = [text_key(f"{max_length}\x1f{prompt}\x1f{text}") for _, prompt, text in rows]
    todo = sorted((i for i, key in enumerate(keys) if key not in cache), key=lambda i: rows[i][1])
    if todo:
        loaded, tokenizer = load(model, cache=root)
        shards = [todo[i:i + shard] for i in range(0, len(todo), shard)]
        for part in (progress or no_progress)(shards, f"{model.name}: {len(todo)} completions", len(shards)):
            values = score(loaded, tokenizer, [rows[i][1] for i in part], [rows[i][2] for i in part],
                           max_length=max_length)
            cache.add([keys[i] for i in part], values.astype(np.float32))
        cache.compact()
    return cache.get(keys).astype(np.float64), len(todo)


def score_status(project: Project) -> dict[str, dict[str, Any]]:
    """The latest run of each kind, and why it is stale (units added, judgments or model files changed since)."""
    from curate.scores.lm import changed_models

    latest: dict[str, Any] = {}
    with project.store.read() as conn:
        judgments = _judgments(conn)
        for run in conn.execute(select(ScoreRun.__table__).order_by(ScoreRun.id)):
            latest[run.kind] = run
        units = {unit: int(conn.scalar(select(func.count()).select_from(table)) or 0)
                 for unit, table in UNIT_TABLES.items()}
        slices = int(conn.scalar(select(func.count()).select_from(Slice)) or 0)
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


def _judgments(conn: Connection) -> int:
    return int(conn.scalar(select(func.count()).select_from(Judgment)) or 0)
