"""Queries of score runs: writing one, the latest of each kind, its values, and the counts staleness compares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from curate.store.bulk import bulk_insert
from curate.store.schema import Completion, Judgment, Pair, Record, Score, ScoreRun

UNIT_TABLES = {"completion": Completion, "pair": Pair, "record": Record}


@dataclass(frozen=True)
class ScoreRunInfo:
    """One score run as its readers need it: id, kind, unit (completion | pair | record), model
    (name@fingerprint prefix), how many units and judgments it saw, its config and when it ran."""

    id: int
    kind: str
    unit: str
    model: str
    units: int
    judgments: int
    config: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None


def _info(row: Any) -> ScoreRunInfo:
    return ScoreRunInfo(id=row.id, kind=row.kind, unit=row.unit, model=row.model, units=row.units,
                        judgments=row.judgments, config=row.config or {}, created_at=row.created_at)


def latest_run(conn: Connection, kind: str) -> ScoreRunInfo | None:
    """The latest score run of ``kind`` (e.g. ``"committee"``), or None before one has run; ``.id`` is its id."""
    row = conn.execute(select(ScoreRun.__table__).where(ScoreRun.kind == kind)
                       .order_by(ScoreRun.id.desc()).limit(1)).first()
    return None if row is None else _info(row)


def latest_runs(conn: Connection) -> dict[str, ScoreRunInfo]:
    """The latest score run of every kind, by kind (in the order the kinds first ran)."""
    latest: dict[str, ScoreRunInfo] = {}
    for row in conn.execute(select(ScoreRun.__table__).order_by(ScoreRun.id)):
        latest[row.kind] = _info(row)
    return latest


def run_values(conn: Connection, *, run_id: int) -> dict[str, dict[str, float]]:
    """Every value of run ``run_id``: score name -> unit id -> value."""
    values: dict[str, dict[str, float]] = {}
    for unit, name, value in conn.execute(select(Score.unit_id, Score.name, Score.value)
                                          .where(Score.run_id == run_id)):
        values.setdefault(name, {})[unit] = value
    return values


def unit_values(conn: Connection, *, run_id: int, name: str) -> dict[str, float]:
    """Score ``name`` of every unit run ``run_id`` scored: unit id -> value."""
    return dict(conn.execute(select(Score.unit_id, Score.value).where(Score.run_id == run_id, Score.name == name))
                .all())


def add_run(conn: Connection, *, kind: str, unit: str, model: str, fingerprint: str, units: int, judgments: int,
            config: dict[str, Any], values: Sequence[tuple[str, str, float]]) -> int:
    """Store one score run and its ``values`` ((unit id, name, value) rows); its id."""
    run_id = int(conn.execute(ScoreRun.__table__.insert().values(
        kind=kind, unit=unit, model=model, fingerprint=fingerprint, units=units, judgments=judgments,
        config=config)).inserted_primary_key[0])
    bulk_insert(conn, Score.__table__, [{"run_id": run_id, "unit_id": uid, "name": name, "value": value}
                                        for uid, name, value in values])
    return run_id


def judgment_count(conn: Connection) -> int:
    """How many judgments the project holds (a run that learned from labels goes stale when this changes)."""
    return int(conn.scalar(select(func.count()).select_from(Judgment)) or 0)


def unit_counts(conn: Connection) -> dict[str, int]:
    """How many units of each scored kind the project holds: ``completion``, ``pair`` and ``record``."""
    return {unit: int(conn.scalar(select(func.count()).select_from(table)) or 0)
            for unit, table in UNIT_TABLES.items()}
