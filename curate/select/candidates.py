"""The pool as selection sees it: every pair with its embeddings, latest scores, clusters, near-duplicate
group, metadata, and whether it is labelled (chosen in an earlier round, or judged in the app) or excluded
(the frozen test and calibration slices, and pairs that compare a completion with itself: nothing to rank).
Read from the store in one place, for ``curate select``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curate.errors import CurateError
from curate.ids import member_mask
from curate.project import Project
from curate.store import Connection, rounds
from curate.store import pool as pool_store
from curate.store import scores as score_store
from curate.store.pool import PoolPair
from curate.strategies import PoolView

MAX_GROUPS = 1000  # a metadata key with more distinct values is an id, not a grouping
# completion scores a pair carries per side (<kind>.<name>.a/.b); the starred ones also as the higher of the two
PER_SIDE = {"entropy": {"entropy_mean": True, "logprob_mean": False}, "reward": {"reward_mean": True},
            "implicit-reward": {"implicit_reward": False}}


@dataclass
class PoolContext:
    """What the view was built from, for the round manifest."""

    pairs: list[PoolPair]  # (pair id, record id, completion A id, completion B id)
    known_labels: set[str]  # pairs the learner has a label for (imported or expert)
    slices: dict[str, str]  # pair id -> test | calibration
    score_runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    embedding_model: str | None = None
    cluster_run: int | None = None
    notes: list[str] = field(default_factory=list)
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)  # pair id -> its metadata over its record's


def build_pool_view(project: Project, *, with_texts: bool = False) -> tuple[PoolView, PoolContext]:
    """The pool view of the project's pairs (in pair id order) and its context."""
    from curate.labels import PROJECT_SOURCES, final_labels, preferences

    known = set(preferences(final_labels(project)))  # imported labels teach the learner; they are not "judged"

    with project.store.read() as conn:
        pairs = pool_store.pairs(conn)
        if not pairs:
            raise CurateError("curate select chooses pairs and the project has none: ingest preference data "
                              "(a prompt with two completions)")
        chosen = rounds.taken_pairs(conn)
        judged = pool_store.judged_pairs(conn, sources=PROJECT_SOURCES)
        slices = rounds.slices(conn)
        context = PoolContext(pairs=pairs, known_labels=known, slices=slices, meta=pool_store.pair_meta(conn))
        scores = _scores(conn, pairs, context)
        duplicates = _duplicates(conn, pairs)
        texts = _texts(conn, pairs) if with_texts else None
        meta_groups = _meta_groups(context.meta, pairs)
    ids = np.array([p[0] for p in pairs], dtype=object)
    vectors, differences = _embeddings(project, ids, context)
    records = np.unique([p[1] for p in pairs], return_inverse=True)[1]  # one per prompt, for pair choice
    groups = {**meta_groups, "record": records, **_clusters(project, ids, context)}
    same = np.array([p[2] == p[3] for p in pairs])
    if same.any():
        context.notes.append(f"{int(same.sum())} pairs compare a completion with itself: left out of every round "
                             "(there is nothing to rank)")
    view = PoolView(ids=ids, labelled=member_mask(ids, chosen | judged), excluded=member_mask(ids, slices) | same,
                    vectors=vectors, differences=differences, scores=scores, groups=groups, duplicates=duplicates,
                    texts=texts)
    return view, context


