"""The label rule: one final label per pair, from every judgment of it, and the binary training label derived
from it. Every reader of labels (learner, selection, stream, export, report, agreement, the lead tab, the
demo, simulate's oracle) gets them here.

Precedence: the first of these that has spoken on a pair decides it, the lower ones are not consulted.

1. ``adjudication``: a lead's latest decision.
2. ``app``: the people's judgments in the project (each person's latest vote), by ``[labels] method``: the
   plurality, or crowd-kit's Dawid–Skene model of each annotator's reliability, which may overrule a split
   majority. A tie stays undecided (``tied``, in the adjudication queue) under either method, even where
   the imported data has a label: ties are a lead's to break.
3. ``gold``: an imported reference answer.
4. ``crowd``: imported votes by named annotators, by the same method; a tie falls through to the data set's own
   label where there is one.
5. ``dataset``: the imported data set's own label (hh-rlhf's chosen/rejected, a spreadsheet's label column).

**Agreement** (the export's weight and what ``--min-agreement`` compares with) is the share of the deciding
voters who chose the final label: ``votes for the label / votes cast`` (2 of 3 people: 0.667; unanimous or one
person: 1.0). A lead's decision, gold and a data set's label count as 1.0.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from curate.errors import CurateError
from curate.labels.vocabulary import CHOICES, PRECEDENCE, PROJECT_SOURCES, Choice, How, Method, Source, names
from curate.labels.votes import LabelTable, Vote, Votes, gather, read_judgments
from curate.project import Project

DS_MIN_LABELS = 20  # annotators with fewer labels share one confusion matrix in Dawid-Skene
_HOW = (How.TIED, How.SINGLE, How.UNANIMOUS, How.MAJORITY, How.MODEL_WEIGHTED)  # codes of decided_votes
_TIED, _SINGLE, _UNANIMOUS, _MAJORITY, _MODEL_WEIGHTED = range(len(_HOW))


@dataclass(frozen=True)
class FinalLabel:
    """The decided choice of one pair (None while tied), how and from which source it was decided, the share
    of the deciding voters who agree with it, and their votes."""

    pair_id: str
    choice: Choice | None
    how: How
    source: Source
    agreement: float
    votes: dict[str, int] = field(default_factory=dict)  # the people's (else the crowd's) votes on the pair
    decided_by: str | None = None  # the lead, for an adjudicated label
    posterior: float | None = None  # Dawid–Skene's probability of the choice, where it decided a split

    @property
    def preference(self) -> int | None:
        """The binary training label: 1 where A is better, 0 where B is, None otherwise."""
        return {Choice.A: 1, Choice.B: 0}.get(self.choice) if self.choice is not None else None

    @property
    def imported(self) -> bool:
        """Whether the label came with the data rather than from a judgment made in the project."""
        return self.source not in PROJECT_SOURCES


def vote_labels(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From vote counts per item (columns CHOICES): the plurality choice (-1 on a tie) and how it was decided
    (an index into ``_HOW``: tied, single, unanimous, majority)."""
    n, top, code = counts.sum(axis=1), counts.max(axis=1), majority(counts)
    how = np.select([code < 0, n == 1, top == n], [_TIED, _SINGLE, _UNANIMOUS], _MAJORITY)
    return code, how


def majority(counts: np.ndarray) -> np.ndarray:
    """Each item's most common label, or -1 where none is given or the top labels tie."""
    top = counts.max(axis=1)
    unique = (counts == top[:, None]).sum(axis=1) == 1
    return np.where((top > 0) & unique, counts.argmax(axis=1), -1)


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


