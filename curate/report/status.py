"""``curate status``: what a project holds."""

from __future__ import annotations

from collections import Counter
from typing import Any

from curate.annotate.stats import round_progress
from curate.labels.vocabulary import Source
from curate.project import Project
from curate.scores.runs import score_status
from curate.select.rounds import manifest_problems
from curate.store import SCHEMA_VERSION, Connection, judgments, redact, reports
from curate.store import pool as pool_store


def project_status(project: Project) -> dict[str, Any]:
    """Counts of everything in the project, under stable keys (``records``, ``pairs``, ``judgments``, ``rounds``),
    ``manifest_problems``: rounds in the store whose ``rounds/NNNN/manifest.json`` is missing or wrong,
    ``exposed_files``: private project files others may read, and ``metadata``: the pairs' metadata keys."""
    manifests = [{"round": n, "problem": why} for n, why in sorted(manifest_problems(project).items())]
    with project.store.read() as conn:
        def count(of: str) -> int:
            return reports.count_rows(conn, of=of)

        by_source = reports.judgments_by_source(conn)
        return {
            "project": project.config.project.name,
            "root": str(project.root),
            "database": redact(project.store.url),
            "schema_version": SCHEMA_VERSION,
            "records": count("records"),
            "completions": count("completions"),
            "pairs": count("pairs"),
            "judgments": sum(by_source.values()),
            "judgments_by_source": by_source,
            "annotators": reports.annotators_by_kind(conn),
            "rounds": count("rounds"),
            "items": count("items"),
            "models": count("models"),
            "cluster_runs": count("cluster_runs"),
            "near_duplicates": count("near_duplicates"),
            "ingested_files": count("ingested_files"),
            "slices": reports.slices_by_name(conn),
            "latest_round": _latest_round(conn),
            "annotation": _annotation(conn, project.config.annotate.overlap),
            "scores": score_status(project),
            "manifest_problems": manifests,
            "exposed_files": project.exposed_files(),
            "metadata": _metadata(conn),
            **_lineage(conn),
        }


def _metadata(conn: Connection) -> dict[str, dict[str, Any]]:
    """The metadata keys ingest kept (a pair's own over its record's): key -> ``values``, its number of distinct
    values (None for over 1000: ids); ``split`` also with ``counts``, pairs per split, the largest first."""
    out: dict[str, dict[str, Any]] = {}
    for key, counts in pool_store.meta_values(conn).items():
        out[key] = {"values": None if counts is None else len(counts)}
        if key == "split" and counts is not None:
            out[key]["counts"] = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return out


def _latest_round(conn: Connection) -> dict[str, Any] | None:
    """The newest round: its number, strategy, status and items by route and by arm."""
    round_ = reports.latest_round(conn)
    if round_ is None:
        return None
    items = judgments.round_items(conn, round_number=round_.number)
    by_kind, by_arm = Counter(i.kind for i in items), Counter(i.arm for i in items)
    return {"number": round_.number, "strategy": round_.strategy, "status": round_.status,
            "items": len(items), "routes": {k: by_kind[k] for k in sorted(by_kind)},
            "arms": {k: by_arm[k] for k in sorted(by_arm)}}


def _annotation(conn: Connection, overlap: int) -> dict[str, Any]:
    """The app's work: each open round's progress, judgments per app user, flagged items."""
    return {"overlap": overlap, "open_rounds": round_progress(conn, overlap),
            "judgments_by_annotator": reports.judgments_by_annotator(conn, source=Source.APP),
            "flags": reports.count_rows(conn, of="flags")}


def _lineage(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    """Every trained model version and generation run, traced to its round: the adapter, its data's sha256s,
    parent and test figures; the completions and pairs each generation added and the rounds that selected them."""
    models = []
    for v in reports.trained_models(conn):
        metrics = v.metrics or {}
        models.append({"name": v.name, "kind": v.kind, "round": v.round, "parent": metrics.get("parent"),
                       "base": v.base, "adapter": v.path, "fingerprint": v.fingerprint,
                       "data": {split: {"sha256": info.get("sha256"), "rows": info.get("rows")}
                                for split, info in (metrics.get("data") or {}).items()},
                       "test": metrics.get("test")})
    generated = reports.generated_completions(conn)
    selected = reports.generation_selections(conn)
    generations = []
    for g in reports.generations(conn):
        generations.append({"run": g.run, "model": g.model, "model_round": g.model_round, "status": g.status,
                            "params": g.params, "completions": int(generated.get(g.run, 0)),
                            "pairs": (g.counts or {}).get("pairs"), "selected_in_rounds": selected.get(g.run, {}),
                            "at": g.created_at})
    return {"trained_models": models, "generations": generations}
