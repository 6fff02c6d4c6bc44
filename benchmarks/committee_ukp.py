"""Fast committee on all 8,893 UKP dev pairs with cached embeddings: `curate score committee` (fit 8
bootstrap Bradley–Terry heads, score every pair, store the run; goal under 60 s on 2 cores) against
one plain scikit-learn logistic regression fitted and applied to the same differences, same run.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/committee_ukp.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from curate import embed_pool, ingest_files, init_project
from curate.labels import final_labels, preferences
from curate.learners.bradley_terry import bt_design
from curate.pool.units import embedded_units
from curate.scores.committee import score_committee
from curate.scores.features import unit_differences

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, init_project(Path(tmp) / "p") as project:
        ingest_files(project, [DATA / "ukp-convarg1-dev.jsonl.gz"])
        embed_pool(project)  # cached before timing: the goal is about the committee
        start = time.perf_counter()
        units, cache = embedded_units(project, "pair")
        d = unit_differences(units, cache)
        labels = preferences(final_labels(project))
        rows = [i for i, u in enumerate(units.ids) if u in labels]
        x, y, _ = bt_design(d[rows], np.array([labels[units.ids[i]] for i in rows]))
        LogisticRegression(fit_intercept=False, max_iter=1000).fit(x, y).predict_proba(d)
        plain = time.perf_counter() - start
        start = time.perf_counter()
        result = score_committee(project, members=8)
        took = time.perf_counter() - start
    print(f"UKP dev: {result.pairs} pairs, {result.labelled} labelled")
    print(f"one plain logistic regression (load, fit, predict): {plain:6.1f} s")
    print(f"curate committee of 8 heads (load, fit, score, store): {took:6.1f} s (goal < 60 s)")
    print(f"ratio committee / one plain head: {took / plain:.1f}x for 8 heads")


if __name__ == "__main__":
    main()
