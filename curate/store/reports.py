"""Queries of ``curate status`` and the report: counts, rounds, clusters of pairs, trained models, generations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from curate.store.schema import (
    Annotator,
    Assignment,
    ClusterAssignment,
    ClusterRun,
    Completion,
    Flag,
    GenerationRun,
    IngestBatch,
    Item,
    Judgment,
    ModelVersion,
    NearDuplicate,
    Pair,
    Record,
    Round,
    Slice,
)

COUNTED = {"records": Record.id, "completions": Completion.id, "pairs": Pair.id, "rounds": Round.id,
           "items": Item.id, "models": ModelVersion.id, "cluster_runs": ClusterRun.id,
           "near_duplicates": NearDuplicate.unit_id, "ingested_files": IngestBatch.id, "flags": Flag.id}


@dataclass(frozen=True)
class RoundRow:
    """One round as selected: its number, strategy, seed, status (open | closed), config and when it was made."""

    number: int
    strategy: str
    seed: int
    status: str
    config: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class TrainedModel:
    """A model version ``curate train`` made (kind ``adapter-*``) and the number of the round it was trained
    after (None where none)."""

    name: str
    kind: str
    base: str | None
    path: str | None
    fingerprint: str | None
    metrics: dict[str, Any]
    round: int | None


@dataclass(frozen=True)
class Generation:
    """One generation run: the model version that sampled (and its round), settings, counts and its start."""

    run: int
    status: str
    params: dict[str, Any]
    counts: dict[str, Any]
    created_at: datetime
    model: str
    model_round: int | None


def count_rows(conn: Connection, *, of: str) -> int:
    """How many rows ``of`` (a key of ``COUNTED``: records, pairs, rounds, ...) the project holds."""
    return int(conn.scalar(select(func.count(COUNTED[of]))) or 0)


def judgments_by_source(conn: Connection) -> dict[str, int]:
    """Judgments per source, by source."""
    return _grouped(conn, Judgment.source)


def annotators_by_kind(conn: Connection) -> dict[str, int]:
    """Annotators per kind (human, imported, model), by kind."""
    return _grouped(conn, Annotator.kind)


def slices_by_name(conn: Connection) -> dict[str, int]:
    """Pairs per frozen slice (test, calibration), by name."""
    return _grouped(conn, Slice.name)


def judgments_by_annotator(conn: Connection, *, source: str) -> dict[str, int]:
    """Judgments of ``source`` per annotator, by name."""
    return {name: int(n) for name, n in conn.execute(
        select(Annotator.name, func.count(Judgment.id)).join(Judgment, Judgment.annotator_id == Annotator.id)
        .where(Judgment.source == source).group_by(Annotator.name).order_by(Annotator.name))}


def rounds(conn: Connection) -> list[RoundRow]:
    """Every round, by number."""
    return [_round(r) for r in conn.execute(select(Round.number, Round.strategy, Round.seed, Round.status,
                                                   Round.config, Round.created_at).order_by(Round.number))]


def latest_round(conn: Connection) -> RoundRow | None:
    """The newest round, if any."""
    row = conn.execute(select(Round.number, Round.strategy, Round.seed, Round.status, Round.config, Round.created_at)
                       .order_by(Round.number.desc()).limit(1)).first()
    return None if row is None else _round(row)


def skipped_items(conn: Connection, *, round_number: int) -> int:
    """How many times people skipped an item of round ``round_number``."""
    return int(conn.scalar(select(func.count(Assignment.id)).join(Item, Item.id == Assignment.item_id)
                           .join(Round, Round.id == Item.round_id)
                           .where(Round.number == round_number, Assignment.status == "skipped")) or 0)


def generated_items(conn: Connection, *, round_number: int) -> int:
    """How many items of round ``round_number`` hold a pair with a generated completion."""
    return int(conn.scalar(
        select(func.count(func.distinct(Item.id))).join(Pair, Pair.id == Item.pair_id)
        .join(Completion, (Completion.id == Pair.a_id) | (Completion.id == Pair.b_id))
        .join(Round, Round.id == Item.round_id)
        .where(Round.number == round_number, Completion.origin == "generated")) or 0)


def round_examples(conn: Connection, *, round_number: int, arm: str, limit: int
                   ) -> list[tuple[str, str, str, str | None]]:
    """The first ``limit`` items of ``arm`` in round ``round_number``: (prompt, kind, arm, the reason)."""
    return [(prompt, kind, a, reason) for prompt, kind, a, reason in conn.execute(
        select(Record.prompt, Item.kind, Item.arm, Item.reason).join(Record, Record.id == Item.record_id)
        .join(Round, Round.id == Item.round_id).where(Round.number == round_number, Item.arm == arm)
        .order_by(Item.id).limit(limit))]


def pair_clusters(conn: Connection) -> dict[str, int]:
    """Each pair's cluster in the latest clustering of pairs or of prompts (a prompt's cluster is its pairs'), or
    empty where there is none."""
    run = conn.execute(select(ClusterRun.id, ClusterRun.field).where(ClusterRun.field.in_(("pair", "prompt")))
                       .order_by(ClusterRun.id.desc()).limit(1)).first()
    if run is None:
        return {}
    query = select(ClusterAssignment.unit_id, ClusterAssignment.cluster).where(ClusterAssignment.run_id == run.id)
    if run.field == "prompt":
        query = (select(Pair.id, ClusterAssignment.cluster).join(ClusterAssignment,
                                                                 ClusterAssignment.unit_id == Pair.record_id)
                 .where(ClusterAssignment.run_id == run.id))
    return {uid: int(c) for uid, c in conn.execute(query)}


def trained_models(conn: Connection) -> list[TrainedModel]:
    """Every model version ``curate train`` made, oldest first."""
    query = (select(ModelVersion.name, ModelVersion.kind, ModelVersion.base, ModelVersion.path,
                    ModelVersion.fingerprint, ModelVersion.metrics, Round.number)
             .join(Round, Round.id == ModelVersion.round_id, isouter=True)
             .where(ModelVersion.kind.like("adapter-%")).order_by(ModelVersion.id))
    return [TrainedModel(*row) for row in conn.execute(query)]


def generations(conn: Connection) -> list[Generation]:
    """Every generation run, oldest first."""
    query = (select(GenerationRun.id, GenerationRun.status, GenerationRun.params, GenerationRun.counts,
                    GenerationRun.created_at, ModelVersion.name, Round.number)
             .join(ModelVersion, ModelVersion.id == GenerationRun.model_version_id)
             .join(Round, Round.id == ModelVersion.round_id, isouter=True).order_by(GenerationRun.id))
    return [Generation(*row) for row in conn.execute(query)]


def generated_completions(conn: Connection) -> dict[int, int]:
    """Generation run id -> the completions it added."""
    return dict(conn.execute(select(Completion.generation_id, func.count()).where(
        Completion.generation_id.is_not(None)).group_by(Completion.generation_id)).all())


def generation_selections(conn: Connection) -> dict[int, dict[int, int]]:
    """Generation run id -> {round number: the items of that round holding a pair with one of its completions}."""
    selected: dict[int, dict[int, int]] = {}
    for run_id, number, n in conn.execute(
            select(Completion.generation_id, Round.number, func.count(func.distinct(Item.id)))
            .select_from(Item).join(Pair, Pair.id == Item.pair_id).join(Round, Round.id == Item.round_id)
            .join(Completion, (Completion.id == Pair.a_id) | (Completion.id == Pair.b_id))
            .where(Completion.generation_id.is_not(None)).group_by(Completion.generation_id, Round.number)):
        selected.setdefault(run_id, {})[number] = int(n)
    return selected


def _grouped(conn: Connection, column: Any) -> dict[str, int]:
    found = dict(conn.execute(select(column, func.count()).group_by(column)).all())
    return {k: found[k] for k in sorted(found)}


def _round(row: Any) -> RoundRow:
    return RoundRow(row.number, row.strategy, row.seed, row.status, row.config, row.created_at)
