"""Inter-annotator agreement on pair judgments: percent agreement, Cohen's kappa per pair of annotators,
Fleiss' kappa, Krippendorff's alpha (nominal for the choices, ordinal for confidence), each annotator's
accuracy on gold and agreement with the others' majority, agreement per cluster; bootstrap intervals.

The figures come from the reference implementations (scikit-learn ``cohen_kappa_score``, statsmodels
``fleiss_kappa``, the ``krippendorff`` package); this module builds their inputs from the store. A label
table is a list of cells (item, annotator, code), so thousands of crowd workers stay cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, select

from curate.errors import CurateError
from curate.project import Project

CHOICES = ("a", "b", "tie", "both_bad")
SOURCES = ("crowd", "app")  # people's judgments; gold is the reference, dataset labels have one rater
MIN_COMMON = 10  # items two annotators must share for their Cohen's kappa to be reported


@dataclass(frozen=True)
class LabelTable:
    """One cell per (item, annotator) label: ``item[k]``, ``annotator[k]``, ``code[k]`` (an index into
    CHOICES) and ``confidence[k]`` (1-5, or 0 where none was given)."""

    items: list[str]  # pair ids
    annotators: list[str]
    item: np.ndarray
    annotator: np.ndarray
    code: np.ndarray
    confidence: np.ndarray


def label_table(project: Project, *, round_number: int | None = None) -> LabelTable:
    """Every person's latest A/B/tie/both-bad choice per pair (of round ``round_number``'s items, if given)."""
    with project.store.read() as conn:
        cells = people_choices(conn, round_number=round_number)
    items = sorted({pair for pair, _ in cells})
    annotators = sorted({name for _, name in cells})
    row, col = {p: i for i, p in enumerate(items)}, {a: j for j, a in enumerate(annotators)}
    keys = list(cells)
    return LabelTable(items, annotators, np.array([row[p] for p, _ in keys], dtype=np.int64),
                      np.array([col[a] for _, a in keys], dtype=np.int64),
                      np.array([cells[k][0] for k in keys], dtype=np.int64),
                      np.array([cells[k][1] for k in keys], dtype=np.int64))


def people_choices(conn: Connection, *, round_number: int | None = None,
                   pair_id: str | None = None) -> dict[tuple[str, str], tuple[int, int]]:
    """(pair id, annotator name) -> (choice code, confidence or 0): each person's latest pair choice, of one
    round's items or one pair if asked."""
    from curate.store.schema import Annotator, Item, Judgment, Round

    query = (select(Judgment.pair_id, Annotator.name, Judgment.choice, Judgment.confidence)
             .join(Annotator, Annotator.id == Judgment.annotator_id)
             .where(Judgment.kind == "pair", Judgment.choice.is_not(None), Judgment.source.in_(SOURCES))
             .order_by(Judgment.pair_id, Annotator.name, Judgment.created_at, Judgment.id))
    if round_number is not None:
        query = query.join(Item, Item.id == Judgment.item_id).join(Round, Round.id == Item.round_id).where(
            Round.number == round_number)
    if pair_id is not None:
        query = query.where(Judgment.pair_id == pair_id)
    return {(pair, name): (CHOICES.index(choice), confidence or 0)
            for pair, name, choice, confidence in conn.execute(query)}


def choices_of(conn: Connection, source: str) -> dict[str, str]:
    """The latest pair choice of each pair from judgments of ``source`` (gold, dataset, ...)."""
    from curate.store.schema import Judgment

    return dict(conn.execute(select(Judgment.pair_id, Judgment.choice).where(
        Judgment.source == source, Judgment.kind == "pair", Judgment.choice.is_not(None))
        .order_by(Judgment.created_at, Judgment.id)).all())


def counts_of(item: np.ndarray, value: np.ndarray, n_items: int, n_values: int) -> np.ndarray:
    """``counts[i, v]``: how many cells of item ``i`` hold value ``v`` (cells with a value < 0 are left out)."""
    counts = np.zeros((n_items, n_values), dtype=np.int64)
    keep = value >= 0
    np.add.at(counts, (item[keep], value[keep]), 1)
    return counts


