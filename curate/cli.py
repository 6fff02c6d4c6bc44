"""The ``curate`` command line, assembled from ``curate.commands`` (one module per command group)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from curate.commands import (
    demo,
    export,
    generate,
    ingest,
    labels,
    pool,
    project,
    report,
    score,
    select,
    serve,
    simulate,
    train,
)
from curate.commands.common import err
from curate.errors import CurateError, InputError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="curate: choose what experts should judge, collect their judgments, train on every round.")
MAX_PROBLEM_LINES = 20


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False) -> None:
    if debug:
        os.environ["CURATE_DEBUG"] = "1"


# The order here is the order of `curate --help` and of docs/cli.md.
for command in (project.init, ingest.ingest, project.status, pool.embed, pool.cluster, pool.dedup):
    app.command()(command)
app.command(name="map")(pool.map_)
app.command()(pool.drift)
app.add_typer(score.score_app, name="score")
app.add_typer(serve.user_app, name="user")
app.add_typer(select.round_app, name="round")
app.add_typer(train.recipes_app, name="recipes")
for command in (serve.serve, labels.agreement, labels.adjudicate, export.export, train.train, generate.generate,
                select.select, simulate.simulate, report.report, demo.demo):
    app.command()(command)


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
