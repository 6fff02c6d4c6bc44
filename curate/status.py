"""``curate status``: what a project holds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from curate.project import Project
from curate.scores.runs import score_status
from curate.store import redact
from curate.store.schema import (
    SCHEMA_VERSION,
    Annotator,
    ClusterRun,
    Completion,
    IngestBatch,
    Item,
    Judgment,
    ModelVersion,
    NearDuplicate,
    Pair,
    Record,
    Round,
)


def project_status(project: Project) -> dict[str, Any]:
    """Counts of everything in the project, under stable keys (``records``, ``pairs``, ``judgments``, ``rounds``)."""
    with project.store.read() as conn:
        def count(column: Any) -> int:
            return int(conn.scalar(select(func.count(column))) or 0)

        by_source = dict(conn.execute(select(Judgment.source, func.count()).group_by(Judgment.source)).all())
        annotators = dict(conn.execute(select(Annotator.kind, func.count()).group_by(Annotator.kind)).all())
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
            "scores": score_status(project),
        }
