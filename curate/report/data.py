"""``curate report``: one self-contained HTML page of the project's rounds, pictures first.

What each round selected and why (by arm and route, with the strategy's reasons), where on the cluster
map, a learning curve of the strategy's labels against the random arm's on the frozen test slice,
agreement per round, the trained model versions with their test figures and generations, and what
changed between rounds. ``report_data`` returns the same facts as plain data (``--json``).
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import CurateError
from curate.labels.vocabulary import Source
from curate.progress import Progress, no_progress
from curate.project import Project
from curate.store import Connection, judgments, pool, reports

MAX_REPORTED = 20  # a metadata key with more values is shown in curate status, not as a table

ARMS = ("strategy", "random")  # the arms a learning curve compares; slice items (test/calibration) are not training
EXAMPLES = 8  # items shown per round with the strategy's reason


def report_data(project: Project, *, progress: Progress | None = None) -> dict[str, Any]:
    """Everything the report shows, as plain data."""
    from curate.report.status import project_status

    if not _has_rounds(project):
        raise CurateError("the project has no rounds yet: run curate select first")
    progress = progress or no_progress
    status = project_status(project)
    with project.store.read() as conn:
        rounds = _rounds(conn)
        clusters = reports.pair_clusters(conn)
        groups = _metadata_groups(conn, rounds)
    for entry in rounds:  # one clustering (the latest) for every round, so their shares compare
        entry["clusters"] = {str(k): v for k, v in Counter(
            clusters[p] for arm in ARMS for p in entry["pairs_by_arm"][arm] if p in clusters).most_common()}
    return {
        "project": status["project"],
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "counts": {k: status[k] for k in ("records", "completions", "pairs", "judgments", "rounds", "models")},
        "judgments_by_source": status["judgments_by_source"],
        "slices": status["slices"],
        "rounds": rounds,
        "learning_curve": learning_curve(project, progress=progress),
        "agreement": [_agreement(project, r["number"]) for r in rounds],
        "labels": _labels(project),
        "models": status["trained_models"],
        "generations": status["generations"],
        "changes": _changes(rounds),
        "metadata": groups,
    }


def write_report(project: Project, *, out: Path | None = None, progress: Progress | None = None) -> Path:
    """Write the report (default ``report.html`` in the project) whole, then rename it into place."""
    from curate.files import publish_text
    from curate.report.html import render_report

    out = Path(out) if out is not None else project.root / "report.html"
    page = render_report(project, report_data(project, progress=progress))
    try:
        publish_text(out, page)
    except OSError as err:
        raise CurateError(f"{out}: cannot write the report ({err.strerror or err})") from None
    return out


def _has_rounds(project: Project) -> bool:
    with project.store.read() as conn:
        return bool(reports.count_rows(conn, of="rounds"))


def _rounds(conn: Connection) -> list[dict[str, Any]]:
    """Each round: strategy, seed, status, items by arm and route, its people's judgments and skips, the
    strategy arm's first items with their reasons, the pairs its training arms chose and their clusters."""
    items_of: dict[int, list[judgments.RoundItem]] = {}
    for item in judgments.round_items(conn):
        items_of.setdefault(item.round, []).append(item)
    out = []
    for r in reports.rounds(conn):
        items = items_of.get(r.number, [])
        by_arm_route = Counter(f"{i.arm}/{i.kind}" for i in items)
        judged = judgments.round_judgments(conn, round_number=r.number, source=Source.APP)
        skipped = reports.skipped_items(conn, round_number=r.number)
        generated = reports.generated_items(conn, round_number=r.number)
        examples = reports.round_examples(conn, round_number=r.number, arm="strategy", limit=EXAMPLES)
        config = r.config or {}
        out.append({
            "number": int(r.number), "strategy": r.strategy, "cold_start": bool(config.get("cold_start")),
            "seed": int(r.seed), "status": r.status, "created_at": r.created_at.isoformat(timespec="seconds"),
            "items": len(items), "arms": dict(Counter(i.arm for i in items)),
            "routes": dict(Counter(i.kind for i in items)), "by_arm_route": dict(by_arm_route),
            "generated_items": int(generated), "judgments": int(judged), "skipped": int(skipped),
            "pool_pairs": (config.get("pool") or {}).get("pairs"),
            "examples": [{"prompt": prompt[:300], "route": kind, "arm": arm, "why": reason}
                         for prompt, kind, arm, reason in examples],
            "pairs_by_arm": {arm: sorted({i.pair_id for i in items if i.arm == arm and i.pair_id}) for arm in ARMS},
        })
    return out


