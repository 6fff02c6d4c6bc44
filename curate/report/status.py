"""``curate status``: what a project holds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from curate.annotate.stats import round_progress
from curate.labels.vocabulary import Source
from curate.project import Project
from curate.scores.runs import score_status
from curate.store import redact
from curate.store.schema import (
    SCHEMA_VERSION,
    Annotator,
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


def project_status(project: Project) -> dict[str, Any]:
    """Counts of everything in the project, under stable keys (``records``, ``pairs``, ``judgments``, ``rounds``)."""
    with project.store.read() as conn:
        def count(column: Any) -> int:
            return int(conn.scalar(select(func.count(column))) or 0)

        by_source = dict(conn.execute(select(Judgment.source, func.count()).group_by(Judgment.source)).all())
        annotators = dict(conn.execute(select(Annotator.kind, func.count()).group_by(Annotator.kind)).all())
        by_slice = dict(conn.execute(select(Slice.name, func.count()).group_by(Slice.name)).all())
        return {
            "project": project.config.project.name,
            "root": str(project.root),
            "database": redact(project.store.url),
            "schema_version": SCHEMA_VERSION,
            "records": count(Record.id),
            "completions": count(Completion.id),
            "pairs": count(Pair.id),
            "judgments": sum(by_source.values()),
            "judgments_by_source": {k: by_source[k] for k in sorted(by_source)},
            "annotators": {k: annotators[k] for k in sorted(annotators)},
            "rounds": count(Round.id),
            "items": count(Item.id),
            "models": count(ModelVersion.id),
            "cluster_runs": count(ClusterRun.id),
            "near_duplicates": count(NearDuplicate.unit_id),
            "ingested_files": count(IngestBatch.id),
            "slices": {k: by_slice[k] for k in sorted(by_slice)},
            "latest_round": _latest_round(conn),
            "annotation": _annotation(conn, project.config.annotate.overlap),
            "scores": score_status(project),
            **_lineage(conn),
        }


def _latest_round(conn: Any) -> dict[str, Any] | None:
    """The newest round: its number, strategy, status and items by route and by arm."""
    round_ = conn.execute(select(Round.id, Round.number, Round.strategy, Round.status)
                          .order_by(Round.number.desc()).limit(1)).first()
    if round_ is None:
        return None
    by_kind = dict(conn.execute(select(Item.kind, func.count()).where(Item.round_id == round_.id)
                                .group_by(Item.kind)).all())
    by_arm = dict(conn.execute(select(Item.arm, func.count()).where(Item.round_id == round_.id)
                               .group_by(Item.arm)).all())
    return {"number": round_.number, "strategy": round_.strategy, "status": round_.status,
            "items": sum(by_kind.values()), "routes": {k: by_kind[k] for k in sorted(by_kind)},
            "arms": {k: by_arm[k] for k in sorted(by_arm)}}


def _annotation(conn: Any, overlap: int) -> dict[str, Any]:
    """The app's work: each open round's progress, judgments per app user, flagged items."""
    per_user = conn.execute(select(Annotator.name, func.count(Judgment.id)).join(
        Judgment, Judgment.annotator_id == Annotator.id).where(Judgment.source == Source.APP)
        .group_by(Annotator.name).order_by(Annotator.name)).all()
    return {"overlap": overlap, "open_rounds": round_progress(conn, overlap),
            "judgments_by_annotator": {name: int(n) for name, n in per_user},
            "flags": int(conn.scalar(select(func.count(Flag.id))) or 0)}


def _lineage(conn: Any) -> dict[str, list[dict[str, Any]]]:
    """Every trained model version and generation run, traced to its round: the adapter, its data's sha256s,
    parent and test figures; the completions and pairs each generation added and the rounds that selected them."""
    models = []
    query = (select(ModelVersion.name, ModelVersion.kind, ModelVersion.base, ModelVersion.path,
                    ModelVersion.fingerprint, ModelVersion.metrics, Round.number)
             .join(Round, Round.id == ModelVersion.round_id, isouter=True)
             .where(ModelVersion.kind.like("adapter-%")).order_by(ModelVersion.id))
    for v in conn.execute(query):
        metrics = v.metrics or {}
        models.append({"name": v.name, "kind": v.kind, "round": v.number, "parent": metrics.get("parent"),
                       "base": v.base, "adapter": v.path, "fingerprint": v.fingerprint,
                       "data": {split: {"sha256": info.get("sha256"), "rows": info.get("rows")}
                                for split, info in (metrics.get("data") or {}).items()},
                       "test": metrics.get("test")})
    generated = dict(conn.execute(select(Completion.generation_id, func.count()).where(
        Completion.generation_id.is_not(None)).group_by(Completion.generation_id)).all())
    selected: dict[int, dict[int, int]] = {}
    for run_id, number, n in conn.execute(
            select(Completion.generation_id, Round.number, func.count(func.distinct(Item.id)))
            .select_from(Item).join(Pair, Pair.id == Item.pair_id).join(Round, Round.id == Item.round_id)
            .join(Completion, (Completion.id == Pair.a_id) | (Completion.id == Pair.b_id))
            .where(Completion.generation_id.is_not(None)).group_by(Completion.generation_id, Round.number)):
        selected.setdefault(run_id, {})[number] = int(n)
    generations = []
    query = (select(GenerationRun.id, GenerationRun.status, GenerationRun.params, GenerationRun.counts,
                    GenerationRun.created_at, ModelVersion.name, Round.number)
             .join(ModelVersion, ModelVersion.id == GenerationRun.model_version_id)
             .join(Round, Round.id == ModelVersion.round_id, isouter=True).order_by(GenerationRun.id))
    for g in conn.execute(query):
        generations.append({"run": g.id, "model": g.name, "model_round": g.number, "status": g.status,
                            "params": g.params, "completions": int(generated.get(g.id, 0)),
                            "pairs": (g.counts or {}).get("pairs"), "selected_in_rounds": selected.get(g.id, {}),
                            "at": g.created_at})
    return {"trained_models": models, "generations": generations}
