"""Queries of generation runs: starting one, its counts and status, and the prompts its samples came from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, select, update

from curate.store.bulk import bulk_insert
from curate.store.schema import GenerationPrompt, GenerationRun


def add_run(conn: Connection, *, model_version_id: int, params: dict[str, Any]) -> int:
    """Start a generation run of model version ``model_version_id`` with ``params`` (status ``running``); its id."""
    return int(conn.execute(GenerationRun.__table__.insert().values(
        model_version_id=model_version_id, params=params, counts={}, status="running")).inserted_primary_key[0])


def add_sampled(conn: Connection, *, run_id: int, record_ids: Sequence[str], counts: dict[str, Any]) -> None:
    """Record that run ``run_id`` sampled the prompts of ``record_ids``, and its ``counts`` so far."""
    bulk_insert(conn, GenerationPrompt.__table__, [{"run_id": run_id, "record_id": r} for r in record_ids])
    conn.execute(update(GenerationRun).where(GenerationRun.id == run_id).values(counts=counts))


def finish_run(conn: Connection, *, run_id: int, status: str, counts: dict[str, Any]) -> None:
    """Close run ``run_id`` with its ``status`` (``done`` or ``interrupted``) and final ``counts``, stamped now."""
    conn.execute(update(GenerationRun).where(GenerationRun.id == run_id).values(
        counts=counts, status=status, finished_at=func.now()))


def sampled_records(conn: Connection, *, model_version_id: int, params: dict[str, Any]) -> set[str]:
    """Records that runs of model version ``model_version_id`` with exactly ``params`` have sampled already (a run
    recorded before the backend was a setting sampled with transformers)."""
    runs = [r.id for r in conn.execute(select(GenerationRun.id, GenerationRun.params)
                                       .where(GenerationRun.model_version_id == model_version_id))
            if {"backend": "transformers", **r.params} == params]
    if not runs:
        return set()
    return set(conn.scalars(select(GenerationPrompt.record_id).where(GenerationPrompt.run_id.in_(runs))))
