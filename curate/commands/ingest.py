"""`curate ingest`: add files to the pool, all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curate.commands.common import JsonFlag, ProjectDir, out, print_json, progress_bar
from curate.ingest.readers import FileFormat


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
    from curate.commands.views import ingest_table

    out.print(ingest_table(report))
    for f in report.files:
        for note, locations in f.notes.items():
            out.print(f"note: {f.path}: {len(locations)} row(s): {note} (first at {locations[0]})")
    if report.problems:
        out.print(f"skipped {len(report.problems)} bad row(s); reasons in {report.rejects_path}")
    if report.added == 0:
        out.print("nothing new: everything in these files is already in the project")
