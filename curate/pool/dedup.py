"""Near-duplicates: groups of units whose embeddings have cosine similarity >= a threshold.

Similar texts are found by a range search with faiss (inner product on unit vectors): exact up
to ``EXACT_LIMIT`` units, an inverted-file index above (approximate; ``benchmarks/cluster_dedup_1m.py``
measures its recall). Two pairs are near-duplicates when their prompts are and their completions
are, one to one in either order; the pair's similarity is the smallest of those three.
Groups are stars, so every member is within the threshold of the one kept:
units in order of priority (most judgments, then smallest id) become representatives and take
their not yet grouped neighbours. Members are marked, never deleted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from curate.errors import CurateError
from curate.pool.embed import vectors_for
from curate.pool.units import embedded_units, unit_vectors
from curate.progress import Progress, no_progress
from curate.project import Project
from curate.store import audit, pool

EXACT_LIMIT = 200_000
QUERY_BLOCK = 20_000


def similar_pairs(vectors: np.ndarray, threshold: float, *, exact_limit: int = EXACT_LIMIT, nprobe: int = 8,
                  random_state: int = 0, progress: Progress | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Index pairs ``(i, j)`` with ``i < j`` and cosine similarity >= ``threshold`` (unit vectors).

    Returns ``i, j, similarity, method`` where method is ``exact`` or ``ivf``."""
    import faiss

    if not 0 < threshold <= 1:
        raise CurateError(f"--threshold must be in (0, 1], got {threshold}")
    threads = os.environ.get("OMP_NUM_THREADS", "").split(",")[0]
    faiss.omp_set_num_threads(int(threads) if threads.isdigit() else os.cpu_count() or 1)
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = x.shape
    if n <= exact_limit:
        index, method = faiss.IndexFlatIP(d), "exact"
    else:
        nlist = int(np.clip(np.sqrt(n), 16, 65_536))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(random_state)
        index.train(x[rng.choice(n, min(n, 50 * nlist), replace=False)])
        index.nprobe = nprobe
        method = "ivf"
    index.add(x)
    found_i, found_j, found_s = [], [], []
    blocks = range(0, n, QUERY_BLOCK)
    for start in (progress or no_progress)(blocks, "searching near-duplicates", len(blocks)):
        lims, sims, ids = index.range_search(x[start:start + QUERY_BLOCK], threshold - 1e-6)
        rows = np.repeat(np.arange(start, min(n, start + QUERY_BLOCK)), np.diff(lims).astype(np.int64))
        keep = ids > rows
        found_i.append(rows[keep])
        found_j.append(ids[keep])
        found_s.append(sims[keep])
    i, j, s = (np.concatenate(a) if a else np.zeros(0) for a in (found_i, found_j, found_s))
    return i.astype(np.int64), j.astype(np.int64), s.astype(np.float32), method


