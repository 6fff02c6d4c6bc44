"""`curate init` and `curate status`: create a project, say what it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from curate.commands.common import JsonFlag, ProjectDir, out, print_json


def init(directory: Annotated[Path, typer.Argument(help="Directory to create the project in.")],
         db: Annotated[str | None, typer.Option("--db", help="postgresql://user@host/db for a shared server "
                                                "(default: SQLite curate.db in the project).")] = None) -> None:
    """Create a project: curate.toml, the database, cache/, rounds/, exports/, models/."""
    from curate.project import init_project
    from curate.store import redact

    with init_project(directory, db_url=db) as project:
        out.print(f"created project [bold]{project.root}[/] (database {redact(project.store.url)})")


def metadata_line(metadata: dict[str, dict[str, Any]]) -> str:
    """``metadata: language (3 values), split (train 90, test 10), prompt_id (ids)`` (rich markup escaped)."""
    from rich.markup import escape

    def what(key: str, info: dict[str, Any]) -> str:
        if info["values"] is None:
            return "ids"
        if "counts" in info:
            return ", ".join(f"{value} {n}" for value, n in info["counts"].items())
        return f"{info['values']} value{'s' * (info['values'] != 1)}"

    return escape("metadata: " + ", ".join(f"{key} ({what(key, info)})" for key, info in metadata.items()))


def status(project_dir: ProjectDir = Path("."), as_json: JsonFlag = False) -> None:
    """What the project holds: records, pairs, judgments by source, annotators, rounds."""
    from curate.project import open_project
    from curate.report.status import project_status

    with open_project(project_dir) as project:
        summary = project_status(project)
    if as_json:
        print_json(summary)
        return
    from curate.commands.views import status_table

    out.print(status_table(summary))
    if summary["metadata"]:
        out.print(metadata_line(summary["metadata"]))
    if summary["exposed_files"]:
        names = " ".join(summary["exposed_files"])
        out.print(f"[yellow]{names}: readable by others (the database holds password hashes)[/] "
                  f"(chmod 600 {names} in {summary['root']})")
    for problem in summary["manifest_problems"]:
        out.print(f"[yellow]round {problem['round']}: rounds/{problem['round']:04d}/manifest.json: "
                  f"{problem['problem']}[/] (curate round repair {problem['round']} rewrites it from the store)")