def _metadata_groups(conn: Connection, rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each metadata key ingest kept with 2 to MAX_REPORTED values (a split, a subset, a language): the pool's
    pairs per value and the pairs each round's training arms chose per value, so a lead sees what was covered."""
    metas = pool.pair_meta(conn)
    ids = [p[0] for p in pool.pairs(conn)]
    out = []
    for key in sorted({k for m in metas.values() for k in m}):
        value_of = {p: pool.meta_text(metas.get(p, {}).get(key)) or "(none)" for p in ids}
        in_pool = Counter(value_of.values())
        if not 2 <= len(in_pool) <= MAX_REPORTED:
            continue
        chosen = [Counter(value_of.get(p, "(none)") for arm in ARMS for p in r["pairs_by_arm"][arm]) for r in rounds]
        out.append({"key": key, "values": [{"value": v, "pool": n, "chosen": [c[v] for c in chosen]}
                                           for v, n in in_pool.most_common()]})
    return out


def learning_curve(project: Project, *, progress: Progress | None = None) -> dict[str, Any]:
    """After each round, the project's learner ([learner] in curate.toml) fitted on the labels of each arm so
    far (and on both), scored on the frozen test slice's labelled pairs: accuracy and the labels it used.
    A point is None where an arm has too few labels to fit; ``note`` says why a curve is missing."""
    from curate.labels import final_labels, preferences
    from curate.learners import configured_learner
    from curate.learners.base import MIN_LABELS
    from curate.scores.features import project_pair_features
    from curate.store.rounds import slices

    labels = preferences(final_labels(project))
    with project.store.read() as conn:
        test = [p for p, name in slices(conn).items() if name == "test" and p in labels]
        items = [(i.round, i.arm, i.pair_id) for i in judgments.round_items(conn)
                 if i.pair_id is not None and i.arm in ARMS]
    curve: dict[str, Any] = {"test_pairs": len(test), "rounds": [], "note": None,
                             **{arm: [] for arm in (*ARMS, "both")}}
    if len(test) < MIN_LABELS:
        curve["note"] = f"the test slice has {len(test)} labelled pairs: a curve needs at least {MIN_LABELS}"
        return curve
    config = project.config.learner
    try:
        ids, d, _, _ = project_pair_features(project, features=config.features, engine="local", progress=progress)
    except CurateError as err:
        curve["note"] = f"no features for a curve: {err}"
        return curve
    row = {uid: i for i, uid in enumerate(ids)}
    test = [p for p in test if p in row]
    x_test = d[[row[p] for p in test]]
    y_test = np.array([labels[p] for p in test])
    for number in sorted({n for n, _, _ in items}):
        curve["rounds"].append(number)
        for arm in (*ARMS, "both"):
            chosen = sorted({p for n, a, p in items if n <= number and (arm == "both" or a == arm)
                             and p in labels and p in row})
            point: dict[str, Any] = {"labels": len(chosen), "accuracy": None}
            if len(chosen) >= MIN_LABELS and len({labels[p] for p in chosen}) == 2:
                learner = configured_learner(config).fit(d[[row[p] for p in chosen]],
                                                         np.array([labels[p] for p in chosen]))
                point["accuracy"] = float(np.mean((learner.predict(x_test).p > 0.5) == (y_test == 1)))
            curve[arm].append(point)
    return curve


def _agreement(project: Project, number: int) -> dict[str, Any]:
    from curate.labels.agreement import agreement_report

    try:
        report = agreement_report(project, round_number=number, resamples=0)
    except CurateError as err:
        return {"round": number, "note": str(err)}
    return {"round": number, "items": report["items_multi"], "annotators": report["annotators"],
            "percent_agreement": report["percent_agreement"]["value"],
            "fleiss_kappa": report["fleiss_kappa"]["value"],
            "krippendorff_alpha": report["krippendorff_alpha"]["value"], "note": report["note"]}


def _labels(project: Project) -> dict[str, Any]:
    """The final labels by what decided them (source, how), with their mean agreement, and the adjudication
    queue's length."""
    from curate.labels import final_labels
    from curate.labels.adjudication import adjudication_queue

    groups: dict[tuple[str, str], list[float]] = {}
    for label in final_labels(project).values():
        groups.setdefault((str(label.source), str(label.how)), []).append(label.agreement)
    return {"by_source": [{"source": source, "how": how, "pairs": len(values),
                           "mean_agreement": float(np.mean(values)) if how != "tied" else None}
                          for (source, how), values in sorted(groups.items())],
            "queue": len(adjudication_queue(project))}


def _changes(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """From each round to the next: the pool's growth, generated pairs chosen, and how far the clusters the
    training arms drew from moved (total variation distance of their shares in the latest clustering, 0 = the
    same mix, 1 = no cluster in common)."""
    out = []
    for before, after in pairwise(rounds):
        shares = [_shares(r["clusters"]) for r in (before, after)]
        keys = set(shares[0]) | set(shares[1])
        out.append({"from": before["number"], "to": after["number"],
                    "strategy": [before["strategy"], after["strategy"]],
                    "pool_pairs": [before["pool_pairs"], after["pool_pairs"]],
                    "generated_items": after["generated_items"],
                    "cluster_shift": 0.5 * math.fsum(abs(shares[0].get(k, 0) - shares[1].get(k, 0)) for k in keys)
                    if keys else None})
    return out


def _shares(counts: dict[Any, int]) -> dict[Any, float]:
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total else {}