def pair_edges(parts: np.ndarray, text_vectors: np.ndarray, threshold: float, *,
               progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Near-duplicate pairs of pairs. ``parts[k] = (prompt, a, b)`` indexes rows of ``text_vectors``."""
    ti, tj, ts, method = similar_pairs(text_vectors, threshold, progress=progress)
    sim: dict[tuple[int, int], float] = {}
    neighbours: dict[int, set[int]] = {}
    for x, y, value in zip(ti.tolist(), tj.tolist(), ts.tolist(), strict=True):
        sim[x, y] = sim[y, x] = value
        neighbours.setdefault(x, set()).add(y)
        neighbours.setdefault(y, set()).add(x)

    def similarity(x: int, y: int) -> float:
        return 1.0 if x == y else sim.get((x, y), 0.0)

    holding: dict[int, list[int]] = {}  # completion text -> pairs that hold it
    for k, (_, a, b) in enumerate(parts.tolist()):
        holding.setdefault(a, []).append(k)
        if b != a:
            holding.setdefault(b, []).append(k)
    out_i, out_j, out_s = [], [], []
    for k, (p, a, b) in enumerate(parts.tolist()):
        candidates = {m for t in neighbours.get(a, set()) | {a} for m in holding.get(t, ()) if m > k}
        for m in candidates:
            p2, a2, b2 = parts[m].tolist()
            value = min(similarity(p, p2), max(min(similarity(a, a2), similarity(b, b2)),
                                               min(similarity(a, b2), similarity(b, a2))))
            if value >= threshold:
                out_i.append(k)
                out_j.append(m)
                out_s.append(value)
    return (np.array(out_i, dtype=np.int64), np.array(out_j, dtype=np.int64), np.array(out_s, dtype=np.float32),
            method)


def duplicate_groups(n: int, i: np.ndarray, j: np.ndarray, priority: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Star groups ``(representative, members)`` from similar pairs; ``priority`` orders who is kept
    (lower first). Every member is a direct neighbour of its representative."""
    from scipy.sparse import coo_matrix

    if not len(i):
        return []
    graph = coo_matrix((np.ones(2 * len(i), dtype=np.int8), (np.r_[i, j], np.r_[j, i])), shape=(n, n)).tocsr()
    grouped = np.zeros(n, dtype=bool)
    groups = []
    for node in sorted(np.unique(np.r_[i, j]).tolist(), key=lambda m: priority[m]):
        if grouped[node]:
            continue
        members = graph.indices[graph.indptr[node]:graph.indptr[node + 1]]
        members = np.unique(members[~grouped[members]])
        if len(members):
            grouped[node] = True
            grouped[members] = True
            groups.append((node, members))
    return groups


@dataclass
class DuplicateGroup:
    representative: str
    members: list[tuple[str, float]]  # (unit id, similarity to the representative), representative excluded
    examples: list[str] = field(default_factory=list)


@dataclass
class DedupResult:
    field: str
    threshold: float
    method: str
    units: int
    groups: list[DuplicateGroup]

    @property
    def marked(self) -> int:
        return sum(len(g.members) for g in self.groups)


def dedup_pool(project: Project, *, threshold: float = 0.95, field_name: str | None = None, model: str | None = None,
               progress: Progress | None = None) -> DedupResult:
    """Find near-duplicate groups in the pool and mark every member but one representative per group."""
    units, cache = embedded_units(project, field_name, model=model)
    if units.field == "pair":
        texts = units.texts()
        position = {t: n for n, t in enumerate(texts)}
        parts = np.array([[position[t] for t in p] for p in units.parts], dtype=np.int64).reshape(-1, 3)
        i, j, s, method = pair_edges(parts, vectors_for(texts, cache), threshold, progress=progress)
    else:
        i, j, s, method = similar_pairs(unit_vectors(units, cache), threshold, progress=progress)
    with project.store.read() as conn:
        judged = pool.judgments_per_unit(conn, field=units.field)
    order = sorted(range(len(units)), key=lambda m: (-judged.get(units.ids[m], 0), units.ids[m]))
    priority = np.empty(len(units), dtype=np.int64)
    priority[order] = np.arange(len(units))
    groups = []
    edge_sim = {(x, y): value for x, y, value in zip(i.tolist(), j.tolist(), s.tolist(), strict=True)}
    for rep, members in duplicate_groups(len(units), i, j, priority):
        sims = [edge_sim[min(rep, m), max(rep, m)] for m in members.tolist()]
        groups.append(DuplicateGroup(
            representative=units.ids[rep],
            members=[(units.ids[m], float(s)) for m, s in zip(members, sims, strict=True)],
            examples=[units.label(int(m)) for m in [rep, *members[:2]]]))
    groups.sort(key=lambda g: (-len(g.members), g.representative))
    with project.store.write() as conn:
        pool.replace_near_duplicates(conn, field=units.field, threshold=threshold, model=cache.model.fingerprint,
                                     marks=[(uid, g.representative, sim) for g in groups for uid, sim in g.members])
        audit(conn, "dedup", entity="near_duplicates", details={
            "field": units.field, "threshold": threshold, "method": method, "groups": len(groups),
            "marked": sum(len(g.members) for g in groups)})
    return DedupResult(field=units.field, threshold=threshold, method=method, units=len(units), groups=groups)

