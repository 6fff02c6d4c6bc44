"""Inter-annotator agreement on pair judgments: percent agreement, Cohen's kappa per pair of annotators,
Fleiss' kappa, Krippendorff's alpha (nominal for the choices, ordinal for confidence), each annotator's
accuracy on gold and agreement with the others' majority, agreement per cluster, and the people's labels
against the imported ones; bootstrap intervals.

The figures come from the reference implementations (scikit-learn ``cohen_kappa_score``, statsmodels
``fleiss_kappa``, the ``krippendorff`` package); the label tables come from ``curate.labels.votes``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from curate.errors import CurateError
from curate.labels.rule import DS_MIN_LABELS, FinalLabel, dawid_skene, decided_votes, majority
from curate.labels.vocabulary import CHOICES, Source
from curate.labels.votes import LabelTable, Votes, counts_of, gather, read_judgments
from curate.project import Project
from curate.store import pool

MIN_COMMON = 10  # items two annotators must share for their Cohen's kappa to be reported


def project_votes(project: Project, *, round_number: int | None = None) -> Votes:
    """Every pair judgment of the project, as the label rule reads them (people's votes in the app of round
    ``round_number``'s items only, if given)."""
    with project.store.read() as conn:
        return gather(read_judgments(conn), round_number=round_number)


def raters_of(votes: Votes, raters: str | None, *, round_number: int | None = None) -> Source:
    """Whose agreement to measure: ``app`` (the project's people), ``crowd`` (an imported crowd), or by default
    the project's people, unless fewer than two pairs have two of their votes and an imported crowd's votes
    overlap on two or more.
    A round's agreement is the people's: imported votes belong to no round."""
    if round_number is not None:
        if raters not in (None, Source.APP):
            raise CurateError("--round measures the project's people: imported votes belong to no round")
        return Source.APP
    if raters is None:
        app, crowd = (votes.tables[s].counts().sum(axis=1) >= 2 for s in (Source.APP, Source.CROWD))
        return Source.CROWD if app.sum() < 2 <= crowd.sum() else Source.APP
    if raters not in (Source.APP, Source.CROWD):
        raise CurateError(f"--raters must be app (the project's people) or crowd (imported votes), not {raters!r}")
    return Source(raters)


def label_table(project: Project, *, round_number: int | None = None, raters: str | None = None) -> LabelTable:
    """Every rater's latest A/B/tie/both-bad choice per pair (of round ``round_number``'s items, if given)."""
    votes = project_votes(project, round_number=round_number)
    return votes.tables[raters_of(votes, raters, round_number=round_number)]


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

    shape = (len(table.items), len(table.annotators))
    given = sparse.csc_matrix((np.ones(len(table.code)), (table.item, table.annotator)), shape=shape)
    labels = sparse.csc_matrix((table.code + 1, (table.item, table.annotator)), shape=shape)  # 0 = none
    common = sparse.triu(given.T @ given, k=1).tocoo()
    out = []
    for i, j, n in sorted(zip(common.row.tolist(), common.col.tolist(), common.data.tolist(), strict=True)):
        if n >= min_common:
            a, b = labels[:, i].toarray().ravel(), labels[:, j].toarray().ravel()
            both = (a > 0) & (b > 0)
            out.append((int(i), int(j), int(n), cohen(a[both] - 1, b[both] - 1)))
    return out


def cohen(x: Any, y: Any) -> float:
    """Cohen's kappa (scikit-learn) of two raters' codes on the same items; 1 where both gave one and the same
    category throughout (where scikit-learn's is undefined)."""
    from sklearn.metrics import cohen_kappa_score

    if len(set(np.asarray(x).tolist()) | set(np.asarray(y).tolist())) == 1:
        return 1.0
    return float(cohen_kappa_score(x, y))


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


def by_cluster(items: list[str], counts: np.ndarray, multi: np.ndarray, cluster_of: dict[str, int]
               ) -> list[dict[str, Any]]:
    """Percent agreement per cluster (``cluster_of``: pair -> cluster) over the items with two or more labels
    (``multi``); items without a cluster are left out."""
    clusters = np.array([cluster_of.get(p, -2) for p in items])
    return [{"cluster": int(c), "items": int(((clusters == c) & multi).sum()),
             "percent_agreement": percent_agreement(counts[(clusters == c) & multi])}
            for c in sorted(set(clusters[multi].tolist())) if c != -2]


def share(hits: np.ndarray) -> float | None:
    """The share of hits, or None where there is nothing to count."""
    return float(hits.mean()) if len(hits) else None


def methods_vs_gold(table: LabelTable, gold: np.ndarray, *, min_labels: int = DS_MIN_LABELS) -> dict[str, Any]:
    """Accuracy against ``gold`` (a code per item of ``table``, -1 where none) of the majority (on the items
    it decides) and of Dawid–Skene (on every gold item, on the majority's items, and on the ties)."""
    counts = table.counts()
    vote = majority(counts)
    ds = dawid_skene(table, min_labels=min_labels).argmax(axis=1) if len(table.items) else vote
    has = gold >= 0
    decided, tied = has & (vote >= 0), has & (vote < 0) & (counts.sum(axis=1) > 0)

    top = counts == counts.max(axis=1, keepdims=True)
    coin = top[np.arange(len(gold)), np.maximum(gold, 0)] / top.sum(axis=1)  # a tie broken at random
    return {"gold_items": int(has.sum()),
            "majority": {"items": int(decided.sum()), "accuracy": share(vote[decided] == gold[decided]),
                         "ties_left_undecided": int(tied.sum()),
                         "all_gold_items_ties_at_random": share(np.where(vote >= 0, vote == gold, coin)[has])},
            "dawid_skene": {"items": int(has.sum()), "min_labels": min_labels, "accuracy": share(ds[has] == gold[has]),
                            "on_majority_items": share(ds[decided] == gold[decided]),
                            "on_ties": share(ds[tied] == gold[tied])}}


def confusion_with_final(table: LabelTable, labels: dict[str, FinalLabel]) -> np.ndarray:
    """``m[i, j]``: how many people's labels were CHOICES[i] where the pair's final label is CHOICES[j]."""
    final = np.array([CHOICES.index(labels[p].choice) if p in labels and labels[p].choice else -1
                      for p in table.items], dtype=np.int64)[table.item]
    keep = final >= 0
    matrix = np.zeros((len(CHOICES), len(CHOICES)), dtype=np.int64)
    np.add.at(matrix, (table.code[keep], final[keep]), 1)
    return matrix


def people_vs_imported(votes: Votes, raters: Source, *, method: str, min_labels: int) -> list[dict[str, Any]]:
    """The raters' labels against each imported label they can be compared with (gold, the data set's own label,
    and an imported crowd's label when the raters are the project's people), on the pairs that have both: how
    often the raters' final label (by ``method``) equals it, Cohen's kappa between the two, and each rater's
    accuracy against it."""
    def codes(table: LabelTable) -> dict[str, int]:  # pair -> the code its votes decide (-1: tied)
        return dict(zip(table.items, decided_votes(table, method=method, min_labels=min_labels)[0].tolist(),
                        strict=True))

    table = votes.tables[raters]
    ours = codes(table)
    others = [(s, {p: CHOICES.index(c) for p, c in found.items()})
              for s, found in ((Source.GOLD, votes.gold), (Source.DATASET, votes.dataset))]
    if raters == Source.APP:
        others.append((Source.CROWD, {p: c for p, c in codes(votes.tables[Source.CROWD]).items() if c >= 0}))
    out = []
    for source, imported in others:
        both = [p for p in table.items if p in imported]
        if not both:
            continue
        decided = [p for p in both if ours[p] >= 0]
        x, y = [ours[p] for p in decided], [imported[p] for p in decided]
        code = np.array([imported.get(p, -1) for p in table.items])[table.item]
        per_rater = []
        for j, name in enumerate(table.annotators):
            mine = (table.annotator == j) & (code >= 0)
            if mine.any():
                per_rater.append({"annotator": name, "items": int(mine.sum()),
                                  "accuracy": share(table.code[mine] == code[mine])})
        out.append({"imported": str(source), "items": len(both), "decided": len(decided),
                    "agreement": share(np.array(x) == np.array(y)),
                    "cohen_kappa": cohen(x, y) if len(x) >= 2 else None,
                    "annotators": per_rater})
    return out


def agreement_report(project: Project, *, round_number: int | None = None, raters: str | None = None,
                     resamples: int = 200, seed: int = 0) -> dict[str, Any]:
    """Everything ``curate agreement`` prints, as plain data. Without two items judged by two or more raters the
    agreement figures are empty (``note`` says why), and the raters against imported labels still stand; with
    neither, it is an error."""
    if resamples < 0:
        raise CurateError(f"--bootstrap must be 0 or more resamples, not {resamples}")
    votes = project_votes(project, round_number=round_number)
    source = raters_of(votes, raters, round_number=round_number)
    table = votes.tables[source]
    n_items = len(table.items)
    all_counts = table.counts()
    multi = all_counts.sum(axis=1) >= 2
    rule = project.config.labels
    versus = people_vs_imported(votes, source, method=rule.method, min_labels=rule.ds_min_labels)
    note = None
    if multi.sum() < 2:
        where = f"round {round_number}" if round_number is not None else "the project"
        note = (f"{where} has {int(multi.sum())} items judged by two or more "
                f"{'people' if source == Source.APP else 'imported annotators'}: agreement needs overlapping "
                "judgments (set [annotate] overlap, or ingest multi-annotator data)")
        if not versus:
            raise CurateError(note)
        resamples = 0
    rng = np.random.default_rng(seed)
    counts = all_counts[multi]
    kappa, n_raters = fleiss(counts)
    confidence = counts_of(table.item, table.confidence - 1, n_items, 5)[multi]

    def interval(fn: Callable[[np.ndarray], float]) -> list[float] | None:
        return list(bootstrap(fn, counts, resamples=resamples, rng=rng)) if resamples else None

    def figure(value: float) -> float | None:  # no figure without overlap (JSON has no NaN)
        return None if note else value

    gold = np.array([CHOICES.index(votes.gold[p]) if p in votes.gold else -1 for p in table.items], dtype=np.int64)
    cohen = pairwise_cohen(table)
    with project.store.read() as conn:
        run = pool.latest_cluster_run(conn, field="pair")
        cluster_of = {} if run is None else pool.cluster_labels(conn, run_id=run.id)
    scores = annotator_scores(table, all_counts, gold)
    return {
        "round": round_number, "raters": str(source), "note": note, "items": n_items,
        "items_multi": int(multi.sum()),
        "annotators": len(table.annotators), "categories": [str(c) for c in CHOICES],
        "percent_agreement": {"value": figure(percent_agreement(counts)), "ci95": interval(percent_agreement)},
        "fleiss_kappa": {"value": figure(kappa), "raters_per_item": n_raters,
                         "ci95": interval(lambda c: fleiss(c)[0])},
        "krippendorff_alpha": {
            "value": figure(krippendorff_alpha(counts, level="nominal")),
            "ci95": interval(lambda c: krippendorff_alpha(c, level="nominal")),
            "confidence_ordinal": figure(krippendorff_alpha(confidence, level="ordinal"))},
        "cohen_kappa": {"pairs": len(cohen), "min_common_items": MIN_COMMON,
                        "mean": float(np.mean([c[3] for c in cohen])) if cohen else None,
                        "by_pair": [{"a": table.annotators[i], "b": table.annotators[j], "items": n, "kappa": k}
                                    for i, j, n, k in cohen]},
        "methods_vs_gold": methods_vs_gold(table, gold, min_labels=rule.ds_min_labels)
        if (gold >= 0).any() else None,
        "vs_imported": versus,
        "annotators_detail": [{"annotator": name, **s} for name, s in zip(table.annotators, scores, strict=True)],
        "by_cluster": by_cluster(table.items, all_counts, multi, cluster_of),
    }
