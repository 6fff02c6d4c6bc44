"""The ``curate`` command line: one thin function per command; the library does the work."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from curate.commands.annotate import adjudicate, agreement, serve, user_app
from curate.commands.common import FieldOption, JsonFlag, ModelOption, ProjectDir, err, out, print_json, progress_bar
from curate.commands.demo import demo, report
from curate.commands.export import export
from curate.commands.rounds import round_app, select
from curate.commands.score import score_app
from curate.commands.simulate import simulate
from curate.commands.train import generate, recipes_app, train
from curate.errors import CurateError, InputError
from curate.ingest.readers import FileFormat

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="curate: choose what experts should judge, collect their judgments, train on every round.")
MAX_PROBLEM_LINES = 20


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False) -> None:
    if debug:
        os.environ["CURATE_DEBUG"] = "1"


@app.command()
def init(directory: Annotated[Path, typer.Argument(help="Directory to create the project in.")],
         db: Annotated[str | None, typer.Option("--db", help="postgresql://user@host/db for a shared server "
                                                "(default: SQLite curate.db in the project).")] = None) -> None:
    """Create a project: curate.toml, the database, cache/, rounds/, exports/, models/."""
    from curate.project import init_project
    from curate.store import redact

    with init_project(directory, db_url=db) as project:
        out.print(f"created project [bold]{project.root}[/] (database {redact(project.store.url)})")


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="JSONL(.gz), JSON, CSV/TSV, Parquet files or datasets folders.")],
    project_dir: ProjectDir = Path("."),
    file_format: Annotated[FileFormat, typer.Option("--format", help="Input format (auto: from the name).")
                           ] = FileFormat.auto,
    mapping: Annotated[str | None, typer.Option(
        "--map", help="Column roles, e.g. prompt=instruction+input,a=output_1,b=output_2,label=winner "
                      "(roles: prompt chosen rejected a b completion label id).")] = None,
    label_values: Annotated[str | None, typer.Option(
        "--label-values", help="Label cells to choices, e.g. 1=a,2=b,0=tie (pairs) or yes=good,no=bad.")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Ingest the good rows; write bad ones to a file.")
                        ] = False,
    rejects: Annotated[Path | None, typer.Option("--rejects", help="Where --skip-bad writes bad rows.")] = None,
    no_labels: Annotated[bool, typer.Option("--no-labels", help="Ingest the texts only, not the files' labels "
                                            "(an unlabelled pool).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Add records, pairs and their judgments from PATHS (all or nothing unless --skip-bad)."""
    from curate.ingest import ingest_files
    from curate.project import open_project

    with open_project(project_dir) as project:
        report = ingest_files(project, paths, file_format=file_format.value, mapping=mapping, label_values=label_values,
                              skip_bad=skip_bad, rejects_path=rejects, labels=not no_labels, progress=progress_bar)
    if as_json:
        print_json(report.to_dict())
        return
    from curate.views import ingest_table

    out.print(ingest_table(report))
    for f in report.files:
        for note, locations in f.notes.items():
            out.print(f"note: {f.path}: {len(locations)} row(s): {note} (first at {locations[0]})")
    if report.problems:
        out.print(f"skipped {len(report.problems)} bad row(s); reasons in {report.rejects_path}")
    if report.added == 0:
        out.print("nothing new: everything in these files is already in the project")


@app.command()
def status(project_dir: ProjectDir = Path("."), as_json: JsonFlag = False) -> None:
    """What the project holds: records, pairs, judgments by source, annotators, rounds."""
    from curate.project import open_project
    from curate.status import project_status

    with open_project(project_dir) as project:
        summary = project_status(project)
    if as_json:
        print_json(summary)
    else:
        from curate.views import status_table

        out.print(status_table(summary))


@app.command()
def embed(project_dir: ProjectDir = Path("."), model: ModelOption = None,
          field: Annotated[str | None, typer.Option("--field", help="prompt | completion | pair "
                                                    "(default: every prompt and completion).")] = None,
          batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 64, as_json: JsonFlag = False) -> None:
    """Embed the pool's texts with sentence-transformers; cached, so only new texts are computed."""
    from curate.pool import embed_pool
    from curate.project import open_project

    with open_project(project_dir) as project:
        result = embed_pool(project, model=model, field_name=field, batch_size=batch_size, progress=progress_bar)
    if as_json:
        print_json(vars(result))
    else:
        out.print(f"embedded {result.texts} texts with {result.model}: {result.computed} computed, "
                  f"{result.cached} from the cache")


