"""``curate status``: what a project holds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from curate.annotate.progress import round_progress
from curate.project import Project
from curate.scores.runs import score_status
from curate.store import redact
from curate.store.schema import (
    SCHEMA_VERSION,
    Annotator,
    ClusterRun,
    Completion,
    Flag,
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
        Judgment, Judgment.annotator_id == Annotator.id).where(Judgment.source == "app")
        .group_by(Annotator.name).order_by(Annotator.name)).all()
    return {"overlap": overlap, "open_rounds": round_progress(conn, overlap),
            "judgments_by_annotator": {name: int(n) for name, n in per_user},
            "flags": int(conn.scalar(select(func.count(Flag.id))) or 0)}