def decided_votes(table: LabelTable, *, method: str, min_labels: int = DS_MIN_LABELS
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(code, how, posterior) per item of ``table`` by ``method``: code -1 where undecided, ``how`` an index
    into ``_HOW``, posterior NaN unless Dawid–Skene decided a split. Both leave ties undecided (a lead breaks
    them); Dawid–Skene decides the other split votes by each annotator's reliability and keeps unanimous and
    single votes as they are."""
    if method not in tuple(Method):
        raise CurateError(f"unknown label method {method!r}: choose one of {names(Method)}")
    code, how = vote_labels(table.counts())
    posterior = np.full(len(code), np.nan)
    if method == Method.DAWID_SKENE and len(table.items):
        probas = dawid_skene(table, min_labels=min_labels)
        split = how == _MAJORITY
        code = np.where(split, probas.argmax(axis=1), code)
        posterior = np.where(split, probas.max(axis=1), posterior)
        how = np.where(split, _MODEL_WEIGHTED, how)
    return code, how, posterior


def decide(votes: Votes, *, method: str = Method.MAJORITY, min_labels: int = DS_MIN_LABELS
           ) -> dict[str, FinalLabel]:
    """The final label of every pair in ``votes``, by the precedence in this module's docstring; sorted by
    pair id. Pure: no store, so simulate's oracle decides the same way as a project."""
    decided = {s: decided_votes(t, method=method, min_labels=min_labels) for s, t in votes.tables.items()}
    rows = {s: {p: i for i, p in enumerate(t.items)} for s, t in votes.tables.items()}
    counts = {s: t.counts() for s, t in votes.tables.items()}
    labels: dict[str, FinalLabel] = {}
    for pair in sorted(votes.pairs()):
        people = next((s for s in (Source.APP, Source.CROWD) if pair in rows.get(s, ())), None)
        shown = _votes(counts[people][rows[people][pair]]) if people else {}
        for source in PRECEDENCE:
            label = _decide_one(votes, decided, rows, counts, pair, source, shown)
            if label is not None:
                labels[pair] = label
                break
    return labels


def _decide_one(votes: Votes, decided: dict, rows: dict, counts: dict, pair: str, source: Source,
                shown: dict[str, int]) -> FinalLabel | None:
    """The label ``source`` gives ``pair``, or None where it has not spoken (or, for the imported crowd, tied
    over a data set's own label). ``shown``: the votes of the pair's voters, the people in the app, else the
    crowd (so they are this source's own votes when it is a voter source: the app comes before the crowd)."""
    if source == Source.ADJUDICATION and pair in votes.adjudicated:
        choice, lead = votes.adjudicated[pair]
        return FinalLabel(pair, choice, How.ADJUDICATED, source, 1.0, shown, lead)
    if source in (Source.GOLD, Source.DATASET):
        found = (votes.gold if source == Source.GOLD else votes.dataset).get(pair)
        return None if found is None else FinalLabel(pair, found, How(source), source, 1.0, shown)
    if source not in decided or pair not in rows[source]:
        return None
    i = rows[source][pair]
    codes, hows, posteriors = decided[source]
    code, how, posterior, row = int(codes[i]), int(hows[i]), float(posteriors[i]), counts[source][i]
    if code < 0:
        if source == Source.CROWD and pair in votes.dataset:
            return None
        return FinalLabel(pair, None, How.TIED, source, 0.0, shown)
    return FinalLabel(pair, CHOICES[code], _HOW[how], source, round(float(row[code] / row.sum()), 6), shown,
                      posterior=None if np.isnan(posterior) else round(float(posterior), 6))


def final_labels(project: Project, *, method: str | None = None, round_number: int | None = None,
                 judgments: list[Vote] | None = None) -> dict[str, FinalLabel]:
    """The final label of every judged pair, keyed by pair id (``method`` defaults to the project's
    ``[labels] method``). ``round_number``: people's votes only from that round's items; ``judgments``: the
    project's, already read (``read_judgments``)."""
    rule = project.config.labels
    if judgments is None:
        with project.store.read() as conn:
            judgments = read_judgments(conn)
    return decide(gather(judgments, round_number=round_number), method=method or rule.method,
                  min_labels=rule.ds_min_labels)


def preferences(labels: dict[str, FinalLabel]) -> dict[str, int]:
    """The binary training label of every pair whose final label is A or B (1: A is better)."""
    return {p: y for p, label in labels.items() if (y := label.preference) is not None}


def training_labels(project: Project) -> dict[str, int]:
    """The binary labels a learner may fit on: every pair's final label that is A or B, outside the frozen
    test and calibration slices."""
    from curate.store.rounds import slices

    with project.store.read() as conn:
        sliced = set(slices(conn))
    return {p: y for p, y in preferences(final_labels(project)).items() if p not in sliced}


def label_summary(labels: dict[str, FinalLabel]) -> dict[str, int]:
    """How many final labels were decided each way."""
    counts = {str(h): 0 for h in How}
    for label in labels.values():
        counts[label.how] += 1
    return {h: n for h, n in counts.items() if n}


def _votes(row: np.ndarray) -> dict[str, int]:
    return {str(c): int(n) for c, n in zip(CHOICES, row, strict=True) if n}
