"""`curate report`: the project's HTML report (or its data as JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curate.commands.common import JsonFlag, ProjectDir, out, print_json, progress_bar


def report(project_dir: ProjectDir = Path("."),
           out_path: Annotated[Path | None, typer.Option("--out", help="Where to write the HTML page.",
                                                         show_default="report.html in the project")] = None,
           as_json: JsonFlag = False) -> None:
    """Write the project's report: where and why each round chose, the learning curve against the random arm,
    agreement, model versions and their test figures, what changed between rounds (one HTML file)."""
    from curate.project import open_project
    from curate.report.data import report_data, write_report

    with open_project(project_dir) as project:
        if as_json:
            print_json(report_data(project, progress=progress_bar))
            return
        path = write_report(project, out=out_path, progress=progress_bar)
    out.print(f"report: {path} (open it in a browser)")
