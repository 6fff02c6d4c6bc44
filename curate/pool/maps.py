"""A 2-D map of the pool: UMAP (PCA where UMAP is missing or asked for), coloured by cluster.

Writes ``maps/<field>.png`` (matplotlib), ``maps/<field>.html`` (Plotly, self-contained so it opens
offline) and ``maps/<field>.csv`` (unit id, x, y, cluster) for the app to reuse.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curate.errors import CurateError
from curate.files import staged
from curate.pool.cluster import latest_run, run_labels
from curate.pool.units import load_pool
from curate.project import Project

METHODS = ("auto", "umap", "pca")
MAX_POINTS = 50_000  # larger pools are mapped on a random sample of this size


def project_2d(vectors: np.ndarray, *, method: str = "auto", random_state: int = 0) -> tuple[np.ndarray, str]:
    """2-D coordinates of ``vectors`` and the method used."""
    if method not in METHODS:
        raise CurateError(f"unknown map method '{method}' (methods: {', '.join(METHODS)})")
    if len(vectors) < 3:
        raise CurateError(f"a map needs at least 3 units, the pool has {len(vectors)}")
    if method in ("auto", "umap") and len(vectors) > 15:
        try:
            import umap
        except ImportError:
            if method == "umap":
                raise CurateError("--method umap needs the umap-learn package: pip install umap-learn") from None
        else:
            # a fixed random_state makes UMAP single-threaded: reproducible maps are worth it
            reducer = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=random_state, n_jobs=1)
            return reducer.fit_transform(vectors).astype(np.float32), "umap"
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=random_state).fit_transform(vectors).astype(np.float32), "pca"


@dataclass
class MapResult:
    field: str
    method: str
    points: int
    units: int
    cluster_run: int | None
    png: Path
    html: Path
    csv: Path


def write_map(project: Project, *, field_name: str | None = None, method: str = "auto", model: str | None = None,
              out_dir: Path | None = None, random_state: int = 0, max_points: int = MAX_POINTS) -> MapResult:
    """Project the pool to 2-D and write the PNG, the interactive HTML and the coordinates."""
    units, vectors, _ = load_pool(project, field_name, model=model)
    run = latest_run(project, units.field)
    labels = run_labels(project, run.id, units) if run else np.full(len(units), -2, dtype=np.int64)
    shown = np.arange(len(units))
    if len(units) > max_points:
        shown = np.sort(np.random.default_rng(random_state).choice(len(units), max_points, replace=False))
    coords, used = project_2d(vectors[shown], method=method, random_state=random_state)
    out = out_dir or project.root / "maps"
    out.mkdir(parents=True, exist_ok=True)
    names = [_cluster_name(int(c)) for c in labels[shown]]
    hover = [units.label(int(i)) for i in shown]
    title = (f"{units.field}s of {project.config.project.name}: {used.upper()}"
             + (f", clusters of run {run.id}" if run else "") + (f", {len(shown)} of {len(units)}"
                                                                   if len(shown) < len(units) else ""))
    result = MapResult(field=units.field, method=used, points=len(shown), units=len(units),
                       cluster_run=run.id if run else None, png=out / f"{units.field}.png",
                       html=out / f"{units.field}.html", csv=out / f"{units.field}.csv")
    _write_csv(result.csv, [units.ids[i] for i in shown], coords, labels[shown])
    _write_png(result.png, coords, names, title)
    _write_html(result.html, coords, names, hover, title)
    return result


def _cluster_name(label: int) -> str:
    return {-1: "noise", -2: "not clustered"}.get(label, f"cluster {label}")


def _groups(names: list[str]) -> list[tuple[str, np.ndarray]]:
    keys = sorted(set(names), key=lambda n: (not n.startswith("cluster"), int(n.split()[1]) if n.startswith("cluster")
                                              else 0, n))
    array = np.array(names)
    return [(key, np.nonzero(array == key)[0]) for key in keys]


def _write_csv(path: Path, ids: list[str], coords: np.ndarray, labels: np.ndarray) -> None:
    with staged(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["unit_id", "x", "y", "cluster"])
        writer.writerows((uid, f"{x:.5f}", f"{y:.5f}", int(c)) for uid, (x, y), c in zip(ids, coords, labels,
                                                                                        strict=True))


def _write_png(path: Path, coords: np.ndarray, names: list[str], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 7), dpi=120)
    palette = plt.get_cmap("tab20")
    groups = _groups(names)
    size = max(2.0, 30.0 / np.sqrt(max(len(coords), 1) / 100))
    for n, (name, idx) in enumerate(groups):
        colour = {"noise": "lightgrey", "not clustered": "black"}.get(name) or palette(n % 20)
        ax.scatter(coords[idx, 0], coords[idx, 1], s=size, color=colour, label=name, alpha=0.8, linewidths=0)
    if len(groups) <= 20:
        ax.legend(markerscale=3, fontsize=7, loc="best", frameon=False)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    with staged(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def _write_html(path: Path, coords: np.ndarray, names: list[str], hover: list[str], title: str) -> None:
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, idx in _groups(names):
        fig.add_trace(go.Scattergl(x=coords[idx, 0], y=coords[idx, 1], mode="markers", name=name,
                                   text=[hover[i] for i in idx], hoverinfo="text+name", marker={"size": 5}))
    fig.update_layout(title=title, template="plotly_white", xaxis={"visible": False}, yaxis={"visible": False},
                      legend={"itemsizing": "constant"})
    with staged(path) as tmp:
        fig.write_html(tmp, include_plotlyjs=True, full_html=True)