def _scores(conn: Connection, pairs: list[PoolPair], context: PoolContext) -> dict[str, np.ndarray]:
    """The latest run of every score kind that covers the whole pool; completion scores become pair scores
    (``<kind>.<name>.a`` / ``.b`` per side, and ``<kind>.<name>`` the higher of the two; see PER_SIDE)."""
    out: dict[str, np.ndarray] = {}
    sides = {"a": [p[2] for p in pairs], "b": [p[3] for p in pairs]}
    for kind, run in sorted(score_store.latest_runs(conn).items()):
        values = score_store.run_values(conn, run_id=run.id)
        if run.unit == "pair":
            columns = {name: [found.get(p[0]) for p in pairs] for name, found in values.items()}
        elif run.unit == "completion":
            columns = {}
            for name, found in values.items():
                if name not in PER_SIDE.get(kind, {}):
                    continue
                for side, completion_ids in sides.items():
                    columns[f"{name}.{side}"] = [found.get(c) for c in completion_ids]
        else:
            continue
        if any(v is None for column in columns.values() for v in column):
            context.notes.append(f"score run {run.id} ({kind}) does not cover every pair: run `curate score {kind}` "
                                 "again to use it")
            continue
        for name, column in columns.items():
            out[f"{kind}.{name}"] = np.array(column, dtype=np.float64)
        if run.unit == "completion":
            for name, higher in PER_SIDE.get(kind, {}).items():
                if higher:
                    out[f"{kind}.{name}"] = np.maximum(out[f"{kind}.{name}.a"], out[f"{kind}.{name}.b"])
        context.score_runs[kind] = {"run": run.id, "model": run.model}
    return out


def _duplicates(conn: Connection, pairs: list[PoolPair]) -> np.ndarray | None:
    """Each pair's near-duplicate group (the representative's position), -1 where it has none."""
    rows = pool_store.near_duplicates(conn, field="pair")
    if not rows:
        return None
    position = {p[0]: i for i, p in enumerate(pairs)}
    groups = np.full(len(pairs), -1, dtype=np.int64)
    for unit, representative in rows:
        if unit in position and representative in position:
            groups[position[unit]] = groups[position[representative]] = position[representative]
    return groups


def _meta_groups(meta: dict[str, dict[str, Any]], pairs: list[PoolPair]) -> dict[str, np.ndarray]:
    """Groupings from the pairs' metadata (``meta``: pair id -> a pair's own over its record's, e.g.
    UKPConvArg1's ``topic`` or a file's ``subset`` column): every key with text or whole-number values and 2 to
    MAX_GROUPS distinct values; -1 where a pair has none."""
    keys = sorted({k for m in meta.values() for k, v in m.items() if isinstance(v, (str, int))} - {"cluster"})
    out = {}
    for key in keys:
        values = [meta.get(p, {}).get(key) for p, _, _, _ in pairs]
        names = sorted({v for v in values if isinstance(v, (str, int))}, key=str)
        if 2 <= len(names) <= MAX_GROUPS:
            index = {v: i for i, v in enumerate(names)}
            out[key] = np.array([index.get(v, -1) if isinstance(v, (str, int)) else -1 for v in values],
                                dtype=np.int64)
    return out


def _texts(conn: Connection, pairs: list[PoolPair]) -> list[str]:
    """Each pair's prompt and completions A and B, a line apart (what the ``rules`` strategy reads)."""
    ids, parts = pool_store.unit_parts(conn, field="pair")
    texts = dict(zip(ids, parts, strict=True))
    return ["\n".join(texts[p[0]]) for p in pairs]


def _embeddings(project: Project, ids: np.ndarray,
                context: PoolContext) -> tuple[np.ndarray | None, np.ndarray | None]:
    from curate.pool.units import embedded_units, unit_vectors
    from curate.scores.features import unit_differences

    try:
        units, cache = embedded_units(project, "pair")
    except CurateError as err:
        context.notes.append(f"no pair embeddings ({err})")
        return None, None
    if units.ids != ids.tolist():
        raise CurateError("the pool changed while it was being read: run select again")
    context.embedding_model = f"{cache.model.name}@{cache.model.short}"
    return unit_vectors(units, cache), unit_differences(units, cache)


def _clusters(project: Project, ids: np.ndarray, context: PoolContext) -> dict[str, np.ndarray]:
    from curate.pool.cluster import latest_run, run_labels
    from curate.pool.units import PoolUnits

    run = latest_run(project, "pair")
    if run is None:
        return {}
    units = PoolUnits("pair")
    units.ids = ids.tolist()
    labels = run_labels(project, run.id, units)
    if (labels == -2).any():
        context.notes.append(f"cluster run {run.id} is older than {(labels == -2).sum()} pairs: run `curate cluster` "
                             "again to use clusters")
        return {}
    context.cluster_run = run.id
    return {"cluster": labels}
