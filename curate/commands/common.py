"""What every command module shares: the consoles, the progress bar, JSON output and common options."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

T = TypeVar("T")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

ProjectDir = Annotated[Path, typer.Option("--project", "-p", help="Project directory.", show_default="current")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON (for scripts).")]


def progress_bar(items: Iterable[T], description: str, total: int | None) -> Iterator[T]:
    """A rich progress bar on stderr around ``items``; where stderr is not a terminal (a log file, a job
    scheduler), a line every ``CURATE_PROGRESS_SECONDS`` seconds (default 60) instead."""
    if not err.is_terminal:
        yield from _progress_lines(items, description, total)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn()]
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)


def _progress_lines(items: Iterable[T], description: str, total: int | None) -> Iterator[T]:
    import os
    import time

    try:
        every = max(0.0, float(os.environ.get("CURATE_PROGRESS_SECONDS") or 60))
    except ValueError:  # not a number: the default
        every = 60.0
    start = last = time.monotonic()
    for done, item in enumerate(items, 1):
        yield item
        now = time.monotonic()
        if now - last >= every:
            last = now
            rate = done / max(now - start, 1e-9)
            left = f", about {(total - done) / rate:.0f} s left" if total and rate > 0 else ""
            err.print(f"{time.strftime('%H:%M:%S')} {description}: {done}{f'/{total}' if total else ''} in "
                      f"{now - start:.0f} s{left}", markup=False)


def print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


ModelOption = Annotated[str | None, typer.Option(
    "--model", help="Embedding model: hub id (from the local Hugging Face cache) or folder; default from curate.toml.")]
DeviceOption = Annotated[str | None, typer.Option(
    "--device", help="auto (a GPU where torch sees one), cpu, cuda, cuda:N or mps; default: [compute] device in "
                     "curate.toml.")]
EngineOption = Annotated[str | None, typer.Option(
    "--engine", help="local (this process) or ray (the Ray cluster at [compute] ray_address, else RAY_ADDRESS, else "
                     "a Ray on this machine); default: [compute] engine in curate.toml.")]
FieldOption = Annotated[str | None, typer.Option("--field", help="prompt | completion | pair (default: pair if the "
                                                                 "project has pairs, else prompt).")]
