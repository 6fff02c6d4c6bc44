"""One final label per pair, and the adjudication queue.

A pair's final label comes, in this order of precedence, from a lead's adjudication, from gold, from the
people's votes (the plurality, or crowd-kit's Dawid–Skene model of each annotator's reliability), or from
the dataset's own label (which also stands when the people tie). Each records *how* it was decided and a
confidence in [0, 1], meant as the example's training weight:

- ``adjudicated``, ``gold``: confidence 1;
- ``unanimous`` (2+ votes, all alike), ``majority`` (one choice has more votes than any other), ``single``
  (one vote): the rule of succession on the winning share, (top + 1) / (votes + 2);
- ``model-weighted``: Dawid–Skene decided a split vote; confidence is its posterior probability;
- ``dataset``: the imported dataset's label (e.g. hh-rlhf chosen/rejected), confidence 1;
- ``tied``: no winner; no label until a lead adjudicates (the pair is in the queue).
"""

from __future__ import annotations

import uuid
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection, insert, select

from curate.agreement import (
    CHOICES,
    LabelTable,
    choices_of,
    counts_of,
    label_table,
    majority,
    people_choices,
    share,
)
from curate.errors import CurateError
from curate.project import Project

HOW = ("adjudicated", "gold", "unanimous", "majority", "model-weighted", "single", "dataset", "tied")
METHODS = ("majority", "dawid-skene")
DS_MIN_LABELS = 20  # annotators with fewer labels share one confusion matrix in Dawid-Skene
_UNANIMOUS, _MAJORITY, _SINGLE, _TIED = (HOW.index(h) for h in ("unanimous", "majority", "single", "tied"))


@dataclass(frozen=True)
class FinalLabel:
    """The decided choice of one pair (None while tied), how it was decided, and its confidence."""

    pair_id: str
    choice: str | None
    how: str
    confidence: float
    votes: dict[str, int] = field(default_factory=dict)  # the people's votes per choice
    decided_by: str | None = None  # the lead, for an adjudicated label


@dataclass(frozen=True)
class QueueEntry:
    """A pair a lead should decide, and why."""

    pair_id: str
    record_id: str
    reason: str
    votes: dict[str, int]
    majority: str | None
    committee_p: float | None  # the latest committee's P(A better than B)


