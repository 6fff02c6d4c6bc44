"""`curate ingest`: add files to the pool, all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curate.commands.common import JsonFlag, ProjectDir, out, print_json, progress_bar
from curate.ingest.readers import FileFormat


def ingest(
    paths: Annotated[list[Path], typer.Argument(
        help="JSONL(.gz), JSON, CSV/TSV, Parquet files, datasets folders, or Hub ids org/name[:config][@split].")],
    project_dir: ProjectDir = Path("."),
    file_format: Annotated[FileFormat, typer.Option("--format", help="Input format (auto: from the name).")
                           ] = FileFormat.auto,
    mapping: Annotated[str | None, typer.Option(
        "--map", help="Column roles, e.g. prompt=instruction+input,a=output_1,b=output_2,label=winner "
                      "or prompt=question,completions=answers,score=rating (roles: prompt chosen rejected a b "
                      "completion completions score label gold id).")] = None,
    label_values: Annotated[str | None, typer.Option(
        "--label-values", help="Label cells to choices, e.g. 1=a,2=b,0=tie (pairs) or yes=good,no=bad.")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Ingest the good rows; write bad ones to a file.")
                        ] = False,
    rejects: Annotated[Path | None, typer.Option("--rejects", help="Where --skip-bad writes bad rows.")] = None,
    no_labels: Annotated[bool, typer.Option("--no-labels", help="Ingest the texts only, not the files' labels "
                                            "(an unlabelled pool).")] = False,
    pairs: Annotated[str | None, typer.Option(
        "--pairs", help="How a prompt with N scored completions becomes pairs: auto (default: best-vs-each, or all "
                        "where a row has no scores), best-vs-each, all (every two), best-vs-worst or best-vs-random "
                        "(the top score against the others, the lowest, or one drawn as UltraFeedback-binarized "
                        "did).")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Check every row and show the layout, each column's role and the first row as parsed; "
                          "write nothing (no project needed).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Add records, pairs and their judgments from PATHS: files, `datasets` folders or Hub ids org/name[:config][@split]
    (all or nothing unless --skip-bad)."""
    from curate.ingest import ingest_files
    from curate.project import open_project

    if dry_run:
        _dry_run(paths, file_format=file_format.value, mapping=mapping, label_values=label_values, pair_rule=pairs,
                 skip_bad=skip_bad, as_json=as_json)
        return
    with open_project(project_dir) as project:
        report = ingest_files(project, paths, file_format=file_format.value, mapping=mapping, label_values=label_values,
                              skip_bad=skip_bad, rejects_path=rejects, labels=not no_labels, pair_rule=pairs,
                              progress=progress_bar)
    if as_json:
        print_json(report.to_dict())
        return
    from curate.commands.views import ingest_table

    out.print(ingest_table(report))
    for f in report.files:
        for note, locations in f.notes.items():
            out.print(f"note: {f.path}: {f.note_rows[note]} row(s): {note} (first at {locations[0]})")
    if report.problems:
        out.print(f"skipped {len(report.problems)} bad row(s); reasons in {report.rejects_path}")
    if report.added == 0:
        out.print("nothing new: everything in these files is already in the project")


def _dry_run(paths: list[Path], *, file_format: str, mapping: str | None, label_values: str | None,
             pair_rule: str | None, skip_bad: bool, as_json: bool) -> None:
    from dataclasses import asdict

    from curate.ingest.preview import preview_files

    previews = preview_files(paths, file_format=file_format, mapping=mapping, label_values=label_values,
                             pair_rule=pair_rule, skip_bad=skip_bad, progress=progress_bar)
    if as_json:
        print_json([asdict(p) for p in previews])
        return
    for p in previews:
        out.print(f"{p.path}: layout {p.layout} ({p.file_format}), {p.rows} rows, {p.bad_rows} bad", markup=False)
        for role, columns in p.roles.items():
            out.print(f"  {role:<12} <- {', '.join(columns)}", markup=False)
        if p.pair_rule:
            out.print(f"  pairs rule   {p.pair_rule}", markup=False)
        if p.first:
            first = p.first
            out.print(f"first row ({first['location']}):", markup=False)
            out.print(f"  prompt: {_short(first['prompt'])}", markup=False)
            for number, c in enumerate(first["completions"], 1):
                about = ", ".join(([f"model {c['model']}"] if c["model"] else []) + c["ratings"])
                out.print(f"  completion {number}: {_short(c['text'])}" + (f"  [{about}]" if about else ""),
                          markup=False)
            for pair in first["pairs"]:
                labels = "; ".join(pair["labels"]) or "no label"
                out.print(f"  pair {pair['a']} vs {pair['b']}: {labels}", markup=False)
            if first["metadata"]:
                out.print(f"  metadata: {_short(str(first['metadata']))}", markup=False)
        counts = p.counts
        judgments = ", ".join(f"{n} {kind}" for kind, n in counts["judgments"].items()) or "none"
        out.print(f"in the file: {counts['records']} prompts, {counts['completions']} completions, "
                  f"{counts['pairs']} pairs; judgments: {judgments}", markup=False)
        for note, n in p.notes.items():
            out.print(f"note: {n} row(s): {note}", markup=False)
        for problem in p.problems[:10]:
            out.print(f"bad row (--skip-bad would leave it out): {problem}", markup=False)
        if len(p.problems) > 10:
            out.print(f"... and {len(p.problems) - 10} more bad rows", markup=False)
    out.print("dry run: nothing was written", markup=False)


def _short(text: str, limit: int = 100) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"
