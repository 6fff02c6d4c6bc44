"""Score runs in the store: writing a run's values, reading the latest, and whether it is stale."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, select

from curate.models import ResolvedModel
from curate.project import Project
from curate.store import audit
from curate.store.bulk import bulk_insert
from curate.store.schema import Completion, Judgment, Pair, Record, Score, ScoreRun

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
    out: dict[str, dict[str, Any]] = {}
    for kind, run in latest.items():
        reasons = []
        if units[run.unit] != run.units:
            reasons.append(f"{units[run.unit] - run.units:+d} {run.unit}s since")
        if run.config.get("uses_labels") and judgments != run.judgments:
            reasons.append(f"{judgments - run.judgments:+d} judgments since")
        reasons += [f"model {name} changed since" for name in changed_models(run.config, cache=project.root / "cache")]
        out[kind] = {"run": run.id, "model": run.model, "units": run.units, "stale": bool(reasons),
                     "why": "; ".join(reasons), "at": run.created_at}
    return out


def _judgments(conn: Connection) -> int:
    return int(conn.scalar(select(func.count()).select_from(Judgment)) or 0)
