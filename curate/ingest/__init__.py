"""Reading prompt/completion/preference files into a project (``curate ingest``)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_API = {"ingest_files": "curate.ingest.pipeline", "known_choices": "curate.ingest.pipeline",
        "FileReport": "curate.ingest.results", "IngestReport": "curate.ingest.results"}
__all__ = list(_API)


def __getattr__(name: str) -> Any:  # imported on first use: `curate --help` needs none of it
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'curate.ingest' has no attribute {name!r}")
