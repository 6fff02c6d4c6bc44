"""``curate demo``: the loop on the bundled sample, in a fresh project, step by step."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.config import CONFIG_FILE
from curate.errors import ProjectError
from curate.project import init_project
from curate.samples import sample_paths


@dataclass
class DemoStep:
    name: str  # init | ingest | embed | cluster | dedup | map | committee | select | refit | status
    result: Any


def run_demo(directory: Path | str, *, progress: Any = None) -> Iterator[DemoStep]:
    """Create a project in ``directory`` (replacing an earlier demo project there) and run each step,
    yielding its result as it finishes."""
    from curate.cluster import cluster_pool
    from curate.dedup import dedup_pool
    from curate.ingest import ingest_files
    from curate.maps import write_map
    from curate.pool import embed_pool
    from curate.rounds import select_round
    from curate.scores.committee import score_committee
    from curate.status import project_status

    root = Path(directory)
    if root.exists():
        if not (root / CONFIG_FILE).is_file() and any(root.iterdir()):
            raise ProjectError(f"{root} exists and is not a curate project; choose another --dir")
        shutil.rmtree(root)
    with init_project(root) as project:
        yield DemoStep("init", project.root)
        yield DemoStep("ingest", ingest_files(project, sample_paths(), progress=progress))
        yield DemoStep("embed", embed_pool(project, progress=progress))
        yield DemoStep("cluster", cluster_pool(project, k="auto"))
        yield DemoStep("dedup", dedup_pool(project, progress=progress))
        yield DemoStep("map", write_map(project))
        yield DemoStep("committee", score_committee(project))
        yield DemoStep("select", select_round(project, budget=40))
        yield DemoStep("refit", score_committee(project))  # without the slices the first round reserved
        yield DemoStep("status", project_status(project))