def percent_agreement(counts: np.ndarray) -> float:
    """The mean, over items with two or more labels, of the share of agreeing pairs of labels."""
    n = counts.sum(axis=1)
    keep = n >= 2
    if not keep.any():
        return float("nan")
    return float(((counts[keep] * (counts[keep] - 1)).sum(axis=1) / (n[keep] * (n[keep] - 1))).mean())


def fleiss(counts: np.ndarray) -> tuple[float, int]:
    """Fleiss' kappa (statsmodels) over the items with the most common number of labels, and that number."""
    from statsmodels.stats.inter_rater import fleiss_kappa

    raters = counts.sum(axis=1)
    usable = raters[raters >= 2]
    if not len(usable):
        return float("nan"), 0
    k = int(np.bincount(usable).argmax())
    return float(fleiss_kappa(counts[raters == k], method="fleiss")), k


def krippendorff_alpha(counts: np.ndarray, *, level: str) -> float:
    """Krippendorff's alpha (the ``krippendorff`` package) from value counts per item (values in order)."""
    import krippendorff

    keep = counts.sum(axis=1) >= 2
    if keep.sum() < 2 or (counts[keep].sum(axis=0) > 0).sum() < 2:
        return float("nan")
    return float(krippendorff.alpha(value_counts=counts[keep], level_of_measurement=level))


def pairwise_cohen(table: LabelTable, *, min_common: int = MIN_COMMON) -> list[tuple[int, int, int, float]]:
    """(annotator i, annotator j, shared items, Cohen's kappa) for pairs sharing ``min_common`` items or more
    (found through a sparse co-occurrence count)."""
    from scipy import sparse
    from sklearn.metrics import cohen_kappa_score

    shape = (len(table.items), len(table.annotators))
    given = sparse.csc_matrix((np.ones(len(table.code)), (table.item, table.annotator)), shape=shape)
    labels = sparse.csc_matrix((table.code + 1, (table.item, table.annotator)), shape=shape)  # 0 = none
    common = sparse.triu(given.T @ given, k=1).tocoo()
    out = []
    for i, j, n in sorted(zip(common.row.tolist(), common.col.tolist(), common.data.tolist(), strict=True)):
        if n >= min_common:
            a, b = labels[:, i].toarray().ravel(), labels[:, j].toarray().ravel()
            both = (a > 0) & (b > 0)
            x, y = a[both] - 1, b[both] - 1
            kappa = 1.0 if (x == y).all() and len(set(x)) == 1 else float(cohen_kappa_score(x, y))
            out.append((int(i), int(j), int(n), kappa))
    return out


def majority(counts: np.ndarray) -> np.ndarray:
    """Each item's most common label, or -1 where none is given or the top labels tie."""
    top = counts.max(axis=1)
    unique = (counts == top[:, None]).sum(axis=1) == 1
    return np.where((top > 0) & unique, counts.argmax(axis=1), -1)


def annotator_scores(table: LabelTable, counts: np.ndarray, gold: np.ndarray) -> list[dict[str, Any]]:
    """Per annotator: labels given, agreement with the majority of the *other* annotators of each item,
    and accuracy against ``gold`` (a code per item, -1 where there is none)."""
    others = counts[table.item].copy()
    others[np.arange(len(table.code)), table.code] -= 1  # each cell's item, without this cell's own label
    peer = majority(others)
    agree, truth = peer == table.code, gold[table.item]
    out = []
    for j in range(len(table.annotators)):
        mine = table.annotator == j
        with_peer, with_gold = mine & (peer >= 0), mine & (truth >= 0)
        out.append({"labels": int(mine.sum()), "agrees_with_majority": share(agree[with_peer]),
                    "gold_items": int(with_gold.sum()), "gold_accuracy": share(table.code[with_gold] ==
                                                                                truth[with_gold])})
    return out


def bootstrap(statistic: Callable[[np.ndarray], float], counts: np.ndarray, *, resamples: int,
              rng: np.random.Generator) -> tuple[float, float]:
    """A 95% percentile interval of ``statistic`` (of value counts) over items resampled with replacement."""
    values = [statistic(counts[rng.integers(0, len(counts), len(counts))]) for _ in range(resamples)]
    values = [v for v in values if np.isfinite(v)]
    if not values:
        return float("nan"), float("nan")
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def gold_codes(project: Project, items: list[str]) -> np.ndarray:
    """The gold choice of each item as a code (-1 where the pair has no gold judgment)."""
    with project.store.read() as conn:
        gold = choices_of(conn, "gold")
    return np.array([CHOICES.index(gold[p]) if p in gold else -1 for p in items], dtype=np.int64)


