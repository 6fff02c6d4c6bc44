"""The fast reward committee as a score run: M Bradley–Terry heads (``curate.learners.bradley_terry``)
fitted on the project's labelled pairs, each on a bootstrap resample; its disagreement is the signal
for what experts should rank."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, select

from curate.embed import EmbeddingCache, vectors_for
from curate.learners.bradley_terry import DEFAULT_C, committee_probabilities, disagreement, fit_committee
from curate.pool import PoolUnits
from curate.project import Project

NAMES = ("p_mean", "p_var", "vote_entropy", "bald")


def pair_labels(conn: Connection) -> dict[str, int]:
    """1 where A won, 0 where B won: gold where there is gold, else the majority of the A/B judgments
    (ties, tie votes and both-bad carry no label)."""
    from curate.store.schema import Judgment

    votes: dict[str, list[int]] = {}
    gold: dict[str, int] = {}
    for pair_id, source, choice in conn.execute(select(Judgment.pair_id, Judgment.source, Judgment.choice)
                                                .where(Judgment.choice.in_(("a", "b")))):
        if source == "gold":
            gold[pair_id] = int(choice == "a")
        else:
            votes.setdefault(pair_id, [0, 0])[choice == "b"] += 1
    labels = {pair_id: int(a > b) for pair_id, (a, b) in votes.items() if a != b}
    labels.update(gold)
    return labels


def training_labels(conn: Connection) -> dict[str, int]:
    """``pair_labels`` without the frozen test and calibration slices: what a learner may fit on."""
    from curate.store.schema import Slice

    sliced = {r[0] for r in conn.execute(select(Slice.pair_id))}
    return {pair_id: y for pair_id, y in pair_labels(conn).items() if pair_id not in sliced}


def pair_differences(units: PoolUnits, cache: EmbeddingCache) -> np.ndarray:
    """d = f(A) − f(B) for every pair unit (f: the completion's cached embedding)."""
    return vectors_for([p[1] for p in units.parts], cache) - vectors_for([p[2] for p in units.parts], cache)


def _slice_count(conn: Connection) -> int:
    from sqlalchemy import func

    from curate.store.schema import Slice

    return int(conn.scalar(select(func.count()).select_from(Slice)) or 0)


@dataclass
class CommitteeResult:
    run_id: int
    pairs: int
    labelled: int
    members: int


def score_committee(project: Project, *, members: int = 8, c: float = DEFAULT_C, model: str | None = None,
                    random_state: int = 0) -> CommitteeResult:
    """Fit the committee on the project's labelled pairs (never the test or calibration slice) and score
    every pair."""
    from curate.pool import embedded_units
    from curate.scores.runs import save_run

    units, cache = embedded_units(project, "pair", model=model)
    d = pair_differences(units, cache)
    with project.store.read() as conn:
        labels = training_labels(conn)
        slices = _slice_count(conn)
    labelled = [i for i, uid in enumerate(units.ids) if uid in labels]
    y = np.array([labels[units.ids[i]] for i in labelled])
    weights = fit_committee(d[labelled], y, members=members, c=c, random_state=random_state)
    scores = disagreement(committee_probabilities(weights, d))
    run_id = save_run(project, kind="committee", unit="pair", model=cache.model, ids=units.ids, names=NAMES,
                      values=np.column_stack([scores[n] for n in NAMES]),
                      config={"members": members, "C": c, "random_state": random_state, "labelled": len(labelled),
                              "uses_labels": True, "slices": slices})
    return CommitteeResult(run_id=run_id, pairs=len(units), labelled=len(labelled), members=members)
