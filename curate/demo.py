"""``curate demo``: the loop on the bundled sample, in a fresh project."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from curate.config import CONFIG_FILE
from curate.errors import ProjectError
from curate.ingest import IngestReport, ingest_files
from curate.ingest.pipeline import Progress
from curate.project import Project, init_project
from curate.samples import sample_paths


@contextmanager
def run_demo(directory: Path | str, *, progress: Progress | None = None) -> Iterator[tuple[Project, IngestReport]]:
    """Create a project in ``directory`` (replacing an earlier demo project there) and ingest the sample."""
    root = Path(directory)
    if root.exists():
        if not (root / CONFIG_FILE).is_file() and any(root.iterdir()):
            raise ProjectError(f"{root} exists and is not a curate project; choose another --dir")
        shutil.rmtree(root)
    with init_project(root) as project:
        yield project, ingest_files(project, sample_paths(), progress=progress)
