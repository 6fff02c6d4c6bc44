"""Pair judgments as the label rule reads them: one cell per (pair, voter) for the sources where people vote,
and one choice per pair for the sources that speak once (adjudication, gold, dataset).

``read_judgments`` is the one reader of pair choices (its query is ``curate.store.judgments.pair_choices``);
everything else here is arrays. A label table is a list of cells (item, annotator, code), so thousands of crowd
workers stay cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from curate.labels.vocabulary import CHOICES, VOTER_SOURCES, Choice, Source
from curate.store import Connection, judgments


@dataclass(frozen=True)
class Vote:
    """One pair judgment: who (``annotator``: None for a data set's own label), from where, which choice, the
    person's confidence (1-5, 0 where none), and the number of the round whose item it judged (None for an
    imported judgment or an adjudication)."""

    pair_id: str
    source: Source
    annotator: str | None
    choice: Choice
    confidence: int = 0
    round: int | None = None


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

    def counts(self) -> np.ndarray:
        """``counts[i, c]``: the votes of item ``i`` for choice ``CHOICES[c]``."""
        return counts_of(self.item, self.code, len(self.items), len(CHOICES))


@dataclass(frozen=True)
class Votes:
    """Every pair judgment of a project (or of one round), split by how the label rule reads it: a table of
    people's latest votes per voter source, and the latest choice per pair of the sources that speak once."""

    tables: dict[Source, LabelTable]  # app and crowd
    adjudicated: dict[str, tuple[Choice, str | None]]  # pair -> (choice, the lead)
    gold: dict[str, Choice]
    dataset: dict[str, Choice]

    def pairs(self) -> set[str]:
        """Every pair with a judgment of any source."""
        return {p for t in self.tables.values() for p in t.items} | set(self.adjudicated) | set(self.gold) | set(
            self.dataset)


def read_judgments(conn: Connection, *, pair_ids: Iterable[str] | None = None) -> list[Vote]:
    """Every pair choice in the store, oldest first (of ``pair_ids`` only, if given)."""
    return [Vote(pair, Source(source), name, Choice(choice), confidence,
                 number if Source(source) == Source.APP else None)
            for pair, source, name, choice, confidence, number in judgments.pair_choices(conn, pair_ids=pair_ids)]


def gather(votes: Iterable[Vote], *, round_number: int | None = None,
           sources: Iterable[Source] | None = None) -> Votes:
    """``votes`` (oldest first) as the label rule reads them: each voter's latest choice per pair, and the latest
    choice per pair of the other sources. ``round_number``: of people's votes in the app, only those on that
    round's items; ``sources``: only those sources."""
    keep = set(Source) if sources is None else set(sources)
    cells: dict[Source, dict[tuple[str, str], tuple[int, int]]] = {s: {} for s in VOTER_SOURCES}
    once: dict[Source, dict[str, tuple[Choice, str | None]]] = {s: {} for s in Source if s not in VOTER_SOURCES}
    for v in votes:
        if v.source not in keep or (v.source == Source.APP and round_number is not None and v.round != round_number):
            continue
        if v.source in VOTER_SOURCES:
            name = v.annotator or f"{v.source}:unnamed"
            cells[v.source][(v.pair_id, name)] = (CHOICES.index(v.choice), v.confidence)
        else:
            once[v.source][v.pair_id] = (v.choice, v.annotator)
    return Votes(tables={s: _table(c) for s, c in cells.items()}, adjudicated=once[Source.ADJUDICATION],
                 gold={p: c for p, (c, _) in once[Source.GOLD].items()},
                 dataset={p: c for p, (c, _) in once[Source.DATASET].items()})


def _table(cells: dict[tuple[str, str], tuple[int, int]]) -> LabelTable:
    items = sorted({pair for pair, _ in cells})
    annotators = sorted({name for _, name in cells})
    row, col = {p: i for i, p in enumerate(items)}, {a: j for j, a in enumerate(annotators)}
    keys = sorted(cells, key=lambda k: (row[k[0]], col[k[1]]))
    return LabelTable(items, annotators, np.array([row[p] for p, _ in keys], dtype=np.int64),
                      np.array([col[a] for _, a in keys], dtype=np.int64),
                      np.array([cells[k][0] for k in keys], dtype=np.int64),
                      np.array([cells[k][1] for k in keys], dtype=np.int64))


def counts_of(item: np.ndarray, value: np.ndarray, n_items: int, n_values: int) -> np.ndarray:
    """``counts[i, v]``: how many cells of item ``i`` hold value ``v`` (cells with a value < 0 are left out)."""
    counts = np.zeros((n_items, n_values), dtype=np.int64)
    keep = value >= 0
    np.add.at(counts, (item[keep], value[keep]), 1)
    return counts
