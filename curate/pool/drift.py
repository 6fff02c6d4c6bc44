"""Is a new batch like the pool? A classifier two-sample test on embeddings, and cluster shares.

The test: label pool units 0 and the new batch's rows 1 (at most ``MAX_PER_SIDE`` of each, drawn
at random), fit a logistic regression on a 50-d PCA of the vectors with ``FOLDS``-fold cross-fitting,
and score the out-of-fold predictions by ROC AUC. The p-value is the share of ``permutations``
label shufflings (each refitted the same way) whose AUC reaches the observed one. The verdict is
"drifted" when p <= ``alpha`` and AUC >= ``MIN_AUC`` (a tiny shift in a huge batch is significant
but not worth an alarm), else "no drift".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curate.errors import CurateError
from curate.ids import normalise_text
from curate.ingest.pipeline import read_file
from curate.pool.cluster import latest_run, run_labels
from curate.pool.embed import embed_texts, vectors_for
from curate.pool.units import embedded_units, pair_vectors, unit_vectors
from curate.progress import Progress, no_progress
from curate.project import Project

MAX_PER_SIDE = 2_000
FOLDS = 3
MIN_AUC = 0.6


def two_sample_auc(pool: np.ndarray, new: np.ndarray, *, permutations: int = 199, random_state: int = 0
                   ) -> tuple[float, float]:
    """Cross-fitted classifier AUC for telling ``new`` from ``pool``, and its permutation p-value."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(random_state)
    pool = pool[rng.choice(len(pool), min(len(pool), MAX_PER_SIDE), replace=False)]
    new = new[rng.choice(len(new), min(len(new), MAX_PER_SIDE), replace=False)]
    if min(len(pool), len(new)) < FOLDS:
        raise CurateError(f"too few units to compare ({len(pool)} in the pool, {len(new)} new; need {FOLDS} each)")
    x = np.vstack([pool, new])
    x = PCA(n_components=min(50, x.shape[1], len(x) - 1), random_state=random_state).fit_transform(x)
    y = np.r_[np.zeros(len(pool)), np.ones(len(new))]
    folds = list(StratifiedKFold(FOLDS, shuffle=True, random_state=random_state).split(x, y))

    def auc(labels: np.ndarray) -> float:
        scores = np.empty(len(labels))
        for train, test in folds:
            model = LogisticRegression(C=1.0, max_iter=200).fit(x[train], labels[train])
            scores[test] = model.decision_function(x[test])
        return float(roc_auc_score(labels, scores))

    observed = auc(y)
    # Permuting within the same folds keeps every fold's class balance: the null of "no difference".
    null = [auc(_permute_within(y, folds, rng)) for _ in range(permutations)]
    p_value = (1 + sum(a >= observed for a in null)) / (1 + permutations)
    return observed, p_value


def _permute_within(y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator
                    ) -> np.ndarray:
    out = y.copy()
    for _, test in folds:
        out[test] = rng.permutation(y[test])
    return out


@dataclass
class ClusterShift:
    cluster: int
    pool_share: float
    new_share: float


@dataclass
class DriftReport:
    path: str
    field: str
    pool_units: int
    new_units: int
    auc: float
    p_value: float
    permutations: int
    verdict: str  # drifted | no drift
    clusters: list[ClusterShift] = field(default_factory=list)
    cluster_run: int | None = None


def drift_report(project: Project, path: Path, *, field_name: str = "prompt", file_format: str = "auto",
                 mapping: str | None = None, label_values: str | None = None, model: str | None = None,
                 permutations: int = 199, alpha: float = 0.01, random_state: int = 0,
                 progress: Progress | None = None) -> DriftReport:
    """Compare the rows of ``path`` (read, not ingested) with the project's pool.

    The pool's rows are its pairs (or its prompts where it has no pairs); ``field_name`` says what
    of a row is compared: its prompt, or the whole pair.
    """
    if field_name not in ("prompt", "pair"):
        raise CurateError(f"drift compares prompts or pairs, not '{field_name}'")
    if (1 + permutations) * alpha < 1:
        raise CurateError(f"{permutations} permutations cannot give p <= {alpha}: use at least "
                          f"{int(np.ceil(1 / alpha)) - 1}")
    read = read_file(Path(path), file_format, mapping, label_values, progress or no_progress)
    read.refuse_bad_rows("fix the file, or ingest with --skip-bad and compare the good rows")
    rows = [row for _, row in read.rows]
    units, cache = embedded_units(project, model=model)
    if field_name == "pair" and units.field != "pair":
        raise CurateError("the pool has no pairs to compare pairs with; use --field prompt")
    pool_vectors = unit_vectors(units, cache)
    embed_texts([normalise_text(t.text) for row in rows for t in [row.prompt, *row.completions]], cache.model, cache,
                compute=project.config.compute.resolve(), progress=progress)
    new_prompts = vectors_for([normalise_text(r.prompt.text) for r in rows], cache)
    new_pairs = None
    if all(r.is_pair for r in rows):
        new_pairs = pair_vectors(new_prompts, *(vectors_for([normalise_text(r.completions[i].text) for r in rows],
                                                            cache) for i in (0, 1)))
    elif field_name == "pair":
        raise CurateError(f"{path}: not every row is a pair; use --field prompt")
    pool_x = pool_vectors if field_name == "pair" else vectors_for([p[0] for p in units.parts], cache)
    new_x = new_pairs if field_name == "pair" else new_prompts
    auc, p_value = two_sample_auc(pool_x, new_x, permutations=permutations, random_state=random_state)
    report = DriftReport(path=str(path), field=field_name, pool_units=len(units), new_units=len(rows), auc=auc,
                         p_value=p_value, permutations=permutations,
                         verdict="drifted" if p_value <= alpha and auc >= MIN_AUC else "no drift")
    run = latest_run(project, units.field)
    same_space = new_pairs if units.field == "pair" else new_prompts
    if run is not None and same_space is not None:
        labels = run_labels(project, run.id, units)
        known = labels > -2
        clusters = sorted(set(labels[known].tolist()) - {-1})  # HDBSCAN noise has no centre to be near
        centres = np.array([_unit(pool_vectors[labels == c].mean(axis=0)) for c in clusters])
        nearest = np.array(clusters)[np.argmax(same_space @ centres.T, axis=1)]
        report.cluster_run = run.id
        report.clusters = sorted(
            (ClusterShift(c, float(np.mean(labels[known] == c)), float(np.mean(nearest == c))) for c in clusters),
            key=lambda s: -abs(s.new_share - s.pool_share))
    return report


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)