def agreement_report(project: Project, *, round_number: int | None = None, resamples: int = 200,
                     seed: int = 0) -> dict[str, Any]:
    """Everything ``curate agreement`` prints, as plain data."""
    if resamples < 0:
        raise CurateError(f"--bootstrap must be 0 or more resamples, not {resamples}")
    table = label_table(project, round_number=round_number)
    n_items = len(table.items)
    all_counts = counts_of(table.item, table.code, n_items, len(CHOICES))
    multi = all_counts.sum(axis=1) >= 2
    if multi.sum() < 2:
        where = f"round {round_number}" if round_number is not None else "the project"
        raise CurateError(f"{where} has {int(multi.sum())} items judged by two or more people: agreement needs "
                          "overlapping judgments (set [annotate] overlap, or ingest multi-annotator data)")
    rng = np.random.default_rng(seed)
    counts = all_counts[multi]
    kappa, raters = fleiss(counts)
    confidence = counts_of(table.item, table.confidence - 1, n_items, 5)[multi]

    def interval(fn: Callable[[np.ndarray], float]) -> list[float] | None:
        return list(bootstrap(fn, counts, resamples=resamples, rng=rng)) if resamples else None

    gold = gold_codes(project, table.items)
    cohen = pairwise_cohen(table)
    scores = annotator_scores(table, all_counts, gold)
    from curate.consensus import methods_vs_gold

    return {
        "round": round_number, "items": n_items, "items_multi": int(multi.sum()),
        "annotators": len(table.annotators), "categories": list(CHOICES),
        "percent_agreement": {"value": percent_agreement(counts), "ci95": interval(percent_agreement)},
        "fleiss_kappa": {"value": kappa, "raters_per_item": raters, "ci95": interval(lambda c: fleiss(c)[0])},
        "krippendorff_alpha": {
            "value": krippendorff_alpha(counts, level="nominal"),
            "ci95": interval(lambda c: krippendorff_alpha(c, level="nominal")),
            "confidence_ordinal": krippendorff_alpha(confidence, level="ordinal")},
        "cohen_kappa": {"pairs": len(cohen), "min_common_items": MIN_COMMON,
                        "mean": float(np.mean([c[3] for c in cohen])) if cohen else None,
                        "by_pair": [{"a": table.annotators[i], "b": table.annotators[j], "items": n, "kappa": k}
                                    for i, j, n, k in cohen]},
        "methods_vs_gold": methods_vs_gold(table, gold, min_labels=project.config.labels.ds_min_labels)
        if (gold >= 0).any() else None,
        "annotators_detail": [{"annotator": name, **s} for name, s in zip(table.annotators, scores, strict=True)],
        "by_cluster": _by_cluster(project, table.items, all_counts, multi),
    }


def _by_cluster(project: Project, items: list[str], counts: np.ndarray, multi: np.ndarray) -> list[dict[str, Any]]:
    from curate.store.schema import ClusterAssignment, ClusterRun

    with project.store.read() as conn:
        run = conn.scalar(select(ClusterRun.id).where(ClusterRun.field == "pair").order_by(ClusterRun.id.desc()))
        if run is None:
            return []
        cluster_of = dict(conn.execute(select(ClusterAssignment.unit_id, ClusterAssignment.cluster)
                                       .where(ClusterAssignment.run_id == run)).all())
    clusters = np.array([cluster_of.get(p, -2) for p in items])
    return [{"cluster": int(c), "items": int(((clusters == c) & multi).sum()),
             "percent_agreement": percent_agreement(counts[(clusters == c) & multi])}
            for c in sorted(set(clusters[multi].tolist())) if c != -2]


def share(hits: np.ndarray) -> float | None:
    """The share of hits, or None where there is nothing to count."""
    return float(hits.mean()) if len(hits) else None