@app.command()
def cluster(project_dir: ProjectDir = Path("."),
            k: Annotated[str, typer.Option("--k", help="Number of clusters, or auto (best silhouette).")] = "auto",
            method: Annotated[str, typer.Option("--method", help="kmeans | hdbscan")] = "kmeans",
            field: FieldOption = None, model: ModelOption = None,
            seed: Annotated[int, typer.Option("--seed", help="Random state.")] = 0,
            show: Annotated[bool, typer.Option("--show", help="Describe the latest clusters instead.")] = False,
            as_json: JsonFlag = False) -> None:
    """Cluster the pool (k-means or HDBSCAN); --show describes each cluster with keywords and examples."""
    from curate.cluster import cluster_pool, describe_clusters
    from curate.project import open_project

    with open_project(project_dir) as project:
        if show:
            run, clusters = describe_clusters(project, field_name=field, model=model)
            if as_json:
                print_json({"run": run.id, "field": run.field, "clusters": [vars(c) for c in clusters]})
            else:
                from curate.views import clusters_table

                out.print(clusters_table(run, clusters))
            return
        summary = cluster_pool(project, k=k, method=method, field_name=field, model=model, random_state=seed)
    if as_json:
        print_json(vars(summary))
    else:
        noise = f", {summary.sizes.get(-1, 0)} noise" if summary.method == "hdbscan" else ""
        out.print(f"clustered {sum(summary.sizes.values())} {summary.field}s into {summary.k} clusters "
                  f"({summary.method}{noise}); run {summary.run_id}. See them with: curate cluster --show")


@app.command()
def dedup(project_dir: ProjectDir = Path("."),
          threshold: Annotated[float, typer.Option("--threshold", help="Cosine similarity that makes a near-duplicate.",
                                                   min=0.0, max=1.0)] = 0.95,
          field: FieldOption = None, model: ModelOption = None,
          show: Annotated[int, typer.Option("--show", help="How many groups to list.")] = 10,
          as_json: JsonFlag = False) -> None:
    """Mark near-duplicates (one representative per group is kept); nothing is deleted."""
    from curate.dedup import dedup_pool
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
        from curate.views import duplicates_table

        out.print(duplicates_table(result, show))


@app.command(name="map")
def map_(project_dir: ProjectDir = Path("."),
         method: Annotated[str, typer.Option("--method", help="auto (UMAP, else PCA) | umap | pca")] = "auto",
         field: FieldOption = None, model: ModelOption = None,
         out_dir: Annotated[Path | None, typer.Option("--out", help="Folder (default: maps/ in the project).")] = None,
         seed: Annotated[int, typer.Option("--seed", help="Random state.")] = 0, as_json: JsonFlag = False) -> None:
    """Write a 2-D map of the pool coloured by cluster: PNG, interactive HTML and coordinates (CSV)."""
    from curate.maps import write_map
    from curate.project import open_project

    with open_project(project_dir) as project:
        result = write_map(project, field_name=field, method=method, model=model, out_dir=out_dir, random_state=seed)
    if as_json:
        print_json(vars(result))
    else:
        out.print(f"mapped {result.points} {result.field}s with {result.method}: {result.png}, {result.html}, "
                  f"{result.csv}")


@app.command()
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
    from curate.drift import drift_report
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
        from curate.views import drift_table

        out.print(drift_table(report))


app.add_typer(score_app, name="score")
app.add_typer(user_app, name="user")
app.add_typer(round_app, name="round")
app.add_typer(recipes_app, name="recipes")
app.command()(serve)
app.command()(agreement)
app.command()(adjudicate)
app.command()(export)
app.command()(train)
app.command()(generate)
app.command()(select)
app.command()(simulate)
app.command()(report)
app.command()(demo)


def _print_error(error: CurateError) -> None:
    from rich.markup import escape

    err.print(f"[red]error:[/] {escape(str(error))}")
    if isinstance(error, InputError) and len(error.problems) > 1:
        for problem in error.problems[1:MAX_PROBLEM_LINES]:
            err.print(f"  {problem}", markup=False)
        if len(error.problems) > MAX_PROBLEM_LINES:
            err.print(f"  ... {len(error.problems) - MAX_PROBLEM_LINES} more", markup=False)


def main() -> None:
    """Entry point of the ``curate`` console script."""
    try:
        app()
    except CurateError as error:
        if os.environ.get("CURATE_DEBUG"):
            raise
        _print_error(error)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
