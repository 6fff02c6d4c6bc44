"""The pool's commands: `curate embed`, `cluster`, `dedup`, `map` and `drift`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curate.commands.common import (
    DeviceOption,
    EngineOption,
    FieldOption,
    JsonFlag,
    ModelOption,
    ProjectDir,
    out,
    print_json,
    progress_bar,
)
from curate.ingest.readers import FileFormat


def embed(project_dir: ProjectDir = Path("."), model: ModelOption = None,
          field: Annotated[str | None, typer.Option("--field", help="prompt | completion | pair "
                                                    "(default: every prompt and completion).")] = None,
          batch_tokens: Annotated[int | None, typer.Option(
              "--batch-tokens", min=1, help="Padded tokens per batch (default: 8192 on a CPU, 131072 on a GPU).")
          ] = None, device: DeviceOption = None, engine: EngineOption = None, as_json: JsonFlag = False) -> None:
    """Embed the pool's texts with sentence-transformers; cached, so only new texts are computed."""
    from curate.pool.units import embed_pool
    from curate.project import open_project

    with open_project(project_dir) as project:
        result = embed_pool(project, model=model, field_name=field, batch_tokens=batch_tokens, device=device,
                            engine=engine, progress=progress_bar)
    if as_json:
        print_json(vars(result))
    else:
        out.print(f"embedded {result.texts} texts with {result.model}: {result.computed} computed, "
                  f"{result.cached} from the cache")


def cluster(project_dir: ProjectDir = Path("."),
            k: Annotated[str, typer.Option("--k", help="Number of clusters, or auto (best silhouette).")] = "auto",
            method: Annotated[str, typer.Option("--method", help="kmeans | hdbscan")] = "kmeans",
            field: FieldOption = None, model: ModelOption = None,
            seed: Annotated[int, typer.Option("--seed", help="Random state.")] = 0,
            show: Annotated[bool, typer.Option("--show", help="Describe the latest clusters instead.")] = False,
            as_json: JsonFlag = False) -> None:
    """Cluster the pool (k-means or HDBSCAN); --show describes each cluster with keywords and examples."""
    from curate.pool.cluster import cluster_pool, describe_clusters
    from curate.project import open_project

    with open_project(project_dir) as project:
        if show:
            run, clusters = describe_clusters(project, field_name=field, model=model)
            if as_json:
                print_json({"run": run.id, "field": run.field, "clusters": [vars(c) for c in clusters]})
            else:
                from curate.commands.views import clusters_table

                out.print(clusters_table(run, clusters))
            return
        summary = cluster_pool(project, k=k, method=method, field_name=field, model=model, random_state=seed)
    if as_json:
        print_json(vars(summary))
    else:
        noise = f", {summary.sizes.get(-1, 0)} noise" if summary.method == "hdbscan" else ""
        out.print(f"clustered {sum(summary.sizes.values())} {summary.field}s into {summary.k} clusters "
                  f"({summary.method}{noise}); run {summary.run_id}. See them with: curate cluster --show")


def dedup(project_dir: ProjectDir = Path("."),
          threshold: Annotated[float, typer.Option("--threshold", help="Cosine similarity that makes a near-duplicate.",
                                                   min=0.0, max=1.0)] = 0.95,
          field: FieldOption = None, model: ModelOption = None,
          show: Annotated[int, typer.Option("--show", help="How many groups to list.")] = 10,
          as_json: JsonFlag = False) -> None:
    """Mark near-duplicates (one representative per group is kept); nothing is deleted."""
    from curate.pool.dedup import dedup_pool
    from curate.project import open_project

    with open_project(project_dir) as project:
        result = dedup_pool(project, threshold=threshold, field_name=field, model=model, progress=progress_bar)
    if as_json:
        print_json({"field": result.field, "threshold": result.threshold, "method": result.method,
                     "units": result.units, "marked": result.marked, "groups": [vars(g) for g in result.groups]})
        return
    out.print(f"{len(result.groups)} near-duplicate groups among {result.units} {result.field}s "
              f"(cosine >= {result.threshold}, {result.method} search): {result.marked} marked, "
              f"one representative kept per group")
    if result.groups and show:
        from curate.commands.views import duplicates_table

        out.print(duplicates_table(result, show))


def map_(project_dir: ProjectDir = Path("."),
         method: Annotated[str, typer.Option("--method", help="auto (UMAP, else PCA) | umap | pca")] = "auto",
         field: FieldOption = None, model: ModelOption = None,
         out_dir: Annotated[Path | None, typer.Option("--out", help="Folder (default: maps/ in the project).")] = None,
         seed: Annotated[int, typer.Option("--seed", help="Random state.")] = 0, as_json: JsonFlag = False) -> None:
    """Write a 2-D map of the pool coloured by cluster: PNG, interactive HTML and coordinates (CSV)."""
    from curate.pool.maps import write_map
    from curate.project import open_project

    with open_project(project_dir) as project:
        result = write_map(project, field_name=field, method=method, model=model, out_dir=out_dir, random_state=seed)
    if as_json:
        print_json(vars(result))
    else:
        out.print(f"mapped {result.points} {result.field}s with {result.method}: {result.png}, {result.html}, "
                  f"{result.csv}")


def drift(new_file: Annotated[Path, typer.Argument(help="A new batch in any format `curate ingest` reads.")],
          project_dir: ProjectDir = Path("."),
          field: Annotated[str, typer.Option("--field", help="prompt | pair: what of each row to compare.")] = "prompt",
          file_format: Annotated[FileFormat, typer.Option("--format")] = FileFormat.auto,
          mapping: Annotated[str | None, typer.Option("--map", help="Column roles, as for ingest.")] = None,
          label_values: Annotated[str | None, typer.Option("--label-values")] = None,
          model: ModelOption = None,
          permutations: Annotated[int, typer.Option("--permutations", min=19)] = 199,
          seed: Annotated[int, typer.Option("--seed")] = 0, as_json: JsonFlag = False) -> None:
    """Is NEW_FILE like the pool? A classifier two-sample test (AUC, permutation p-value) and cluster shares."""
    from curate.pool.drift import drift_report
    from curate.project import open_project

    with open_project(project_dir) as project:
        report = drift_report(project, new_file, field_name=field, file_format=file_format.value, mapping=mapping,
                              label_values=label_values, model=model, permutations=permutations,
                              random_state=seed, progress=progress_bar)
    if as_json:
        print_json(vars(report) | {"clusters": [vars(c) for c in report.clusters]})
        return
    colour = "red" if report.verdict == "drifted" else "green"
    out.print(f"[bold {colour}]{report.verdict}[/]: a classifier tells the {report.new_units} new rows from the "
              f"{report.pool_units} in the pool with AUC {report.auc:.3f} (0.5 = indistinguishable), "
              f"permutation p = {report.p_value:.4f} ({report.permutations} permutations)")
    if report.clusters:
        from curate.commands.views import drift_table

        out.print(drift_table(report))