def vote_labels(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From vote counts per item (columns CHOICES): the plurality choice (-1 on a tie), its confidence
    (top + 1) / (n + 2), and how it was decided (an index into HOW)."""
    n, top, code = counts.sum(axis=1), counts.max(axis=1), majority(counts)
    how = np.select([code < 0, n == 1, top == n], [_TIED, _SINGLE, _UNANIMOUS], _MAJORITY)
    confidence = np.where(code >= 0, (top + 1) / (n + 2), 0.0)
    return code, confidence, how


def dawid_skene(table: LabelTable, *, min_labels: int = DS_MIN_LABELS, n_iter: int = 100,
                tol: float = 1e-5) -> np.ndarray:
    """P(true choice) per item of ``table`` (rows in ``table.items`` order, columns CHOICES), from crowd-kit's
    Dawid–Skene EM: one confusion matrix per annotator, initialised from the vote shares. Annotators with fewer
    than ``min_labels`` labels share one pooled matrix (a 4 x 4 matrix cannot be estimated from a handful of
    labels; on UKP's crowd, where the median worker gave 3, per-worker matrices lose 4 points to the majority)."""
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    if min_labels < 1:
        raise CurateError(f"min_labels must be 1 or more, not {min_labels}")
    given = np.bincount(table.annotator, minlength=len(table.annotators))
    worker = np.where(given[table.annotator] >= min_labels, table.annotator, -1)  # -1: the pooled annotator
    data = pd.DataFrame({"task": table.item, "worker": worker, "label": table.code})
    with warnings.catch_warnings():  # crowd-kit's own pandas deprecations; nothing about the data
        warnings.simplefilter("ignore")
        probas = DawidSkene(n_iter=n_iter, tol=tol).fit_predict_proba(data)
    return probas.reindex(index=range(len(table.items)), columns=range(len(CHOICES)), fill_value=0.0).to_numpy()


def people_labels(table: LabelTable, *, method: str, min_labels: int = DS_MIN_LABELS
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(code, confidence, how) per item of ``table`` by ``method``: majority leaves ties undecided;
    Dawid–Skene decides every split vote (``model-weighted``) and keeps unanimous and single votes as such."""
    if method not in METHODS:
        raise CurateError(f"unknown label method {method!r}: choose one of {', '.join(METHODS)}")
    counts = counts_of(table.item, table.code, len(table.items), len(CHOICES))
    code, confidence, how = vote_labels(counts)
    if method == "dawid-skene" and len(table.items):
        probas = dawid_skene(table, min_labels=min_labels)
        split = (how == _MAJORITY) | (how == _TIED)
        code = np.where(split, probas.argmax(axis=1), code)
        confidence = np.where(split, probas.max(axis=1), confidence)
        how = np.where(split, HOW.index("model-weighted"), how)
    return code, confidence, how


def methods_vs_gold(table: LabelTable, gold: np.ndarray, *, min_labels: int = DS_MIN_LABELS) -> dict[str, Any]:
    """Accuracy against ``gold`` (a code per item of ``table``, -1 where none) of the majority (on the items
    it decides) and of Dawid–Skene (on every gold item, on the majority's items, and on the ties)."""
    counts = counts_of(table.item, table.code, len(table.items), len(CHOICES))
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


def final_labels(project: Project, *, method: str | None = None) -> dict[str, FinalLabel]:
    """The final label of every pair that has a judgment, keyed by pair id (``method`` defaults to the
    project's ``[labels] method``)."""
    rule = project.config.labels
    table = label_table(project)
    code, confidence, how = people_labels(table, method=method or rule.method, min_labels=rule.ds_min_labels)
    counts = counts_of(table.item, table.code, len(table.items), len(CHOICES))
    with project.store.read() as conn:
        gold, dataset = choices_of(conn, "gold"), choices_of(conn, "dataset")
        decided = adjudications(conn)
    labels = {pair: FinalLabel(pair, choice, "dataset", 1.0) for pair, choice in dataset.items()}
    for i, pair in enumerate(table.items):
        if code[i] < 0 and pair in labels:  # the people tie: the dataset's own label stands (still queued)
            labels[pair] = FinalLabel(pair, labels[pair].choice, "dataset", 1.0, _votes(counts[i]))
        else:
            labels[pair] = FinalLabel(pair, CHOICES[code[i]] if code[i] >= 0 else None, HOW[how[i]],
                                      round(float(confidence[i]), 6), _votes(counts[i]))
    for source, how_name in ((gold, "gold"), (decided, "adjudicated")):
        for pair, value in source.items():
            choice, lead = value if isinstance(value, tuple) else (value, None)
            votes = labels[pair].votes if pair in labels else {}
            labels[pair] = FinalLabel(pair, choice, how_name, 1.0, votes, lead)
    return dict(sorted(labels.items()))


def label_summary(labels: dict[str, FinalLabel]) -> dict[str, int]:
    """How many final labels were decided each way."""
    counts = {h: 0 for h in HOW}
    for label in labels.values():
        counts[label.how] += 1
    return {h: n for h, n in counts.items() if n}


def adjudications(conn: Connection, *, pair_id: str | None = None) -> dict[str, tuple[str, str]]:
    """The latest adjudicated choice of each pair (or of ``pair_id`` only) and the lead who made it."""
    from curate.store.schema import Annotator, Judgment

    query = (select(Judgment.pair_id, Judgment.choice, Annotator.name)
             .join(Annotator, Annotator.id == Judgment.annotator_id)
             .where(Judgment.source == "adjudication", Judgment.kind == "pair")
             .order_by(Judgment.created_at, Judgment.id))
    rows = conn.execute(query if pair_id is None else query.where(Judgment.pair_id == pair_id)).all()
    return {pair: (choice, lead) for pair, choice, lead in rows}


def adjudication_queue(project: Project, *, round_number: int | None = None) -> list[QueueEntry]:
    """Pairs a lead should decide: ties, winning shares below ``[labels] adjudicate_below``, and majorities
    the latest reward committee contradicts with ``[labels] committee_confidence`` or more, judged on the
    people's votes themselves whatever ``[labels] method`` is (a lead may overrule Dawid–Skene). Pairs with
    gold or an adjudication are not in it; ``round_number`` keeps that round's pairs (with all their votes).
    Ties come first, then the weakest majorities, then the strongest contradictions."""
    from curate.store.schema import Item, Pair, Round, Score, ScoreRun

    rule = project.config.labels
    table = label_table(project)
    counts = counts_of(table.item, table.code, len(table.items), len(CHOICES))
    code, _, how = vote_labels(counts)
    with project.store.read() as conn:
        done = set(choices_of(conn, "gold")) | set(adjudications(conn))
        records = dict(conn.execute(select(Pair.id, Pair.record_id)).all())
        run = conn.scalar(select(ScoreRun.id).where(ScoreRun.kind == "committee").order_by(ScoreRun.id.desc()))
        p_a = dict(conn.execute(select(Score.unit_id, Score.value).where(
            Score.run_id == run, Score.name == "p_mean")).all()) if run is not None else {}
        if round_number is not None:
            in_round = {p for (p,) in conn.execute(select(Item.pair_id).join(Round, Round.id == Item.round_id)
                                                   .where(Round.number == round_number))}
    queue: list[tuple[tuple[int, float], QueueEntry]] = []
    for i, pair in enumerate(table.items):
        if pair in done or (round_number is not None and pair not in in_round):
            continue
        n, top, p = int(counts[i].sum()), int(counts[i].max()), p_a.get(pair)
        voted = CHOICES[code[i]] if code[i] >= 0 else None
        backing = None if p is None or voted not in ("a", "b") else (p if voted == "a" else 1 - p)
        if how[i] == _TIED:
            key, reason = (0, 0.0), f"tie: {_describe(counts[i])}"
        elif n >= 2 and top / n < rule.adjudicate_below:
            key, reason = (1, top / n), f"weak majority {top}/{n}: {_describe(counts[i])}"
        elif backing is not None and backing <= 1 - rule.committee_confidence:
            key, reason = (2, backing), (f"the committee gives the people's choice ({voted.upper()}) "
                                         f"P = {backing:.2f}")
        else:
            continue
        queue.append((key, QueueEntry(pair, records[pair], reason, _votes(counts[i]), voted,
                                      None if p is None else round(float(p), 4))))
    return [entry for _, entry in sorted(queue, key=lambda q: (q[0], q[1].pair_id))]


def adjudicate(project: Project, *, pair: str, choice: str, note: str, lead: str,
               actor: str | None = None) -> FinalLabel:
    """Record lead ``lead``'s decision on ``pair`` (a pair id, or a unique prefix of 6+ characters) with a
    required note; the decision is a judgment (source ``adjudication``) plus an audit entry, in one
    transaction. A later decision on the same pair replaces it as the final label (both stay on record)."""
    from curate.store.engine import audit
    from curate.store.schema import Annotator, Item, Judgment

    if choice not in CHOICES:
        raise CurateError(f"choice must be one of {', '.join(CHOICES)}, not {choice!r}")
    note = (note or "").strip()
    if not note:
        raise CurateError("an adjudication needs a note saying why (--note)")
    with project.store.write() as conn:
        pair_id, record_id = _find_pair(conn, pair)
        person = conn.execute(select(Annotator.id, Annotator.role).where(Annotator.name == lead)).first()
        if person is None or person.role != "lead":
            raise CurateError(f"{lead!r} is not a lead: only leads adjudicate (curate user add NAME --role lead)")
        item_id = conn.scalar(select(Item.id).where(Item.pair_id == pair_id, Item.kind == "rank")
                              .order_by(Item.id.desc()).limit(1))
        votes = _votes(np.bincount([c for c, _ in people_choices(conn, pair_id=pair_id).values()],
                                   minlength=len(CHOICES)))
        previous = adjudications(conn, pair_id=pair_id).get(pair_id)
        was = {"choice": previous[0], "lead": previous[1]} if previous else None
        conn.execute(insert(Judgment).values(
            id=uuid.uuid4().hex, kind="pair", source="adjudication", record_id=record_id, pair_id=pair_id,
            item_id=item_id, annotator_id=person.id, choice=choice, reason=note,
            meta={"votes": votes, "previous": was}))
        audit(conn, "adjudicate", entity="pair", entity_id=pair_id, actor=actor,
              details={"lead": lead, "choice": choice, "note": note, "votes": votes, "previous": was})
    return FinalLabel(pair_id, choice, "adjudicated", 1.0, votes, lead)


def pair_detail(project: Project, pair: str) -> dict[str, Any]:
    """What a lead needs to decide ``pair`` (an id or a unique prefix): the prompt, A and B, every person's
    vote with its reason, and the final label so far."""
    from curate.store.schema import Annotator, Completion, Judgment, Pair, Record

    with project.store.read() as conn:
        pair_id, _ = _find_pair(conn, pair)
        row = conn.execute(select(Record.prompt, Pair.a_id, Pair.b_id).join(Record, Record.id == Pair.record_id)
                           .where(Pair.id == pair_id)).one()
        texts = dict(conn.execute(select(Completion.id, Completion.text)
                                  .where(Completion.id.in_((row.a_id, row.b_id)))).all())
        votes = conn.execute(select(Annotator.name, Judgment.source, Judgment.choice, Judgment.confidence,
                                    Judgment.reason)
                             .join(Annotator, Annotator.id == Judgment.annotator_id, isouter=True)
                             .where(Judgment.pair_id == pair_id, Judgment.kind == "pair")
                             .order_by(Judgment.created_at, Judgment.id)).all()
    label = final_labels(project).get(pair_id)
    return {"pair_id": pair_id, "prompt": row.prompt, "a": texts[row.a_id], "b": texts[row.b_id],
            "judgments": [dict(v._mapping) for v in votes], "final": as_dict(label) if label else None}


def _find_pair(conn: Connection, pair: str) -> tuple[str, str]:
    """(pair id, record id) of the pair whose id is or starts with ``pair`` (6+ characters, unique)."""
    from curate.store.schema import Pair

    if len(pair) < 6:
        raise CurateError(f"pair id {pair!r} is too short: give 6 or more characters")
    found = conn.execute(select(Pair.id, Pair.record_id).where(Pair.id.startswith(pair, autoescape=True))
                         .limit(2)).all()
    if len(found) != 1:
        raise CurateError(f"no pair {pair!r}" if not found else f"pair prefix {pair!r} is ambiguous: "
                          "give more characters")
    return found[0][0], found[0][1]


def _votes(row: np.ndarray) -> dict[str, int]:
    return {c: int(n) for c, n in zip(CHOICES, row, strict=True) if n}


def _describe(row: np.ndarray) -> str:
    return ", ".join(f"{n} {c.replace('_', ' ').upper() if len(c) == 1 else c.replace('_', ' ')}"
                     for c, n in zip(CHOICES, row, strict=True) if n)


def as_dict(entry: Any) -> dict[str, Any]:
    """A final label or queue entry as plain data (for --json and the app)."""
    return asdict(entry)
