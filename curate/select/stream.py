"""Stream mode: decide record by record whether a new pair is worth an expert, with a threshold
calibrated on the pool so that the expected share selected matches ``rate``.

The score is the fast committee's uncertainty (``uncertainty``: 1 − max(p, 1 − p)) or its
disagreement (``qbc``: the variance of the members' P(A ≻ B)), fitted on the project's labelled
pairs (never the slices) and applied to the streamed pair's embeddings; ``random`` selects each
record with probability ``rate``. The threshold is the (1 − rate) quantile of the same score over
pool pairs the committee was not fitted on: the unlabelled ones, and where fewer than MIN_CALIBRATION
are left, out-of-fold scores of the labelled ones too (each fold scored by a committee fitted on the
other folds: a committee is surer of its own training pairs than of new ones; with too few labels for
folds, their in-sample scores).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from curate.errors import CurateError, InputError
from curate.learners.base import MIN_LABELS
from curate.learners.committee import BTCommittee
from curate.project import Project

STREAM_STRATEGIES = ("uncertainty", "qbc", "random")
MIN_CALIBRATION = 50  # pairs the committee was not fitted on; with fewer, labelled pairs are scored out of fold
FOLDS = 5


@dataclass
class Calibration:
    strategy: str
    rate: float
    threshold: float
    committee: BTCommittee | None  # fitted on the project's training labels (none for random)


def _score(strategy: str, committee: BTCommittee, d: np.ndarray) -> np.ndarray:
    from curate.strategies.uncertainty import uncertainty

    prediction = committee.predict(d)
    return prediction.variance if strategy == "qbc" else uncertainty(prediction.p, "least-confidence")


def calibrate(project: Project, *, strategy: str, rate: float, members: int = 8, seed: int = 0) -> Calibration:
    """Fit the committee on the project's labels and set the threshold on the pool's scores."""
    from curate.labels import training_labels
    from curate.pool.units import embedded_units
    from curate.scores.features import unit_differences

    if strategy not in STREAM_STRATEGIES:
        raise CurateError(f"stream mode decides by {', '.join(STREAM_STRATEGIES)}, not '{strategy}'")
    if not 0 < rate <= 1:
        raise CurateError(f"--rate must be in (0, 1], not {rate}")
    if seed < 0:
        raise CurateError(f"the seed must be 0 or more, not {seed}")
    if strategy == "random":
        return Calibration(strategy, rate, rate, None)
    units, cache = embedded_units(project, "pair")
    d = unit_differences(units, cache)
    labels = training_labels(project)
    labelled = np.array([i for i, uid in enumerate(units.ids) if uid in labels], dtype=np.int64)
    y = np.array([labels[units.ids[i]] for i in labelled])
    committee = BTCommittee(members=members, random_state=seed).fit(d[labelled], y)
    unseen = np.setdiff1d(np.arange(len(units)), labelled)
    reference = [_score(strategy, committee, d[unseen])]
    if len(unseen) < MIN_CALIBRATION and len(labelled) * (FOLDS - 1) // FOLDS >= MIN_LABELS:
        fold = np.random.default_rng(seed).permutation(len(labelled)) % FOLDS
        for k in range(FOLDS):
            held = fold == k
            fitted = BTCommittee(members=members, random_state=seed).fit(d[labelled[~held]], y[~held])
            reference.append(_score(strategy, fitted, d[labelled[held]]))
    elif len(unseen) < MIN_CALIBRATION:  # too few labels to fit folds: the labelled pairs as they are
        reference.append(_score(strategy, committee, d[labelled]))
    threshold = float(np.quantile(np.concatenate(reference), 1 - rate))
    return Calibration(strategy, rate, threshold, committee)


def stream_decisions(project: Project, lines: Iterable[str], *, strategy: str = "uncertainty", rate: float = 0.1,
                     mapping: str | None = None, label_values: str | None = None,
                     seed: int = 0) -> Iterator[dict[str, Any]]:
    """One decision per JSONL record read from ``lines`` (blank lines skipped): its line, its own id
    (where the layout names one), score, the threshold and whether it is selected. A bad record stops the stream with
    ``<stdin>:LINE: reason``."""
    from curate.ingest.layouts import detect_layout, mapped_layout
    from curate.ingest.readers import parse_object
    from curate.ingest.values import RowProblem
    from curate.pool.embed import load_encoder
    from curate.pool.units import project_model
    from curate.rendering import Content
    from curate.scores.features import pair_differences

    calibration = calibrate(project, strategy=strategy, rate=rate, seed=seed)
    rng = np.random.default_rng(seed)
    layout = mapped_layout(mapping, label_values, annotator_prefix="stream:") if mapping else None
    encoder = None if strategy == "random" else load_encoder(project_model(project, None),
                                                             compute=project.config.compute.resolve())
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        row = parse_object(line)
        try:
            if isinstance(row, RowProblem):
                raise row
            layout = layout or detect_layout(set(row), f"<stdin>:{number}")
            parsed = layout.parse(row)
            if not parsed.is_pair:
                raise RowProblem("stream mode decides on pairs: the record has no two completions")
        except RowProblem as problem:
            raise InputError(f"<stdin>:{number}: {problem}") from None
        prompt, a, b = (Content(t.text, t.messages) for t in (parsed.prompt, *parsed.completions))
        decision: dict[str, Any] = {"line": number, "id": parsed.source_key}
        if calibration.committee is None:
            score = float(rng.random())
            selected = score < calibration.rate
        else:
            d, _ = pair_differences([prompt], [a], [b], features="embedding", embed=lambda texts: (
                encoder.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)))
            score = float(_score(strategy, calibration.committee, d)[0])
            selected = score >= calibration.threshold
        yield {**decision, "score": score, "threshold": calibration.threshold, "selected": bool(selected)}
