"""Clusters of the pool: k-means (k chosen by a documented rule) or HDBSCAN, described by keywords.

Vector functions take arrays and return arrays; ``cluster_pool`` and ``describe_clusters`` read
and write the project at the edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from curate.errors import CurateError
from curate.pool.units import PoolUnits, load_pool
from curate.project import Project
from curate.store import audit, pool
from curate.store.pool import ClusterRunInfo

METHODS = ("kmeans", "hdbscan")
AUTO_K_MAX = 100
AUTO_K_SAMPLE = 20_000  # units used to choose k
SILHOUETTE_SAMPLE = 3_000
NOISE = -1


def auto_k_candidates(n: int) -> list[int]:
    """The k values the automatic rule tries: a geometric grid from 2 to min(100, n // 10)."""
    top = max(2, min(AUTO_K_MAX, n // 10))
    return sorted({round(float(k)) for k in np.geomspace(2, top, num=12)})


def choose_k(vectors: np.ndarray, *, random_state: int = 0) -> tuple[int, dict[int, float]]:
    """The documented rule for ``--k auto``: fit k-means for each candidate k on (a sample of at most
    20,000 of) the units and keep the k with the best cosine silhouette on 3,000 of them; ties go to
    the smaller k. Returns k and the silhouette of every candidate."""
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(random_state)
    sample = vectors if len(vectors) <= AUTO_K_SAMPLE else vectors[rng.choice(len(vectors), AUTO_K_SAMPLE, False)]
    scores = {}
    for k in auto_k_candidates(len(sample)):
        labels, _ = kmeans(sample, k, random_state=random_state)
        if len(np.unique(labels)) < 2:
            continue
        scores[k] = float(silhouette_score(sample, labels, metric="cosine",
                                           sample_size=min(SILHOUETTE_SAMPLE, len(sample)),
                                           random_state=random_state))
    if not scores:
        return 2, scores
    best = max(scores.values())
    return min(k for k, s in scores.items() if s >= best - 1e-9), scores


def kmeans(vectors: np.ndarray, k: int, *, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MiniBatchKMeans labels and unit-length centroids."""
    from sklearn.cluster import MiniBatchKMeans

    model = MiniBatchKMeans(n_clusters=k, random_state=random_state, n_init=3, batch_size=4096,
                            max_no_improvement=20)
    labels = model.fit_predict(vectors)
    centers = model.cluster_centers_ / np.maximum(np.linalg.norm(model.cluster_centers_, axis=1, keepdims=True),
                                                  1e-12)
    return labels.astype(np.int64), centers.astype(np.float32)


def hdbscan(vectors: np.ndarray, *, min_cluster_size: int, random_state: int = 0) -> np.ndarray:
    """HDBSCAN on a 50-d PCA of the vectors (density estimates degrade in 384-d); noise = -1."""
    from sklearn.cluster import HDBSCAN
    from sklearn.decomposition import PCA

    reduced = vectors
    if vectors.shape[1] > 50 and len(vectors) > 50:
        reduced = PCA(n_components=50, random_state=random_state).fit_transform(vectors)
    return HDBSCAN(min_cluster_size=min_cluster_size, copy=True).fit_predict(reduced).astype(np.int64)


def centroids(vectors: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """Unit-length mean vector of each cluster (noise included as its own group)."""
    out = {}
    for label in np.unique(labels):
        mean = vectors[labels == label].mean(axis=0)
        out[int(label)] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return out


def representatives(vectors: np.ndarray, labels: np.ndarray, *, n: int = 3) -> dict[int, list[int]]:
    """Indices of the ``n`` units closest to each cluster's centroid."""
    out = {}
    for label, center in centroids(vectors, labels).items():
        members = np.nonzero(labels == label)[0]
        order = np.argsort(-(vectors[members] @ center), kind="stable")
        out[label] = members[order[:n]].tolist()
    return out


def ctfidf_keywords(docs: dict[int, list[str]], *, top: int = 8) -> dict[int, list[str]]:
    """Class-based TF-IDF: each cluster's texts as one document; a word scores by its frequency in
    the cluster times log(1 + average words per cluster / its frequency over all clusters)."""
    from sklearn.feature_extraction.text import CountVectorizer

    labels = sorted(docs)
    joined = [" ".join(docs[label]) for label in labels]
    try:
        vectorizer = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_]{3,}\b", max_features=50_000)
        counts = vectorizer.fit_transform(joined).astype(np.float64)
    except ValueError:  # no words at all
        return {label: [] for label in labels}
    tf = counts.multiply(1 / np.maximum(counts.sum(axis=1), 1)).tocsr()
    per_word = np.asarray(counts.sum(axis=0)).ravel()
    idf = np.log(1 + counts.sum() / len(labels) / np.maximum(per_word, 1))
    scores = tf.multiply(idf).tocsr()
    words = vectorizer.get_feature_names_out()
    out = {}
    for row, label in enumerate(labels):
        values = scores[row].toarray().ravel()
        best = np.argsort(-values, kind="stable")[:top]
        out[label] = [str(words[i]) for i in best if values[i] > 0]
    return out


@dataclass
class ClusterSummary:
    run_id: int
    field: str
    method: str
    k: int
    sizes: dict[int, int]
    config: dict[str, object] = field(default_factory=dict)


def cluster_pool(project: Project, *, k: int | str = "auto", method: str = "kmeans", field_name: str | None = None,
                 model: str | None = None, random_state: int = 0, min_cluster_size: int | None = None
                 ) -> ClusterSummary:
    """Cluster the pool's units and store every unit's cluster with the run's configuration."""
    if method not in METHODS:
        raise CurateError(f"unknown clustering method '{method}' (methods: {', '.join(METHODS)})")
    units, vectors, resolved = load_pool(project, field_name, model=model)
    n = len(units)
    config: dict[str, object] = {"random_state": random_state, "model": resolved.name}
    if method == "kmeans":
        if k == "auto":
            if n < 4:
                raise CurateError(f"the pool has only {n} {units.field}s: too few to cluster")
            k, scores = choose_k(vectors, random_state=random_state)
            config["auto_k"] = {"rule": "best cosine silhouette over a geometric grid", "silhouette": scores}
        k = _valid_k(k, n, units.field)
        labels, _ = kmeans(vectors, k, random_state=random_state)
    else:
        if k != "auto":
            raise CurateError("--k applies to kmeans; HDBSCAN finds the number of clusters itself")
        size = min_cluster_size or max(5, n // 200)
        if n < max(2, size):
            raise CurateError(f"the pool has only {n} {units.field}s: too few for HDBSCAN clusters of {size}")
        labels = hdbscan(vectors, min_cluster_size=size, random_state=random_state)
        config["min_cluster_size"] = size
        k = len(set(labels.tolist()) - {NOISE})
    sizes = {int(c): int(s) for c, s in zip(*np.unique(labels, return_counts=True), strict=True)}
    with project.store.write() as conn:
        clusters = [(uid, int(c)) for uid, c in zip(units.ids, labels, strict=True)]
        run_id = pool.add_cluster_run(conn, field=units.field, model=resolved.fingerprint, method=method, k=int(k),
                                      config=config, clusters=clusters)
        audit(conn, "cluster", entity="cluster_run", entity_id=str(run_id),
              details={"field": units.field, "method": method, "k": int(k), "units": n})
    return ClusterSummary(run_id=run_id, field=units.field, method=method, k=int(k), sizes=sizes, config=config)


def _valid_k(k: int | str, n: int, field_name: str) -> int:
    try:
        k = int(k)
    except ValueError:
        raise CurateError(f"--k must be a whole number or 'auto', not {k!r}") from None
    if k < 2:
        raise CurateError(f"--k must be at least 2 (got {k})")
    if k > n:
        raise CurateError(f"--k {k} is larger than the pool ({n} {field_name}s)")
    return k


@dataclass
class ClusterDescription:
    cluster: int
    size: int
    keywords: list[str]
    examples: list[str]


def latest_run(project: Project, field_name: str | None = None) -> ClusterRunInfo | None:
    """The newest cluster run (of one field, if given)."""
    with project.store.read() as conn:
        return pool.latest_cluster_run(conn, field=field_name)


def run_labels(project: Project, run_id: int, units: PoolUnits) -> np.ndarray:
    """Cluster of every unit (in ``units`` order) in run ``run_id``; units added since the run get -2."""
    with project.store.read() as conn:
        found = pool.cluster_labels(conn, run_id=run_id)
    return np.array([found.get(uid, -2) for uid in units.ids], dtype=np.int64)


def describe_clusters(project: Project, *, field_name: str | None = None, model: str | None = None,
                      examples: int = 3) -> tuple[ClusterRunInfo, list[ClusterDescription]]:
    """Size, c-TF-IDF keywords and the examples closest to the centroid of every cluster of the latest run."""
    run = latest_run(project, field_name)
    if run is None:
        raise CurateError("no clusters yet: run `curate cluster` first")
    units, vectors, _ = load_pool(project, run.field, model=model or run.config.get("model"))
    labels = run_labels(project, run.id, units)
    known = labels > -2
    units_texts = [units.label(i, width=10_000) for i in range(len(units))]
    docs: dict[int, list[str]] = {}
    for i in np.nonzero(known)[0]:
        docs.setdefault(int(labels[i]), []).append(units_texts[i])
    keywords = ctfidf_keywords(docs)
    reps = representatives(vectors[known], labels[known], n=examples)
    index = np.nonzero(known)[0]
    out = [ClusterDescription(cluster=c, size=len(docs[c]), keywords=keywords[c],
                              examples=[units.label(int(index[i])) for i in reps[c]])
           for c in sorted(docs, key=lambda c: (-len(docs[c]), c))]
    return run, out
